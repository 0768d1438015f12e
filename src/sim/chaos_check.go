package sim

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/claim"
	"ddhcpd/src/lease"
	"ddhcpd/src/node"
	"ddhcpd/src/wire"
)

// Invariants of chaos runs. Let t_f be the last fault (the start of the
// quiet phase: merged, no loss or duplication, no stall, every node up; the
// clients go on roaming, sleeping and releasing), L the lease time and BT
// the block timeout.
//
// (A) From t_f + L + 2·BT on, no address is held by two clients that both
// believe they have an active lease (the client's own lease end has not
// passed). Checked at every bind and at the bound itself, so every moment
// is covered. Why the bound suffices: after t_f the mesh is connected and
// lossless, so two owners of one block (left by a partition, loss, or a
// restart that restored its blocks at once) hear each other's refresh
// within BT/RefreshFactor plus an announce gap and a crossing, and the
// lower id gives the block up and hands its leases over; by t_f + BT
// every block has one owner, every view agrees (what (C) asserts from
// 2·BT on), and from then on a block changes hands only through a
// release, which needs it unused. A grant after that comes from the one
// owner, which refuses an address it has a live record of. So a conflict
// that exists after t_f + BT pairs a lease the owner does not know of
// with a newer one, and the unknown lease was granted before t_f + BT:
// by a loser before the merge was noticed, or earlier and then forgotten
// (a handover lost to loss, a restart without state file, a wall clock
// that made the restore drop it). The owner refuses that client at its
// next renewal, and its lease ends by t_f + BT + L in any case. The
// second BT is slack for an ACK still on its way through a forward.
// Conflicts before the bound are counted, and how long after t_f the
// last one ended is reported: the settling time measured.
//
// (B) A client that renews in time keeps its address while its owner or
// an adopter is reachable. It loses the address by a NAK or by its lease
// ending while it renews. Such a loss is a violation when the client's
// service was reachable, defined as: mesh loss is zero; the client's router
// R is up and not stalled; and the block of the address either has exactly
// one owner O, not stalled, that is R or is in R's partition and known to
// R as the owner, or has no owner at all and R (not learning, below its
// block cap, the block free or being claimed in its view) can adopt it. A
// NAK must have been answered to a try made while reachable, with no
// unreachable sample since; an expiry must come after a window of
// max(L/4, 2 × (inquiry window + tick + 2 × max latency)) (at most L/2)
// reachable throughout, sampled every 500 ms, at every fault and at every
// try, with at least two tries in it early enough to be answered before
// the expiry (chaosAnswerTime: the client link and a forward both ways),
// the first (when the block has no owner) at least one inquiry window +
// tick + 2 × max latency before the expiry, time for an adopter. Losses to a genuine conflict are excused
// and counted apart:
// the deciding node's record of the address names another client (two
// nodes handed it out, in a partition, or after a restart that forgot or
// revived records; the other client may have let go meanwhile without its
// RELEASE arriving), or the client's tenure of the address overlapped
// another client's. So are losses while unreachable.
//
// (C) Once connected and quiet for two block timeouts (from t_f + 2·BT),
// every block has at most one owner and every node's view agrees (the
// simulator's Check, every BT/2 until the end), and no block becomes ours
// on a second node. (A view that showed a block its owner had released,
// because a refresh overtook the release, was excused here until the claim
// engine learnt to ignore such refreshes; it now fails like any other.)

// The runs found one weakness of dhcp4, since fixed; its violations are
// still labelled by chaosKnown (and fail) so a regression is recognised: a
// stale lease record of the same client for another address makes a router
// refuse the address the client actually holds, although nobody else holds
// it. The stale record is left behind by a RELEASE that never arrived (the
// router was stalled or down, or the client roamed and its RELEASE carried
// the other router's server id, or the forwarded RELEASE was lost), by a
// NAK the client got elsewhere for a conflicted address, or by a state file
// restored with a wall clock behind its save. It showed in two places:
//
//   - chaosKnownOwnerRenew: dhcp4.OwnerRenew refused a forwarded renewal or
//     a handover of address a when the owner held another assigned lease
//     for the client ("one lease per client"), while the client on the
//     owner's own link was granted a (lease.Table.Assign moves the client).
//     Recognised as an owner's LEASENAK while its record of a is not
//     another client's.
//   - chaosKnownInitReboot: Server.Handle NAKed an INIT-REBOOT for a when it
//     held another live lease for the client (Kea 25). Recognised as a NAK
//     of an INIT-REBOOT while the node's record of a is not another
//     client's.
const (
	chaosKnownOwnerRenew = "dhcp4.OwnerRenew refuses a roamed renewal when the owner holds a stale lease of the same client for another address"
	chaosKnownInitReboot = "dhcp4 NAKs an INIT-REBOOT (Kea 25) when the router holds a stale lease of the same client for another address"
)

