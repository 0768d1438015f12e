package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/claim"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/lease"
	"ddhcpd/src/statedir"
	"ddhcpd/src/wire"
)

// The daemon's bounds (src/daemon), kept here as the simulation uses them.
const (
	chaosMaxPending  = 256                    // forwarded renewals waiting for their owner
	chaosWaitKnown   = 200 * time.Millisecond // for an owner that answered before
	chaosWaitUnknown = time.Second            // the daemon's first try plus its retry in the other byte order
	chaosMaxParked   = 64                     // DISCOVERs waiting for a block
	chaosParkedAge   = 4 * time.Second
	chaosReclaim     = 100 // lease records reclaimed per pass
)

// chaosRouter is what the daemon puts around one node's claim engine: the
// lease table, the DHCP server, forwarding, the owner's side of RENEWLEASE,
// handover, parking and the state file. It re-implements the daemon's glue
// (src/daemon: dhcp.go, roam.go, state.go, the events in daemon.go's flush)
// on the simulated mesh, one call for one daemon step; the retry of a
// forward in the other byte order is left out, every node being ours.
type chaosRouter struct {
	c *chaosRun
	i int
	// life changes at every start and stop; scheduled work of another
	// life does nothing.
	life int

	table    *lease.Table
	srv      *dhcp4.Server
	rng      *rand.Rand // xids of handovers
	pending  map[chaosRenewKey]*chaosForward
	answered map[int]bool // owners that answered before: the daemon knows their byte order
	handed   map[chaosRenewKey]bool
	parked   map[lease.ClientKey]chaosParked
	demand   bool
	hkAt     time.Duration // housekeeping scheduled; -1 for none

	// State files: the last periodic save (tmpfs), the persistent copy
	// and what a clean stop wrote. They outlive the node's lives. As the
	// daemon, the router writes only when something changed.
	tmpfs, persist, final *chaosSaved
	dirty, persistDirty   bool
}

// chaosSaved is a state file as written: it is encoded as the daemon's
// (JSON of statedir.State) only when a restart reads it, which keeps
// saving every second cheap.
type chaosSaved struct {
	savedAt time.Time // the node's wall clock
	now     time.Duration
	blocks  []uint32
	lost    []uint32
	leases  []lease.Lease
}

type chaosRenewKey struct {
	xid    uint32
	chaddr [16]byte
}

type chaosForward struct {
	req   dhcp4.Request
	addr  netip.Addr
	owner int
}

type chaosParked struct {
	req dhcp4.Request
	at  time.Duration
}

// reset makes the router of a node that starts: nothing survives but the
// state files.
func (r *chaosRouter) reset() {
	c := r.c
	r.life++
	r.table = lease.NewTable(c.net.Pool())
	srv, err := dhcp4.New(dhcp4.Config{
		ServerID:  c.serverID(r.i),
		LeaseTime: c.sc.lease,
		Reserve:   max(2, c.sc.spare[r.i]/4),
	}, r.table, chaosBlocks{r})
	if err != nil {
		panic(err) // the scenario's configuration is valid by construction
	}
	r.srv = srv
	r.rng = newRand(derive(c.sc.seed, streamChaosRouter, uint64(r.i), uint64(r.life)))
	r.pending = make(map[chaosRenewKey]*chaosForward)
	r.answered = make(map[int]bool)
	r.handed = make(map[chaosRenewKey]bool)
	r.parked = make(map[lease.ClientKey]chaosParked)
	r.demand = false
	r.hkAt = -1
}

// down forgets everything of the life that ended.
func (r *chaosRouter) down() {
	r.life++
	r.srv, r.pending, r.parked, r.handed = nil, nil, nil, nil
	r.hkAt = -1
}

// serverID is the DHCP server identifier of node i: one address for all
// (Gluon's next-node address, so a roaming client's unicast reaches
// whichever router it is on) or one per router. Both lie outside the pool.
func (c *chaosRun) serverID(i int) netip.Addr {
	if c.sc.sharedSID {
		return netip.AddrFrom4([4]byte{172, 31, 255, 254})
	}
	return netip.AddrFrom4([4]byte{172, 31, byte(i >> 8), byte(i + 1)})
}

