package overlay

import (
	"slices"
	"testing"
	"time"

	"ddhcpd/src/wire"
)

// TestRelayFrom checks where flooded messages go: along the tree and to
// the neighbours outside it from a tree neighbour or an outsider, nowhere
// from another member of our tree, and to every neighbour but the sender
// without a tree.
func TestRelayFrom(t *testing.T) {
	h := newHarness(t, 0x50)
	h.hello(0x10)
	h.hello(0x60)
	if got, pass := h.n.RelayFrom(id(0x10)); !pass || len(got) != 1 || got[0].ID != id(0x60) {
		t.Fatalf("without a tree: relayed to %v (%v), want 60 only", got, pass)
	}
	// A tree: 0x10 is our parent, 0x60 our child.
	h.middleOfTree()
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
		pass bool
	}{
		{"from the parent: to the child and the outsider", id(0x10), []byte{0x60, 0x80}, true},
		{"from the child: to the parent and the outsider", id(0x60), []byte{0x10, 0x80}, true},
		{"from a member of our tree that is no tree neighbour: nowhere", id(0x70), nil, false},
		{"from a node outside the tree: to the tree", id(0x80), []byte{0x10, 0x60}, true},
		{"from an unknown sender (a C node): everywhere but our tree's members", wire.NodeID{}, []byte{0x10, 0x60, 0x80}, true},
	} {
		got, pass := h.n.RelayFrom(c.from)
		if !slices.Equal(ids(got), c.want) || pass != c.pass {
			t.Errorf("%s: relayed to %x (%v), want %x (%v)", c.name, ids(got), pass, c.want, c.pass)
		}
	}

	// A Flooder acts on the first copy and passes on the first copy that
	// RelayFrom passes on, never to the writer.
	fl := NewFlooder(time.Second)
	k := DedupKey(id(0x70), wire.CmdUpdateClaim, []byte{1})
	if handle, to := fl.Receive(h.now, h.n, id(0x70), id(0x70), k); !handle || to != nil {
		t.Errorf("straight from the writer, a member of our tree: handle %v, to %v", handle, to)
	}
	if handle, to := fl.Receive(h.now, h.n, id(0x10), id(0x70), k); handle || !slices.Equal(ids(to), []byte{0x60, 0x80}) {
		t.Errorf("the copy along the tree: handle %v, to %x", handle, ids(to))
	}
	if handle, to := fl.Receive(h.now, h.n, id(0x60), id(0x70), k); handle || to != nil {
		t.Errorf("a third copy: handle %v, to %v", handle, to)
	}
	k = DedupKey(id(0x10), wire.CmdInquire, []byte{2})
	if _, to := fl.Receive(h.now, h.n, id(0x10), id(0x10), k); !slices.Equal(ids(to), []byte{0x60, 0x80}) {
		t.Errorf("from the parent, its own: to %x", ids(to))
	}
	k = DedupKey(id(0x80), wire.CmdInquire, []byte{3})
	if _, to := fl.Receive(h.now, h.n, wire.NodeID{}, id(0x80), k); !slices.Equal(ids(to), []byte{0x10, 0x60}) {
		t.Errorf("the outsider's own, relayed by a C node: to %x, not back to the writer", ids(to))
	}
	if got, ok := h.n.NeighbourAt(addr(0x60)); !ok || got != id(0x60) {
		t.Errorf("NeighbourAt(child) = %v %v", got, ok)
	}
	if _, ok := h.n.NeighbourAt(addr(0x99)); ok {
		t.Error("NeighbourAt(unknown address) found a neighbour")
	}
}
