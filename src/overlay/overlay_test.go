package overlay

import (
	"encoding/binary"
	"errors"
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
	for _, m := range o {
		// Whatever the node makes must go on the wire.
		if b, err := m.Msg.Encode(); err != nil || len(b) > wire.MaxDatagram {
			h.t.Fatalf("node sent a %s it cannot encode: %d bytes, %v", wire.OverlayTypeName(m.Msg.Type), len(b), err)
		}
	}
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
	h.step(0x60, ret(0x10, 3, fw.Seq, 0x60))
	f := msg(wire.ExtFinished, 0x10, 3, 7)
	f.Tree = wire.TreeSummary{Depth: 1, Size: 3, Digest: 9}
	return h.step(0x10, f)
}

func ids(bs ...byte) []wire.NodeID {
	l := make([]wire.NodeID, len(bs))
	for i, b := range bs {
		l[i] = id(b)
	}
	return l
}

func msg(t uint8, origin byte, epoch, seq uint32) wire.Overlay {
	return wire.Overlay{Type: t, Origin: id(origin), Epoch: epoch, Seq: seq}
}

// forward is the FORWARD of the walk of origin along the chain origin ->
// path[0] -> ... -> path[len-1], the receiver last (so the sender is the
// one before it): it names the receiver's ancestors.
func forward(origin byte, epoch, seq uint32, path ...byte) wire.Overlay {
	m := msg(wire.ExtForward, origin, epoch, seq)
	chain := append([]byte{origin}, path...)
	m.Path = ids(chain[:len(chain)-1]...)
	return m
}