// live reports whether the router runs and is not stalled.
func (r *chaosRouter) live() bool { return r.c.net.Up(r.i) && !r.c.stalled[r.i] }

// chaosBlocks is the daemon's blockView: dhcp4 sees block ownership
// through the node's engine.
type chaosBlocks struct{ r *chaosRouter }

func (v chaosBlocks) Locate(idx uint32) dhcp4.Location {
	e := v.r.c.net.Engine(v.r.i)
	if e == nil {
		return dhcp4.Location{Kind: dhcp4.Unowned}
	}
	bi := e.Block(idx)
	switch bi.State {
	case claim.Ours:
		return dhcp4.Location{Kind: dhcp4.Ours}
	case claim.Claimed:
		return dhcp4.Location{Kind: dhcp4.Peer, Node: bi.Owner, NodeAddr: bi.OwnerAddr}
	}
	return dhcp4.Location{Kind: dhcp4.Unowned}
}

func (v chaosBlocks) Demand() { v.r.demand = true }

func (v chaosBlocks) Want(idx uint32) {
	c := v.r.c
	c.net.Act(v.r.i, func(e *claim.Engine, now time.Duration) {
		if e.Want(now, idx) {
			c.count("dhcp.want_claiming")
		} else {
			c.count("dhcp.want_refused")
		}
	})
}

// fromClient handles a DHCP packet a client sent on this router's link.
func (r *chaosRouter) fromClient(data []byte, bcast bool, src netip.Addr, hw net.HardwareAddr) {
	c := r.c
	if !r.live() {
		c.count("dhcp.unheard_router_down")
		return
	}
	m, err := dhcpv4.FromBytes(data)
	if err != nil {
		c.bad.addf("at %v: n%d cannot parse a client's packet: %v", c.now(), r.i, err)
		return
	}
	r.decide(dhcp4.Request{Msg: m, Iface: "client0", SrcIP: src, SrcMAC: hw, Broadcast: bcast}, true)
}

