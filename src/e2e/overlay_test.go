package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/control"
)

// chainLab is a routed mesh: routers o1..on joined by links of their own
// (veth pairs), so a multicast reaches one hop. newChainLab makes a line,
// where router k hears only k-1 (on its interface "west") and k+1 (on
// "east"). Every router has a client bridge with the anycast gateway
// 10.0.0.1, as in meshLab.
type chainLab struct {
	*meshLab
	names []string
}

// meshLink joins router a (interface ifA) and router b (ifB), counted from 1.
type meshLink struct {
	a, b     int
	ifA, ifB string
}

func newChainLab(t *testing.T, n int, args ...string) *chainLab {
	var links []meshLink
	for k := 1; k < n; k++ {
		links = append(links, meshLink{k, k + 1, "east", "west"})
	}
	return newRoutedLab(t, n, links, args...)
}

func newRoutedLab(t *testing.T, n int, links []meshLink, args ...string) *chainLab {
	t.Helper()
	m := newEmptyMeshLab(t)
	c := &chainLab{meshLab: m}
	for i := range n {
		name := fmt.Sprintf("o%d", i+1)
		r := &labRouter{name: name, ns: m.lab.NS(name), sock: filepath.Join(m.dir, name+".sock")}
		m.lab.Bridge(r.ns, "br-client")
		r.ns.IP("link", "set", "br-client", "address", fmt.Sprintf("02:dd:00:00:01:%02x", i+1))
		r.ns.AddAddr("br-client", "10.0.0.1/24")
		m.routers[name] = r
		c.names = append(c.names, name)
	}
	mesh := make([][]string, n)
	for _, l := range links {
		m.lab.Veth(c.router(l.a).ns, l.ifA, c.router(l.b).ns, l.ifB)
		mesh[l.a-1] = append(mesh[l.a-1], "-i", l.ifA)
		mesh[l.b-1] = append(mesh[l.b-1], "-i", l.ifB)
	}
	for i, name := range c.names {
		r := m.routers[name]
		r.args = append(append(mesh[i], "-c", "br-client", "-server-id", "10.0.0.1",
			"-N", "10.0.0.0/27", "-b", "2", "-reserve", "10.0.0.0/29", "-overlay",
			"-C", r.sock, "-state", filepath.Join(m.dir, name+".state"), "-vv"), args...)
	}
	return c
}

func (c *chainLab) router(k int) *labRouter { return c.routers[c.names[k-1]] }

func (r *labRouter) tree(t testing.TB) (control.Tree, error) {
	var tr control.Tree
	err := control.Call(r.sock, "tree", nil, &tr)
	return tr, err
}

func (r *labRouter) nodeID(t testing.TB) string {
	t.Helper()
	var st control.Status
	if err := control.Call(r.sock, "status", nil, &st); err != nil {
		t.Fatalf("%s status: %v", r.name, err)
	}
	return st.Node
}

// oneTree waits until the routers agree on one finished tree spanning just
// them, rooted at their lowest id.
func (c *chainLab) oneTree(limit time.Duration, rs ...*labRouter) {
	c.t.Helper()
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.nodeID(c.t))
	}
	lowest := slices.Min(ids)
	eventually(c.t, limit, fmt.Sprintf("one tree over %d routers rooted at %s", len(rs), lowest), func() error {
		for _, r := range rs {
			tr, err := r.tree(c.t)
			if err != nil {
				return err
			}
			if !tr.Enabled || tr.TreeState == nil || !tr.Valid {
				return fmt.Errorf("%s has no tree", r.name)
			}
			if tr.Root != lowest || tr.Size != len(rs) {
				return fmt.Errorf("%s: tree of %s with %d nodes", r.name, tr.Root, tr.Size)
			}
		}
		return nil
	})
}

// claims is every router's view of the blocks: index -> owner id, for the
// blocks it owns ("ours") and those it sees claimed.
func (c *chainLab) claims(r *labRouter) (ours []uint32, claimed map[uint32]string, err error) {
	var rows []control.Block
	if err := control.Call(r.sock, "blocks", nil, &rows); err != nil {
		return nil, nil, err
	}
	claimed = map[uint32]string{}
	for _, b := range rows {
		switch b.State {
		case "ours":
			ours = append(ours, b.Index)
		case "claimed":
			claimed[b.Index] = b.Owner
		}
	}
	return ours, claimed, nil
}

// agree waits until the routers own disjoint blocks, each owns at least one,
// and every router sees every other's blocks as claimed by it.
func (c *chainLab) agree(limit time.Duration, rs ...*labRouter) {
	c.t.Helper()
	ids := map[*labRouter]string{}
	for _, r := range rs {
		ids[r] = r.nodeID(c.t)
	}
	eventually(c.t, limit, "disjoint blocks known everywhere", func() error { return c.agreeErr(ids, rs) })
}