// ret is a RETURN in one part of the subtree members, the sender first.
func ret(origin byte, epoch, seq uint32, members ...byte) wire.Overlay {
	m := msg(wire.ExtReturn, origin, epoch, seq)
	m.Sub.Size, m.Parts, m.Members = uint32(len(members)), 1, ids(members...)
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
	r := one(t, out, wire.ExtReturn, 0x10)
	if r.Seq != 7 || r.Sub.Size != 1 || r.Parts != 1 || len(r.Members) != 1 || r.Members[0] != id(0x50) || h.n.Tree().State != Finishing {
		t.Fatalf("RETURN %+v, state %v", r, h.n.Tree().State)
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
	r := ret(0x10, 3, edge, 0x60)
	out = h.step(0x60, r)
	if ref := one(t, out, wire.ExtRefuse, 0x60); ref.Reason != wire.RefuseStale {
		t.Fatalf("refuse reason %d", ref.Reason)
	}
	r = ret(0x10, 3, edge+100, 0x30)
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
	o.step(0x30, ret(0x20, e, seq, 0x30)) // 0x30 returns; the token goes to 0x50
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
	out = h.step(0x50, ret(0x10, e, seq, 0x50))
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
// us; ids a FORWARD's path or a RETURN names are never taken for
// neighbours.
func TestNoTokenToNonNeighbour(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x70)
	// 0x40 is heard, but its HELLO does not list us: one-way link.
	m := wire.Overlay{Type: wire.ExtHello, Seq: 1}
	h.step(0x40, m)
	// The token comes through 0x10 with a path naming 0x20 and 0x30,
	// which we have never heard.
	out := h.step(0x10, forward(0x20, 1, 5, 0x30, 0x10, 0x50))
	fw := sent(out, wire.ExtForward, 0)
	if len(fw) != 1 || fw[0].To.ID != id(0x70) {
		t.Fatalf("token sent to %v", describe(out))
	}
	// 0x70's subtree names 0x80 and 0x90, which we have never heard.
	out = h.step(0x70, ret(0x20, 1, fw[0].Msg.Seq, 0x70, 0x80, 0x90))
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
	out = h.step(0x50, ret(0x10, w.r.epoch, w.wait.edge, 0x50))
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
	nodes := []byte{0x05, 0x10, 0x20, 0x50, 0x60, 0x70}
	for round := range 300 {
		h := newHarness(t, 0x50)
		for _, b := range nodes[:3+round%3] {
			if b != 0x50 {
				h.hello(b)
			}
		}
		for range 200 {
			m := wire.Overlay{Type: uint8(2 + r.IntN(10)), Origin: id(nodes[r.IntN(len(nodes))]), Epoch: uint32(r.IntN(4)), Seq: uint32(r.IntN(8))}
			switch r.IntN(3) {
			case 0:
				m.Path = ids(nodes[:r.IntN(len(nodes))]...)
				m.Members = ids(nodes[:r.IntN(len(nodes))]...)
			case 1:
				for range r.IntN(5) {
					m.Path = append(m.Path, id(nodes[r.IntN(len(nodes))]))
					m.Members = append(m.Members, id(nodes[r.IntN(len(nodes))]))
				}
			}
			m.Sub = wire.Subtree{Size: uint32(r.IntN(6)), Digest: uint64(r.IntN(3))}
			m.Part, m.Parts = uint16(r.IntN(3)), uint16(r.IntN(3))
			m.Ref, m.Reason, m.State = uint8(r.IntN(12)), uint8(r.IntN(4)), uint8(r.IntN(3))
			m.Better, m.BetterEpoch = id(nodes[r.IntN(len(nodes))]), uint32(r.IntN(4))
			m.Hello.HasTree = r.IntN(2) == 0
			m.Hello.WalkState = uint8(r.IntN(3))
			m.Hello.Neighbours = []wire.HelloEntry{{ID: id(0x50), Flags: uint8(r.IntN(4))}}
			from := nodes[r.IntN(len(nodes))]
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
	for _, path := range [][]wire.NodeID{
		nil,                   // no sender
		ids(0x10, 0x20),       // does not end with its sender
		ids(0x20, 0x20, 0x10), // repeats an id
		ids(0x20, 0x10, 0x30), // the origin not first
	} {
		f := msg(wire.ExtForward, 0x10, 1, 1)
		f.Path, f.Node, f.Swarm = path, id(0x10), testSwarm
		if path != nil && path[len(path)-1] == id(0x30) {
			f.Node, f.Origin = id(0x30), id(0x10)
		}
		if err := h.n.Step(0, addr(0x10), &f); !errors.Is(err, ErrMalformed) {
			t.Errorf("FORWARD with path %v: %v", path, err)
		}
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

// bigID is the i-th id of a large subtree, apart from the small ids of the
// other tests.
func bigID(i int) wire.NodeID { return wire.NodeID{0, 0, 0, 0, 0, 1, byte(i >> 8), byte(i)} }

// TestReturnInParts: a subtree larger than one datagram comes back in parts
// that are acknowledged one by one; the child counts once all are in, and
// its whole subtree routes to it. A node returning a large subtree sends
// again only the parts not acknowledged.
func TestReturnInParts(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x60)
	fw := one(t, h.step(0x10, forward(0x10, 3, 7, 0x50)), wire.ExtForward, 0x60)
	const size = 2*wire.MaxReturnMembers + 10
	members := []wire.NodeID{id(0x60)}
	for i := 1; i < size; i++ {
		members = append(members, bigID(i))
	}
	part := func(p int) wire.Overlay {
		m := msg(wire.ExtReturn, 0x10, 3, fw.Seq)
		m.Step, m.Sub, m.Part, m.Parts = fw.Seq+size, wire.Subtree{Size: size, Digest: 77}, uint16(p), 3
		m.Members = members[p*wire.MaxReturnMembers : min(size, (p+1)*wire.MaxReturnMembers)]
		return m
	}
	for _, p := range []int{2, 0, 2} { // out of order, and a copy
		a := one(t, h.step(0x60, part(p)), wire.ExtAck, 0x60)
		if a.Ref != wire.ExtReturn || a.Part != uint16(p) || a.Seq != fw.Seq {
			t.Fatalf("ACK %+v for part %d", a, p)
		}
		if len(h.n.walk.children) != 0 || h.n.walk.state != Working {
			t.Fatalf("child counted after part %d", p)
		}
	}
	out := h.step(0x60, part(1))
	one(t, out, wire.ExtAck, 0x60)
	// No neighbour is left: the token goes back with our subtree, in
	// parts too.
	rs := sent(out, wire.ExtReturn, 0x10)
	if len(rs) != 3 {
		t.Fatalf("%d RETURN parts to the parent: %v", len(rs), describe(out))
	}
	var got []wire.NodeID
	for i, r := range rs {
		if r.Msg.Part != uint16(i) || r.Msg.Parts != 3 || r.Msg.Sub.Size != size+1 || r.Msg.Step <= fw.Seq+size {
			t.Fatalf("RETURN part %d: %+v", i, r.Msg)
		}
		got = append(got, r.Msg.Members...)
	}
	if len(got) != size+1 || got[0] != id(0x50) || got[1] != id(0x60) || got[size] != bigID(size-1) {
		t.Fatalf("subtree returned: %d nodes, %v ... %v", len(got), got[:2], got[len(got)-1])
	}
	// Part 1 is acknowledged; 0 and 2 are sent again, until they are too.
	a := msg(wire.ExtAck, 0x10, 3, 7)
	a.Ref, a.Part = wire.ExtReturn, 1
	h.step(0x10, a)
	out = h.run(tT / 2)
	if rs := sent(out, wire.ExtReturn, 0x10); len(rs) != 2 || rs[0].Msg.Part != 0 || rs[1].Msg.Part != 2 {
		t.Fatalf("retransmitted %v", describe(out))
	}
	for _, p := range []uint16{0, 2} {
		a.Part = p
		h.step(0x10, a)
	}
	if !h.n.walk.retAcked {
		t.Fatal("RETURN not done after every part was acknowledged")
	}
	if out = h.run(tT); len(sent(out, wire.ExtReturn, 0)) != 0 {
		t.Fatalf("RETURN after all its ACKs: %v", describe(out))
	}
	f := msg(wire.ExtFinished, 0x10, 3, 7)
	f.Tree = wire.TreeSummary{Depth: 1, Size: size + 2, Digest: 9}
	h.step(0x10, f)
	tr := h.n.Tree()
	if !tr.Valid || len(tr.Children) != 1 || tr.Children[0].Subtree != size {
		t.Fatalf("tree %+v", tr)
	}
	if p, ok := h.n.Route(bigID(size - 1)); !ok || p.ID != id(0x60) {
		t.Fatalf("route into the subtree: %v %v", p, ok)
	}
	// A late copy of a part is acknowledged, not refused.
	if a := one(t, h.step(0x60, part(2)), wire.ExtAck, 0x60); a.Part != 2 {
		t.Fatalf("ACK %+v", a)
	}
}

// TestReturnMalformed: a RETURN whose parts do not add up is malformed; one
// that names a node already in the walk (left and walked in again while its
// old branch lives on) is stale. Either way its sender is given up like a
// dead child: told, and left out of the tree.
func TestReturnMalformed(t *testing.T) {
	for name, c := range map[string]struct {
		edit      func(m *wire.Overlay)
		malformed bool
	}{
		"size and parts disagree": {func(m *wire.Overlay) { m.Parts = 2 }, true},
		"short part":              {func(m *wire.Overlay) { m.Sub.Size = 3 }, true},
		"not the sender first":    {func(m *wire.Overlay) { m.Members[0], m.Members[1] = m.Members[1], m.Members[0] }, true},
		"part out of range":       {func(m *wire.Overlay) { m.Part = 1 }, true},
		"zero id":                 {func(m *wire.Overlay) { m.Members[1] = wire.NodeID{} }, true},
		"names our parent":        {func(m *wire.Overlay) { m.Members[1] = id(0x10) }, false},
		"names us":                {func(m *wire.Overlay) { m.Members[1] = id(0x50) }, false},
		"repeats a node":          {func(m *wire.Overlay) { m.Members[1] = id(0x60) }, false},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, 0x50)
			h.hello(0x10)
			h.hello(0x60)
			fw := one(t, h.step(0x10, forward(0x10, 3, 7, 0x50)), wire.ExtForward, 0x60)
			r := ret(0x10, 3, fw.Seq, 0x60, 0x61)
			c.edit(&r)
			r.Node, r.Swarm = id(0x60), testSwarm
			err := h.n.Step(h.now, addr(0x60), &r)
			if c.malformed != errors.Is(err, ErrMalformed) || !c.malformed && err != nil {
				t.Fatalf("Step: %v", err)
			}
			out := h.drain()
			one(t, out, wire.ExtAbort, 0x60)
			if h.n.Stats().ChildrenDead != 1 || len(h.n.walk.children) != 0 {
				t.Fatalf("children %v", h.n.walk.children)
			}
			if !c.malformed && h.n.Stats().Stale != 1 {
				t.Fatalf("stale %d", h.n.Stats().Stale)
			}
		})
	}
}

// TestTokenSkipsVisited: the token is not offered to a neighbour known to
// be in the walk: an ancestor the FORWARD names, one whose HELLO shows it in
// the walk, one in a subtree a child returned. One that nothing shows
// visited refuses it (RefuseVisited) and the token goes on.
func TestTokenSkipsVisited(t *testing.T) {
	h := newHarness(t, 0x50)
	for _, b := range []byte{0x10, 0x20, 0x30, 0x35, 0x40, 0x45, 0x60} {
		h.hello(b)
	}
	// 0x30 is in the walk of 0x10, epoch 3.
	m := wire.Overlay{Type: wire.ExtHello, Seq: 2}
	m.Hello.WalkState, m.Hello.WalkOrigin, m.Hello.WalkEpoch = wire.WalkWorking, id(0x10), 3
	m.Hello.Neighbours = []wire.HelloEntry{{ID: id(0x50)}}
	h.step(0x30, m)
	// Path 0x10 -> 0x20 -> 0x45 -> us: 0x10, 0x20 and 0x45 are ancestors.
	out := h.step(0x45, forward(0x10, 3, 7, 0x20, 0x45, 0x50))
	fw := one(t, out, wire.ExtForward, 0x35)
	if fw.Path[len(fw.Path)-1] != id(0x50) || len(fw.Path) != 4 || fw.Path[0] != id(0x10) {
		t.Fatalf("path %v", fw.Path)
	}
	// 0x35 comes back with 0x40 in its subtree: next is 0x60, which
	// refuses as visited; then the token goes back up.
	fw = one(t, h.step(0x35, ret(0x10, 3, fw.Seq, 0x35, 0x40)), wire.ExtForward, 0x60)
	ref := msg(wire.ExtRefuse, 0x10, 3, fw.Seq)
	ref.Ref, ref.Reason = wire.ExtForward, wire.RefuseVisited
	out = h.step(0x60, ref)
	r := one(t, out, wire.ExtReturn, 0x45)
	if r.Sub.Size != 3 || len(sent(h.out, wire.ExtForward, 0)) != 2 || h.n.Stats().Bounced != 1 {
		t.Fatalf("RETURN %+v after %v", r, describe(h.out))
	}
}

// TestPathBounded: however deep the walk, a FORWARD names at most PathLen
// ancestors, the nearest ones.
func TestPathBounded(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x60)
	f := msg(wire.ExtForward, 0x01, 3, 7)
	for i := range PathLen {
		f.Path = append(f.Path, bigID(i))
	}
	f.Path = append(f.Path, id(0x10))
	fw := one(t, h.step(0x10, f), wire.ExtForward, 0x60)
	if len(fw.Path) != PathLen || fw.Path[PathLen-1] != id(0x50) || fw.Path[PathLen-2] != id(0x10) || fw.Path[0] != bigID(2) {
		t.Fatalf("path of %d: %v ... %v", len(fw.Path), fw.Path[0], fw.Path[len(fw.Path)-1])
	}
}

