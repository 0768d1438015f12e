package overlay

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"ddhcpd/src/wire"
)

// Unit tests of the hardening points of SPEC §5 (reference/spanning-tree-
// seed.md §4 and §7), driving one node by hand. The simulator tests in
// package sim cover whole meshes (merge, root death, the property test).

var testSwarm = wire.Swarm{Prefix: netip.MustParseAddr("10.0.0.0"), PrefixLen: 16, BlockSize: 4}

const tT = 200 * time.Millisecond

func id(b byte) wire.NodeID { return wire.NodeID{0, 0, 0, 0, 0, 0, 0, b} }

func addr(b byte) netip.Addr {
	var a [16]byte
	a[0], a[1], a[15] = 0xfe, 0x80, b
	return netip.AddrFrom16(a).WithZone("mesh0")
}

type harness struct {
	t   *testing.T
	me  byte
	n   *Node
	now time.Duration
	out []Out
}

func newHarness(t *testing.T, me byte) *harness {
	t.Helper()
	n, err := New(Config{Node: id(me), Swarm: testSwarm, Interfaces: []string{"mesh0"}, T: tT}, rand.New(rand.NewPCG(1, uint64(me))), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, me: me, n: n}
	h.drain()
	return h
}

func (h *harness) drain() []Out {
	o := h.n.Outbox()
	h.out = append(h.out, o...)
	return o
}

// step delivers m from node b and returns what the node sent in answer.
func (h *harness) step(b byte, m wire.Overlay) []Out {
	h.t.Helper()
	m.Node, m.Swarm = id(b), testSwarm
	if err := h.n.Step(h.now, addr(b), &m); err != nil {
		h.t.Fatalf("Step %s from %d: %v", wire.OverlayTypeName(m.Type), b, err)
	}
	return h.drain()
}

// run advances the clock by d, ticking whenever the node asks, and returns
// what it sent meanwhile.
func (h *harness) run(d time.Duration) []Out {
	end := h.now + d
	var all []Out
	for {
		next := h.n.Next()
		if next > end {
			break
		}
		if next < h.now {
			h.t.Fatalf("Next() = %v is before now %v", next, h.now)
		}
		h.now = next
		h.n.Tick(h.now)
		all = append(all, h.drain()...)
		if h.n.Next() <= h.now {
			h.t.Fatalf("Next() = %v right after Tick(%v)", h.n.Next(), h.now)
		}
	}
	h.now = end
	return all
}

// hello makes node b a neighbour that hears us, without a tree.
func (h *harness) hello(b byte) {
	h.t.Helper()
	m := wire.Overlay{Type: wire.ExtHello, Seq: 1}
	m.Hello.Neighbours = []wire.HelloEntry{{ID: id(h.me)}}
	h.step(b, m)
}

// middleOfTree walks the harness node (0x50) into the finished tree
// 0x10 -> 0x50 -> 0x60 of origin 0x10, epoch 3 (both neighbours heard
// already) and returns what it sent on the FINISHED.
func (h *harness) middleOfTree() []Out {
	h.t.Helper()
	fw := one(h.t, h.step(0x10, forward(0x10, 3, 7, 0x50)), wire.ExtForward, 0x60)
	r := msg(wire.ExtReturn, 0x10, 3, fw.Seq)
	r.Walk = append(chain(0x10, 0x50), wire.WalkEntry{ID: id(0x60), Parent: 1})
	h.step(0x60, r)
	f := msg(wire.ExtFinished, 0x10, 3, 7)
	f.Tree = wire.TreeSummary{Depth: 1, Size: 3, Digest: 9}
	return h.step(0x10, f)
}

// chain is a walk list origin -> ... -> last, each the child of the one before.
func chain(ids ...byte) []wire.WalkEntry {
	l := make([]wire.WalkEntry, len(ids))
	for i, b := range ids {
		l[i] = wire.WalkEntry{ID: id(b), Parent: uint16(i - 1)}
	}
	l[0].Parent = wire.WalkRoot
	return l
}