// chaosKnown returns the known bug a NAK cause shows, if any.
func chaosKnown(cause string) (string, bool) {
	switch cause {
	case chaosNakOwnRecord:
		return chaosKnownOwnerRenew, true
	case chaosNakReboot:
		return chaosKnownInitReboot, true
	}
	return "", false
}

// NAK causes, as the checks find them at the node that decided, from its
// lease record of the address (watchRenew, noteLocal).
const (
	chaosNakConflict  = "conflict"      // another client holds the address and believes it
	chaosNakStale     = "stale_record"  // another client's record, which that client no longer believes
	chaosNakOwnRecord = "own_record"    // an owner refused without another client's record (OwnerRenew)
	chaosNakReboot    = "wrong_address" // an INIT-REBOOT refused without another client's record (Kea 25)
)

const chaosSample = 500 * time.Millisecond

// chaosConflict is an address believed held by two clients at once.
type chaosConflict struct {
	addr       netip.Addr
	a, b       *chaosClient
	start, end time.Duration
}

// conflictCause says why a record refuses the client with hardware hw.
func (c *chaosRun) conflictCause(l *lease.Lease, hw net.HardwareAddr) string {
	if l == nil || !l.Holds() || bytes.Equal(l.HW, hw) {
		return "other"
	}
	if len(l.HW) == 6 {
		if o := c.byHW[[6]byte(l.HW)]; o != nil && o.holding && o.addr == l.Addr && o.end > c.now() {
			return chaosNakConflict
		}
	}
	return chaosNakStale
}

// noteNak records why the client with hardware address hw was refused, for
// when the NAK reaches it.
func (c *chaosRun) noteNak(hw net.HardwareAddr, xid uint32, cause string) {
	if len(hw) != 6 {
		return
	}
	if cl := c.byHW[[6]byte(hw)]; cl != nil {
		cl.nakXid, cl.nakCause = xid, cause
	}
}

// bindLease records that client cl believes it holds a until end: (A).
func (c *chaosRun) bindLease(cl *chaosClient, a netip.Addr, end time.Duration) {
	if cl.holding && cl.addr != a {
		c.unbindLease(cl)
		cl.holding = false
	}
	if !slices.Contains(c.active[a], cl) {
		c.active[a] = append(c.active[a], cl)
	}
	now := c.now()
	for _, o := range c.active[a] {
		if o == cl || !o.holding || o.end <= now || c.conflictOpen(a, cl, o) {
			continue
		}
		o.conflicted, cl.conflicted = true, true
		k := &chaosConflict{addr: a, a: o, b: cl, start: now}
		c.open[a] = append(c.open[a], k)
		c.count("conflict.started")
		if c.tq >= 0 {
			c.count("conflict.started_after_last_fault")
			c.logf("conflict on %v: client %d (until %v, on n%d) and client %d (until %v, on n%d)", a, o.k, o.end, o.router, cl.k, end, cl.router)
		}
		c.tracef("CONFLICT %v: client %d (until %v) and client %d (until %v)", a, o.k, o.end, cl.k, end)
		if c.settled() {
			c.bad.addf("(A) at %v: %v held by clients %d (until %v, on n%d) and %d (until %v, on n%d); the mesh settled at %v",
				now, a, o.k, o.end, o.router, cl.k, end, cl.router, c.tq+c.sc.settleBound())
		}
	}
}

func (c *chaosRun) conflictOpen(a netip.Addr, x, y *chaosClient) bool {
	for _, k := range c.open[a] {
		if (k.a == x && k.b == y) || (k.a == y && k.b == x) {
			return true
		}
	}
	return false
}