// TestPartialHello: a node hearing more neighbours than one HELLO can list
// sends several, each for one range of ids, together listing every
// neighbour; a part for other ids says nothing about us.
func TestPartialHello(t *testing.T) {
	h := newHarness(t, 0x50)
	const many = 2*wire.MaxPartialHelloEntries + 5
	for i := range many {
		m := wire.Overlay{Type: wire.ExtHello, Swarm: testSwarm, Node: bigID(i), Seq: 1}
		if err := h.n.Step(h.now, addr(byte(i)), &m); err != nil {
			t.Fatal(err)
		}
	}
	h.drain()
	h.now = h.n.Next()
	h.n.Tick(h.now)
	hs := sent(h.drain(), wire.ExtHello, 0)
	if len(hs) != 3 {
		t.Fatalf("%d HELLOs for %d neighbours", len(hs), many)
	}
	var listed []wire.NodeID
	next := wire.NodeID{}
	for i, o := range hs {
		hl := o.Msg.Hello
		if !hl.Partial || hl.Lo != next {
			t.Fatalf("part %d: partial %v from %v, want from %v", i, hl.Partial, hl.Lo, next)
		}
		for _, e := range hl.Neighbours {
			if !hl.Covers(e.ID) {
				t.Fatalf("part %d lists %v outside [%v, %v]", i, e.ID, hl.Lo, hl.Hi)
			}
			listed = append(listed, e.ID)
		}
		binary.BigEndian.PutUint64(next[:], binary.BigEndian.Uint64(hl.Hi[:])+1)
	}
	if hs[2].Msg.Hello.Hi != (wire.NodeID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || len(listed) != many {
		t.Fatalf("%d listed, last part up to %v", len(listed), hs[2].Msg.Hello.Hi)
	}

	// On the receiving side: a part that covers us and lists us makes the
	// link symmetric, one for other ids leaves it so, one that covers us
	// without listing us makes it one-way.
	r := newHarness(t, 0x50)
	part := func(lo, hi wire.NodeID, list ...wire.NodeID) {
		m := wire.Overlay{Type: wire.ExtHello, Seq: 1}
		m.Hello.Partial, m.Hello.Lo, m.Hello.Hi = true, lo, hi
		for _, x := range list {
			m.Hello.Neighbours = append(m.Hello.Neighbours, wire.HelloEntry{ID: x, Flags: wire.HelloChild})
		}
		r.step(0x10, m)
	}
	sym := func() bool { return r.n.neighbour(id(0x10)).symmetric() }
	part(wire.NodeID{}, id(0x50), id(0x50))
	if !sym() || !r.n.neighbour(id(0x10)).v.flagsKnown {
		t.Fatal("listed in a covering part, not symmetric")
	}
	part(id(0x51), wire.NodeID{0xff}, id(0x60))
	if !sym() || !r.n.neighbour(id(0x10)).v.flagsKnown {
		t.Fatal("a part for other ids changed what the neighbour says about us")
	}
	part(wire.NodeID{}, id(0x50), id(0x40))
	if sym() {
		t.Fatal("not listed in a covering part, still symmetric")
	}
}

// TestNoJoinAsOwnDescendant: a node never joins a walk below itself: not its
// own walk after calling it off, not one whose FORWARD names it as an
// ancestor of the sender (both happen while a doomed branch lives on). It
// refuses as visited, so the sender goes on.
func TestNoJoinAsOwnDescendant(t *testing.T) {
	h := newHarness(t, 0x05)
	h.hello(0x10)
	h.hello(0x20)
	for name, f := range map[string]wire.Overlay{
		"own walk":      forward(0x05, 4, 9, 0x10, 0x05),
		"named in path": forward(0x01, 4, 9, 0x05, 0x20, 0x05),
	} {
		out := h.step(f.Path[len(f.Path)-1][7], f)
		ref := one(t, out, wire.ExtRefuse, f.Path[len(f.Path)-1][7])
		if ref.Reason != wire.RefuseVisited || h.n.walk.state != Idle {
			t.Fatalf("%s: refuse %+v, state %v", name, ref, h.n.walk.state)
		}
	}
}