func msg(t uint8, origin byte, epoch, seq uint32) wire.Overlay {
	return wire.Overlay{Type: t, Origin: id(origin), Epoch: epoch, Seq: seq}
}

func forward(origin byte, epoch, seq uint32, path ...byte) wire.Overlay {
	m := msg(wire.ExtForward, origin, epoch, seq)
	m.Walk = chain(append([]byte{origin}, path...)...)
	return m
}

// sent filters outs by type and destination (0: any).
func sent(outs []Out, typ uint8, to byte) []Out {
	var r []Out
	for _, o := range outs {
		if o.Msg.Type == typ && (to == 0 || o.To.ID == id(to)) {
			r = append(r, o)
		}
	}
	return r
}

func one(t *testing.T, outs []Out, typ uint8, to byte) wire.Overlay {
	t.Helper()
	s := sent(outs, typ, to)
	if len(s) != 1 {
		t.Fatalf("want one %s to %d, got %d in %v", wire.OverlayTypeName(typ), to, len(s), describe(outs))
	}
	return s[0].Msg
}

func describe(outs []Out) []string {
	var s []string
	for _, o := range outs {
		s = append(s, wire.OverlayTypeName(o.Msg.Type)+"->"+o.To.ID.String()[14:])
	}
	return s
}

// TestJoinAndFinish walks a node through a whole walk as a leaf: FORWARD in,
// ACK and RETURN out, FINISHED in, tree in force.
func TestJoinAndFinish(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	out := h.step(0x10, forward(0x10, 3, 7, 0x50))
	one(t, out, wire.ExtAck, 0x10)
	ret := one(t, out, wire.ExtReturn, 0x10)
	if ret.Seq != 7 || len(ret.Walk) != 2 || h.n.Tree().State != Finishing {
		t.Fatalf("RETURN %+v, state %v", ret, h.n.Tree().State)
	}
	a := msg(wire.ExtAck, 0x10, 3, 7)
	a.Ref = wire.ExtReturn
	h.step(0x10, a)
	f := msg(wire.ExtFinished, 0x10, 3, 7)
	f.Tree = wire.TreeSummary{Depth: 1, Size: 2, Digest: 42}
	out = h.step(0x10, f)
	one(t, out, wire.ExtAck, 0x10)
	tr := h.n.Tree()
	if !tr.Valid || tr.Root != id(0x10) || tr.Epoch != 3 || tr.Parent.ID != id(0x10) || tr.Depth != 1 || tr.Size != 2 || tr.State != Idle {
		t.Fatalf("tree %+v", tr)
	}
	evs := h.n.Events()
	if len(evs) != 2 || evs[0].Kind != EventTree || evs[1].Kind != EventRoot || evs[1].Root != id(0x10) {
		t.Fatalf("events %+v", evs)
	}
	if ps := h.n.TreeNeighbours(); len(ps) != 1 || ps[0].ID != id(0x10) || ps[0].Addr != addr(0x10) {
		t.Fatalf("tree neighbours %+v", ps)
	}
}

