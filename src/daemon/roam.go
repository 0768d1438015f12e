package daemon

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/dhcp4"
	"ddhcpd/src/wire"
)

// Roaming: a client asks this node to renew an address of a block another
// node owns. The request is forwarded to the owner with RENEWLEASE and
// parked; the owner's LEASEACK or LEASENAK becomes the DHCPACK or DHCPNAK.
// An owner whose byte order for the address we do not know yet gets a second
// try in the other order after retryAfter (C nodes on little-endian CPUs
// write it reversed); after that the client gets silence. A forward routed
// along the overlay tree goes to one of our nodes, which reads both orders,
// over several hops: it is sent again in the same order after
// routedRetryAfter, against loss, and waited for longer.
const (
	retryAfter        = 200 * time.Millisecond
	giveUpAfter       = 800 * time.Millisecond // after the second try
	routedRetryAfter  = time.Second
	routedGiveUpAfter = 2 * time.Second // after the second try
	maxPending        = 256
	rttSamples        = 1024
)

type renewKey struct {
	xid    uint32
	chaddr [16]byte
}

type pendingRenew struct {
	req      dhcp4.Request
	fwd      dhcp4.Forwarding
	order    wire.AddrOrder // of the last try
	tries    int
	routed   bool // along the overlay tree
	deadline time.Duration
	sentAt   time.Duration
}

type roaming struct {
	pending map[renewKey]*pendingRenew
	// orders remembers each owner's byte order for renew addresses.
	orders map[netip.Addr]wire.AddrOrder
	rtt    []time.Duration // recent round trips, a ring
	rttPos int
}

func (r *roaming) init() {
	if r.pending == nil {
		r.pending = make(map[renewKey]*pendingRenew)
		r.orders = make(map[netip.Addr]wire.AddrOrder)
	}
}

func chaddr16(hw net.HardwareAddr) (c [16]byte) {
	copy(c[:], hw)
	return c
}

func xidOf(b [4]byte) uint32 { return binary.BigEndian.Uint32(b[:]) }

// forward sends a client's request for another node's block to its owner.
func (d *Daemon) forward(now time.Duration, req dhcp4.Request, fwd dhcp4.Forwarding) {
	d.roam.init()
	m := req.Msg
	key := renewKey{xid: xidOf(m.TransactionID), chaddr: chaddr16(m.ClientHWAddr)}
	if fwd.Kind == dhcp4.ForwardRelease {
		d.sendRenew(wire.CmdRelease, fwd, key, d.orderOf(fwd.NodeAddr), 0)
		d.count("roam.release_forwarded")
		return
	}
	if p := d.roam.pending[key]; p != nil {
		p.req = req // a retransmission: answer the newest copy
		d.count("roam.duplicate")
		return
	}
	if len(d.roam.pending) >= maxPending {
		d.count("roam.drop.table_full")
		return
	}
	p := &pendingRenew{req: req, fwd: fwd, order: d.orderOf(fwd.NodeAddr), tries: 1, sentAt: now, deadline: now + retryAfter}
	d.roam.pending[key] = p
	if p.routed = d.sendRenew(wire.CmdRenewLease, fwd, key, p.order, 0); p.routed {
		p.deadline = now + routedRetryAfter
	}
	d.count("roam.forwarded")
}

// orderOf is the owner's known byte order, network order when unknown.
func (d *Daemon) orderOf(owner netip.Addr) wire.AddrOrder {
	if o, ok := d.roam.orders[owner]; ok {
		return o
	}
	return wire.OrderNetwork
}

// sendRenew sends a renew-family message to the owner of fwd's block and
// reports whether it went along the overlay tree.
func (d *Daemon) sendRenew(cmd uint8, fwd dhcp4.Forwarding, key renewKey, order wire.AddrOrder, seconds uint32) (routed bool) {
	m := wire.Message{Header: d.header(cmd)}
	m.Renew.SetAddress(fwd.Addr, order)
	m.Renew.Xid = key.xid
	m.Renew.LeaseSeconds = seconds
	m.Renew.Chaddr = key.chaddr
	routed, err := d.sendToOwner(wire.NodeID(fwd.Node), fwd.NodeAddr, &m)
	if err != nil {
		d.count("roam.tx_error")
		d.log.Debug("forward to owner", "owner", wire.NodeID(fwd.Node), "addr", fwd.NodeAddr, "err", err)
	}
	return routed
}