// unbindLease records that cl no longer believes it holds its address.
func (c *chaosRun) unbindLease(cl *chaosClient) {
	a := cl.addr
	if i := slices.Index(c.active[a], cl); i >= 0 {
		c.active[a] = slices.Delete(c.active[a], i, i+1)
		if len(c.active[a]) == 0 {
			delete(c.active, a)
		}
	}
	ks := c.open[a]
	keep := ks[:0]
	for _, k := range ks {
		if k.a != cl && k.b != cl {
			keep = append(keep, k)
			continue
		}
		c.closeConflict(k)
	}
	if len(keep) == 0 {
		delete(c.open, a)
	} else {
		c.open[a] = keep
	}
}

func (c *chaosRun) closeConflict(k *chaosConflict) {
	k.end = c.now()
	c.lastConflictEnd = max(c.lastConflictEnd, k.end)
	c.counts["conflict.total_ms"] += int((k.end - k.start) / time.Millisecond)
}

// settled reports whether (A) applies now.
func (c *chaosRun) settled() bool { return c.tq >= 0 && c.now() >= c.tq+c.sc.settleBound() }

// checkSettled looks at every address at the bound: a conflict that began
// earlier must be over by now.
func (c *chaosRun) checkSettled() {
	now := c.now()
	for _, a := range c.openAddrs() {
		for _, k := range c.open[a] {
			if k.a.end > now && k.b.end > now {
				c.bad.addf("(A) at %v (the bound): %v still held by clients %d (until %v) and %d (until %v), since %v",
					now, a, k.a.k, k.a.end, k.b.k, k.b.end, k.start)
			}
		}
	}
}