// TestStaleDropped: messages whose (origin, epoch, seq) do not name the
// current walk and edge change nothing, and are refused where the sender
// would otherwise wait (seed failure b).
func TestStaleDropped(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x30)
	h.hello(0x60)
	// Join the walk of 0x10 (epoch 3) by the edge 7; the token goes on to
	// 0x30, the lowest unvisited neighbour (0x60 is next).
	out := h.step(0x10, forward(0x10, 3, 7, 0x50))
	fw := one(t, out, wire.ExtForward, 0x30)
	edge := fw.Seq

	// A RETURN from 0x60, which has no edge with us, and one from 0x30
	// naming another edge: refused as stale, the walk does not move.
	r := msg(wire.ExtReturn, 0x10, 3, edge)
	r.Walk = append(chain(0x10, 0x50), wire.WalkEntry{ID: id(0x30), Parent: 1}, wire.WalkEntry{ID: id(0x60), Parent: 2})
	out = h.step(0x60, r)
	if ref := one(t, out, wire.ExtRefuse, 0x60); ref.Reason != wire.RefuseStale {
		t.Fatalf("refuse reason %d", ref.Reason)
	}
	r.Seq = edge + 100
	out = h.step(0x30, r)
	if ref := one(t, out, wire.ExtRefuse, 0x30); ref.Reason != wire.RefuseStale {
		t.Fatalf("refuse reason %d", ref.Reason)
	}
	// The same RETURN for an older epoch of the walk: refused as stale too.
	r.Seq, r.Epoch = edge, 2
	out = h.step(0x30, r)
	if ref := one(t, out, wire.ExtRefuse, 0x30); ref.Reason != wire.RefuseStale {
		t.Fatalf("refuse reason %d", ref.Reason)
	}
	if w := h.n.walk; !w.waiting || w.wait.id != id(0x30) || len(w.children) != 0 {
		t.Fatalf("stale RETURN moved the walk: %+v", w)
	}
	// An ACK for another edge does not stop the retransmission.
	a := msg(wire.ExtAck, 0x10, 3, edge+1)
	a.Ref = wire.ExtForward
	h.step(0x30, a)
	if out = h.run(tT / 2); len(sent(out, wire.ExtForward, 0x30)) != 1 {
		t.Fatalf("no retransmission after a stale ACK: %v", describe(out))
	}
	// A FORWARD of an older epoch of the same origin loses: refused, with
	// the walk that beats it.
	out = h.step(0x60, forward(0x10, 2, 9, 0x60, 0x50))
	if ref := one(t, out, wire.ExtRefuse, 0x60); ref.Reason != wire.RefuseLower || ref.Better != id(0x10) || ref.BetterEpoch != 3 {
		t.Fatalf("refuse %+v", ref)
	}
	// A FINISHED from a node that is not our parent: refused, no tree.
	f := msg(wire.ExtFinished, 0x10, 3, 7)
	out = h.step(0x60, f)
	one(t, out, wire.ExtRefuse, 0x60)
	if h.n.Tree().Valid {
		t.Fatal("tree from a stale FINISHED")
	}
	// The right RETURN is taken.
	r.Epoch = 3
	r.Walk = append(chain(0x10, 0x50), wire.WalkEntry{ID: id(0x30), Parent: 1})
	out = h.step(0x30, r)
	one(t, out, wire.ExtAck, 0x30)
	one(t, out, wire.ExtForward, 0x60)
}

// TestExplicitRefusal: a token that loses is answered with REFUSE naming
// the winner, and the sender calls its walk off instead of taking the node
// for dead (seed failure e).
func TestExplicitRefusal(t *testing.T) {
	// A node in the walk of 0x10 refuses the token of 0x20.
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x20)
	h.hello(0x60)
	h.step(0x10, forward(0x10, 1, 1, 0x50))
	out := h.step(0x20, forward(0x20, 1, 1, 0x50))
	ref := one(t, out, wire.ExtRefuse, 0x20)
	if ref.Reason != wire.RefuseLower || ref.Better != id(0x10) || ref.Ref != wire.ExtForward {
		t.Fatalf("refuse %+v", ref)
	}
	// A node without tree or walk refuses an origin higher than itself:
	// it would root the tree.
	low := newHarness(t, 0x05)
	low.hello(0x20)
	out = low.step(0x20, forward(0x20, 1, 1, 0x05))
	if ref := one(t, out, wire.ExtRefuse, 0x20); ref.Better != id(0x05) {
		t.Fatalf("refuse %+v", ref)
	}

	// The origin 0x20 that gets the refusal aborts its walk, tells its
	// other walk neighbours, and counts no child dead.
	o := newHarness(t, 0x20)
	o.hello(0x30)
	o.hello(0x50)
	o.run(3 * time.Second) // StartDelay: it starts a walk of its own
	if o.n.walk.state != Working || !o.n.walk.waiting || o.n.walk.wait.id != id(0x30) {
		t.Fatalf("no walk started: %+v", o.n.walk)
	}
	e := o.n.walk.r.epoch
	seq := o.n.walk.wait.edge
	r := msg(wire.ExtReturn, 0x20, e, seq)
	r.Walk = chain(0x20, 0x30)
	o.step(0x30, r) // 0x30 returns; the token goes to 0x50
	f := o.n.walk.wait
	refuse := msg(wire.ExtRefuse, 0x20, e, f.edge)
	refuse.Ref, refuse.Reason, refuse.Better, refuse.BetterEpoch = wire.ExtForward, wire.RefuseLower, id(0x10), 1
	o.n.Events()
	out = o.step(0x50, refuse)
	if o.n.walk.state != Idle || o.n.Stats().ChildrenDead != 0 {
		t.Fatalf("after refusal: state %v, dead %d", o.n.walk.state, o.n.Stats().ChildrenDead)
	}
	if ab := one(t, out, wire.ExtAbort, 0x30); ab.Better != id(0x10) {
		t.Fatalf("abort %+v", ab)
	}
	if len(sent(out, wire.ExtAbort, 0x50)) != 0 {
		t.Fatal("ABORT sent back to the refusing node")
	}
	// It does not start again while the lower id is known.
	if out = o.run(5 * time.Second); len(sent(out, wire.ExtForward, 0)) != 0 {
		t.Fatalf("walk restarted at once: %v", describe(out))
	}
}

