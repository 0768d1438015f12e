package overlay

import (
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/wire"
)

// NeighbourAt returns the id of the neighbour heard at the link-local
// address addr (its zone naming the interface), if there is one.
func (n *Node) NeighbourAt(addr netip.Addr) (wire.NodeID, bool) {
	for _, nb := range n.nbs {
		for _, l := range nb.links {
			if l.addr == addr {
				return nb.id, true
			}
		}
	}
	return wire.NodeID{}, false
}

// RelayFrom returns where a flooded message (a claim, an inquiry, a SYNC)
// received from the neighbour from is passed on, and false when this copy
// is not to be passed on at all.
//
// The writer multicasts its message to its neighbours; from there it
// travels along the tree. So a copy from a neighbour that is in our tree
// but not next to us on it is not passed on (false): the tree brings us
// the copy that is. Any other copy (from a tree neighbour, from a node
// outside our tree such as one that is joining or on the far side of a
// merging partition, from a C node or an address we do not know, from zero)
// goes to our tree neighbours and to the neighbours outside our tree, but
// not back to from: every node of the tree hears it once along the tree,
// and the nodes around it that are not (yet) in the tree hear it too.
// Without a tree, a node floods: it passes the message to all neighbours
// that hear us, so claims reach everybody while a tree is being built.
func (n *Node) RelayFrom(from wire.NodeID) ([]Peer, bool) {
	var ps []Peer
	if !n.tree.valid {
		for _, nb := range n.nbs {
			if nb.id != from && nb.symmetric() {
				if p, ok := n.peer(nb.id); ok {
					ps = append(ps, p)
				}
			}
		}
		return ps, true
	}
	onTree := func(id wire.NodeID) bool { // a tree neighbour
		return !id.IsZero() && (id == n.tree.parent || n.tree.child(id) >= 0)
	}
	inTree := func(nb *neighbour) bool { // announces our tree
		return nb.v.hasTree && nb.v.tree == n.tree.r && nb.v.digest == n.tree.digest
	}
	if nb := n.neighbour(from); nb != nil && !onTree(from) && inTree(nb) {
		return nil, false
	}
	ps = n.Relay(from)
	for _, nb := range n.nbs {
		if nb.id == from || !nb.symmetric() || inTree(nb) || onTree(nb.id) {
			continue
		}
		if p, ok := n.peer(nb.id); ok {
			ps = append(ps, p)
		}
	}
	return ps, true
}

// Flooder decides, for each copy of a flooded message a node receives,
// whether to act on it and where to pass it on. It keeps two memories: a
// message is acted on once, when its first copy arrives (often straight
// from its writer), and passed on once, when the first copy that RelayFrom
// passes on arrives (the one along the tree), which may come later.
type Flooder struct {
	handled, relayed *Dedup
}

// NewFlooder makes a Flooder that remembers messages for window (see
// Dedup: shorter than the period at which a writer repeats a message).
func NewFlooder(window time.Duration) *Flooder {
	return &Flooder{handled: NewDedup(window, 0), relayed: NewDedup(window, 0)}
}

// Receive takes a copy, with key DedupKey(writer, command, datagram), that
// came from neighbour from (zero when unknown). It returns whether to act
// on the message and the neighbours to send the copy to; the writer itself
// is never among them.
func (f *Flooder) Receive(now time.Duration, n *Node, from, writer wire.NodeID, key uint64) (handle bool, to []Peer) {
	handle = !f.handled.Seen(now, key)
	ps, pass := n.RelayFrom(from)
	if !pass || f.relayed.Seen(now, key) {
		return handle, nil
	}
	return handle, slices.DeleteFunc(ps, func(p Peer) bool { return p.ID == writer })
}
