package node

import (
	"bytes"
	"cmp"
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
func (n *Node) forward(now time.Duration, req dhcp4.Request, fwd dhcp4.Forwarding) {
	n.roam.init()
	m := req.Msg
	key := renewKey{xid: xidOf(m.TransactionID), chaddr: chaddr16(m.ClientHWAddr)}
	if fwd.Kind == dhcp4.ForwardRelease {
		n.sendRenew(wire.CmdRelease, fwd, key, n.orderOf(fwd.NodeAddr), 0)
		n.c.RoamReleaseForwarded++
		return
	}
	if p := n.roam.pending[key]; p != nil {
		p.req = req // a retransmission: answer the newest copy
		n.c.RoamDuplicate++
		return
	}
	if len(n.roam.pending) >= maxPending {
		n.c.RoamDropTableFull++
		return
	}
	p := &pendingRenew{req: req, fwd: fwd, order: n.orderOf(fwd.NodeAddr), tries: 1, sentAt: now, deadline: now + retryAfter}
	n.roam.pending[key] = p
	if p.routed = n.sendRenew(wire.CmdRenewLease, fwd, key, p.order, 0); p.routed {
		p.deadline = now + routedRetryAfter
	}
	n.c.RoamForwarded++
}

// orderOf is the owner's known byte order, network order when unknown.
func (n *Node) orderOf(owner netip.Addr) wire.AddrOrder {
	if o, ok := n.roam.orders[owner]; ok {
		return o
	}
	return wire.OrderNetwork
}

// sendRenew sends a renew-family message to the owner of fwd's block and
// reports whether it went along the overlay tree.
func (n *Node) sendRenew(cmd uint8, fwd dhcp4.Forwarding, key renewKey, order wire.AddrOrder, seconds uint32) (routed bool) {
	m := wire.Message{Header: n.header(cmd)}
	m.Renew.SetAddress(fwd.Addr, order)
	m.Renew.Xid = key.xid
	m.Renew.LeaseSeconds = seconds
	m.Renew.Chaddr = key.chaddr
	routed, err := n.sendToOwner(wire.NodeID(fwd.Node), fwd.NodeAddr, &m)
	if err != nil {
		n.c.RoamTxError++
		n.log.Debug("forward to owner", "owner", wire.NodeID(fwd.Node), "addr", fwd.NodeAddr, "err", err)
	}
	return routed
}

func (n *Node) header(cmd uint8) wire.Header {
	return wire.Header{Node: n.id, Swarm: n.eng.Config().Swarm, Command: cmd}
}

// roamTimers retries forwards once (in the other byte order when the
// owner's is unknown, in the same when routed), then gives up.
func (n *Node) roamTimers(now time.Duration) {
	var due []renewKey
	for key, p := range n.roam.pending {
		if p.deadline <= now {
			due = append(due, key)
		}
	}
	// In a fixed order, so a simulated run is the same every time.
	slices.SortFunc(due, func(a, b renewKey) int {
		return cmp.Or(cmp.Compare(a.xid, b.xid), bytes.Compare(a.chaddr[:], b.chaddr[:]))
	})
	for _, key := range due {
		p := n.roam.pending[key]
		if p.tries == 1 && p.routed {
			p.tries, p.deadline = 2, now+routedGiveUpAfter
			n.sendRenew(wire.CmdRenewLease, p.fwd, key, p.order, 0)
			n.c.RoamRetryRouted++
			continue
		}
		if p.tries == 1 {
			if _, known := n.roam.orders[p.fwd.NodeAddr]; !known {
				p.tries, p.order, p.deadline = 2, p.order.Other(), now+giveUpAfter
				n.sendRenew(wire.CmdRenewLease, p.fwd, key, p.order, 0)
				n.c.RoamRetryOtherOrder++
				continue
			}
		}
		delete(n.roam.pending, key)
		n.c.RoamDropNoAnswer++
		n.log.Info("owner did not answer a forwarded renewal", "owner", p.fwd.NodeAddr, "addr", p.fwd.Addr)
	}
}

// nextRoamTimer is the earliest pending deadline.
func (n *Node) nextRoamTimer() (time.Duration, bool) {
	var t time.Duration
	found := false
	for _, p := range n.roam.pending {
		if !found || p.deadline < t {
			t, found = p.deadline, true
		}
	}
	return t, found
}

// handleRenewFamily handles RENEWLEASE, LEASEACK, LEASENAK and RELEASE
// received on the unicast port or routed along the overlay tree (handleMesh
// checked swarm and writer).
func (n *Node) handleRenewFamily(now time.Duration, src sender, m *wire.Message) {
	a, order, ok := m.Renew.ResolveAddress(n.pool.Prefix(), n.roam.orders[src.addr])
	if !ok {
		n.c.RoamDropOutsidePool++
		return
	}
	switch m.Command {
	case wire.CmdRenewLease, wire.CmdRelease:
		n.ownerSide(now, src, m, a)
	case wire.CmdLeaseAck, wire.CmdLeaseNak:
		n.requesterSide(now, src, m, a, order)
	}
}

// ownerSide answers another node's forward for one of our blocks, in the
// byte order the sender used (the record is echoed with the command changed).
func (n *Node) ownerSide(now time.Duration, src sender, m *wire.Message, a netip.Addr) {
	if n.dhcp == nil {
		return
	}
	hw := net.HardwareAddr(slices.Clone(m.Renew.Chaddr[:6]))
	if m.Command == wire.CmdRelease {
		n.c.RoamRxRelease++
		if n.dhcp.OwnerRelease(now, a, hw) {
			n.ready.StateChanged = true
			n.hook("release", a.String(), hookMAC(hw))
			n.log.Info("roamed client released its lease", "addr", a, "hw", hw.String(), "via", src.String())
		}
		return
	}
	n.c.RoamRxRenewLease++
	want := time.Duration(m.Renew.LeaseSeconds) * time.Second
	verdict, granted, events := n.dhcp.OwnerRenew(now, a, hw, want)
	reply := *m
	reply.Node = n.id // C nodes echo the whole record; our id tells who answered
	switch verdict {
	case dhcp4.Silent:
		n.c.RoamOwnerSilent++
		return
	case dhcp4.Grant:
		reply.Command = wire.CmdLeaseAck
		reply.Renew.LeaseSeconds = uint32(granted / time.Second)
		n.c.RoamOwnerAck++
		n.ready.StateChanged = true
	case dhcp4.Refuse:
		reply.Command = wire.CmdLeaseNak
		reply.Renew.LeaseSeconds = 0
		n.c.RoamOwnerNak++
	}
	for _, ev := range events {
		n.log.Info("lease renewed for a roamed client", "addr", ev.Addr, "hw", ev.HW.String(), "via", src.String())
	}
	if err := n.renewReply(src, &reply); err != nil {
		n.c.RoamTxError++
	}
}

// requesterSide turns the owner's answer into the client's DHCPACK or NAK.
func (n *Node) requesterSide(now time.Duration, src sender, m *wire.Message, a netip.Addr, order wire.AddrOrder) {
	key := renewKey{xid: m.Renew.Xid, chaddr: m.Renew.Chaddr}
	p := n.roam.pending[key]
	if p == nil || p.fwd.Addr != a || !p.answeredBy(src, m.Node) {
		n.c.RoamDropUnexpectedAnswer++
		return
	}
	delete(n.roam.pending, key)
	if !src.routed() && p.fwd.NodeAddr.IsValid() {
		n.roam.orders[p.fwd.NodeAddr] = order
	}
	rtt := now - p.sentAt
	if len(n.roam.rtt) < rttSamples {
		n.roam.rtt = append(n.roam.rtt, rtt)
	} else {
		n.roam.rtt[n.roam.rttPos] = rtt
		n.roam.rttPos = (n.roam.rttPos + 1) % rttSamples
	}
	granted := m.Command == wire.CmdLeaseAck
	dec := n.dhcp.Roamed(p.req, a, granted, time.Duration(m.Renew.LeaseSeconds)*time.Second)
	if granted {
		n.c.RoamAck++
	} else {
		n.c.RoamNak++
	}
	n.reply(p.req, dec)
	for _, ev := range dec.Events {
		n.hook(string(ev.Kind), ev.Addr.String(), hookMAC(ev.HW))
		n.log.Info("roamed renewal acknowledged by the owner", "addr", ev.Addr, "hw", ev.HW.String(), "owner", src.String(), "rtt", rtt)
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

// RoamRTT returns the p50 and p99 of recent roamed round trips.
func (n *Node) RoamRTT() (p50, p99 time.Duration, samples int) {
	if len(n.roam.rtt) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(n.roam.rtt)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], len(s)
}

// handOver offers the live leases of a block we lost to its new owner, so it
// adopts them (with their remaining time) instead of handing those
// addresses to new clients. Conflicting ones are refused by the owner and
// the client is told at its next renewal, which is forwarded.
func (n *Node) handOver(now time.Duration, block uint32, owner wire.NodeID, ownerAddr netip.Addr) {
	if n.dhcp == nil || (!ownerAddr.IsValid() && n.ov == nil) {
		return
	}
	n.roam.init()
	for i := range n.pool.BlockSize() {
		a := n.pool.Addr(block, i)
		l := n.leases.At(a)
		if l == nil || !l.Holds() || l.Expired(now) || len(l.HW) == 0 {
			continue
		}
		left := uint32((l.Expires - now) / time.Second)
		n.sendRenew(wire.CmdRenewLease, dhcp4.Forwarding{Addr: a, Node: owner, NodeAddr: ownerAddr},
			renewKey{xid: n.rng.Uint32(), chaddr: chaddr16(l.HW)}, n.orderOf(ownerAddr), max(left, 1))
		n.c.RoamHandover++
	}
}