// TestKeepalivePeriodic: a working node sends WORKING to its parent every
// T/2 for as long as it is busy, whether or not any single child is slow
// (seed failure a), and a child that keeps sending WORKING is never taken
// for dead.
func TestKeepalivePeriodic(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x60)
	out := h.step(0x10, forward(0x10, 1, 1, 0x50))
	fw := one(t, out, wire.ExtForward, 0x60)
	busy := 3 * time.Second
	var working []Out
	for end := h.now + busy; h.now < end; {
		// The parent acknowledges every WORKING; the child keeps working.
		for _, o := range h.run(tT / 4) {
			if o.Msg.Type == wire.ExtWorking && o.To.ID == id(0x10) {
				working = append(working, o)
				a := msg(wire.ExtAck, 0x10, 1, o.Msg.Seq)
				a.Ref = wire.ExtWorking
				h.step(0x10, a)
			}
		}
		k := msg(wire.ExtWorking, 0x10, 1, fw.Seq)
		k.State = wire.WalkWorking
		h.step(0x60, k)
	}
	want := int(busy / (tT / 2))
	if len(working) < want-1 || len(working) > want+1 {
		t.Fatalf("%d WORKING in %v, want about %d", len(working), busy, want)
	}
	if w := h.n.walk; w.state != Working || !w.waiting || w.wait.id != id(0x60) || h.n.Stats().ChildrenDead != 0 {
		t.Fatalf("busy child lost: %+v", w)
	}
}

