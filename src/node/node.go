// Package node is the whole protocol of one ddhcpd router, without I/O: the
// claim engine, the lease table, the DHCP server, the overlay, roaming and
// handover, parked DISCOVERs, fast join, flooding, relaying and routing.
//
// A driver feeds it what happened (Step: a mesh datagram, a client packet, a
// link change, a control command; Tick at Next) and carries out what it
// decided (Ready: datagrams to send, DHCP replies with their destinations,
// hook events, "state changed"). Time and randomness come in as arguments,
// so the daemon (real sockets) and the simulator (virtual links) drive the
// very same code. Like etcd's RawNode, it is not safe for concurrent use: one
// goroutine drives it.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/lease"
	"ddhcpd/src/nolog"
	"ddhcpd/src/overlay"
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// The mesh ports (SPEC §2): multicast claims, link-local unicast renewals,
// and our extensions.
const (
	PortClaim = 1234 // INQUIRE, UPDATECLAIM
	PortRenew = 1235 // RENEWLEASE, LEASEACK, LEASENAK, RELEASE
	PortExt   = 1236 // SYNC, overlay, ROUTE
)

// reclaimBatch bounds lease reclamation per pass (Kea 39).
const reclaimBatch = 100

// Config is one router's protocol configuration.
type Config struct {
	Node wire.NodeID
	Pool *pool.Pool
	// Claim configures the engine; New fills in Node and Swarm.
	Claim claim.Config
	// DHCP configures the DHCP service; nil runs none (-S): the node only
	// claims, and answers no forwarded renewal.
	DHCP *dhcp4.Config
	// Hosts are the host reservations.
	Hosts []Host
	// Overlay configures the spanning-tree overlay; nil runs none. New
	// fills in Node and Swarm.
	Overlay *overlay.Config
	// Usage, when set, is what the claim engine sees of the addresses in
	// use instead of the lease table: for simulations of claiming alone.
	Usage claim.Usage
	// Hooks says the driver runs a hook: Ready carries its arguments.
	// Without one they are not even formatted (every new client has an
	// event).
	Hooks bool
	// Logger receives what an operator wants to read; nil discards.
	Logger *slog.Logger
	// Saved is what a state file kept from an earlier run; nil for none.
	Saved *Saved
}

// Saved is the state of an earlier run, as the driver read it.
type Saved struct {
	From    string        // where it was read, for the log
	Age     time.Duration // how long ago it was saved
	Leases  []lease.Lease // with times on the new run's clock
	Refused int           // records the driver could not read
	Blocks  []uint32      // the blocks that were ours
}

// Host is a host reservation.
type Host struct {
	Client lease.ClientKey
	Addr   netip.Addr
}

// Node is one router's protocol state.
type Node struct {
	cfg   Config
	log   *slog.Logger
	id    wire.NodeID
	swarm wire.Swarm
	pool  *pool.Pool
	rng   *rand.Rand

	eng    *claim.Engine
	leases *lease.Table
	dhcp   *dhcp4.Server // nil without DHCP
	ov     *overlay.Node // nil without the overlay
	flood  *overlay.Flooder

	parked parkedDiscovers
	demand bool // a client got nothing: claim at once
	roam   roaming

	linksUp  map[string]bool // open mesh interfaces
	syncs    int             // SYNCs sent while learning
	nextSync time.Duration   // when to send the next one

	c     Counters
	ready Ready
}

// New makes a node at time now. rng seeds every random choice it makes.
func New(cfg Config, rng *rand.Rand, now time.Duration) (*Node, error) {
	if cfg.Pool == nil {
		return nil, errors.New("node: no pool")
	}
	n := &Node{
		cfg:  cfg,
		log:  cfg.Logger,
		id:   cfg.Node,
		pool: cfg.Pool,
		rng:  rng,
		swarm: wire.Swarm{
			Prefix:    cfg.Pool.Prefix().Addr(),
			PrefixLen: uint8(cfg.Pool.Prefix().Bits()),
			BlockSize: uint8(cfg.Pool.BlockSize()),
		},
		linksUp: map[string]bool{},
		c:       newCounters(),
	}
	if n.log == nil {
		n.log = slog.New(nolog.Handler)
	}
	cc := cfg.Claim
	cc.Node, cc.Swarm = n.id, n.swarm
	var err error
	if n.eng, err = claim.New(cc, n.pool, n.subRand(), now); err != nil {
		return nil, fmt.Errorf("claim engine: %w", err)
	}
	n.leases = lease.NewTable(n.pool)
	for _, h := range cfg.Hosts {
		n.leases.Reserve(h.Client, h.Addr)
	}
	if cfg.DHCP != nil {
		if n.dhcp, err = dhcp4.New(*cfg.DHCP, n.leases, blockView{n}); err != nil {
			return nil, err
		}
	}
	if cfg.Overlay != nil {
		oc := *cfg.Overlay
		oc.Node, oc.Swarm = n.id, n.swarm
		if n.ov, err = overlay.New(oc, n.subRand(), now); err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
	}
	n.flood = overlay.NewFlooder(dedupWindow(n.eng.Config().InquireInterval))
	if cfg.Saved != nil {
		n.restore(now, cfg.Saved)
	}
	return n, nil
}

