package daemon

import (
	"errors"
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
		switch err := d.eng.Step(d.clock.now(), p.Src.Addr(), &m); {
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
		d.handleRenewFamily(d.clock.now(), p.Src.Addr(), &m)
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
	e := wire.Ext{Type: wire.ExtSync, Node: d.node, Swarm: d.eng.Config().Swarm}
	b, err := e.Encode()
	if err != nil {
		return
	}
	d.nextSync = now + syncRepeat
	if err := d.mesh.Multicast(netio.ExtPort, b); err != nil {
		d.count("tx.error")
		return // no mesh interface yet: try again at its open event
	}
	d.syncs++
	d.count("tx.sync")
	d.eng.SyncSent(now)
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
	switch e.Type {
	case wire.ExtSync:
		d.count("rx.sync")
		d.eng.SyncRequested(d.clock.now())
	default:
		d.count("drop.ext_unknown_type")
	}
}