// TestStatesTimeOut: no walk state is absorbing (seed failure d).
func TestStatesTimeOut(t *testing.T) {
	c := Config{}.WithDefaults()
	dead := c.DeadAfter

	t.Run("working, parent silent", func(t *testing.T) {
		h := newHarness(t, 0x50)
		h.hello(0x10)
		h.hello(0x60)
		h.step(0x10, forward(0x10, 1, 1, 0x50))
		out := h.run(dead + tT)
		if h.n.walk.state != Idle {
			t.Fatalf("state %v", h.n.walk.state)
		}
		if len(sent(out, wire.ExtAbort, 0x60)) == 0 { // the child is told, until it answers
			t.Fatalf("child not told: %v", describe(out))
		}
	})
	t.Run("finishing, RETURN never acknowledged", func(t *testing.T) {
		h := newHarness(t, 0x50)
		h.hello(0x10)
		h.step(0x10, forward(0x10, 1, 1, 0x50))
		out := h.run(dead + tT)
		if h.n.walk.state != Idle {
			t.Fatalf("state %v", h.n.walk.state)
		}
		if n := len(sent(out, wire.ExtReturn, 0x10)); n < int(dead/(tT/2))-1 {
			t.Fatalf("RETURN sent %d times", n)
		}
	})
	t.Run("finishing, parent stops answering", func(t *testing.T) {
		h := newHarness(t, 0x50)
		h.hello(0x10)
		h.step(0x10, forward(0x10, 1, 1, 0x50))
		a := msg(wire.ExtAck, 0x10, 1, 1)
		a.Ref = wire.ExtReturn
		h.step(0x10, a)
		// Probes are answered for a while: the node waits.
		for range 3 {
			for _, o := range h.run(c.Probe) {
				if o.Msg.Type == wire.ExtWorking {
					a := msg(wire.ExtAck, 0x10, 1, 1)
					a.Ref = wire.ExtWorking
					h.step(0x10, a)
				}
			}
		}
		if h.n.walk.state != Finishing {
			t.Fatalf("state %v while the parent answers", h.n.walk.state)
		}
		h.run(c.Probe + dead + tT)
		if h.n.walk.state != Idle {
			t.Fatalf("state %v after the parent fell silent", h.n.walk.state)
		}
	})
	t.Run("finishing, the parent says the walk is gone", func(t *testing.T) {
		h := newHarness(t, 0x50)
		h.hello(0x10)
		h.step(0x10, forward(0x10, 1, 1, 0x50))
		ref := msg(wire.ExtRefuse, 0x10, 1, 1)
		ref.Ref, ref.Reason = wire.ExtReturn, wire.RefuseStale
		h.step(0x10, ref)
		if h.n.walk.state != Idle {
			t.Fatalf("state %v", h.n.walk.state)
		}
	})
	t.Run("walk that never ends", func(t *testing.T) {
		h := newHarness(t, 0x50)
		h.n.cfg.WalkTimeout = 20 * time.Second
		h.hello(0x10)
		h.hello(0x60)
		out := h.step(0x10, forward(0x10, 1, 1, 0x50))
		fw := one(t, out, wire.ExtForward, 0x60)
		for h.now < 25*time.Second && h.n.walk.state != Idle {
			for _, o := range h.run(tT / 2) {
				if o.Msg.Type == wire.ExtWorking {
					a := msg(wire.ExtAck, 0x10, 1, 1)
					a.Ref = wire.ExtWorking
					h.step(0x10, a)
				}
			}
			k := msg(wire.ExtWorking, 0x10, 1, fw.Seq)
			h.step(0x60, k)
		}
		if h.n.walk.state != Idle || h.now < 20*time.Second {
			t.Fatalf("state %v at %v", h.n.walk.state, h.now)
		}
	})
}

// TestRetransmitUntilAcked: FORWARD, RETURN, FINISHED, ABORT and REBUILD
// are sent every T/2 until answered (seed failure g).
func TestRetransmitUntilAcked(t *testing.T) {
	h := newHarness(t, 0x10)
	h.hello(0x50)
	out := h.run(3 * time.Second) // starts its walk: FORWARD to 0x50
	fw := sent(out, wire.ExtForward, 0x50)
	if len(fw) == 0 {
		t.Fatalf("no FORWARD: %v", describe(out))
	}
	out = h.run(tT)
	if n := len(sent(out, wire.ExtForward, 0x50)); n != 2 {
		t.Fatalf("%d retransmissions in T, want 2", n)
	}
	e, seq := fw[0].Msg.Epoch, fw[0].Msg.Seq
	a := msg(wire.ExtAck, 0x10, e, seq)
	a.Ref = wire.ExtForward
	h.step(0x50, a)
	k := msg(wire.ExtWorking, 0x10, e, seq)
	h.step(0x50, k)
	if out = h.run(tT / 2); len(sent(out, wire.ExtForward, 0)) != 0 {
		t.Fatalf("FORWARD sent after its ACK: %v", describe(out))
	}
	// RETURN: the walk finishes at the origin; FINISHED goes to 0x50
	// until acknowledged.
	r := msg(wire.ExtReturn, 0x10, e, seq)
	r.Walk = chain(0x10, 0x50)
	out = h.step(0x50, r)
	one(t, out, wire.ExtFinished, 0x50)
	out = h.run(tT)
	if n := len(sent(out, wire.ExtFinished, 0x50)); n != 2 {
		t.Fatalf("FINISHED sent %d times in T", n)
	}
	fa := msg(wire.ExtAck, 0x10, e, seq)
	fa.Ref = wire.ExtFinished
	h.step(0x50, fa)
	if out = h.run(tT); len(sent(out, wire.ExtFinished, 0)) != 0 {
		t.Fatalf("FINISHED after its ACK: %v", describe(out))
	}
}

