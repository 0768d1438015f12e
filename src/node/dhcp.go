package node

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/dhcp4"
	"ddhcpd/src/lease"
)

// handleClient runs one DHCP packet from a client link through dhcp4 and
// carries out the decision.
func (n *Node) handleClient(now time.Duration, p ClientPacket) {
	if n.dhcp == nil {
		return
	}
	n.c.DHCPRx++
	m, err := dhcpv4.FromBytes(p.Payload)
	if err != nil {
		n.c.DHCPDropMalformed++
		n.log.Debug("malformed DHCP packet", "from", p.SrcMAC, "iface", p.Iface, "err", err)
		return
	}
	if mt := m.MessageType(); mt >= dhcpv4.MessageTypeDiscover && mt <= dhcpv4.MessageTypeInform {
		n.c.DHCPRxType[mt]++
	} else {
		n.c.DHCPRxOther++
	}
	if !p.Broadcast {
		n.c.DHCPRxUnicast++
	}
	req := dhcp4.Request{Msg: m, Iface: p.Iface, SrcIP: p.SrcIP, SrcMAC: p.SrcMAC, Broadcast: p.Broadcast}
	n.decide(now, req, true)
}

// decide handles a request; park says whether a DISCOVER that got nothing
// may wait for a block.
func (n *Node) decide(now time.Duration, req dhcp4.Request, park bool) {
	dec := n.dhcp.Handle(now, req)
	if dec.Demand {
		n.demand = true
	}
	if dec.HasWant {
		if n.eng.Want(now, dec.Want) {
			n.c.DHCPWantClaiming++
		} else {
			n.c.DHCPWantRefused++
		}
	}
	switch dec.Action {
	case dhcp4.Drop:
		n.c.DHCPDrop[dec.Reason]++
		// Both mean "waiting for a block": answer when one is ours.
		if (dec.Reason == dhcp4.DropNothing || dec.Reason == dhcp4.DropReserve) && park {
			n.parked.add(now, req)
		}
	case dhcp4.Reply:
		n.reply(req, dec)
	case dhcp4.Forward:
		n.forward(now, req, dec.Forward)
	}
	n.dhcpEvents(dec.Events)
}

// dhcpEvents logs lease events and hands them to the hook.
func (n *Node) dhcpEvents(evs []dhcp4.Event) {
	for _, ev := range evs {
		n.c.DHCPEvent[ev.Kind]++
		n.ready.StateChanged = true
		// Every new client has an event: format it only for a log level
		// or a hook that takes it.
		if n.log.Enabled(context.Background(), slog.LevelInfo) {
			n.log.Info("dhcp "+string(ev.Kind), "addr", ev.Addr, "hw", ev.HW.String(), "hostname", ev.Hostname)
		}
		if n.cfg.Hooks {
			args := []string{string(ev.Kind), ev.Addr.String(), hookMAC(ev.HW)}
			if ev.Hostname != "" {
				args = append(args, ev.Hostname)
			}
			n.hook(args...)
		}
	}
}

// reply queues a DHCP reply for the driver.
func (n *Node) reply(req dhcp4.Request, dec dhcp4.Decision) {
	mt := dec.Reply.MessageType()
	if int(mt) < len(n.c.DHCPTxType) {
		n.c.DHCPTxType[mt]++
	}
	n.ready.Replies = append(n.ready.Replies, Reply{
		Iface:    req.Iface,
		Dest:     dec.Dest,
		ServerID: n.dhcp.Config().ServerID,
		Data:     dhcp4.Encode(dec.Reply),
		Type:     uint8(mt),
	})
}

// parkedDiscovers keeps the last DISCOVER of clients that got nothing, so
// they get their OFFER as soon as a block is ours instead of at their next
// retry. Bounded in size and age, and kept in arrival order so a replay is
// the same on every run.
type parkedDiscovers struct {
	list []parked
}

type parked struct {
	key lease.ClientKey
	req dhcp4.Request
	at  time.Duration
}

const (
	maxParked = 64
	parkedAge = 4 * time.Second
)

func (p *parkedDiscovers) add(now time.Duration, req dhcp4.Request) {
	key := lease.KeyOf(req.Msg.Options.Get(dhcpv4.OptionClientIdentifier), req.Msg.ClientHWAddr)
	for i := range p.list {
		if p.list[i].key == key {
			p.list[i].req, p.list[i].at = req, now
			return
		}
	}
	if len(p.list) < maxParked {
		p.list = append(p.list, parked{key: key, req: req, at: now})
	}
}

func (p *parkedDiscovers) expire(now time.Duration) {
	p.list = slices.DeleteFunc(p.list, func(v parked) bool { return now-v.at > parkedAge })
}

// next is when the oldest parked DISCOVER expires.
func (p *parkedDiscovers) next() (time.Duration, bool) {
	var t time.Duration
	for i, v := range p.list {
		if at := v.at + parkedAge + time.Nanosecond; i == 0 || at < t {
			t = at
		}
	}
	return t, len(p.list) > 0
}

// replayParked answers parked DISCOVERs after a block became ours.
func (n *Node) replayParked(now time.Duration) {
	if n.dhcp == nil || len(n.parked.list) == 0 {
		return
	}
	waiting := n.parked.list
	n.parked.list = nil
	for _, p := range waiting {
		n.c.DHCPParkedAnswered++
		n.decide(now, p.req, false)
	}
}
