package daemon

import (
	"errors"

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