func (c *chainLab) agreeErr(ids map[*labRouter]string, rs []*labRouter) error {
	owner := map[uint32]*labRouter{}
	views := map[*labRouter]map[uint32]string{}
	for _, r := range rs {
		ours, claimed, err := c.claims(r)
		if err != nil {
			return err
		}
		if len(ours) == 0 {
			return fmt.Errorf("%s owns no block", r.name)
		}
		for _, b := range ours {
			if o := owner[b]; o != nil {
				return fmt.Errorf("block %d owned by %s and %s", b, o.name, r.name)
			}
			owner[b] = r
		}
		views[r] = claimed
	}
	for _, r := range rs {
		for b, o := range owner {
			if o != r && views[r][b] != ids[o] {
				return fmt.Errorf("%s sees block %d as claimed by %q, owner is %s (%s)", r.name, b, views[r][b], o.name, ids[o])
			}
		}
	}
	return nil
}

// link cuts or restores the link between routers k and k+1.
func (c *chainLab) link(k int, up bool) {
	c.t.Helper()
	set := c.router(k).ns.SetDown
	set2 := c.router(k + 1).ns.SetDown
	if up {
		set, set2 = c.router(k).ns.SetUp, c.router(k+1).ns.SetUp
	}
	set("east")
	set2("west")
}

// dora leases an address for a new client (MAC mac) at the router whose
// bridge holds the client namespace's link, retrying while the router is
// still claiming a block for it.
func (c *chainLab) dora(client, mac string) string {
	c.t.Helper()
	var addr string
	eventually(c.t, 40*time.Second, client+" leases for "+mac, func() error {
		r := c.probeRun(client, "-mac", mac, "-timeout", "3s", "dora")
		if r.Type != "ACK" {
			return fmt.Errorf("got %+v", r)
		}
		addr = r.Yiaddr
		return nil
	})
	return addr
}

// noDoubles fails if an address is held by two clients (assigned locally
// on two routers, or twice on one) or a block is ours on two routers.
func (c *chainLab) noDoubles(rs ...*labRouter) error {
	held := map[string]string{}
	blocks := map[uint32]string{}
	for _, r := range rs {
		var rows []control.Lease
		if err := control.Call(r.sock, "leases", nil, &rows); err != nil {
			return err
		}
		for _, l := range rows {
			if l.State != "assigned" || !l.Local {
				continue
			}
			if h, ok := held[l.Addr]; ok && h != l.HW {
				return fmt.Errorf("%s held by %s and by %s (at %s)", l.Addr, h, l.HW, r.name)
			}
			held[l.Addr] = l.HW
		}
		ours, _, err := c.claims(r)
		if err != nil {
			return err
		}
		for _, b := range ours {
			if o, ok := blocks[b]; ok {
				return fmt.Errorf("block %d ours on %s and %s", b, o, r.name)
			}
			blocks[b] = r.name
		}
	}
	return nil
}