// subRand is an independent generator drawn from the node's.
func (n *Node) subRand() *rand.Rand { return rand.New(rand.NewPCG(n.rng.Uint64(), n.rng.Uint64())) }

// dedupWindow is how long a relayed message is remembered. It must stay
// below the period at which a node repeats the same message, the inquiry
// interval (1 s), or a repetition sent against loss would be taken for a copy
// and not passed on.
func dedupWindow(inquire time.Duration) time.Duration {
	return max(inquire/2, 50*time.Millisecond)
}

// Input is what a driver steps a node with: MeshDatagram, ClientPacket,
// LinkChange, SetOptions or SetLeaseTime.
type Input interface{ input() }

// MeshDatagram is a datagram received on a mesh interface.
type MeshDatagram struct {
	Src       netip.AddrPort // sender, zone = interface
	Iface     string
	Port      uint16 // local port it arrived on
	Relayed   bool   // arrived by unicast rather than to the multicast group
	Truncated bool   // longer than the receive buffer: cut
	Data      []byte
}

// ClientPacket is a DHCP message received on a client interface.
type ClientPacket struct {
	Iface     string
	SrcIP     netip.Addr
	SrcMAC    net.HardwareAddr
	Broadcast bool // sent to the broadcast address
	Payload   []byte
}

// LinkChange says a mesh interface became usable or stopped being usable.
type LinkChange struct {
	Iface string
	Up    bool
}

// SetOptions replaces the DHCP options in force (a reload or the control
// socket).
type SetOptions struct{ Options []dhcp4.Option }

// SetLeaseTime changes the lease time of new and renewed leases.
type SetLeaseTime struct{ LeaseTime time.Duration }

func (MeshDatagram) input() {}
func (ClientPacket) input() {}
func (LinkChange) input()   {}
func (SetOptions) input()   {}
func (SetLeaseTime) input() {}

// Step handles one input at time now, then runs whatever fell due.
func (n *Node) Step(now time.Duration, in Input) {
	switch in := in.(type) {
	case MeshDatagram:
		n.handleMesh(now, in)
	case ClientPacket:
		n.handleClient(now, in)
	case LinkChange:
		n.linkChange(now, in)
	case SetOptions:
		if n.dhcp != nil {
			n.dhcp.SetOptions(in.Options)
		}
	case SetLeaseTime:
		if n.dhcp != nil {
			n.dhcp.SetLeaseTime(in.LeaseTime)
		}
	}
	n.settle(now)
}

// Tick runs the timers due at now.
func (n *Node) Tick(now time.Duration) { n.settle(now) }

// Next is when Tick must run again at the latest.
func (n *Node) Next() time.Duration {
	t := n.eng.Next() // demand never outlives a step: settle claims at once
	if at, ok := n.leases.NextExpiry(); ok {
		t = min(t, at)
	}
	if at, ok := n.nextRoamTimer(); ok {
		t = min(t, at)
	}
	if at, ok := n.parked.next(); ok {
		t = min(t, at)
	}
	if n.wantSync() {
		t = min(t, n.nextSync)
	}
	if n.ov != nil {
		t = min(t, n.ov.Next())
	}
	return t
}

// Ready is what the driver must do now.
type Ready struct {
	// Mesh are the datagrams to send, in order.
	Mesh []Datagram
	// Replies are the DHCP replies to send, in order.
	Replies []Reply
	// Hooks are the arguments of hook runs (-H), in order.
	Hooks [][]string
	// StateChanged says leases or blocks changed: the state file is out
	// of date.
	StateChanged bool
	// Claims and Tree are what happened to blocks and to the overlay
	// tree, for observers (the simulator's checks); the node has acted
	// on them already.
	Claims []claim.Event
	Tree   []overlay.Event
}

