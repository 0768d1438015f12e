package sim

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// overlayNet makes a lossy overlay run over links (latency 1-100 ms, 5 %
// loss, 2 % duplication, T = 200 ms) and records every event.
func overlayNet(t *testing.T, n int, links []Link, seed uint64) (*Network, *[]overlayEvent) {
	t.Helper()
	var evs []overlayEvent
	o, err := newOverlay(overlayConfig{
		Nodes: n, Links: links, Overlay: overlay.Config{T: overlayT},
		LatencyMin: time.Millisecond, LatencyMax: overlayLatMax, Loss: 0.05, Dup: 0.02, Seed: seed,
		Observe: func(at time.Duration, node int, ev overlay.Event) { evs = append(evs, overlayEvent{at, node, ev}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return o, &evs
}

// overlayConfig is an overlay run: nodes on a routed mesh that claim nothing
// (no spare leases), so only the tree and SYNC go over the links.
type overlayConfig struct {
	Nodes                  int
	Links                  []Link
	Overlay                overlay.Config
	LatencyMin, LatencyMax time.Duration
	Loss, Dup              float64
	Seed                   uint64
	Observe                func(at time.Duration, node int, ev overlay.Event)
	Trace                  func(line string)
}

func newOverlay(c overlayConfig) (*Network, error) {
	oc := c.Overlay
	return New(Config{
		Nodes: c.Nodes, Pool: netip.MustParsePrefix("10.0.0.0/16"), SizeExp: 2,
		Overlay: &oc, Links: c.Links,
		LatencyMin: c.LatencyMin, LatencyMax: c.LatencyMax, Loss: c.Loss, Dup: c.Dup, Seed: c.Seed,
		ObserveTree: c.Observe, Trace: c.Trace,
	})
}

type overlayEvent struct {
	at   time.Duration
	node int
	ev   overlay.Event
}

// converge runs until CheckConverged holds, within limit.
func converge(t *testing.T, o *Network, limit time.Duration) time.Duration {
	t.Helper()
	start := o.Now()
	if !o.RunUntilEvery(func() bool { return o.CheckConverged() == nil }, 250*time.Millisecond, limit) {
		t.Fatalf("not converged within %v: %v\n%s", limit, o.CheckConverged(), o.TreeSummary())
	}
	return o.Now() - start
}

func rootOf(o *Network, i int) wire.NodeID { return o.Tree(i).Tree().Root }

// TestOverlayMerge: two partitions each build their own tree, rooted at
// their lowest id; when the links between them come up, the higher one's
// nodes move to the lower root (a merge), each reporting EventRoot.
func TestOverlayMerge(t *testing.T) {
	const half = 25
	r := newRand(11)
	a := SparseGraph(r, half, 4)
	b := SparseGraph(r, half, 4)
	links := slices.Clone(a)
	for _, l := range b {
		links = append(links, Link{A: l.A + half, B: l.B + half})
	}
	bridges := []int{len(links), len(links) + 1}
	links = append(links, Link{A: 3, B: half + 7}, Link{A: 11, B: half + 2})
	o, evs := overlayNet(t, 2*half, links, 5)
	for _, k := range bridges {
		o.SetLink(k, false)
	}
	if err := o.StartAll(); err != nil {
		t.Fatal(err)
	}
	converge(t, o, 2*time.Minute)
	ra, rb := rootOf(o, 0), rootOf(o, half)
	if ra == rb {
		t.Fatalf("two partitions share root %v", ra)
	}
	low, highSide := ra, half
	if rb.Compare(ra) < 0 {
		low, highSide = rb, 0
	}
	*evs = nil
	o.Rejoin(bridges)
	d := converge(t, o, overlayBound(2*half, overlay.Config{}))
	for i := range 2 * half {
		if rootOf(o, i) != low {
			t.Fatalf("n%d has root %v after the merge, want %v", i, rootOf(o, i), low)
		}
	}
	// Every node of the higher partition saw its root change to the lower.
	moved := map[int]bool{}
	for _, e := range *evs {
		if e.ev.Kind == overlay.EventRoot && e.ev.Root == low {
			moved[e.node] = true
		}
	}
	for i := highSide; i < highSide+half; i++ {
		if !moved[i] {
			t.Errorf("n%d reported no root change to %v", i, low)
		}
	}
	t.Logf("merge of 2×%d nodes converged %v after the heal", half, d)
}

// TestOverlayRootDies: when the root crashes, the rest rebuild a tree rooted
// at the next lowest id; when it returns, it takes the tree back.
func TestOverlayRootDies(t *testing.T) {
	const n = 40
	o, _ := overlayNet(t, n, SparseGraph(newRand(12), n, 4), 6)
	if err := o.StartAll(); err != nil {
		t.Fatal(err)
	}
	converge(t, o, 2*time.Minute)
	root := lowestAlive(o)
	o.Crash(root)
	d := converge(t, o, overlayBound(n, overlay.Config{}))
	next := lowestAlive(o)
	for i := range n {
		if i != root && o.Up(i) && rootOf(o, i) != o.ID(next) {
			t.Fatalf("n%d: root %v, want n%d", i, rootOf(o, i), next)
		}
	}
	t.Logf("rebuilt %v after the root died", d)
	if err := o.Start(root); err != nil {
		t.Fatal(err)
	}
	d = converge(t, o, overlayBound(n, overlay.Config{}))
	if rootOf(o, next) != o.ID(root) {
		t.Fatalf("the restarted lowest id did not take the tree back")
	}
	t.Logf("taken back %v after the old root restarted", d)
}

// TestOverlaySplit: a partition leaves each side with a tree of its own,
// rooted at its own lowest id.
func TestOverlaySplit(t *testing.T) {
	const n = 60
	links := GeometricGraph(newRand(13), n, 6)
	o, _ := overlayNet(t, n, links, 7)
	if err := o.StartAll(); err != nil {
		t.Fatal(err)
	}
	converge(t, o, 2*time.Minute)
	cut := o.Cut(region(newRand(14), n, links, n/3))
	if len(cut) == 0 {
		t.Fatal("nothing cut")
	}
	converge(t, o, overlayBound(n, overlay.Config{}))
	if c := o.Components(); len(c) < 2 {
		t.Fatalf("%d components", len(c))
	}
}

// TestOverlayParallelLink: a neighbour reached over two interfaces keeps its
// place in the tree when one of the two links fails: no rebuild.
func TestOverlayParallelLink(t *testing.T) {
	links := []Link{{A: 0, B: 1}, {A: 0, B: 1, IfA: 1, IfB: 1}, {A: 1, B: 2}, {A: 2, B: 3, IfA: 0, IfB: 1}}
	o, evs := overlayNet(t, 4, links, 8)
	if err := o.StartAll(); err != nil {
		t.Fatal(err)
	}
	converge(t, o, time.Minute)
	before := o.snapshot()
	*evs = nil
	o.SetLink(0, false)
	o.RunFor(time.Minute)
	if err := o.CheckConverged(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, o.snapshot()) {
		t.Fatalf("tree changed when one of two parallel links failed: %v", *evs)
	}
	if p, ok := o.Tree(0).Neighbour(o.ID(1)); !ok || p.Addr.Zone() != "mesh1" {
		t.Fatalf("peer %v %v: want the link on mesh1", p, ok)
	}
}

// TestOverlayDeterministic: one seed, one run.
func TestOverlayDeterministic(t *testing.T) {
	run := func() (Traffic, []string) {
		sc := newOverlayScenario(42)
		o, err := newOverlay(overlayConfig{Nodes: sc.n, Links: sc.links, Overlay: sc.cfg,
			LatencyMin: time.Millisecond, LatencyMax: overlayLatMax, Loss: 0.05, Dup: 0.02, Seed: 42})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.StartAll(); err != nil {
			t.Fatal(err)
		}
		o.RunFor(time.Minute)
		return o.Traffic(), o.snapshot()
	}
	t1, s1 := run()
	t2, s2 := run()
	if t1 != t2 || !slices.Equal(s1, s2) {
		t.Fatal("the same seed gave two different runs")
	}
}

// TestOverlayRelay: once the tree stands, a claim message that its writer
// multicasts to its neighbours and that every node then handles with a
// Flooder is acted on by every node exactly once and crosses each tree edge
// once: the writer's own edges by its multicast, the others by unicast.
func TestOverlayRelay(t *testing.T) {
	const n = 50
	o, _ := overlayNet(t, n, SparseGraph(newRand(15), n, 4), 9)
	if err := o.StartAll(); err != nil {
		t.Fatal(err)
	}
	converge(t, o, 2*time.Minute)
	// Until their next HELLO, nodes that just joined the tree still look
	// like outsiders to their neighbours and get copies of their own.
	o.RunFor(2 * time.Second)
	fl := make([]*overlay.Flooder, n)
	for src := range n {
		got, sends, _ := relayOnce(o, src, []byte{byte(src)}, fl)
		for i, k := range got {
			if i != src && k != 1 {
				t.Fatalf("message of n%d acted on by n%d %d times", src, i, k)
			}
		}
		// The multicast covers the writer's own tree edges.
		if want := n - 1 - len(o.Tree(src).TreeNeighbours()); sends != want {
			t.Fatalf("message of n%d took %d relays, want %d", src, sends, want)
		}
	}
}

// relayOnce passes a claim message from node src through the mesh as the
// daemon does: the writer multicasts it to its neighbours, and every node
// that receives a copy asks its Flooder whether to act on it and where to
// send it (unicast). It returns how often each node acted on it, the
// unicasts sent and the copies received (the multicast's included).
func relayOnce(o *Network, src int, payload []byte, fl []*overlay.Flooder) (got []int, sends, rcvd int) {
	got = make([]int, o.N())
	writer := o.ID(src)
	key := overlay.DedupKey(writer, wire.CmdUpdateClaim, payload)
	type hop struct {
		at   int
		from wire.NodeID
	}
	var queue []hop
	for _, l := range o.cfg.Links {
		if l.A == src {
			queue = append(queue, hop{l.B, writer})
		} else if l.B == src {
			queue = append(queue, hop{l.A, writer})
		}
	}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		rcvd++
		if fl[h.at] == nil {
			fl[h.at] = overlay.NewFlooder(time.Hour)
		}
		handle, to := fl[h.at].Receive(o.Now(), o.Tree(h.at), h.from, writer, key)
		if handle {
			got[h.at]++
		}
		for _, p := range to {
			j, _ := o.NodeOf(p.ID)
			sends++
			queue = append(queue, hop{j, o.ID(h.at)})
		}
	}
	return got, sends, rcvd
}