func (d *Daemon) header(cmd uint8) wire.Header {
	return wire.Header{Node: d.node, Swarm: d.eng.Config().Swarm, Command: cmd}
}

// roamTimers retries forwards once (in the other byte order when the
// owner's is unknown, in the same when routed), then gives up.
func (d *Daemon) roamTimers(now time.Duration) {
	for key, p := range d.roam.pending {
		if p.deadline > now {
			continue
		}
		if p.tries == 1 && p.routed {
			p.tries, p.deadline = 2, now+routedGiveUpAfter
			d.sendRenew(wire.CmdRenewLease, p.fwd, key, p.order, 0)
			d.count("roam.retry_routed")
			continue
		}
		if p.tries == 1 {
			if _, known := d.roam.orders[p.fwd.NodeAddr]; !known {
				p.tries, p.order, p.deadline = 2, p.order.Other(), now+giveUpAfter
				d.sendRenew(wire.CmdRenewLease, p.fwd, key, p.order, 0)
				d.count("roam.retry_other_order")
				continue
			}
		}
		delete(d.roam.pending, key)
		d.count("roam.drop.no_answer")
		d.log.Info("owner did not answer a forwarded renewal", "owner", p.fwd.NodeAddr, "addr", p.fwd.Addr)
	}
}

// nextRoamTimer is the earliest pending deadline.
func (d *Daemon) nextRoamTimer() (time.Duration, bool) {
	var t time.Duration
	found := false
	for _, p := range d.roam.pending {
		if !found || p.deadline < t {
			t, found = p.deadline, true
		}
	}
	return t, found
}

// handleRenewFamily handles RENEWLEASE, LEASEACK, LEASENAK and RELEASE
// received on the unicast port or routed along the overlay tree.
func (d *Daemon) handleRenewFamily(now time.Duration, src sender, m *wire.Message) {
	if !d.eng.Config().Swarm.Matches(m.Header) {
		d.count("drop.foreign_swarm")
		return
	}
	if m.Node == d.node && !m.Node.IsZero() {
		d.count("drop.own_id")
		return
	}
	a, order, ok := m.Renew.ResolveAddress(d.pool.Prefix(), d.roam.orders[src.addr])
	if !ok {
		d.count("roam.drop.outside_pool")
		return
	}
	switch m.Command {
	case wire.CmdRenewLease, wire.CmdRelease:
		d.ownerSide(now, src, m, a)
	case wire.CmdLeaseAck, wire.CmdLeaseNak:
		d.requesterSide(now, src, m, a, order)
	}
}

// ownerSide answers another node's forward for one of our blocks, in the
// byte order the sender used (the record is echoed with the command changed).
func (d *Daemon) ownerSide(now time.Duration, src sender, m *wire.Message, a netip.Addr) {
	if d.dhcp == nil {
		return
	}
	hw := net.HardwareAddr(slices.Clone(m.Renew.Chaddr[:6]))
	if m.Command == wire.CmdRelease {
		d.count("roam.rx.release")
		if d.dhcp.OwnerRelease(now, a, hw) {
			d.state.dirty = true
			d.runHook("release", a.String(), hookMAC(hw))
			d.log.Info("roamed client released its lease", "addr", a, "hw", hw.String(), "via", src.String())
		}
		return
	}
	d.count("roam.rx.renewlease")
	want := time.Duration(m.Renew.LeaseSeconds) * time.Second
	verdict, granted, events := d.dhcp.OwnerRenew(now, a, hw, want)
	reply := *m
	reply.Node = d.node // C nodes echo the whole record; our id tells who answered
	switch verdict {
	case dhcp4.Silent:
		d.count("roam.owner.silent")
		return
	case dhcp4.Grant:
		reply.Command = wire.CmdLeaseAck
		reply.Renew.LeaseSeconds = uint32(granted / time.Second)
		d.count("roam.owner.ack")
		d.state.dirty = true
	case dhcp4.Refuse:
		reply.Command = wire.CmdLeaseNak
		reply.Renew.LeaseSeconds = 0
		d.count("roam.owner.nak")
	}
	for _, ev := range events {
		d.log.Info("lease renewed for a roamed client", "addr", ev.Addr, "hw", ev.HW.String(), "via", src.String())
	}
	if err := d.reply(src, &reply); err != nil {
		d.count("roam.tx_error")
	}
}