// openAddrs lists the addresses with open conflicts, in order.
func (c *chaosRun) openAddrs() []netip.Addr {
	addrs := make([]netip.Addr, 0, len(c.open))
	for a := range c.open {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs
}

// checkOwnership is (C): the simulator's Check.
func (c *chaosRun) checkOwnership() {
	if err := c.net.Check(); err != nil {
		c.bad.addf("(C) %v", err)
	}
}

// checkEnd closes the run: conflicts still open end now, overlaps that
// began in the quiet mesh are reported, and the clients' states counted.
func (c *chaosRun) checkEnd() {
	for _, a := range c.openAddrs() {
		for _, k := range c.open[a] {
			c.closeConflict(k)
		}
	}
	ovs := c.net.Overlaps()
	c.counts["block.overlaps"] += len(ovs)
	for _, ov := range ovs {
		if ov.At >= c.tq+2*c.sc.bt {
			c.bad.addf("(C) at %v: block %d became ours on nodes %v at once, in a mesh quiet since %v", ov.At, ov.Block, ov.Nodes, c.tq)
		}
	}
	for _, cl := range c.clients {
		c.count("client.end_" + cl.st.String())
	}
	for i := range c.sc.nodes {
		if c.net.Up(i) {
			c.takeCounters(i)
		}
	}
	total := c.net.Total()
	c.counts["mesh.datagrams"] += int(total.Sent)
	c.counts["mesh.copies_lost"] += int(total.Lost)
	if total.TooBig > 0 || total.NoLink > 0 {
		c.bad.addf("at %v: %d datagrams over the MTU and %d unicasts to no node of the mesh were lost", c.now(), total.TooBig, total.NoLink)
	}
}

// chaosNeverDropped are the node counters of datagrams and packets that the
// nodes of a chaos run, all of one swarm on one link, never drop: each one
// is a datagram a node could not decode, from a foreign swarm or with its
// own id, an address outside the pool, a client packet it could not parse,
// or a forward it had nowhere to send.
var chaosNeverDropped = []string{
	"drop.not_link_local", "drop.short", "drop.unknown_command", "drop.bad_length", "drop.truncated",
	"drop.foreign_swarm", "drop.own_id", "drop.wrong_port", "drop.ext_malformed", "drop.ext_unknown_type",
	"drop.overlay_off", "roam.drop.outside_pool", "roam.tx_error", "dhcp.drop.malformed",
}

// takeCounters adds the counters of node i's life, which ends, to the run's
// counts, and reports the drops that must not happen.
func (c *chaosRun) takeCounters(i int) {
	nc := c.net.Node(i).Counters()
	m := nc.Map()
	for name, v := range m {
		c.counts[name] += int(v)
	}
	for _, name := range chaosNeverDropped {
		if v := m[name]; v > 0 {
			c.bad.addf("at %v: n%d counted %d %s", c.now(), i, v, name)
		}
	}
}

// chaosAsk is a client packet a node is being stepped with.
type chaosAsk struct {
	node int
	msg  *dhcpv4.DHCPv4
	held bool // the node had a live record of the address asked for
}

// reqAddr is the address a request is about, for traces and NAK causes.
func reqAddr(m *dhcpv4.DHCPv4) netip.Addr {
	if a, ok := netip.AddrFromSlice(m.ClientIPAddr.To4()); ok && !a.IsUnspecified() {
		return a
	}
	if a, ok := netip.AddrFromSlice(m.RequestedIPAddress().To4()); ok {
		return a
	}
	return netip.Addr{}
}

func xidOfMsg(m *dhcpv4.DHCPv4) uint32 { return binary.BigEndian.Uint32(m.TransactionID[:]) }

// noteLocal looks at a reply node i made to the client packet it is being
// stepped with (not at one it makes to another client meanwhile, such as a
// parked DISCOVER's OFFER): it counts an address adopted without a record
// of it (a RENEWING, REBINDING or INIT-REBOOT REQUEST acknowledged locally
// although the node held no live lease of the address), and tells the
// client why it was refused.
func (c *chaosRun) noteLocal(i int, m *dhcpv4.DHCPv4) {
	ask := c.asking
	if ask == nil || ask.node != i || m.TransactionID != ask.msg.TransactionID || !bytes.Equal(m.ClientHWAddr, ask.msg.ClientHWAddr) {
		return
	}
	req := ask.msg
	if req.MessageType() != dhcpv4.MessageTypeRequest || req.ServerIdentifier() != nil {
		return
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeAck:
		if !ask.held {
			c.count("dhcp.ack_adopted")
		}
	case dhcpv4.MessageTypeNak:
		a := reqAddr(req)
		cause := c.conflictCause(c.net.Node(i).Leases().At(a), req.ClientHWAddr)
		if cause == "other" && req.ClientIPAddr.IsUnspecified() {
			// An INIT-REBOOT refused without another client's record.
			cause = chaosNakReboot
		}
		c.noteNak(req.ClientHWAddr, xidOfMsg(req), cause)
	}
}

// chaosRenewKey names a forwarded renewal or a handover: xid and chaddr.
type chaosRenewKey struct {
	xid    uint32
	chaddr [16]byte
}

// watchRenew looks at a renew-family datagram node i sends: a handover (a
// RENEWLEASE with the lease's remaining time) is remembered, so that its
// answer is counted apart; an owner's LEASENAK to a client's forwarded
// renewal tells the client why it was refused.
func (c *chaosRun) watchRenew(i int, d node.Datagram) {
	if d.To.Port() != node.PortRenew {
		return
	}
	m, err := wire.Decode(d.Data)
	if err != nil {
		return // the receiver counts it (chaosNeverDropped)
	}
	key := chaosRenewKey{xid: m.Renew.Xid, chaddr: m.Renew.Chaddr}
	hw := net.HardwareAddr(slices.Clone(m.Renew.Chaddr[:6]))
	a, _, _ := m.Renew.ResolveAddress(c.net.Pool().Prefix(), wire.OrderNetwork)
	switch m.Command {
	case wire.CmdRenewLease:
		if m.Renew.LeaseSeconds > 0 {
			c.handovers[key] = true
			c.tracef("n%d hands %v of %v over to %v", i, a, hw, d.To.Addr())
		} else {
			c.tracef("n%d forwards %v of %v to %v", i, a, hw, d.To.Addr())
		}
	case wire.CmdLeaseAck, wire.CmdLeaseNak:
		ack := m.Command == wire.CmdLeaseAck
		cause := ""
		if !ack {
			cause = chaosNakOwnRecord
			if l := c.net.Node(i).Leases().At(a); l != nil && l.Holds() && !bytes.Equal(l.HW, hw) {
				cause = c.conflictCause(l, hw)
			}
		}
		c.tracef("n%d answers %v of %v to %v: ack %v %s", i, a, hw, d.To.Addr(), ack, cause)
		switch {
		case c.handovers[key]:
			delete(c.handovers, key)
			if ack {
				c.count("handover.acked")
			} else {
				c.count("handover.naked")
				c.count("handover.refused_" + cause)
			}
		case !ack:
			c.noteNak(hw, key.xid, cause)
		}
	}
}

// monitor samples (B)'s reachability of every client holding a lease.
func (c *chaosRun) monitor() {
	c.net.At(c.now()+chaosSample, func() {
		c.sample()
		c.monitor()
	})
}

func (c *chaosRun) sample() {
	now := c.now()
	for _, cl := range c.clients {
		if cl.holding && !c.reachable(cl) {
			cl.lastBad = now
		}
	}
}

// reachable is (B)'s condition for client cl now; see the comment at the
// top of this file.
func (c *chaosRun) reachable(cl *chaosClient) bool {
	if c.loss > 0 {
		return false
	}
	i := cl.router
	if !c.net.Up(i) || c.stalled[i] {
		return false
	}
	b, ok := c.net.Pool().Block(cl.addr)
	if !ok {
		return false
	}
	e := c.net.Engine(i)
	switch hs := c.holders[b]; len(hs) {
	case 0:
		if e.Learning() {
			return false
		}
		if s := e.Block(b).State; s != claim.Free && s != claim.Claiming {
			return false
		}
		if most := e.Config().MaxBlocks; most > 0 {
			n := 0
			for _, bi := range e.Blocks() {
				if bi.State == claim.Ours || bi.State == claim.Claiming {
					n++
				}
			}
			return n < most
		}
		return true
	case 1:
		o := hs[0]
		if c.stalled[o] {
			return false
		}
		if o == i {
			return true
		}
		bi := e.Block(b)
		return c.net.Group(o) == c.net.Group(i) && bi.State == claim.Claimed && bi.Owner == c.net.ID(o)
	}
	return false
}

// protectWindow is how long before an expiry the service must have been
// reachable for the loss to count against (B).
func (c *chaosRun) protectWindow() time.Duration {
	return min(c.sc.lease/2, max(c.sc.lease/4, 2*c.adoptTime()))
}

// chaosAnswerTime is how long the answer to a client's try may take at
// most: the client link both ways, and a forward to the block's owner and
// back over the mesh.
const chaosAnswerTime = 2*chaosLinkMax + 2*chaosLatencyMax

// adoptTime is how long a router needs at most to take over an orphaned
// block for a client that asks for an address in it: the inquiry rounds, a
// tick, and the way there and back.
func (c *chaosRun) adoptTime() time.Duration {
	cc := c.sc.claim.WithDefaults()
	return time.Duration(cc.Inquiries)*cc.InquireInterval + cc.TickInterval + 2*c.sc.latHi
}

// judgeLoss classifies a lost address and reports it under (B) if the
// client's service was reachable.
func (c *chaosRun) judgeLoss(cl *chaosClient, how, cause string) {
	now := c.now()
	c.count("client.lost_" + how)
	protected := false
	switch how {
	case "nak":
		c.count("client.nak_" + cause)
		if cause == chaosNakConflict || cause == chaosNakStale || cl.conflicted {
			// A genuine conflict: two nodes handed the address out
			// (a partition, or a restart that forgot or revived
			// records), and the merge may refuse either client (or
			// one after the other, both), also when the other one
			// has let go meanwhile without its RELEASE arriving.
			c.count("client.lost_to_conflict")
			return
		}
		protected = cl.lastBad < cl.sentAt && c.reachable(cl)
	case "expired":
		// Two tries in the window, each early enough to be answered
		// before the end (a try that cannot be is no chance to keep the
		// address; the one before it may have been answered to a router
		// the client has left meanwhile); when the block has no owner,
		// the first early enough for an adopter: a client that first
		// asks seconds before its lease ends (it slept through T1 and
		// T2) then asks too late.
		w := c.protectWindow()
		tries, early := 0, false
		for _, t := range cl.attempts {
			if t >= now-w && t <= now-chaosAnswerTime {
				tries++
				early = early || t <= now-c.adoptTime()
			}
		}
		if b, ok := c.net.Pool().Block(cl.addr); ok && len(c.holders[b]) > 0 {
			early = true
		}
		protected = cl.lastBad < now-w && tries >= 2 && early && c.reachable(cl)
	}
	if !protected {
		c.count("client.lost_unreachable")
		return
	}
	b, _ := c.net.Pool().Block(cl.addr)
	report := &c.bad
	why := cause
	if bug, ok := chaosKnown(cause); ok {
		report = &c.known
		why += ", known bug: " + bug
		c.count("client.lost_known_bug")
	}
	report.addf("(B) at %v: client %d lost %v by %s (%s) on n%d while reachable; block %d owned by %v, n%d sees it %s",
		now, cl.k, cl.addr, how, why, cl.router, b, c.holders[b], cl.router, c.net.view(c.net.Engine(cl.router).Block(b)))
}
