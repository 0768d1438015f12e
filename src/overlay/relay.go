package overlay

import (
	"net/netip"

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
// received from the neighbour from is passed on. From a tree neighbour it
// goes to the other tree neighbours: along the tree, every node hears it
// once. From a neighbour that is in our tree but not next to us on it,
// nowhere: the tree brings it to everybody already. From anyone else (a
// node outside our tree, such as one that is joining or on the far side of
// a partition that is merging, a C node that speaks no overlay, or an
// address we do not know, from zero), to all tree neighbours, so nodes
// outside the tree are still heard by all of it.
func (n *Node) RelayFrom(from wire.NodeID) []Peer {
	if !n.tree.valid {
		return nil
	}
	if !from.IsZero() && (from == n.tree.parent || n.tree.child(from) >= 0) {
		return n.Relay(from)
	}
	if nb := n.neighbour(from); nb != nil && nb.v.hasTree && nb.v.tree == n.tree.r && nb.v.digest == n.tree.digest {
		return nil
	}
	return n.TreeNeighbours()
}