// TestOverlayChain: five routers in a line form one tree, claim disjoint
// blocks that every router knows of, a client of router 5 roams to router 1
// (four hops away) and keeps its address, the halves of a cut chain keep
// serving, and after the rejoin every conflict is resolved with no address
// held twice.
func TestOverlayChain(t *testing.T) {
	c := newChainLab(t, 5, "-B", "10", "-t", "2", "-inquire-interval", "400ms", "-s", "3")
	var all []*labRouter
	for k := 1; k <= 5; k++ {
		all = append(all, c.start(c.names[k-1]))
	}
	c.oneTree(30*time.Second, all...)
	c.agree(30*time.Second, all...)
	for _, r := range all {
		tr, _ := r.tree(t)
		b, _ := json.Marshal(tr)
		t.Logf("%s tree: %s", r.name, b)
	}

	// A client of router 5 walks to router 1.
	cl := c.client("k", "o5")
	udhcpc, log := startUdhcpc(t, cl.ns, c.dir)
	defer udhcpc.Stop()
	addr := eventAddr(waitFile(t, log, "bound", 30*time.Second), "bound")
	r1, r5 := c.router(1), c.router(5)
	if l, ok := r5.lease(t, addr); !ok || l.State != "assigned" || !l.Local {
		t.Fatalf("o5 has no lease for %s: %+v", addr, l)
	}
	c.move("k", "o1")
	renewNow(t, udhcpc)
	waitFile(t, log, "renew "+addr, 15*time.Second)
	if st := r1.stats(t); st["roam.ack"] < 1 || st["overlay.route.tx"] < 1 {
		t.Errorf("o1 did not route the renewal along the tree: %v", st)
	}
	if st := r5.stats(t); st["roam.owner.ack"] < 1 || st["overlay.route.rx"] < 1 {
		t.Errorf("o5 did not answer a routed renewal: %v", st)
	}
	if st := c.router(3).stats(t); st["overlay.route.tx"] < 2 {
		t.Errorf("o3 passed on %d routed messages, want the request and the answer", st["overlay.route.tx"])
	}
	udhcpc.Stop()

	// Cut the chain between 2 and 3: both halves form their own tree and
	// keep serving new clients, claiming what the other half owned once
	// its claims time out.
	c.client("w", "o1")
	c.client("e", "o5")
	c.link(2, false)
	west, east := all[:2], all[2:]
	c.oneTree(30*time.Second, west...)
	c.oneTree(30*time.Second, east...)
	type grant struct{ client, mac, addr string }
	var leased []grant
	for i := range 4 {
		for _, side := range []struct{ client, prefix string }{{"w", "0a"}, {"e", "0b"}} {
			mac := fmt.Sprintf("02:00:00:00:%s:%02x", side.prefix, i)
			leased = append(leased, grant{side.client, mac, c.dora(side.client, mac)})
		}
	}
	t.Logf("leased while cut: %v", leased)

	// Rejoin: one tree again, one owner per block, no address twice.
	c.link(2, true)
	c.oneTree(40*time.Second, all...)
	ids := map[*labRouter]string{}
	for _, r := range all {
		ids[r] = r.nodeID(t)
	}
	eventually(t, 40*time.Second, "conflicts resolved", func() error {
		if err := c.noDoubles(all...); err != nil {
			return err
		}
		return c.agreeErr(ids, all)
	})
	// An address both halves leased (each half owned its block) stays
	// with one client: a renewal keeps it for one and is refused for the
	// other (routed to the owner, which holds another client's lease).
	byAddr := map[string][]grant{}
	for _, g := range leased {
		byAddr[g.addr] = append(byAddr[g.addr], g)
	}
	for a, gs := range byAddr {
		acks := 0
		var got []string
		for _, g := range gs {
			// A client sends again when unanswered (the answer
			// may be routed over four hops on a loaded machine).
			var r probeResult
			for range 3 {
				if r = c.probeRun(g.client, "-mac", g.mac, "-addr", a, "-state", "rebind", "-timeout", "3s", "request"); r.Type != "none" {
					break
				}
			}
			got = append(got, g.mac+":"+r.Type)
			if r.Type == "ACK" {
				acks++
			}
		}
		if acks != 1 {
			t.Errorf("%s after the merge: renewals answered %v, want exactly one ACK", a, got)
		}
		if len(gs) > 1 {
			t.Logf("%s was leased in both halves; after the merge: %v", a, got)
		}
	}
	var lost []string
	for _, r := range all {
		st := r.stats(t)
		if st["claim.lost"] > 0 {
			lost = append(lost, fmt.Sprintf("%s lost %d", r.name, st["claim.lost"]))
		}
	}
	sort.Strings(lost)
	t.Logf("blocks lost at the merge: %s", strings.Join(lost, ", "))
}

// TestOverlayCycle: a triangle of routers with a fourth, fifth and sixth
// hanging off each corner. Whatever tree forms, one edge of the triangle is
// not in it, and the two corners it joins hear each other's claims first
// straight from the writer, then along the tree: they must pass on the
// copy along the tree, or the routers hanging off them never hear the
// other corner's claims.
func TestOverlayCycle(t *testing.T) {
	links := []meshLink{
		{1, 2, "m12", "m21"}, {2, 3, "m23", "m32"}, {1, 3, "m13", "m31"},
		{1, 4, "m14", "m41"}, {2, 5, "m25", "m52"}, {3, 6, "m36", "m63"},
	}
	c := newRoutedLab(t, 6, links, "-B", "10", "-t", "2", "-inquire-interval", "400ms", "-s", "1")
	var all []*labRouter
	for k := 1; k <= 6; k++ {
		all = append(all, c.start(c.names[k-1]))
	}
	c.oneTree(40*time.Second, all...)
	c.agree(30*time.Second, all...)
	// And they stay agreed over refreshes (block timeout 10 s): claims
	// that reach a router once, by the SYNC at the tree's start, but not
	// on refresh would time out there.
	// A claim missed on refresh stays missed, so a few seconds of grace
	// for a late refresh on a loaded machine do not hide that.
	time.Sleep(12 * time.Second)
	ids := map[*labRouter]string{}
	for _, r := range all {
		ids[r] = r.nodeID(t)
	}
	eventually(t, 5*time.Second, "agreement after a block timeout", func() error { return c.agreeErr(ids, all) })
	dups := uint64(0)
	for _, r := range all {
		dups += r.stats(t)["overlay.duplicate"]
	}
	if dups == 0 {
		t.Error("no router saw a copy twice: the topology has no cycle in use")
	}
}
