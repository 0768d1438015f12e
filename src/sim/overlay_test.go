package sim

import (
	"slices"
	"testing"
	"time"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// overlayNet makes a lossy overlay run over links (latency 1-100 ms, 5 %
// loss, 2 % duplication, T = 200 ms) and records every event.
func overlayNet(t *testing.T, n int, links []OverlayLink, seed uint64) (*OverlayNet, *[]overlayEvent) {
	t.Helper()
	var evs []overlayEvent
	o, err := NewOverlay(OverlayConfig{
		Nodes: n, Links: links, Overlay: overlay.Config{T: overlayT},
		LatencyMin: time.Millisecond, LatencyMax: overlayLatMax, Loss: 0.05, Dup: 0.02, Seed: seed,
		Observe: func(at time.Duration, node int, ev overlay.Event) { evs = append(evs, overlayEvent{at, node, ev}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return o, &evs
}

type overlayEvent struct {
	at   time.Duration
	node int
	ev   overlay.Event
}

// converge runs until CheckConverged holds, within limit.
func converge(t *testing.T, o *OverlayNet, limit time.Duration) time.Duration {
	t.Helper()
	start := o.Now()
	if !o.RunUntil(func() bool { return o.CheckConverged() == nil }, 250*time.Millisecond, limit) {
		t.Fatalf("not converged within %v: %v\n%s", limit, o.CheckConverged(), o.TreeSummary())
	}
	return o.Now() - start
}

func rootOf(o *OverlayNet, i int) wire.NodeID { return o.Node(i).Tree().Root }

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
		links = append(links, OverlayLink{A: l.A + half, B: l.B + half})
	}
	bridges := []int{len(links), len(links) + 1}
	links = append(links, OverlayLink{A: 3, B: half + 7}, OverlayLink{A: 11, B: half + 2})
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
	o.Heal(bridges)
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
	cut := o.Partition(region(newRand(14), n, links, n/3))
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
	links := []OverlayLink{{A: 0, B: 1}, {A: 0, B: 1, IfA: 1, IfB: 1}, {A: 1, B: 2}, {A: 2, B: 3, IfA: 0, IfB: 1}}
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
	if p, ok := o.Node(0).Neighbour(o.ID(1)); !ok || p.Addr.Zone() != "mesh1" {
		t.Fatalf("peer %v %v: want the link on mesh1", p, ok)
	}
}

// TestOverlayDeterministic: one seed, one run.
func TestOverlayDeterministic(t *testing.T) {
	run := func() (OverlayTraffic, []string) {
		sc := newOverlayScenario(42)
		o, err := NewOverlay(OverlayConfig{Nodes: sc.n, Links: sc.links, Overlay: sc.cfg,
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

// TestOverlayRelay: once the tree stands, a claim message relayed along it
// with Relay and a Dedup reaches every node exactly once, over n-1 edges.
func TestOverlayRelay(t *testing.T) {
	const n = 50
	o, _ := overlayNet(t, n, SparseGraph(newRand(15), n, 4), 9)
	if err := o.StartAll(); err != nil {
		t.Fatal(err)
	}
	converge(t, o, 2*time.Minute)
	for src := range n {
		got, sends := relayOnce(o, src, []byte{byte(src)}, make([]*overlay.Dedup, n))
		for i, k := range got {
			if k != 1 {
				t.Fatalf("message of n%d reached n%d %d times", src, i, k)
			}
		}
		if sends != n-1 {
			t.Fatalf("message of n%d took %d sends, want %d", src, sends, n-1)
		}
	}
}

// relayOnce passes a claim message from node src along the tree, every node
// using Relay and its Dedup, and returns how often each node handled it and
// how many datagrams were sent.
func relayOnce(o *OverlayNet, src int, payload []byte, dedup []*overlay.Dedup) (got []int, sends int) {
	got = make([]int, o.N())
	key := overlay.DedupKey(o.ID(src), wire.CmdUpdateClaim, payload)
	type hop struct {
		at   int
		from wire.NodeID
	}
	queue := []hop{{src, wire.NodeID{}}}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if dedup[h.at] == nil {
			dedup[h.at] = overlay.NewDedup(0, 0)
		}
		if dedup[h.at].Seen(o.Now(), key) {
			continue
		}
		got[h.at]++
		for _, p := range o.Node(h.at).Relay(h.from) {
			j, _ := o.NodeOf(p.ID)
			sends++
			queue = append(queue, hop{j, o.ID(h.at)})
		}
	}
	return got, sends
}
