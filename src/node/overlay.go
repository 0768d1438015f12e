package node

import (
	"errors"
	"net/netip"
	"time"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// The spanning-tree overlay (SPEC §5): the overlay.Node builds the tree from
// the datagrams on port 1236; the node relays flooded messages (INQUIRE,
// UPDATECLAIM, SYNC) along the tree and routes forwarded renewals to owners
// that are not neighbours inside ROUTE extensions.

// overlayTick runs the overlay's timers and sends what it produced.
func (n *Node) overlayTick(now time.Duration) {
	if n.ov == nil {
		return
	}
	if now >= n.ov.Next() {
		n.ov.Tick(now)
	}
	n.overlayFlush(now)
}

// overlayFlush sends the overlay's messages and acts on its events.
func (n *Node) overlayFlush(now time.Duration) {
	for _, o := range n.ov.Outbox() {
		b, err := o.Msg.Encode()
		if err != nil {
			n.log.Error("encode overlay message", "err", err)
			continue
		}
		d := Datagram{Port: PortExt, Data: b, Class: ClassOverlay}
		if o.Multicast {
			d.Iface = o.Iface
		} else {
			d.To = netip.AddrPortFrom(o.To.Addr, PortExt)
		}
		if int(o.Msg.Type) < len(n.c.OverlayTx) {
			n.c.OverlayTx[o.Msg.Type]++
		}
		n.send(d)
	}
	for _, ev := range n.ov.Events() {
		n.ready.Tree = append(n.ready.Tree, ev)
		switch ev.Kind {
		case overlay.EventTree:
			n.log.Info("overlay tree in force", "root", ev.Root, "epoch", ev.Epoch, "nodes", ev.Size)
		case overlay.EventRoot:
			// A merge, a split or our first tree: both sides of what
			// changed must hear each other's claims, so SYNC again, now
			// relayed along the new tree (conflicts made while apart are
			// then seen and resolved by the claim engine).
			n.log.Info("overlay partition changed", "root", ev.Root, "old_root", ev.OldRoot)
			n.syncs, n.nextSync = 0, now
			n.c.OverlayRootChanged++
		case overlay.EventTreeLost:
			n.log.Info("overlay tree lost", "root", ev.Root)
		default:
			n.log.Debug("overlay", "event", ev.Kind.String(), "root", ev.Root, "epoch", ev.Epoch, "size", ev.Size)
		}
	}
}

// handleOverlay hands a tree message to the overlay node.
func (n *Node) handleOverlay(now time.Duration, p MeshDatagram, e wire.Ext) {
	m, err := wire.ParseOverlay(e)
	if err != nil {
		n.c.DropOverlayMalformed++
		n.log.Debug("overlay message dropped", "from", p.Src, "err", err)
		return
	}
	if err := n.ov.Step(now, p.Src.Addr(), &m); err != nil {
		switch {
		case errors.Is(err, overlay.ErrInterface):
			n.c.DropOverlayInterface++
		case errors.Is(err, overlay.ErrTooMany):
			n.c.DropOverlayTableFull++
		default:
			n.c.DropOverlayMalformed++
		}
		n.log.Debug("overlay message dropped", "from", p.Src, "err", err)
		return
	}
	if int(m.Type) < len(n.c.OverlayRx) {
		n.c.OverlayRx[m.Type]++
	}
}

// flooded decides about a flooded message (a claim, an inquiry or a SYNC
// written by writer) that arrived in p: it passes the copy on where the
// overlay's rule says, to the same port it came to, and reports whether the
// message is new and must be acted on.
func (n *Node) flooded(now time.Duration, p MeshDatagram, writer wire.NodeID, cmd uint8) bool {
	from, _ := n.ov.NeighbourAt(p.Src.Addr())
	handle, to := n.flood.Receive(now, n.ov, from, writer, overlay.DedupKey(writer, cmd, p.Data))
	for _, peer := range to {
		n.send(Datagram{Port: p.Port, To: netip.AddrPortFrom(peer.Addr, p.Port), Data: p.Data, Class: ClassOverlay})
		n.c.OverlayRelayed++
	}
	if !handle {
		n.c.OverlayDuplicate++
	}
	return handle
}

var errNoRoute = errors.New("no route to the owner")

// sendToOwner sends a renew-family message to the node owner: directly when
// it is a neighbour (or when its claim came straight from it, ownerAddr: a C
// node on a shared link), else along the tree inside a ROUTE (routed).
func (n *Node) sendToOwner(owner wire.NodeID, ownerAddr netip.Addr, m *wire.Message) (routed bool, err error) {
	if n.ov != nil && !owner.IsZero() {
		if p, ok := n.ov.Neighbour(owner); ok {
			ownerAddr = p.Addr
		}
		if !ownerAddr.IsValid() {
			return true, n.route(wire.Route{Node: m.Node, Swarm: m.Swarm, Target: owner, Inner: *m})
		}
	}
	if !ownerAddr.IsValid() {
		return false, errNoRoute
	}
	return false, n.unicastRenew(ownerAddr, m)
}

// unicastRenew sends a renew-family message to port 1235 of addr.
func (n *Node) unicastRenew(addr netip.Addr, m *wire.Message) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	n.send(Datagram{Port: PortRenew, To: netip.AddrPortFrom(addr, PortRenew), Data: b, Class: ClassRenew})
	return nil
}

// route sends a routed message one hop further towards its target.
func (n *Node) route(r wire.Route) error {
	next, ok := n.ov.Route(r.Target)
	if !ok {
		n.c.OverlayRouteNoRoute++
		return errNoRoute
	}
	b, err := r.Encode()
	if err != nil {
		return err
	}
	n.send(Datagram{Port: PortExt, To: netip.AddrPortFrom(next.Addr, PortExt), Data: b, Class: ClassRoute})
	n.c.OverlayRouteTx++
	return nil
}

// handleRoute passes a routed renewal on, or handles it when it is for us.
func (n *Node) handleRoute(now time.Duration, e wire.Ext) {
	r, err := wire.ParseRoute(e)
	if err != nil {
		n.c.DropRouteMalformed++
		return
	}
	if r.Target != n.id {
		if r.Hops >= wire.MaxRouteHops {
			n.c.DropRouteHops++
			return
		}
		r.Hops++
		_ = n.route(r) // route counted a missing route
		return
	}
	n.c.OverlayRouteRx++
	n.handleRenewFamily(now, sender{node: r.Node}, &r.Inner)
}

// sender is where a renew-family message came from: a link-local address
// (port 1235), or a node whose message was routed along the tree.
type sender struct {
	addr netip.Addr
	node wire.NodeID // set when routed
}

func (s sender) routed() bool { return !s.node.IsZero() }

func (s sender) String() string {
	if s.routed() {
		return "node " + s.node.String() + " (routed)"
	}
	return s.addr.String()
}

// renewReply sends an answer back the way the request came.
func (n *Node) renewReply(to sender, m *wire.Message) error {
	if to.routed() {
		return n.route(wire.Route{Node: n.id, Swarm: m.Swarm, Target: to.node, Inner: *m})
	}
	return n.unicastRenew(to.addr, m)
}