// Datagram is a datagram for the mesh. Without To it is multicast to the
// group on Port, on Iface or, when that is empty, on every mesh interface;
// with To it is unicast from local port Port.
type Datagram struct {
	Port  uint16
	To    netip.AddrPort
	Iface string
	Data  []byte
	Class Class
}

// Class says what a datagram is, so a driver that cannot send it can say so
// (SendFailed).
type Class uint8

// Datagram classes.
const (
	ClassClaim   Class = iota // INQUIRE, UPDATECLAIM
	ClassSync                 // SYNC
	ClassOverlay              // tree messages and relayed copies
	ClassRenew                // renew family to a neighbour
	ClassRoute                // ROUTE towards a non-neighbour
)

// Reply is a DHCP reply for a client interface.
type Reply struct {
	Iface    string
	Dest     dhcp4.Dest
	ServerID netip.Addr // source address
	Data     []byte
	Type     uint8 // DHCP message type, for the driver's log
}

// HasReady reports whether Ready has anything.
func (n *Node) HasReady() bool {
	r := &n.ready
	return len(r.Mesh) > 0 || len(r.Replies) > 0 || len(r.Hooks) > 0 || r.StateChanged ||
		len(r.Claims) > 0 || len(r.Tree) > 0
}

// Ready hands over what the driver must do and starts collecting anew.
func (n *Node) Ready() Ready {
	r := n.ready
	n.ready = Ready{}
	return r
}

// SendFailed counts a datagram of Ready that the driver could not send.
func (n *Node) SendFailed(d Datagram) {
	switch d.Class {
	case ClassClaim, ClassSync:
		n.c.TxError++
	case ClassOverlay:
		n.c.OverlayTxError++
	case ClassRenew:
		n.c.RoamTxError++
	case ClassRoute:
		n.c.OverlayRouteTxError++
	}
}

// ReplyFailed counts a DHCP reply the driver could not send.
func (n *Node) ReplyFailed() { n.c.DHCPTxError++ }

// settle runs whatever is due: the claim engine when it asks (or at once when
// a client got nothing), lease reclamation, parked DISCOVERs, roaming timers,
// the overlay and fast join; then collects their output.
func (n *Node) settle(now time.Duration) {
	// Before the engine runs: a block that becomes ours must not answer a
	// DISCOVER older than parkedAge because the tick came late.
	n.parked.expire(now)
	n.claims(now)
	n.flush(now)
	if n.demand {
		// A parked DISCOVER that flush answered took the last free
		// address of a block: claim more now, not a tick later (Next
		// must not be due right after a Tick).
		n.claims(now)
		n.flush(now)
	}
	if at, ok := n.leases.NextExpiry(); ok && at <= now {
		for _, l := range n.leases.Reclaim(now, reclaimBatch) {
			n.c.LeaseReclaimed++
			n.log.Debug("lease expired", "addr", l.Addr, "hw", l.HW.String())
			n.ready.StateChanged = true
		}
	}
	n.roamTimers(now)
	n.overlayTick(now)
	n.sync(now)
}

// claims runs the claim engine when it is due, or at once when a client got
// nothing.
func (n *Node) claims(now time.Duration) {
	if n.demand {
		n.demand = false
		// As many addresses as clients are waiting, so a burst of new
		// clients claims enough blocks in one round.
		n.eng.Demand(now, max(1, len(n.parked.list)))
		n.eng.Tick(now, n.usage())
	} else if now >= n.eng.Next() {
		n.eng.Tick(now, n.usage())
	}
}

func (n *Node) usage() claim.Usage {
	if n.cfg.Usage != nil {
		return n.cfg.Usage
	}
	return n.leases
}

