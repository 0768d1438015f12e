package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/dhcp4"
	"ddhcpd/src/lease"
	"ddhcpd/src/netio"
)

// handleClient runs one DHCP packet from a client link through dhcp4 and
// carries out the decision.
func (d *Daemon) handleClient(p netio.ClientPacket) {
	d.count("dhcp.rx")
	m, err := dhcpv4.FromBytes(p.Payload)
	if err != nil {
		d.count("dhcp.drop.malformed")
		d.log.Debug("malformed DHCP packet", "from", p.SrcMAC, "iface", p.Iface, "err", err)
		return
	}
	if mt := m.MessageType(); mt >= dhcpv4.MessageTypeDiscover && mt <= dhcpv4.MessageTypeInform {
		d.count("dhcp.rx." + mt.String())
	} else {
		d.count("dhcp.rx.other")
	}
	if !p.Broadcast {
		d.count("dhcp.rx.unicast")
	}
	req := dhcp4.Request{Msg: m, Iface: p.Iface, SrcIP: p.SrcIP, SrcMAC: p.SrcMAC, Broadcast: p.Broadcast}
	d.decide(req, true)
}

// decide handles a request; park says whether a DISCOVER that got nothing
// may wait for a block.
func (d *Daemon) decide(req dhcp4.Request, park bool) {
	now := d.clock.now()
	dec := d.dhcp.Handle(now, req)
	switch dec.Action {
	case dhcp4.Drop:
		d.count("dhcp.drop." + dec.Reason)
		// Both mean "waiting for a block": answer when one is ours.
		if (dec.Reason == dhcp4.DropNothing || dec.Reason == dhcp4.DropReserve) && park {
			d.parked.add(now, req)
		}
	case dhcp4.Reply:
		d.send(req, dec)
	case dhcp4.Forward:
		d.forward(now, req, dec.Forward)
	}
	for _, ev := range dec.Events {
		d.count("dhcp.event." + string(ev.Kind))
		d.state.dirty = true
		// Every new client has an event: format it only for a log
		// level or a hook that takes it.
		if d.log.Enabled(context.Background(), slog.LevelInfo) {
			d.log.Info("dhcp "+string(ev.Kind), "addr", ev.Addr, "hw", ev.HW.String(), "hostname", ev.Hostname)
		}
		if d.hook != nil {
			args := []string{string(ev.Kind), ev.Addr.String(), hookMAC(ev.HW)}
			if ev.Hostname != "" {
				args = append(args, ev.Hostname)
			}
			d.runHook(args...)
		}
	}
}

func (d *Daemon) send(req dhcp4.Request, dec dhcp4.Decision) {
	b := dhcp4.Encode(dec.Reply)
	dst := netio.Dest{Iface: req.Iface, IP: dec.Dest.IP, Port: dec.Dest.Port, MAC: dec.Dest.MAC, Routed: dec.Dest.Routed}
	if err := d.clients.Send(dst, d.serverID, b); err != nil {
		d.count("dhcp.tx.error")
		d.log.Warn("send DHCP reply", "to", dec.Dest.IP, "iface", req.Iface, "err", err)
		return
	}
	d.count("dhcp.tx." + dec.Reply.MessageType().String())
}

// parkedDiscovers keeps the last DISCOVER of clients that got nothing, so
// they get their OFFER as soon as a block is ours instead of at their next
// retry. Bounded in size and age.
type parkedDiscovers struct {
	byClient map[lease.ClientKey]parked
}

type parked struct {
	req dhcp4.Request
	at  time.Duration
}

const (
	maxParked = 64
	parkedAge = 4 * time.Second
)

func (p *parkedDiscovers) add(now time.Duration, req dhcp4.Request) {
	if p.byClient == nil {
		p.byClient = make(map[lease.ClientKey]parked)
	}
	key := lease.KeyOf(req.Msg.Options.Get(dhcpv4.OptionClientIdentifier), req.Msg.ClientHWAddr)
	if _, ok := p.byClient[key]; !ok && len(p.byClient) >= maxParked {
		return
	}
	p.byClient[key] = parked{req: req, at: now}
}

func (p *parkedDiscovers) expire(now time.Duration) {
	for k, v := range p.byClient {
		if now-v.at > parkedAge {
			delete(p.byClient, k)
		}
	}
}

// replayParked answers parked DISCOVERs after a block became ours.
func (d *Daemon) replayParked() {
	if d.dhcp == nil || len(d.parked.byClient) == 0 {
		return
	}
	waiting := d.parked.byClient
	d.parked.byClient = nil
	for _, p := range waiting {
		d.count("dhcp.parked_answered")
		d.decide(p.req, false)
	}
}