// decide is the daemon's decide: a DHCP decision carried out. park says
// whether a DISCOVER that got nothing may wait for a block.
func (r *chaosRouter) decide(req dhcp4.Request, park bool) {
	c := r.c
	now := c.now()
	d := r.srv.Handle(now, req)
	c.count("dhcp." + d.Reason)
	if len(d.Events) > 0 {
		r.markDirty()
	}
	c.tracef("n%d dhcp %v %v from %v: %s", r.i, req.Msg.MessageType(), reqAddr(req.Msg), req.Msg.ClientHWAddr, d.Reason)
	switch d.Action {
	case dhcp4.Drop:
		if d.Reason == dhcp4.DropNothing && park {
			r.park(now, req)
		}
	case dhcp4.Reply:
		if d.Reply.MessageType() == dhcpv4.MessageTypeNak {
			r.noteLocalNak(req, d.Reason)
		}
		r.reply(req, d)
	case dhcp4.Forward:
		r.forward(now, req, d.Forward)
	}
	if r.demand {
		// A client got nothing: claim at once (the daemon's housekeeping).
		r.demand = false
		c.net.Act(r.i, func(e *claim.Engine, now time.Duration) {
			e.Demand(now, 1)
			e.Tick(now, r.table)
		})
	}
	r.poke(now)
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

// noteLocalNak tells the client why this router refused its request.
func (r *chaosRouter) noteLocalNak(req dhcp4.Request, reason string) {
	a := reqAddr(req.Msg)
	cause := reason
	switch reason {
	case "nak_address_taken":
		cause = r.c.conflictCause(r.table.At(a), req.Msg.ClientHWAddr)
	case "nak_wrong_address":
		cause = chaosNakReboot
	}
	r.c.noteNak(req.Msg.ClientHWAddr, xidOfMsg(req.Msg), cause)
}

// reply sends a decision's DHCP answer down the client link.
func (r *chaosRouter) reply(req dhcp4.Request, d dhcp4.Decision) {
	c := r.c
	cl := c.byHW[[6]byte(req.Msg.ClientHWAddr)]
	if cl == nil {
		c.bad.addf("at %v: n%d answers an unknown client %v", c.now(), r.i, req.Msg.ClientHWAddr)
		return
	}
	cl.fromRouter(r.i, dhcp4.Encode(d.Reply))
}

func (r *chaosRouter) park(now time.Duration, req dhcp4.Request) {
	key := lease.KeyOf(req.Msg.Options.Get(dhcpv4.OptionClientIdentifier), req.Msg.ClientHWAddr)
	if _, ok := r.parked[key]; !ok && len(r.parked) >= chaosMaxParked {
		r.c.count("dhcp.park_full")
		return
	}
	r.parked[key] = chaosParked{req: req, at: now}
	r.c.count("dhcp.parked")
}

// replayParked answers the parked DISCOVERs once a block became ours.
func (r *chaosRouter) replayParked(life int) {
	if r.life != life || !r.live() || len(r.parked) == 0 {
		return
	}
	waiting := r.parked
	r.parked = make(map[lease.ClientKey]chaosParked)
	keys := make([]lease.ClientKey, 0, len(waiting))
	for k := range waiting {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r.c.count("dhcp.parked_answered")
		r.decide(waiting[k].req, false)
	}
}

func xidOfMsg(m *dhcpv4.DHCPv4) uint32 { return binary.BigEndian.Uint32(m.TransactionID[:]) }

func chaddr16(hw net.HardwareAddr) (c [16]byte) {
	copy(c[:], hw)
	return c
}

func (r *chaosRouter) header(cmd uint8) wire.Header {
	cfg := r.c.net.Engine(r.i).Config()
	return wire.Header{Node: cfg.Node, Swarm: cfg.Swarm, Command: cmd}
}

// send puts a renew-family message on the mesh to node j.
func (r *chaosRouter) send(j int, m *wire.Message) {
	c := r.c
	data, err := m.Encode()
	if err != nil {
		c.bad.addf("at %v: n%d cannot encode command %d: %v", c.now(), r.i, m.Command, err)
		return
	}
	from := r.i
	c.mesh(from, j, data, func(data []byte) { c.routers[j].onMesh(from, data) })
}

// forward sends a client's request for another node's block to its owner
// and parks it until the owner answers or the wait runs out.
func (r *chaosRouter) forward(now time.Duration, req dhcp4.Request, fwd dhcp4.Forwarding) {
	c := r.c
	owner, ok := c.node(fwd.NodeAddr)
	if !ok {
		c.bad.addf("at %v: n%d forwards to %v, no node of the mesh", now, r.i, fwd.NodeAddr)
		return
	}
	key := chaosRenewKey{xid: xidOfMsg(req.Msg), chaddr: chaddr16(req.Msg.ClientHWAddr)}
	m := wire.Message{Header: r.header(wire.CmdRenewLease)}
	m.Renew.SetAddress(fwd.Addr, wire.OrderNetwork)
	m.Renew.Xid, m.Renew.Chaddr = key.xid, key.chaddr
	if fwd.Kind == dhcp4.ForwardRelease {
		m.Command = wire.CmdRelease
		c.count("fwd.release")
		r.send(owner, &m)
		return
	}
	if p := r.pending[key]; p != nil {
		p.req = req // a retransmission: answer the newest copy
		c.count("fwd.duplicate")
		return
	}
	if len(r.pending) >= chaosMaxPending {
		c.count("fwd.table_full")
		return
	}
	wait := chaosWaitUnknown
	if r.answered[owner] {
		wait = chaosWaitKnown
	}
	p := &chaosForward{req: req, addr: fwd.Addr, owner: owner}
	r.pending[key] = p
	c.count("fwd.renew")
	c.tracef("n%d forwards %v of %v to n%d", r.i, fwd.Addr, req.Msg.ClientHWAddr, owner)
	r.send(owner, &m)
	life := r.life
	c.net.At(now+wait, func() {
		if r.life == life && r.pending[key] == p {
			delete(r.pending, key)
			c.count("fwd.no_answer")
		}
	})
}

// onMesh handles a renew-family datagram from node `from`.
func (r *chaosRouter) onMesh(from int, data []byte) {
	c := r.c
	m, err := wire.Decode(data)
	if err != nil {
		c.bad.addf("at %v: n%d cannot decode a datagram of n%d: %v", c.now(), r.i, from, err)
		return
	}
	cfg := c.net.Engine(r.i).Config()
	if !cfg.Swarm.Matches(m.Header) || m.Node == cfg.Node {
		c.bad.addf("at %v: n%d got a foreign or own datagram from n%d", c.now(), r.i, from)
		return
	}
	a, _, ok := m.Renew.ResolveAddress(c.net.Pool().Prefix(), wire.OrderNetwork)
	if !ok {
		c.bad.addf("at %v: n%d got an address outside the pool from n%d", c.now(), r.i, from)
		return
	}
	switch m.Command {
	case wire.CmdRenewLease, wire.CmdRelease:
		r.ownerSide(from, &m, a)
	case wire.CmdLeaseAck, wire.CmdLeaseNak:
		r.requesterSide(from, &m, a)
	}
}

// ownerSide answers a forwarded renewal or a handover (LeaseSeconds > 0)
// for one of our blocks, or a forwarded release.
func (r *chaosRouter) ownerSide(from int, m *wire.Message, a netip.Addr) {
	c := r.c
	now := c.now()
	hw := net.HardwareAddr(slices.Clone(m.Renew.Chaddr[:6]))
	defer r.poke(now)
	if m.Command == wire.CmdRelease {
		if r.srv.OwnerRelease(now, a, hw) {
			r.markDirty()
			c.count("owner.released")
		} else {
			c.count("owner.release_unknown")
		}
		return
	}
	handover := m.Renew.LeaseSeconds > 0
	l := r.table.At(a)
	had := l != nil && l.Holds()
	cause := chaosNakOwnRecord
	if had && !bytes.Equal(l.HW, hw) {
		cause = c.conflictCause(l, hw)
	}
	verdict, granted, _ := r.srv.OwnerRenew(now, a, hw, time.Duration(m.Renew.LeaseSeconds)*time.Second)
	reply := *m
	reply.Node = c.net.ID(r.i)
	switch verdict {
	case dhcp4.Silent:
		c.count("owner.silent")
		c.tracef("n%d silent on %v of %v from n%d", r.i, a, hw, from)
		return
	case dhcp4.Grant:
		reply.Command = wire.CmdLeaseAck
		reply.Renew.LeaseSeconds = uint32(granted / time.Second)
		r.markDirty()
		c.count("owner.ack")
		switch {
		case !had && handover:
			c.count("adopt.handover")
		case !had:
			c.count("adopt.forwarded")
		}
	case dhcp4.Refuse:
		reply.Command = wire.CmdLeaseNak
		reply.Renew.LeaseSeconds = 0
		c.count("owner.nak")
		if handover {
			c.count("handover.refused_" + cause)
		} else {
			c.noteNak(hw, m.Renew.Xid, cause)
		}
	}
	c.tracef("n%d answers %v of %v from n%d: %v", r.i, a, hw, from, verdict)
	r.send(from, &reply)
}

// requesterSide turns the owner's answer into the client's ACK or NAK.
func (r *chaosRouter) requesterSide(from int, m *wire.Message, a netip.Addr) {
	c := r.c
	key := chaosRenewKey{xid: m.Renew.Xid, chaddr: m.Renew.Chaddr}
	ack := m.Command == wire.CmdLeaseAck
	if r.handed[key] {
		delete(r.handed, key)
		if ack {
			c.count("handover.acked")
		} else {
			c.count("handover.naked")
		}
		return
	}
	p := r.pending[key]
	if p == nil || p.addr != a || p.owner != from {
		c.count("fwd.unexpected_answer")
		return
	}
	delete(r.pending, key)
	r.answered[from] = true
	d := r.srv.Roamed(p.req, a, ack, time.Duration(m.Renew.LeaseSeconds)*time.Second)
	if ack {
		c.count("fwd.ack")
	} else {
		c.count("fwd.nak")
	}
	r.reply(p.req, d)
}

// handOver offers the live leases of a block we lost to its new owner, as
// the daemon's handOver does.
func (r *chaosRouter) handOver(now time.Duration, block uint32, owner netip.Addr) {
	c := r.c
	to, ok := c.node(owner)
	if !ok {
		return
	}
	p := c.net.Pool()
	for k := range p.BlockSize() {
		a := p.Addr(block, k)
		l := r.table.At(a)
		if l == nil || !l.Holds() || l.Expired(now) || len(l.HW) == 0 {
			continue
		}
		key := chaosRenewKey{xid: r.rng.Uint32(), chaddr: chaddr16(l.HW)}
		r.handed[key] = true
		m := wire.Message{Header: r.header(wire.CmdRenewLease)}
		m.Renew.SetAddress(a, wire.OrderNetwork)
		m.Renew.Xid, m.Renew.Chaddr = key.xid, key.chaddr
		m.Renew.LeaseSeconds = max(uint32((l.Expires-now)/time.Second), 1)
		c.count("handover.sent")
		r.send(to, &m)
	}
}

// poke makes sure housekeeping runs when the next lease record expires,
// and at least every second (parked DISCOVERs age).
func (r *chaosRouter) poke(now time.Duration) {
	if r.srv == nil {
		return
	}
	next := now + time.Second
	if at, ok := r.table.NextExpiry(); ok {
		next = min(next, max(at, now))
	}
	if r.hkAt >= 0 && r.hkAt <= next {
		return
	}
	r.hkAt = next
	life := r.life
	r.c.net.At(next, func() {
		if r.life == life && r.hkAt == next {
			r.hkAt = -1
			r.housekeeping()
		}
	})
}

// housekeeping reclaims expired lease records in bounded batches and
// forgets parked DISCOVERs that waited too long. A stalled router does
// nothing; it is poked when it resumes.
func (r *chaosRouter) housekeeping() {
	if !r.live() {
		return
	}
	c := r.c
	now := c.now()
	if at, ok := r.table.NextExpiry(); ok && at <= now {
		for range r.table.Reclaim(now, chaosReclaim) {
			r.markDirty()
			c.count("lease.reclaimed")
		}
	}
	for k, p := range r.parked {
		if now-p.at > chaosParkedAge {
			delete(r.parked, k)
		}
	}
	r.poke(now)
}

// saveLoop writes the state file every saveEvery and the persistent copy
// every persistEvery, if something changed, while the life lasts.
func (r *chaosRouter) saveLoop(life int) {
	c := r.c
	c.net.At(c.now()+c.sc.saveEvery, func() {
		if r.life != life {
			return
		}
		if r.dirty && !c.stalled[r.i] {
			r.tmpfs, r.dirty = r.snapshot(), false
		}
		r.saveLoop(life)
	})
}

func (r *chaosRouter) persistLoop(life int) {
	c := r.c
	c.net.At(c.now()+c.sc.persistEvery, func() {
		if r.life != life {
			return
		}
		if r.persistDirty && !c.stalled[r.i] {
			r.persist, r.persistDirty = r.snapshot(), false
		}
		r.persistLoop(life)
	})
}

// snapshot is the state file the daemon would write now.
func (r *chaosRouter) snapshot() *chaosSaved {
	c := r.c
	if !c.net.Up(r.i) {
		return nil
	}
	s := &chaosSaved{savedAt: c.wall(r.i), now: c.now(), blocks: c.net.Engine(r.i).Owned(), leases: r.table.Leases()}
	idx, lost := r.table.Blocks()
	for k, b := range idx {
		if lost[k] {
			s.lost = append(s.lost, b)
		}
	}
	return s
}

// encode is the state file's content on disk.
func (c *chaosRun) encode(s *chaosSaved, i int) []byte {
	st := statedir.State{
		Version: statedir.StateVersion,
		SavedAt: s.savedAt,
		Node:    c.net.ID(i).String(),
		Pool:    c.sc.prefix.String(),
		SizeExp: c.sc.exp,
		Blocks:  s.blocks,
		Lost:    s.lost,
		Leases:  statedir.Records(s.now, s.leases),
	}
	b, err := json.Marshal(st)
	if err != nil {
		c.bad.addf("at %v: n%d cannot encode its state: %v", c.now(), i, err)
		return nil
	}
	return b
}

func (r *chaosRouter) markDirty() { r.dirty, r.persistDirty = true, true }

// restore is the daemon's restore: leases back into the table; blocks saved
// less than a block timeout ago (by the wall clock, never counted
// backwards) ours at once, older ones claimed back after learning.
func (c *chaosRun) restore(r *chaosRouter, e *claim.Engine, now time.Duration, data []byte) {
	var st statedir.State
	if err := json.Unmarshal(data, &st); err != nil {
		c.bad.addf("at %v: n%d cannot read its state: %v", now, r.i, err)
		return
	}
	elapsed := max(c.wall(r.i).Sub(st.SavedAt), 0)
	ls, bad := statedir.Leases(now, elapsed, st.Leases)
	restored := 0
	for _, l := range ls {
		if r.table.Insert(l) {
			restored++
		} else {
			bad++
		}
	}
	var now1, later []uint32
	for _, b := range st.Blocks {
		if elapsed < c.sc.bt && e.Restore(now, b) {
			r.table.AddBlock(b)
			now1 = append(now1, b)
			continue
		}
		e.Prefer(b)
		later = append(later, b)
	}
	c.counts["state.leases_restored"] += restored
	c.counts["state.leases_skipped"] += bad
	c.counts["state.blocks_restored"] += len(now1)
	c.counts["state.blocks_preferred"] += len(later)
	c.logf("n%d restores a state %v old (wall clock): %d leases, blocks %v at once, %v later", r.i, elapsed.Round(time.Second), restored, now1, later)
}

// sync is fast join's SYNC (port 1236): the node asks everybody to
// re-announce its claims; the daemon sends it twice, a second apart.
func (c *chaosRun) sync(i, life int) {
	r := c.routers[i]
	if r.life != life || !r.live() {
		return
	}
	cfg := c.net.Engine(i).Config()
	x := wire.Ext{Type: wire.ExtSync, Node: cfg.Node, Swarm: cfg.Swarm}
	data, err := x.Encode()
	if err != nil {
		c.bad.addf("at %v: n%d cannot encode SYNC: %v", c.now(), i, err)
		return
	}
	c.net.Act(i, func(e *claim.Engine, now time.Duration) { e.SyncSent(now) })
	c.count("mesh.sync")
	for j := range c.sc.nodes {
		if j != i {
			c.mesh(i, j, data, func(data []byte) { c.onSync(j, data) })
		}
	}
}

func (c *chaosRun) onSync(j int, data []byte) {
	x, err := wire.DecodeExt(data)
	if err != nil {
		c.bad.addf("at %v: n%d cannot decode a SYNC: %v", c.now(), j, err)
		return
	}
	cfg := c.net.Engine(j).Config()
	if !cfg.Swarm.Matches(wire.Header{Swarm: x.Swarm}) || x.Node == cfg.Node {
		return
	}
	c.net.Act(j, func(e *claim.Engine, now time.Duration) { e.SyncRequested(now) })
}