// flush sends what the engine produced and applies its events.
func (n *Node) flush(now time.Duration) {
	for _, m := range n.eng.Outbox() {
		b, err := m.Encode()
		if err != nil {
			n.log.Error("encode", "err", err)
			continue
		}
		if m.Command == wire.CmdUpdateClaim {
			n.c.TxUpdateClaim++
		} else {
			n.c.TxInquire++
		}
		n.send(Datagram{Port: PortClaim, Data: b, Class: ClassClaim})
	}
	for _, ev := range n.eng.Events() {
		n.ready.Claims = append(n.ready.Claims, ev)
		switch ev.Kind {
		case claim.EventOwned:
			n.leases.AddBlock(ev.Block)
			n.ready.StateChanged = true
			n.log.Info("block owned", "block", ev.Block, "first", n.pool.Addr(ev.Block, 0))
			n.hook("blockowned", fmt.Sprint(ev.Block), n.pool.Addr(ev.Block, 0).String())
			n.replayParked(now)
		case claim.EventLost:
			n.leases.LoseBlock(ev.Block)
			n.ready.StateChanged = true
			n.log.Warn("block lost to a higher node id", "block", ev.Block, "winner", ev.Peer, "from", ev.PeerAddr)
			n.hook("blocklost", fmt.Sprint(ev.Block), ev.Peer.String())
			n.handOver(now, ev.Block, ev.Peer, ev.PeerAddr)
		case claim.EventDefended:
			n.log.Info("block defended against a lower node id", "block", ev.Block, "peer", ev.Peer, "from", ev.PeerAddr)
		case claim.EventReleased:
			n.leases.DropBlock(ev.Block)
			n.ready.StateChanged = true
			n.log.Info("needless block released", "block", ev.Block)
		case claim.EventLearningEnded:
			n.log.Info("learning phase ended", "tracked", n.eng.Tracked())
			n.hook("endlearning")
		}
	}
}

func (n *Node) send(d Datagram) { n.ready.Mesh = append(n.ready.Mesh, d) }

func (n *Node) hook(args ...string) {
	if n.cfg.Hooks {
		n.ready.Hooks = append(n.ready.Hooks, args)
	}
}

// hookMAC prints a MAC for the hook as the C ddhcpd does: upper case.
func hookMAC(hw net.HardwareAddr) string { return strings.ToUpper(hw.String()) }

// linkChange keeps the set of open mesh interfaces: a late interface asks
// for a SYNC again.
func (n *Node) linkChange(now time.Duration, lc LinkChange) {
	if lc.Up {
		n.linksUp[lc.Iface] = true
		n.nextSync = now
		return
	}
	delete(n.linksUp, lc.Iface)
}

// blockView lets dhcp4 see block ownership through the claim engine.
type blockView struct{ n *Node }

func (v blockView) Locate(idx uint32) dhcp4.Location {
	bi := v.n.eng.Block(idx)
	switch bi.State {
	case claim.Ours:
		return dhcp4.Location{Kind: dhcp4.Ours}
	case claim.Claimed:
		return dhcp4.Location{Kind: dhcp4.Peer, Node: bi.Owner, NodeAddr: bi.OwnerAddr}
	}
	return dhcp4.Location{Kind: dhcp4.Unowned}
}

// restore puts back what a state file kept: leases, and the blocks that were
// ours. Blocks saved less than a block timeout ago are ours again at once,
// since their claims are still alive elsewhere; older ones are claimed back
// through inquiries after learning.
func (n *Node) restore(now time.Duration, sv *Saved) {
	restored, refused := 0, sv.Refused
	for _, l := range sv.Leases {
		if n.leases.Insert(l) {
			restored++
		} else {
			refused++
		}
	}
	for _, b := range sv.Blocks {
		if sv.Age < n.eng.Config().BlockTimeout && n.eng.Restore(now, b) {
			n.leases.AddBlock(b)
			continue
		}
		n.eng.Prefer(b)
	}
	n.c.StateRestored++
	n.log.Info("state restored", "file", sv.From, "age", sv.Age.Round(time.Second), "leases", restored,
		"skipped", refused, "blocks", sv.Blocks)
}

// ID is the node's id.
func (n *Node) ID() wire.NodeID { return n.id }

// Pool is the pool the node shares out.
func (n *Node) Pool() *pool.Pool { return n.pool }

// Engine is the claim engine, to read.
func (n *Node) Engine() *claim.Engine { return n.eng }

// Leases is the lease table, to read (and to take its changes for the state
// file).
func (n *Node) Leases() *lease.Table { return n.leases }

// DHCP is the DHCP server, to read; nil without DHCP.
func (n *Node) DHCP() *dhcp4.Server { return n.dhcp }

// Overlay is the overlay node, to read; nil without the overlay.
func (n *Node) Overlay() *overlay.Node { return n.ov }

// Counters returns a copy of the node's counters.
func (n *Node) Counters() Counters { return n.c.clone() }

// ResetCounters sets every counter to zero.
func (n *Node) ResetCounters() { n.c = newCounters() }

// Parked is the number of DISCOVERs waiting for a block.
func (n *Node) Parked() int { return len(n.parked.list) }

// Act runs fn with the claim engine at now, for drivers that call engine
// methods directly (EndLearning, Want in simulations), then settles.
func (n *Node) Act(now time.Duration, fn func(e *claim.Engine)) {
	fn(n.eng)
	n.settle(now)
}
