package daemon

import (
	"errors"
	"net/netip"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/netio"
	"ddhcpd/src/wire"
)

// handleMesh decodes and dispatches one datagram from the mesh.
func (d *Daemon) handleMesh(p netio.Packet) {
	d.count("mesh.rx")
	if !p.Src.Addr().IsLinkLocalUnicast() {
		d.count("drop.not_link_local")
		return
	}
	if p.Port == netio.ExtPort {
		d.handleExt(p)
		return
	}
	m, err := wire.Decode(p.Data)
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrShort):
			d.count("drop.short")
		case errors.Is(err, wire.ErrCommand):
			d.count("drop.unknown_command")
		default:
			d.count("drop.bad_length")
		}
		d.log.Debug("mesh packet dropped", "from", p.Src, "err", err)
		return
	}
	switch {
	case p.Port == netio.McastPort && (m.Command == wire.CmdUpdateClaim || m.Command == wire.CmdInquire):
		from := p.Src.Addr()
		if d.ov != nil {
			if m.Node == d.node && relayed(p) {
				d.count("overlay.own_echo") // our own claim came back over a changing tree
				return
			}
			if m.Node != d.node && d.eng.Config().Swarm.Matches(m.Header) && !d.flooded(p, m.Node, m.Command) {
				return
			}
			if relayed(p) {
				// The relay's address is not the owner's: renewals for
				// its blocks are routed by node id.
				from = netip.Addr{}
			}
		}
		switch err := d.eng.Step(d.clock.now(), from, &m); {
		case errors.Is(err, claim.ErrForeignSwarm):
			d.count("drop.foreign_swarm")
		case errors.Is(err, claim.ErrOwnID):
			d.count("drop.own_id")
			d.log.Warn("packet with our own node id from another address; is the state directory copied between routers?", "from", p.Src)
		case err == nil:
			if m.Command == wire.CmdUpdateClaim {
				d.count("rx.updateclaim")
			} else {
				d.count("rx.inquire")
			}
		}
	case p.Port == netio.UnicastPort && m.Command >= wire.CmdRenewLease:
		d.handleRenewFamily(d.clock.now(), sender{addr: p.Src.Addr()}, &m)
	default:
		d.count("drop.wrong_port")
	}
}

// Fast join (SPEC §6): a starting node multicasts SYNC on the extension
// port, twice a second apart in case one is lost; every node that hears it
// re-announces its claims, and learning ends once claims have been quiet for
// the sync-quiet time. A node that skips learning (-L) sends it too, so its
// table fills at once instead of at the owners' next refreshes.
const syncRepeat = time.Second

func (d *Daemon) wantSync() bool {
	return d.cfg.SyncQuiet > 0 && d.syncs < 2
}

func (d *Daemon) sync(now time.Duration) {
	if !d.wantSync() || now < d.nextSync {
		return
	}
	d.nextSync = now + syncRepeat
	if d.ov != nil && !d.ov.Tree().Valid {
		// Relayed along the tree, a SYNC reaches the whole partition, but
		// the answers reach a node outside the tree only once its
		// neighbours hear it both ways, which may take longer than the
		// answers: learning waits for the tree (EventRoot asks again) or
		// the learning time.
		if d.syncs == 0 && d.sendSync() {
			d.syncs = 1
		}
		return
	}
	if d.sendSync() {
		d.syncs++
		d.eng.SyncSent(now)
	}
}

// sendSync multicasts a SYNC on every mesh interface.
func (d *Daemon) sendSync() bool {
	e := wire.Ext{Type: wire.ExtSync, Node: d.node, Swarm: d.eng.Config().Swarm}
	b, err := e.Encode()
	if err != nil {
		return false
	}
	if err := d.mesh.Multicast(netio.ExtPort, b); err != nil {
		d.count("tx.error")
		return false // no mesh interface yet: try again at its open event
	}
	d.count("tx.sync")
	return true
}

// handleExt handles our extension messages (port 1236).
func (d *Daemon) handleExt(p netio.Packet) {
	e, err := wire.DecodeExt(p.Data)
	if err != nil {
		d.count("drop.ext_malformed")
		return
	}
	if !d.eng.Config().Swarm.Matches(wire.Header{Swarm: e.Swarm}) {
		d.count("drop.foreign_swarm")
		return
	}
	if e.Node == d.node {
		d.count("drop.own_id")
		return
	}
	switch {
	case e.Type == wire.ExtSync:
		if d.ov != nil && !d.flooded(p, e.Node, e.Type) {
			return
		}
		d.count("rx.sync")
		d.eng.SyncRequested(d.clock.now())
	case (wire.IsOverlay(e.Type) || e.Type == wire.ExtRoute) && d.ov == nil:
		d.count("drop.overlay_off")
	case wire.IsOverlay(e.Type):
		d.handleOverlay(p, e)
	case e.Type == wire.ExtRoute:
		d.handleRoute(e)
	default:
		d.count("drop.ext_unknown_type")
	}
}
