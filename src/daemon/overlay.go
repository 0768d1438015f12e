package daemon

import (
	"errors"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"ddhcpd/src/netio"
	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// The spanning-tree overlay (SPEC §5, -overlay): the overlay.Node builds the
// tree from the datagrams on port 1236; the daemon relays flooded messages
// (INQUIRE, UPDATECLAIM, SYNC) along the tree and routes forwarded renewals
// to owners that are not neighbours inside ROUTE extensions.

// newOverlay makes the overlay node, or nil when the overlay is off.
func (d *Daemon) newOverlay() (*overlay.Node, error) {
	if !d.cfg.Overlay {
		return nil, nil
	}
	var seed [32]byte
	if _, err := (entropy{}).Read(seed[:]); err != nil {
		return nil, err
	}
	return overlay.New(overlay.Config{
		Node:       d.node,
		Swarm:      d.eng.Config().Swarm,
		Interfaces: d.cfg.MeshInterfaces,
		// Walks of one origin are ordered by epoch, which must grow across
		// restarts: the wall clock's seconds do on routers that have one,
		// and a node without one learns its last epoch from its neighbours.
		Epoch: uint32(time.Now().Unix()),
	}, mrand.New(mrand.NewChaCha8(seed)), d.clock.now())
}

// dedupWindow is how long a relayed message is remembered. It must stay
// below the period at which a node repeats the same message, the inquiry
// interval (1 s), or a repetition sent against loss would be taken for a copy
// and not passed on.
func dedupWindow(inquire time.Duration) time.Duration {
	return max(inquire/2, 50*time.Millisecond)
}

// overlayTick runs the overlay's timers and sends what it produced.
func (d *Daemon) overlayTick(now time.Duration) {
	if d.ov == nil {
		return
	}
	if now >= d.ov.Next() {
		d.ov.Tick(now)
	}
	d.overlayFlush(now)
}

// overlayFlush sends the overlay's messages and acts on its events.
func (d *Daemon) overlayFlush(now time.Duration) {
	for _, o := range d.ov.Outbox() {
		b, err := o.Msg.Encode()
		if err != nil {
			d.log.Error("encode overlay message", "err", err)
			continue
		}
		if o.Multicast {
			err = d.mesh.MulticastOn(o.Iface, netio.ExtPort, b)
		} else {
			err = d.mesh.Unicast(netio.ExtPort, netip.AddrPortFrom(o.To.Addr, netio.ExtPort), b)
		}
		if err != nil {
			d.count("overlay.tx_error")
			d.log.Debug("overlay send", "type", wire.OverlayTypeName(o.Msg.Type), "err", err)
			continue
		}
		d.count("overlay.tx." + wire.OverlayTypeName(o.Msg.Type))
	}
	for _, ev := range d.ov.Events() {
		switch ev.Kind {
		case overlay.EventTree:
			d.log.Info("overlay tree in force", "root", ev.Root, "epoch", ev.Epoch, "nodes", ev.Size)
		case overlay.EventRoot:
			// A merge, a split or our first tree: both sides of what
			// changed must hear each other's claims, so SYNC again, now
			// relayed along the new tree (conflicts made while apart
			// are then seen and resolved by the claim engine).
			d.log.Info("overlay partition changed", "root", ev.Root, "old_root", ev.OldRoot)
			d.syncs, d.nextSync = 0, now
			d.count("overlay.root_changed")
		case overlay.EventTreeLost:
			d.log.Info("overlay tree lost", "root", ev.Root)
		default:
			d.log.Debug("overlay", "event", ev.Kind.String(), "root", ev.Root, "epoch", ev.Epoch, "size", ev.Size)
		}
	}
}

// handleOverlay hands a tree message to the overlay node.
func (d *Daemon) handleOverlay(p netio.Packet, e wire.Ext) {
	m, err := wire.ParseOverlay(e)
	if err != nil {
		d.count("drop.overlay_malformed")
		d.log.Debug("overlay message dropped", "from", p.Src, "err", err)
		return
	}
	now := d.clock.now()
	if err := d.ov.Step(now, p.Src.Addr(), &m); err != nil {
		switch {
		case errors.Is(err, overlay.ErrInterface):
			d.count("drop.overlay_interface")
		case errors.Is(err, overlay.ErrTooMany):
			d.count("drop.overlay_table_full")
		default:
			d.count("drop.overlay_malformed")
		}
		d.log.Debug("overlay message dropped", "from", p.Src, "err", err)
		return
	}
	d.count("overlay.rx." + wire.OverlayTypeName(m.Type))
	d.overlayFlush(now)
}

// flooded decides about a flooded message (a claim, an inquiry or a SYNC
// written by writer) that arrived in p: it passes the copy on where the
// overlay's rule says, to the same port it came to, and reports whether the
// message is new and must be acted on.
func (d *Daemon) flooded(p netio.Packet, writer wire.NodeID, cmd uint8) bool {
	now := d.clock.now()
	from, _ := d.ov.NeighbourAt(p.Src.Addr())
	handle, to := d.flood.Receive(now, d.ov, from, writer, overlay.DedupKey(writer, cmd, p.Data))
	for _, peer := range to {
		if err := d.mesh.Unicast(p.Port, netip.AddrPortFrom(peer.Addr, p.Port), p.Data); err != nil {
			d.count("overlay.tx_error")
			continue
		}
		d.count("overlay.relayed")
	}
	if !handle {
		d.count("overlay.duplicate")
	}
	return handle
}

// relayed reports whether p reached us by unicast, from a relay, rather than
// by multicast from the node that wrote it. The sender's address then says
// nothing about the writer's.
func relayed(p netio.Packet) bool {
	return p.Dst.IsValid() && p.Dst != netio.Group
}

// sendToOwner sends a renew-family message to the node owner: directly when
// it is a neighbour (or when its claim came straight from it, ownerAddr:
// a C node on a shared link), else along the tree inside a ROUTE (routed).
func (d *Daemon) sendToOwner(owner wire.NodeID, ownerAddr netip.Addr, m *wire.Message) (routed bool, err error) {
	if d.ov != nil && !owner.IsZero() {
		if p, ok := d.ov.Neighbour(owner); ok {
			ownerAddr = p.Addr
		}
		if !ownerAddr.IsValid() {
			return true, d.route(wire.Route{Node: m.Node, Swarm: m.Swarm, Target: owner, Inner: *m})
		}
	}
	if !ownerAddr.IsValid() {
		return false, errNoRoute
	}
	return false, d.unicastRenew(ownerAddr, m)
}

// unicastRenew sends a renew-family message to port 1235 of addr.
func (d *Daemon) unicastRenew(addr netip.Addr, m *wire.Message) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	return d.mesh.Unicast(netio.UnicastPort, netip.AddrPortFrom(addr, netio.UnicastPort), b)
}