// TestNoTokenToNonNeighbour: the token goes only to neighbours that hear
// us; ids in the visited list are never taken for neighbours.
func TestNoTokenToNonNeighbour(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x70)
	// 0x40 is heard, but its HELLO does not list us: one-way link.
	m := wire.Overlay{Type: wire.ExtHello, Seq: 1}
	h.step(0x40, m)
	// The token comes through 0x10 with a list naming 0x20 and 0x30,
	// which we have never heard.
	f := msg(wire.ExtForward, 0x20, 1, 5)
	f.Walk = chain(0x20, 0x30, 0x10, 0x50)
	out := h.step(0x10, f)
	fw := sent(out, wire.ExtForward, 0)
	if len(fw) != 1 || fw[0].To.ID != id(0x70) {
		t.Fatalf("token sent to %v", describe(out))
	}
	r := msg(wire.ExtReturn, 0x20, 1, fw[0].Msg.Seq)
	r.Walk = append(f.Walk, wire.WalkEntry{ID: id(0x70), Parent: 3})
	out = h.step(0x70, r)
	if len(sent(out, wire.ExtForward, 0)) != 0 || len(sent(out, wire.ExtReturn, 0x10)) != 1 {
		t.Fatalf("after the only neighbour returned: %v", describe(out))
	}
	for _, o := range h.out {
		if o.Msg.Type == wire.ExtForward && o.To.ID != id(0x70) {
			t.Fatalf("token to %v", o.To.ID)
		}
	}
}

// TestChildDeadAndTold: a child silent for DeadAfter is declared dead,
// stays out of the tree, is told (ABORT) in case it lives, and the walk goes
// on (seed failures f and b).
func TestChildDeadAndTold(t *testing.T) {
	h := newHarness(t, 0x10)
	h.hello(0x50)
	h.hello(0x60)
	h.run(3 * time.Second)
	w := h.n.walk
	if !w.waiting || w.wait.id != id(0x50) {
		t.Fatalf("walk %+v", w)
	}
	out := h.run(Config{}.WithDefaults().DeadAfter)
	if len(sent(out, wire.ExtAbort, 0x50)) == 0 {
		t.Fatalf("dead child not told: %v", describe(out))
	}
	if fw := sent(out, wire.ExtForward, 0x60); len(fw) == 0 {
		t.Fatalf("walk did not go on: %v", describe(out))
	}
	// The late RETURN of the dead child is refused, not merged.
	r := msg(wire.ExtReturn, 0x10, w.r.epoch, w.wait.edge)
	r.Walk = chain(0x10, 0x50)
	out = h.step(0x50, r)
	one(t, out, wire.ExtRefuse, 0x50)
	if h.n.Stats().ChildrenDead != 1 || len(h.n.walk.children) != 0 {
		t.Fatalf("dead %d children %v", h.n.Stats().ChildrenDead, h.n.walk.children)
	}
}

