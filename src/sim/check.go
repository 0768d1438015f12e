package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"ddhcpd/src/claim"
	"ddhcpd/src/wire"
)

// maxReported bounds the violations spelled out in one error.
const maxReported = 12

// violations collects what a check finds.
type violations struct {
	lines []string
	n     int
}

func (v *violations) addf(format string, args ...any) {
	v.n++
	if len(v.lines) < maxReported {
		v.lines = append(v.lines, fmt.Sprintf(format, args...))
	}
}

func (v *violations) err(what string) error {
	if v.n == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d violation(s)", what, v.n)
	for _, l := range v.lines {
		b.WriteString("\n\t")
		b.WriteString(l)
	}
	if v.n > len(v.lines) {
		fmt.Fprintf(&b, "\n\t... and %d more", v.n-len(v.lines))
	}
	return errors.New(b.String())
}

// Check reports broken invariants of block ownership among the live nodes:
//
//   - anomalies seen during the run (an engine that refused or could not
//     encode a datagram, a tick that left work due, events that contradict
//     each other or the engines' tables);
//   - (a) no block is ours on two nodes;
//   - (b) every node's view agrees with the owners: a block ours at X is
//     claimed by X (id and address) on every other live node, and a block
//     claimed by X somewhere is ours at X, which is up.
//
// (b) only holds once the mesh has been connected and quiet (no loss) for a
// while; a disagreement is excused while a datagram naming the block is
// still on its way to the node that disagrees, as it settles the matter.
// The error names the nodes, ids and blocks involved.
func (n *Network) Check() error {
	var v violations
	for _, a := range n.anomalies {
		v.addf("anomaly %s", a)
	}
	if extra := n.nAnomaly - len(n.anomalies); extra > 0 {
		v.addf("... and %d more anomalies", extra)
	}

	// The engines' own tables are the truth; the event index must agree.
	held := make(map[uint32][]int)
	for i, nd := range n.nodes {
		if !nd.up {
			continue
		}
		for _, b := range nd.node.Engine().Owned() {
			held[b] = append(held[b], i)
		}
	}
	for _, b := range sortedKeys(held) {
		if got := n.owners[b]; !sameNodes(got, held[b]) {
			v.addf("block %d: engines hold it on nodes %v, their events say %v", b, held[b], got)
		}
	}
	for _, b := range sortedKeys(n.owners) {
		if _, ok := held[b]; !ok {
			v.addf("block %d: events say nodes %v own it, no engine does", b, n.owners[b])
		}
	}

	pending := n.pendingMentions()
	excused := func(node int, b uint32) bool { return pending[mention{node, b}] }

	for _, b := range sortedKeys(held) {
		xs := held[b]
		if len(xs) > 1 {
			v.addf("(a) block %d (%v) is ours on %d nodes: %s", b, n.blockRange(b), len(xs), n.names(xs))
			continue
		}
		x := xs[0]
		for z, nd := range n.nodes {
			if z == x || !nd.up {
				continue
			}
			bi := nd.node.Engine().Block(b)
			if bi.State == claim.Claimed && bi.Owner == n.nodes[x].id && bi.OwnerAddr == n.Addr(x) {
				continue
			}
			if !excused(z, b) {
				v.addf("(b) block %d is ours on %s, but node %d sees it %s", b, n.name(x), z, n.view(bi))
			}
		}
	}
	for y, nd := range n.nodes {
		if !nd.up {
			continue
		}
		for _, bi := range nd.node.Engine().Blocks() {
			if bi.State != claim.Claimed {
				continue
			}
			x, known := n.byID[bi.Owner]
			if known && n.nodes[x].up && slices.Contains(held[bi.Index], x) || excused(y, bi.Index) {
				continue
			}
			switch {
			case !known:
				v.addf("(b) node %d sees block %d claimed by unknown id %v", y, bi.Index, bi.Owner)
			case !n.nodes[x].up:
				v.addf("(b) node %d sees block %d claimed by %s, which is down", y, bi.Index, n.name(x))
			default:
				v.addf("(b) node %d sees block %d claimed by %s, which does not own it (%s)", y, bi.Index, n.name(x), n.view(n.nodes[x].node.Engine().Block(bi.Index)))
			}
		}
	}
	return v.err(fmt.Sprintf("sim: at %v", n.now))
}

// CheckSupply reports (c): every live node that keeps spare leases has at
// least that many free addresses in its own blocks (as its Usage counts
// them), unless it has reached its MaxBlocks. It only holds when the pool has
// enough blocks for every node, and the nodes have had time to claim them.
func (n *Network) CheckSupply() error {
	var v violations
	for i, nd := range n.nodes {
		if !nd.up {
			continue
		}
		c := nd.node.Engine().Config()
		if c.SpareLeases == 0 {
			continue
		}
		owned := nd.node.Engine().Owned()
		if nd.node.Engine().Learning() {
			v.addf("(c) %s is still learning", n.name(i))
			continue
		}
		if free := n.Free(i); free < c.SpareLeases && (c.MaxBlocks == 0 || len(owned) < c.MaxBlocks) {
			v.addf("(c) %s has %d free addresses in blocks %v, wants %d spare", n.name(i), free, owned, c.SpareLeases)
		}
	}
	return v.err(fmt.Sprintf("sim: at %v", n.now))
}

// Free is the number of free addresses in node i's own blocks, as its engine
// counts them: through its Usage if it has one, else every usable address.
func (n *Network) Free(i int) int {
	nd := n.nodes[i]
	if !nd.up {
		return 0
	}
	free := 0
	for _, b := range nd.node.Engine().Owned() {
		if nd.usage != nil {
			free += nd.usage.Free(b)
		} else {
			free += n.pool.Usable(b)
		}
	}
	return free
}

// mention is a block named by a datagram still on its way to a node.
type mention struct {
	node  int
	block uint32
}

func (n *Network) pendingMentions() map[mention]bool {
	out := make(map[mention]bool)
	for _, e := range n.q {
		if e.kind != evCast {
			continue
		}
		m, err := wire.Decode(e.cast.data)
		if err != nil {
			continue
		}
		blocks := slices.Clone(m.Inquiries)
		for _, c := range m.Claims {
			blocks = append(blocks, c.Block)
		}
		for _, c := range e.cast.rx[e.cast.next:] {
			for _, b := range blocks {
				out[mention{c.to, b}] = true
			}
		}
	}
	return out
}

func (n *Network) name(i int) string { return fmt.Sprintf("node %d (%v)", i, n.nodes[i].id) }

func (n *Network) names(is []int) string {
	s := make([]string, len(is))
	for k, i := range is {
		s[k] = n.name(i)
	}
	return strings.Join(s, ", ")
}

func (n *Network) view(bi claim.BlockInfo) string {
	switch bi.State {
	case claim.Claimed:
		if x, ok := n.byID[bi.Owner]; ok {
			return fmt.Sprintf("claimed by node %d from %v, until %v", x, bi.OwnerAddr, bi.Timeout)
		}
		return fmt.Sprintf("claimed by unknown %v", bi.Owner)
	case claim.Tentative:
		return fmt.Sprintf("tentative until %v", bi.Timeout)
	case claim.Claiming:
		return fmt.Sprintf("claiming after %d inquiries", bi.Inquiries)
	}
	return bi.State.String()
}

func (n *Network) blockRange(b uint32) string {
	return fmt.Sprintf("%v-%v", n.pool.Addr(b, 0), n.pool.Addr(b, n.pool.BlockSize()-1))
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sameNodes(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