var errNoRoute = errors.New("no route to the owner")

// route sends a routed message one hop further towards its target.
func (d *Daemon) route(r wire.Route) error {
	next, ok := d.ov.Route(r.Target)
	if !ok {
		d.count("overlay.route.no_route")
		return errNoRoute
	}
	b, err := r.Encode()
	if err != nil {
		return err
	}
	if err := d.mesh.Unicast(netio.ExtPort, netip.AddrPortFrom(next.Addr, netio.ExtPort), b); err != nil {
		return err
	}
	d.count("overlay.route.tx")
	return nil
}

// handleRoute passes a routed renewal on, or handles it when it is for us.
func (d *Daemon) handleRoute(e wire.Ext) {
	r, err := wire.ParseRoute(e)
	if err != nil {
		d.count("drop.route_malformed")
		return
	}
	if r.Target != d.node {
		if r.Hops >= wire.MaxRouteHops {
			d.count("drop.route_hops")
			return
		}
		r.Hops++
		if err := d.route(r); err != nil && !errors.Is(err, errNoRoute) {
			d.count("overlay.route.tx_error") // route counted no_route itself
		}
		return
	}
	d.count("overlay.route.rx")
	d.handleRenewFamily(d.clock.now(), sender{node: r.Node}, &r.Inner)
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

// reply sends an answer back the way the request came.
func (d *Daemon) reply(to sender, m *wire.Message) error {
	if to.routed() {
		return d.route(wire.Route{Node: d.node, Swarm: m.Swarm, Target: to.node, Inner: *m})
	}
	return d.unicastRenew(to.addr, m)
}