// TestTreeKept: the tree lasts while the parent announces it with us as
// child, and is dissolved, children told, when the parent stops.
func TestTreeKept(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x60)
	one(t, h.middleOfTree(), wire.ExtFinished, 0x60)
	if p, ok := h.n.Route(id(0x60)); !ok || p.ID != id(0x60) {
		t.Fatalf("route to the child: %v %v", p, ok)
	}
	if p, ok := h.n.Route(id(0x99)); !ok || p.ID != id(0x10) {
		t.Fatalf("route to elsewhere: %v %v", p, ok)
	}
	parentHello := func(flags uint8, tree bool) {
		m := msg(wire.ExtHello, 0x10, 3, 2)
		m.Hello.HasTree, m.Hello.Digest = tree, 9
		m.Hello.Neighbours = []wire.HelloEntry{{ID: id(0x50), Flags: flags}}
		h.step(0x10, m)
	}
	parentHello(wire.HelloChild, true)
	if !h.n.Tree().Valid {
		t.Fatal("tree dropped although the parent announces it")
	}
	parentHello(0, true) // the parent no longer counts us as its child
	if h.n.Tree().Valid {
		t.Fatal("tree kept by a parent that disowns us")
	}
	if len(sent(h.out, wire.ExtDissolve, 0x60)) != 1 {
		t.Fatal("child not told")
	}
}

// TestStepNeverPanics feeds random messages, well-formed and not, to nodes
// in every state.
func TestStepNeverPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ids := []byte{0x05, 0x10, 0x20, 0x50, 0x60, 0x70}
	for round := range 300 {
		h := newHarness(t, 0x50)
		for _, b := range ids[:3+round%3] {
			if b != 0x50 {
				h.hello(b)
			}
		}
		for range 200 {
			m := wire.Overlay{Type: uint8(2 + r.IntN(10)), Origin: id(ids[r.IntN(len(ids))]), Epoch: uint32(r.IntN(4)), Seq: uint32(r.IntN(8))}
			switch r.IntN(3) {
			case 0:
				m.Walk = chain(append([]byte{ids[r.IntN(len(ids))]}, ids[:r.IntN(len(ids))]...)...)
			case 1:
				for range r.IntN(5) {
					m.Walk = append(m.Walk, wire.WalkEntry{ID: id(ids[r.IntN(len(ids))]), Parent: uint16(r.IntN(6)) | uint16(r.IntN(2))*0xfff0})
				}
			}
			m.Ref, m.Reason, m.State = uint8(r.IntN(12)), uint8(r.IntN(4)), uint8(r.IntN(3))
			m.Better, m.BetterEpoch = id(ids[r.IntN(len(ids))]), uint32(r.IntN(4))
			m.Hello.HasTree = r.IntN(2) == 0
			m.Hello.WalkState = uint8(r.IntN(3))
			m.Hello.Neighbours = []wire.HelloEntry{{ID: id(0x50), Flags: uint8(r.IntN(4))}}
			from := ids[r.IntN(len(ids))]
			if from == 0x50 {
				continue
			}
			m.Node, m.Swarm = id(from), testSwarm
			_ = h.n.Step(h.now, addr(from), &m)
			h.drain()
			if r.IntN(4) == 0 {
				h.run(time.Duration(r.IntN(400)) * time.Millisecond)
			}
		}
	}
}

// TestStepRefuses names why foreign messages are dropped.
func TestStepRefuses(t *testing.T) {
	h := newHarness(t, 0x50)
	m := wire.Overlay{Type: wire.ExtHello, Node: id(0x10), Swarm: wire.Swarm{Prefix: netip.MustParseAddr("10.1.0.0"), PrefixLen: 16, BlockSize: 4}}
	if err := h.n.Step(0, addr(0x10), &m); err != ErrForeignSwarm {
		t.Errorf("foreign swarm: %v", err)
	}
	m.Swarm, m.Node = testSwarm, id(0x50)
	if err := h.n.Step(0, addr(0x10), &m); err != ErrOwnID {
		t.Errorf("own id: %v", err)
	}
	m.Node = id(0x10)
	if err := h.n.Step(0, addr(0x10).WithZone("eth9"), &m); err != ErrInterface {
		t.Errorf("interface: %v", err)
	}
	m.Type = wire.ExtSync
	if err := h.n.Step(0, addr(0x10), &m); err != ErrNotOverlay {
		t.Errorf("SYNC: %v", err)
	}
	f := forward(0x10, 1, 1, 0x20) // does not end with us
	f.Node, f.Swarm = id(0x10), testSwarm
	if err := h.n.Step(0, addr(0x10), &f); err == nil {
		t.Error("malformed FORWARD accepted")
	}
}