// requesterSide turns the owner's answer into the client's DHCPACK or NAK.
func (d *Daemon) requesterSide(now time.Duration, src sender, m *wire.Message, a netip.Addr, order wire.AddrOrder) {
	key := renewKey{xid: m.Renew.Xid, chaddr: m.Renew.Chaddr}
	p := d.roam.pending[key]
	if p == nil || p.fwd.Addr != a || !p.answeredBy(src, m.Node) {
		d.count("roam.drop.unexpected_answer")
		return
	}
	delete(d.roam.pending, key)
	if !src.routed() && p.fwd.NodeAddr.IsValid() {
		d.roam.orders[p.fwd.NodeAddr] = order
	}
	rtt := now - p.sentAt
	if len(d.roam.rtt) < rttSamples {
		d.roam.rtt = append(d.roam.rtt, rtt)
	} else {
		d.roam.rtt[d.roam.rttPos] = rtt
		d.roam.rttPos = (d.roam.rttPos + 1) % rttSamples
	}
	granted := m.Command == wire.CmdLeaseAck
	dec := d.dhcp.Roamed(p.req, a, granted, time.Duration(m.Renew.LeaseSeconds)*time.Second)
	if granted {
		d.count("roam.ack")
	} else {
		d.count("roam.nak")
	}
	d.send(p.req, dec)
	for _, ev := range dec.Events {
		d.runHook(string(ev.Kind), ev.Addr.String(), hookMAC(ev.HW))
		d.log.Info("roamed renewal acknowledged by the owner", "addr", ev.Addr, "hw", ev.HW.String(), "owner", src.String(), "rtt", rtt)
	}
}

// answeredBy reports whether an answer from src, written by node, comes
// from the owner the request went to: by its address (C nodes echo our
// record, our id included), or by its id (our nodes write theirs; with the
// overlay the request may have gone by another address or along the tree).
func (p *pendingRenew) answeredBy(src sender, node wire.NodeID) bool {
	owner := wire.NodeID(p.fwd.Node)
	if src.routed() {
		return src.node == owner
	}
	return p.fwd.NodeAddr.WithZone("") == src.addr.WithZone("") || (!owner.IsZero() && node == owner)
}

// rttPercentiles returns the p50 and p99 of recent roamed round trips.
func (d *Daemon) rttPercentiles() (p50, p99 time.Duration, n int) {
	if len(d.roam.rtt) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(d.roam.rtt)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], len(s)
}

// handOver offers the live leases of a block we lost to its new owner, so it
// adopts them (with their remaining time) instead of handing those
// addresses to new clients. Conflicting ones are refused by the owner and
// the client is told at its next renewal, which is forwarded.
func (d *Daemon) handOver(now time.Duration, block uint32, owner wire.NodeID, ownerAddr netip.Addr) {
	if d.dhcp == nil || (!ownerAddr.IsValid() && d.ov == nil) {
		return
	}
	d.roam.init()
	for i := range d.pool.BlockSize() {
		a := d.pool.Addr(block, i)
		l := d.leases.At(a)
		if l == nil || !l.Holds() || l.Expired(now) || len(l.HW) == 0 {
			continue
		}
		var x [4]byte
		_, _ = (entropy{}).Read(x[:])
		left := uint32((l.Expires - now) / time.Second)
		d.sendRenew(wire.CmdRenewLease, dhcp4.Forwarding{Addr: a, Node: owner, NodeAddr: ownerAddr},
			renewKey{xid: xidOf(x), chaddr: chaddr16(l.HW)}, d.orderOf(ownerAddr), max(left, 1))
		d.count("roam.handover")
	}
}
