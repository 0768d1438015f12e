package overlay

import (
	"slices"
	"testing"

	"ddhcpd/src/wire"
)

// TestRelayFrom checks where flooded messages go: along the tree from a
// tree neighbour, nowhere from another member of our tree, and to the
// whole tree from outsiders.
func TestRelayFrom(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x60)
	if got := h.n.RelayFrom(id(0x10)); got != nil {
		t.Fatalf("relay without a tree: %v", got)
	}
	// A tree: 0x10 is our parent, 0x60 our child.
	out := h.step(0x10, forward(0x10, 3, 7, 0x50))
	fw := one(t, out, wire.ExtForward, 0x60)
	r := msg(wire.ExtReturn, 0x10, 3, fw.Seq)
	r.Walk = append(chain(0x10, 0x50), wire.WalkEntry{ID: id(0x60), Parent: 1})
	h.step(0x60, r)
	f := msg(wire.ExtFinished, 0x10, 3, 7)
	f.Tree = wire.TreeSummary{Depth: 1, Size: 3, Digest: 9}
	h.step(0x10, f)
	tr := h.n.Tree()
	if !tr.Valid {
		t.Fatalf("no tree: %+v", tr)
	}
	// Two more neighbours: 0x70 announces our tree, 0x80 has none.
	h.hello(0x80)
	m := msg(wire.ExtHello, 0x10, tr.Epoch, 5)
	m.Hello.HasTree, m.Hello.Digest = true, tr.Digest
	m.Hello.Neighbours = []wire.HelloEntry{{ID: id(0x50)}}
	h.step(0x70, m)

	ids := func(ps []Peer) []byte {
		var out []byte
		for _, p := range ps {
			out = append(out, p.ID[7])
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name string
		from wire.NodeID
		want []byte
	}{
		{"from the parent: to the child", id(0x10), []byte{0x60}},
		{"from the child: to the parent", id(0x60), []byte{0x10}},
		{"from a member of our tree that is no tree neighbour: nowhere", id(0x70), nil},
		{"from a node outside the tree: everywhere", id(0x80), []byte{0x10, 0x60}},
		{"from an unknown sender (a C node): everywhere", wire.NodeID{}, []byte{0x10, 0x60}},
	} {
		if got := ids(h.n.RelayFrom(c.from)); !slices.Equal(got, c.want) {
			t.Errorf("%s: relayed to %x, want %x", c.name, got, c.want)
		}
	}
	if got, ok := h.n.NeighbourAt(addr(0x60)); !ok || got != id(0x60) {
		t.Errorf("NeighbourAt(child) = %v %v", got, ok)
	}
	if _, ok := h.n.NeighbourAt(addr(0x99)); ok {
		t.Error("NeighbourAt(unknown address) found a neighbour")
	}
}