// FuzzStep checks that no datagram makes a node panic, whatever its state.
func FuzzStep(f *testing.F) {
	for _, m := range []wire.Overlay{forward(0x10, 1, 1, 0x50), msg(wire.ExtAbort, 0x10, 1, 1), msg(wire.ExtFinished, 0x10, 1, 1)} {
		m.Node, m.Swarm = id(0x10), testSwarm
		b, _ := m.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.DecodeOverlay(b)
		if err != nil {
			return
		}
		h := newHarness(t, 0x50)
		h.hello(0x10)
		h.step(0x10, forward(0x10, 1, 1, 0x50))
		_ = h.n.Step(h.now, addr(0x10), &m)
		h.run(2 * time.Second)
	})
}

func TestDedup(t *testing.T) {
	d := NewDedup(5*time.Second, 3)
	k := DedupKey(id(1), wire.CmdUpdateClaim, []byte{1, 2, 3})
	if d.Seen(0, k) || !d.Seen(time.Second, k) {
		t.Fatal("second sighting not caught")
	}
	if d.Seen(5*time.Second, k) {
		t.Fatal("key outlived its window")
	}
	if DedupKey(id(1), wire.CmdInquire, []byte{1, 2, 3}) == k || DedupKey(id(2), wire.CmdUpdateClaim, []byte{1, 2, 3}) == k {
		t.Fatal("key ignores sender or command")
	}
	for i := range 10 {
		d.Seen(6*time.Second, uint64(i))
	}
	if d.Len() > 3 {
		t.Fatalf("%d keys kept, max 3", d.Len())
	}
	if !d.Seen(6*time.Second, 9) || d.Seen(6*time.Second, 0) {
		t.Fatal("not the oldest evicted")
	}
	// Memory stays bounded over a long run.
	d = NewDedup(time.Second, 100)
	for i := range 100000 {
		d.Seen(time.Duration(i)*time.Millisecond, uint64(i))
	}
	if d.Len() > 100 || len(d.fifo) > 400 {
		t.Fatalf("len %d fifo %d", d.Len(), len(d.fifo))
	}
}

func TestConfig(t *testing.T) {
	c := Config{Node: id(1), Interfaces: []string{"mesh0"}}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.T != 200*time.Millisecond || c.DeadAfter != time.Second || c.NeighbourTimeout != 6*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	for _, bad := range []Config{
		{Interfaces: []string{"mesh0"}},
		{Node: id(1)},
		{Node: id(1), Interfaces: []string{"a", "a"}},
		{Node: id(1), Interfaces: []string{"a"}, T: time.Second, DeadAfter: time.Millisecond},
	} {
		if err := bad.WithDefaults().Validate(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := New(c, nil, 0); err == nil {
		t.Error("nil random source accepted")
	}
}

func TestNeighbourTableBounded(t *testing.T) {
	h := newHarness(t, 0x50)
	m := wire.Overlay{Type: wire.ExtHello, Swarm: testSwarm}
	full := 0
	for i := range MaxNeighbours + 10 {
		m.Node = wire.NodeID{1, byte(i >> 8), byte(i), 0, 0, 0, 0, 1}
		if err := h.n.Step(0, addr(1), &m); err == ErrTooMany {
			full++
		}
	}
	if full != 10 || len(h.n.Tree().Neighbours) != MaxNeighbours {
		t.Fatalf("%d refused, %d neighbours", full, len(h.n.Tree().Neighbours))
	}
	h.run(time.Minute) // all expire
	if len(h.n.Tree().Neighbours) != 0 {
		t.Fatalf("%d neighbours left", len(h.n.Tree().Neighbours))
	}
}
