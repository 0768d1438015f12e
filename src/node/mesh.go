package node

import (
	"errors"
	"net/netip"
	"time"

	"ddhcpd/src/wire"
)

// handleMesh checks a mesh datagram once, in one place (truncation,
// link-local source, port and command, swarm, own id), then hands it on.
func (n *Node) handleMesh(now time.Duration, p MeshDatagram) {
	n.c.MeshRx++
	switch {
	case p.Truncated:
		n.c.DropTruncated++
		return
	case !p.Src.Addr().IsLinkLocalUnicast():
		n.c.DropNotLinkLocal++
		return
	}
	if p.Port == PortExt {
		e, err := wire.DecodeExt(p.Data)
		if err != nil {
			n.c.DropExtMalformed++
			return
		}
		if n.admit(p, e.Node, wire.Header{Swarm: e.Swarm}) {
			n.handleExt(now, p, e)
		}
		return
	}
	m, err := wire.Decode(p.Data)
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrShort):
			n.c.DropShort++
		case errors.Is(err, wire.ErrCommand):
			n.c.DropUnknownCommand++
		default:
			n.c.DropBadLength++
		}
		n.log.Debug("mesh packet dropped", "from", p.Src, "err", err)
		return
	}
	claimCmd := m.Command == wire.CmdUpdateClaim || m.Command == wire.CmdInquire
	switch {
	case p.Port == PortClaim && claimCmd:
		if n.admit(p, m.Node, m.Header) {
			n.handleClaim(now, p, &m)
		}
	case p.Port == PortRenew && m.Command >= wire.CmdRenewLease:
		writer := m.Node
		if m.Command == wire.CmdLeaseAck || m.Command == wire.CmdLeaseNak {
			// C nodes answer with the record we sent, our id included.
			writer = wire.NodeID{}
		}
		if n.admit(p, writer, m.Header) {
			n.handleRenewFamily(now, sender{addr: p.Src.Addr()}, &m)
		}
	default:
		n.c.DropWrongPort++
	}
}

// admit checks a datagram's swarm and writer and counts what it drops. Our
// own id from another address means a copied state directory, or our own
// claim coming back over a changing tree.
func (n *Node) admit(p MeshDatagram, writer wire.NodeID, h wire.Header) bool {
	switch {
	case !n.swarm.Matches(h):
		n.c.DropForeignSwarm++
		return false
	case writer == n.id && n.ov != nil && p.Relayed:
		n.c.OverlayOwnEcho++
		return false
	case writer == n.id:
		n.c.DropOwnID++
		// Once and then every 1000th, so a peer with our id cannot
		// flood the log.
		if n.c.DropOwnID%1000 == 1 {
			n.log.Warn("packet with our own node id from another address; is the state directory copied between routers?",
				"from", p.Src, "seen", n.c.DropOwnID)
		}
		return false
	}
	return true
}

// handleClaim hands an INQUIRE or UPDATECLAIM to the claim engine, after the
// overlay passed it on.
func (n *Node) handleClaim(now time.Duration, p MeshDatagram, m *wire.Message) {
	from := p.Src.Addr()
	if n.ov != nil {
		if !n.flooded(now, p, m.Node, m.Command) {
			return
		}
		if p.Relayed {
			// The relay's address is not the owner's: renewals for its
			// blocks are routed by node id.
			from = netip.Addr{}
		}
	}
	if err := n.eng.Step(now, from, m); err != nil {
		return // admit checked what the engine would refuse
	}
	if m.Command == wire.CmdUpdateClaim {
		n.c.RxUpdateClaim++
	} else {
		n.c.RxInquire++
	}
}

// Fast join (SPEC §6): a starting node multicasts SYNC on the extension
// port, twice a second apart in case one is lost; every node that hears it
// re-announces its claims, and learning ends once claims have been quiet for
// the sync-quiet time. A node that skips learning (-L) sends it too, so its
// table fills at once instead of at the owners' next refreshes.
const syncRepeat = time.Second

func (n *Node) wantSync() bool {
	return n.eng.Config().SyncQuiet > 0 && n.syncs < 2
}

func (n *Node) sync(now time.Duration) {
	if !n.wantSync() || now < n.nextSync {
		return
	}
	n.nextSync = now + syncRepeat
	if n.ov != nil && !n.ov.Tree().Valid {
		// Relayed along the tree, a SYNC reaches the whole partition, but
		// the answers reach a node outside the tree only once its
		// neighbours hear it both ways, which may take longer than the
		// answers: learning waits for the tree (EventRoot asks again) or
		// the learning time.
		if n.syncs == 0 && n.sendSync() {
			n.syncs = 1
		}
		return
	}
	if n.sendSync() {
		n.syncs++
		n.eng.SyncSent(now)
	}
}

// sendSync multicasts a SYNC on every mesh interface; with none open it
// sends nothing and reports false (the open interface asks again).
func (n *Node) sendSync() bool {
	if len(n.linksUp) == 0 {
		return false
	}
	e := wire.Ext{Type: wire.ExtSync, Node: n.id, Swarm: n.swarm}
	b, err := e.Encode()
	if err != nil {
		return false
	}
	n.c.TxSync++
	n.send(Datagram{Port: PortExt, Data: b, Class: ClassSync})
	return true
}

// handleExt handles our extension messages (port 1236).
func (n *Node) handleExt(now time.Duration, p MeshDatagram, e wire.Ext) {
	switch {
	case e.Type == wire.ExtSync:
		if n.ov != nil && !n.flooded(now, p, e.Node, e.Type) {
			return
		}
		n.c.RxSync++
		n.eng.SyncRequested(now)
	case (wire.IsOverlay(e.Type) || e.Type == wire.ExtRoute) && n.ov == nil:
		n.c.DropOverlayOff++
	case wire.IsOverlay(e.Type):
		n.handleOverlay(now, p, e)
	case e.Type == wire.ExtRoute:
		n.handleRoute(now, e)
	default:
		n.c.DropExtUnknownType++
	}
}
