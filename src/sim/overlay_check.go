package sim

import (
	"fmt"
	"slices"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// Components returns the connected components of the live nodes over the
// links that are up, each sorted, in order of their smallest node index.
func (o *Network) Components() [][]int {
	n := len(o.nodes)
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, l := range o.links {
		if l.up && o.nodes[l.A].up && o.nodes[l.B].up {
			a, b := find(l.A), find(l.B)
			if a != b {
				parent[max(a, b)] = min(a, b)
			}
		}
	}
	index := make(map[int]int)
	var comps [][]int
	for i := range n {
		if !o.nodes[i].up {
			continue
		}
		r := find(i)
		k, ok := index[r]
		if !ok {
			k = len(comps)
			index[r] = k
			comps = append(comps, nil)
		}
		comps[k] = append(comps[k], i)
	}
	return comps
}

// adjacent reports whether an up link joins nodes i and j.
func (o *Network) adjacent(i, j int) bool {
	for _, ifs := range o.ports[i] {
		for _, k := range ifs {
			l := o.links[k]
			if l.up && (l.A == j || l.B == j) {
				return true
			}
		}
	}
	return false
}

// CheckConverged reports whether the overlay has converged: in every
// connected component of live nodes, every node is in no walk and holds the
// same finished tree (root, epoch, digest), rooted at the component's lowest
// id and of the component's size; parent and child pointers agree, follow
// up links, and lead every node to the root; and routing along Route
// reaches sampled targets. Anomalies of the run (codec or Step errors,
// ticks that leave work due) are reported too.
func (o *Network) CheckConverged() error {
	var v violations
	for _, a := range o.anomalies {
		v.addf("anomaly %s", a)
	}
	for _, comp := range o.Components() {
		o.checkComponent(comp, &v)
	}
	return v.err("overlay not converged")
}

func (o *Network) checkComponent(comp []int, v *violations) {
	root := comp[0]
	for _, i := range comp {
		if o.nodes[i].id.Compare(o.nodes[root].id) < 0 {
			root = i
		}
	}
	rootID := o.nodes[root].id
	info := make(map[int]overlay.TreeInfo, len(comp))
	for _, i := range comp {
		info[i] = o.nodes[i].node.Overlay().Tree()
	}
	rt := info[root]
	if !rt.Valid {
		v.addf("component of %d nodes: root n%d has no tree (state %v)", len(comp), root, rt.State)
		return
	}
	bad := 0
	for _, i := range comp {
		t := info[i]
		switch {
		case !t.Valid:
			v.addf("n%d (component of n%d, %d nodes) has no tree, state %v walk %v/%d", i, root, len(comp), t.State, shortID(t.WalkOrigin), t.WalkEpoch)
		case t.Root != rootID:
			v.addf("n%d has root %v, component's lowest id is n%d %v", i, shortID(t.Root), root, shortID(rootID))
		case t.Epoch != rt.Epoch || t.Digest != rt.Digest:
			v.addf("n%d has tree %v/%d digest %x, root n%d has %d digest %x", i, shortID(t.Root), t.Epoch, t.Digest, root, rt.Epoch, rt.Digest)
		case t.Size != len(comp):
			v.addf("n%d: tree of %d nodes, component of %d", i, t.Size, len(comp))
		case t.State != overlay.Idle:
			v.addf("n%d still %v in walk %v/%d", i, t.State, shortID(t.WalkOrigin), t.WalkEpoch)
		default:
			continue
		}
		bad++
	}
	if bad > 0 {
		return
	}
	// Pointers.
	index := func(id wire.NodeID) int {
		j, _ := o.NodeOf(id)
		return j
	}
	for _, i := range comp {
		t := info[i]
		if i == root {
			if !t.Parent.ID.IsZero() {
				v.addf("root n%d has parent %v", i, shortID(t.Parent.ID))
			}
		} else {
			p := index(t.Parent.ID)
			switch {
			case p < 0 || !slices.Contains(comp, p):
				v.addf("n%d: parent %v not in its component", i, shortID(t.Parent.ID))
			case !o.adjacent(i, p):
				v.addf("n%d: parent n%d is not a neighbour", i, p)
			case !slices.ContainsFunc(info[p].Children, func(c overlay.ChildInfo) bool { return c.ID == o.nodes[i].id }):
				v.addf("n%d: parent n%d does not count it as a child", i, p)
			}
		}
		for _, c := range t.Children {
			j := index(c.ID)
			if j < 0 || info[j].Parent.ID != o.nodes[i].id {
				v.addf("n%d: child %v does not have it as parent", i, shortID(c.ID))
			}
		}
	}
	// Every node reaches the root within len(comp) steps.
	for _, i := range comp {
		j, steps := i, 0
		for j != root && steps <= len(comp) {
			j = index(info[j].Parent.ID)
			steps++
			if j < 0 {
				break
			}
		}
		if j != root {
			v.addf("n%d does not reach the root along parents", i)
			return
		}
	}
	// Routing: from every node to a few targets, and back to the root.
	r := newRand(derive(o.cfg.Seed, 0x7007e, uint64(len(comp))))
	for _, i := range comp {
		for _, target := range []int{root, comp[r.IntN(len(comp))]} {
			o.checkRoute(i, target, len(comp), v)
		}
	}
}

// checkRoute follows Route from node from towards node to, over up links.
func (o *Network) checkRoute(from, to, limit int, v *violations) {
	at := from
	for hops := 0; at != to; hops++ {
		if hops > limit {
			v.addf("route n%d -> n%d loops", from, to)
			return
		}
		p, ok := o.nodes[at].node.Overlay().Route(o.nodes[to].id)
		if !ok {
			v.addf("route n%d -> n%d: no next hop at n%d", from, to, at)
			return
		}
		next, ok := o.NodeOf(p.ID)
		if !ok || !o.adjacent(at, next) {
			v.addf("route n%d -> n%d: next hop %v of n%d is no neighbour", from, to, shortID(p.ID), at)
			return
		}
		at = next
	}
}

// TreeSummary describes every component's tree, for failure reports.
func (o *Network) TreeSummary() string {
	s := ""
	for _, comp := range o.Components() {
		roots := map[string]int{}
		var keys []string
		for _, i := range comp {
			t := o.nodes[i].node.Overlay().Tree()
			k := fmt.Sprintf("%v/%d/%v", shortID(t.Root), t.Epoch, t.State)
			if !t.Valid {
				k = fmt.Sprintf("none/%v:%v", t.State, shortID(t.WalkOrigin))
			}
			if roots[k] == 0 {
				keys = append(keys, k)
			}
			roots[k]++
		}
		slices.Sort(keys)
		s += fmt.Sprintf("component n%d.. (%d nodes):", comp[0], len(comp))
		for _, k := range keys {
			s += fmt.Sprintf(" %s×%d", k, roots[k])
		}
		s += "\n"
	}
	return s
}
