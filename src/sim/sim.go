// Package sim is a deterministic discrete-event simulator of ddhcpd routers.
//
// Every simulated router runs the node.Node that the daemon runs: the claim
// engine, leases, DHCP, the overlay, roaming, handover, fast join and
// relaying are the shipped code. The simulator plays the daemon's part: it
// steps each node with datagrams, client packets and link changes, ticks it at
// its Next time, and carries out its Ready output over virtual links.
//
// Two shapes of mesh are built from one link model. Without Links, every node
// has one interface on one broadcast domain, the way batman-adv's bat0 makes
// a link-local multicast reach every node. With Links, the mesh is a graph
// whose links join one interface of each end (a routed mesh, for the
// overlay): a multicast on an interface reaches only the nodes linked to it,
// and a unicast only a neighbour on that interface. Every datagram goes
// through the wire codec at both ends; one larger than the MTU is lost, as
// the kernel would fragment it and netio would truncate it. Each copy has its
// own latency, loss and duplication, drawn from the sender's stream of the
// run's seed. Faults (partitions, crashes, restarts, links down and up,
// lossy links) are applied by methods that act at the current virtual time,
// or scheduled for later with At.
//
// Nodes are down until started (Start, StartAll, or a Start scheduled with
// At). A node ticks at its Next time; the simulator keeps exactly one pending
// tick per running node and moves it after every step. Check and CheckSupply
// state the ownership invariants; Overlaps records every moment two nodes held
// the same block.
//
// Time is virtual: a time.Duration since the start of the run, advanced only
// by the event queue. All randomness comes from the run's seed: each node has
// its own generators (for its id, its node and its links), derived from the
// seed and the node's index, so a run is reproduced exactly by its
// configuration and seed. Nothing here reads the real clock or the global
// random source, and no map is iterated where the order could change a run.
package sim

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/node"
	"ddhcpd/src/overlay"
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// MTU is the largest UDP payload a simulated link delivers by default: an
// IPv6 packet of 1280 bytes, the minimum every IPv6 link carries unfragmented,
// less 40 bytes of IPv6 and 8 of UDP header. batman-adv meshes carry 1280 at
// least; a larger datagram would be fragmented by the kernel (and lost whole
// with any fragment) or cut by netio's receive buffer, so the simulation
// loses it.
const MTU = wire.MaxDatagram

// The receive limits of a simulated router: DefaultRxQueue is netio's queue
// of received datagrams (netio.DefaultQueueLen); DefaultRxRate is a rate
// a small MIPS router sustains for claim datagrams, well below what the
// daemon handles on a PC, so that bursts (a thousand routers answering one
// SYNC) are lost in the simulation where they would be on a router.
const (
	DefaultRxRate  = 10000
	DefaultRxQueue = 1024
)

// Config describes a run.
type Config struct {
	Nodes    int
	Pool     netip.Prefix
	SizeExp  uint8        // block size is 2^SizeExp addresses
	Reserved []pool.Range // besides the pool's network and broadcast addresses

	// Claim is the template of every node's engine configuration.
	// NodeConfig, when set, may change a node's whole configuration at
	// every start (DHCP, the overlay, a saved state, SpareLeases); it sees
	// Node, Pool, Claim and the interfaces already filled in.
	Claim      claim.Config
	NodeConfig func(node int, c *node.Config)
	// Overlay, when set, runs the spanning-tree overlay on every node with
	// this template; the simulator sets its Interfaces and Epoch.
	Overlay *overlay.Config

	// Links makes a routed mesh: each link joins an interface of two
	// nodes. Nil puts every node on one broadcast domain.
	Links []Link

	// Each copy of a datagram takes a latency drawn uniformly from
	// [LatencyMin, LatencyMax], independently per receiver, so copies can
	// overtake each other. Loss is the probability that one copy is lost;
	// Dup the probability that a receiver gets a second, independently
	// delayed copy. SetLatency, SetLoss and SetDup change them during a run.
	LatencyMin, LatencyMax time.Duration
	Loss, Dup              float64
	// MaxDatagram is the largest UDP payload delivered; 0 means MTU
	// (below netio's 2,048-byte read buffer, so the MTU is what binds).
	MaxDatagram int
	// A router takes datagrams off its sockets at RxRate per second;
	// what arrives faster waits in a queue of RxQueue datagrams (netio's
	// queue between its readers and the loop) and is lost beyond it, as
	// when the kernel's receive buffer and netio's queue are full. Zero
	// means DefaultRxRate and DefaultRxQueue; a negative RxRate turns
	// the limit off.
	RxRate  float64
	RxQueue int

	Seed uint64

	// PickGroup, when not nil, holds a group number per node. Nodes of the
	// same group > 0 draw their random choices from the same seed, as C
	// nodes started in the same second share rand()'s seed; their ids still
	// differ. Group 0 means a seed of the node's own.
	PickGroup []int

	Zone string // the broadcast domain's interface name; "bat0" if empty

	// Observe, when set, is called for every engine event, after the
	// simulator has recorded it; ObserveTree for every overlay event.
	Observe     func(at time.Duration, node int, ev claim.Event)
	ObserveTree func(at time.Duration, node int, ev overlay.Event)
	// OnReady, when set, gets what a node decided besides datagrams
	// (DHCP replies, hook runs, state changes), right after each step.
	OnReady func(node int, rd node.Ready)
	// Trace, when set, receives one line per datagram sent and received,
	// per engine event and per fault; for debugging a replayed seed.
	Trace func(line string)
}

// Link joins interface IfA of node A and interface IfB of node B.
type Link struct {
	A, B     int
	IfA, IfB int
}

// NodeStats counts the traffic of one node.
type NodeStats struct {
	Sent      uint64 // datagrams sent (a multicast counts once)
	SentBytes uint64 // their UDP payload bytes
	Received  uint64 // copies handed to the node
	Lost      uint64 // copies addressed to the node and lost on the link
	Dropped   uint64 // copies that arrived while the node was down, restarted or cut off
	Dups      uint64 // extra copies made by duplication
	TooBig    uint64 // datagrams the node sent over the MTU: lost
	Overflow  uint64 // copies lost because the node's receive queue was full
	NoLink    uint64 // unicasts the node sent to an address no link leads to
	MaxSent   int    // the largest datagram the node sent
	Boots     int    // times the node was started
}

func (s *NodeStats) add(o NodeStats) {
	s.Sent += o.Sent
	s.SentBytes += o.SentBytes
	s.Received += o.Received
	s.Lost += o.Lost
	s.Dropped += o.Dropped
	s.Dups += o.Dups
	s.TooBig += o.TooBig
	s.Overflow += o.Overflow
	s.NoLink += o.NoLink
	s.MaxSent = max(s.MaxSent, o.MaxSent)
	s.Boots += o.Boots
}

// Overlap records a moment at which a block became ours on a node while it
// was ours on another one already: two nodes could lease the same addresses.
type Overlap struct {
	At    time.Duration
	Block uint32
	Nodes []int // every node holding the block, the new owner last
}

// Traffic counts datagrams by kind, all nodes together.
type Traffic struct {
	// Overlay messages by type (port 1236), ROUTE included.
	Sent, Bytes [wire.ExtRoute + 1]uint64
	// Claims are INQUIRE and UPDATECLAIM datagrams (port 1234), Renews
	// the renew family (port 1235), Syncs SYNC; with their bytes.
	Claims, ClaimBytes, Renews, RenewBytes, Syncs, SyncBytes uint64
}

// Overlay is the number of overlay datagrams and bytes, ROUTE left out.
func (t Traffic) Overlay() (msgs, bytes uint64) {
	for i := range wire.ExtRoute {
		msgs += t.Sent[i]
		bytes += t.Bytes[i]
	}
	return msgs, bytes
}

type simNode struct {
	id     wire.NodeID
	ifaces []string
	up     bool
	life   int // incremented at every start; copies for an earlier life are lost
	node   *node.Node
	usage  claim.Usage
	link   *rand.Rand // latency, loss and duplication of what the node sends
	tick   *event     // the node's one pending tick, queued while it is up
	group  int        // partition group
	stats  NodeStats

	backlog float64       // datagrams waiting to be read, as of rxAt
	rxAt    time.Duration // when backlog was last brought up to date
}

// Network is a simulated mesh. It is not safe for concurrent use; run
// independent Networks in parallel instead.
type Network struct {
	cfg    Config
	pool   *pool.Pool
	swarm  wire.Swarm
	nodes  []*simNode
	byID   map[wire.NodeID]int
	links  []link
	ports  [][][]int // node -> interface -> link indexes
	q      queue
	now    time.Duration
	seq    uint64
	latMin time.Duration
	latMax time.Duration
	loss   float64
	dup    float64

	reach func(from, to int) bool

	owners    map[uint32][]int // who holds each block, as told by the engines' events
	overlaps  []Overlap
	traffic   Traffic
	anomalies []string
	nAnomaly  int
}

type link struct {
	Link
	up bool
}

// Purposes of the random streams derived from the seed.
const (
	streamID = iota + 1
	streamLink
	streamPick
	streamGroupPick
)

// New builds a network whose nodes are all down and whose links are all up;
// start them with Start, StartAll or At.
func New(cfg Config) (*Network, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("sim: %d nodes", cfg.Nodes)
	}
	p, err := pool.New(cfg.Pool, cfg.SizeExp, cfg.Reserved)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if cfg.PickGroup != nil && len(cfg.PickGroup) != cfg.Nodes {
		return nil, fmt.Errorf("sim: %d pick groups for %d nodes", len(cfg.PickGroup), cfg.Nodes)
	}
	if cfg.Zone == "" {
		cfg.Zone = "bat0"
	}
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = MTU
	}
	if cfg.RxRate == 0 {
		cfg.RxRate = DefaultRxRate
	}
	if cfg.RxQueue <= 0 {
		cfg.RxQueue = DefaultRxQueue
	}
	n := &Network{
		cfg:  cfg,
		pool: p,
		swarm: wire.Swarm{
			Prefix:    cfg.Pool.Addr(),
			PrefixLen: uint8(cfg.Pool.Bits()),
			BlockSize: uint8(p.BlockSize()),
		},
		byID:   make(map[wire.NodeID]int, cfg.Nodes),
		owners: make(map[uint32][]int),
		ports:  make([][][]int, cfg.Nodes),
	}
	if err := n.SetLatency(cfg.LatencyMin, cfg.LatencyMax); err != nil {
		return nil, err
	}
	if err := n.SetLoss(cfg.Loss); err != nil {
		return nil, err
	}
	if err := n.SetDup(cfg.Dup); err != nil {
		return nil, err
	}
	nifs := make([]int, cfg.Nodes)
	for _, l := range cfg.Links {
		if l.A < 0 || l.B < 0 || l.A >= cfg.Nodes || l.B >= cfg.Nodes || l.A == l.B || l.IfA < 0 || l.IfB < 0 {
			return nil, fmt.Errorf("sim: bad link %+v", l)
		}
		nifs[l.A] = max(nifs[l.A], l.IfA+1)
		nifs[l.B] = max(nifs[l.B], l.IfB+1)
	}
	for i := range cfg.Nodes {
		nd := &simNode{
			id:   n.newID(i),
			link: newRand(derive(cfg.Seed, streamLink, uint64(i))),
		}
		if cfg.Links == nil {
			nd.ifaces = []string{cfg.Zone}
		} else {
			for k := range max(nifs[i], 1) {
				nd.ifaces = append(nd.ifaces, fmt.Sprintf("mesh%d", k))
			}
		}
		n.byID[nd.id] = i
		n.nodes = append(n.nodes, nd)
		n.ports[i] = make([][]int, len(nd.ifaces))
	}
	for k, l := range cfg.Links {
		n.links = append(n.links, link{Link: l, up: true})
		n.ports[l.A][l.IfA] = append(n.ports[l.A][l.IfA], k)
		n.ports[l.B][l.IfB] = append(n.ports[l.B][l.IfB], k)
	}
	return n, nil
}

// newID draws node i's id from its own generator: never zero, and never one
// an earlier node has (a 64-bit collision is unlikely but would break the
// tie-break every test relies on).
func (n *Network) newID(i int) wire.NodeID {
	r := newRand(derive(n.cfg.Seed, streamID, uint64(i)))
	for {
		var id wire.NodeID
		binary.BigEndian.PutUint64(id[:], r.Uint64())
		if _, dup := n.byID[id]; !id.IsZero() && !dup {
			return id
		}
	}
}

// addrOf is node i's link-local address on its interface k, without zone:
// fe80::k:0:i+1 (fe80::i+1 on the first).
func addrOf(i, k int) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	binary.BigEndian.PutUint32(b[8:], uint32(k))
	binary.BigEndian.PutUint32(b[12:], uint32(i+1))
	return netip.AddrFrom16(b)
}

// derive mixes the seed with the parts naming one random stream, so that
// every stream is independent of how much the others draw.
func derive(seed uint64, parts ...uint64) uint64 {
	h := splitmix(seed)
	for _, p := range parts {
		h = splitmix(h ^ splitmix(p+0x9e3779b97f4a7c15))
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func newRand(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, splitmix(s))) }

// Now is the virtual time.
func (n *Network) Now() time.Duration { return n.now }

// N is the number of nodes.
func (n *Network) N() int { return len(n.nodes) }

// Pool is the pool geometry shared by all nodes.
func (n *Network) Pool() *pool.Pool { return n.pool }

// Swarm is the pool as every node puts it on the wire.
func (n *Network) Swarm() wire.Swarm { return n.swarm }

// ID is node i's id; it stays the same across restarts.
func (n *Network) ID(i int) wire.NodeID { return n.nodes[i].id }

// Addr is node i's link-local address on its first interface.
func (n *Network) Addr(i int) netip.Addr { return addrOf(i, 0).WithZone(n.nodes[i].ifaces[0]) }

// NodeOf returns the index of the node with the given id.
func (n *Network) NodeOf(id wire.NodeID) (int, bool) {
	i, ok := n.byID[id]
	return i, ok
}

// Up reports whether node i is running.
func (n *Network) Up(i int) bool { return n.nodes[i].up }

// Node is node i's running node, or nil while it is down. Change it only
// through Act or Client, so that what it decides is carried out.
func (n *Network) Node(i int) *node.Node {
	if !n.nodes[i].up {
		return nil
	}
	return n.nodes[i].node
}

// Engine is node i's running claim engine, or nil while it is down.
func (n *Network) Engine(i int) *claim.Engine {
	if !n.nodes[i].up {
		return nil
	}
	return n.nodes[i].node.Engine()
}

// Tree is node i's running overlay, or nil while it is down or without one.
func (n *Network) Tree(i int) *overlay.Node {
	if !n.nodes[i].up {
		return nil
	}
	return n.nodes[i].node.Overlay()
}

// Stats returns node i's counters.
func (n *Network) Stats(i int) NodeStats { return n.nodes[i].stats }

// Total returns the counters summed over all nodes.
func (n *Network) Total() NodeStats {
	var s NodeStats
	for _, nd := range n.nodes {
		s.add(nd.stats)
	}
	return s
}

// Traffic returns the datagram counters by kind.
func (n *Network) Traffic() Traffic { return n.traffic }

// Overlaps lists every moment at which a block became ours on a node while
// another node held it already.
func (n *Network) Overlaps() []Overlap { return slices.Clone(n.overlaps) }

// InFlight is the number of datagram copies not yet delivered.
func (n *Network) InFlight() int {
	k := 0
	for _, e := range n.q {
		if e.kind == evCast {
			k += len(e.cast.rx) - e.cast.next
		}
	}
	return k
}

// SetUsage gives node i the view of its lease table that its engine gets at
// every tick (nil: no address is in use), for nodes without DHCP. It
// survives restarts.
func (n *Network) SetUsage(i int, u claim.Usage) { n.nodes[i].usage = u }

// Usage returns what SetUsage set for node i.
func (n *Network) Usage(i int) claim.Usage { return n.nodes[i].usage }

// usageOf is what a node without DHCP shows its engine: the usage SetUsage
// set at the time of each tick; without one, every usable address is free.
type usageOf struct {
	nd   *simNode
	pool *pool.Pool
}

func (u usageOf) Free(b uint32) int {
	if u.nd.usage == nil {
		return u.pool.Usable(b)
	}
	return u.nd.usage.Free(b)
}

func (u usageOf) Active(b uint32) bool { return u.nd.usage != nil && u.nd.usage.Active(b) }

// SetLatency sets the latency range of copies sent from now on.
func (n *Network) SetLatency(lo, hi time.Duration) error {
	if lo < 0 || hi < lo {
		return fmt.Errorf("sim: latency range [%v, %v]", lo, hi)
	}
	n.latMin, n.latMax = lo, hi
	return nil
}

// SetLoss sets the loss probability of copies sent from now on.
func (n *Network) SetLoss(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("sim: loss probability %v", p)
	}
	n.loss = p
	n.tracef("loss %.3f", p)
	return nil
}

// SetDup sets the duplication probability of copies sent from now on.
func (n *Network) SetDup(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("sim: duplication probability %v", p)
	}
	n.dup = p
	n.tracef("dup %.3f", p)
	return nil
}

// Loss returns the current loss probability.
func (n *Network) Loss() float64 { return n.loss }

// Dup returns the current duplication probability.
func (n *Network) Dup() float64 { return n.dup }

// Start boots node i now with a fresh node and the node's permanent id, as
// the daemon does after a reboot, and tells it its interfaces are up.
func (n *Network) Start(i int) error {
	nd := n.nodes[i]
	if nd.up {
		return fmt.Errorf("sim: node %d is already up", i)
	}
	nc := node.Config{Node: nd.id, Pool: n.pool, Claim: n.cfg.Claim, Usage: usageOf{nd, n.pool}}
	if n.cfg.Overlay != nil {
		oc := *n.cfg.Overlay
		oc.Interfaces = nd.ifaces
		// Epochs grow across restarts, as the daemon's wall-clock ones.
		oc.Epoch = uint32(n.now/time.Millisecond) + 1
		nc.Overlay = &oc
	}
	if n.cfg.NodeConfig != nil {
		n.cfg.NodeConfig(i, &nc)
	}
	if nc.DHCP != nil {
		nc.Usage = nil // the lease table is the usage
	}
	nn, err := node.New(nc, n.pickRand(i), n.now)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", i, err)
	}
	nd.node, nd.up = nn, true
	nd.life++
	nd.stats.Boots++
	nd.tick = &event{kind: evTick, node: i, index: -1}
	n.push(nd.tick, n.now)
	n.tracef("n%d start id %v", i, nd.id)
	for _, ifc := range nd.ifaces {
		nn.Step(n.now, node.LinkChange{Iface: ifc, Up: true})
	}
	n.settle(i, false)
	return nil
}

// pickRand is the random source of node i for its coming life.
func (n *Network) pickRand(i int) *rand.Rand {
	life := uint64(n.nodes[i].life)
	if n.cfg.PickGroup != nil && n.cfg.PickGroup[i] > 0 {
		return newRand(derive(n.cfg.Seed, streamGroupPick, uint64(n.cfg.PickGroup[i]), life))
	}
	return newRand(derive(n.cfg.Seed, streamPick, uint64(i), life))
}

// StartAll boots every node that is down, all at the current instant.
func (n *Network) StartAll() error {
	var errs []error
	for i, nd := range n.nodes {
		if !nd.up {
			errs = append(errs, n.Start(i))
		}
	}
	return errors.Join(errs...)
}

// Crash stops node i at once: it sends nothing more, and the copies on their
// way to it are lost. Its blocks stay claimed in the other nodes' tables
// until they time out. Crashing a node that is down does nothing.
func (n *Network) Crash(i int) {
	nd := n.nodes[i]
	if !nd.up {
		return
	}
	for _, b := range nd.node.Engine().Owned() {
		n.owners[b] = deleteNode(n.owners[b], i)
		if len(n.owners[b]) == 0 {
			delete(n.owners, b)
		}
	}
	n.unqueue(nd.tick)
	nd.up, nd.node, nd.tick = false, nil, nil
	n.tracef("n%d crash", i)
}

// Restart crashes node i if it is up and starts it again.
func (n *Network) Restart(i int) error {
	n.Crash(i)
	return n.Start(i)
}

// Partition splits the mesh: each group of node indexes can reach only its
// own members from now on, also for copies already on the way. Nodes in no
// group form one more group together.
func (n *Network) Partition(groups ...[]int) {
	for _, nd := range n.nodes {
		nd.group = 0
	}
	for g, members := range groups {
		for _, i := range members {
			n.nodes[i].group = g + 1
		}
	}
	n.tracef("partition %v", groups)
}

// Heal joins all partitions again.
func (n *Network) Heal() {
	n.Partition()
}

// SetReach restricts who hears whom beyond partitions and links: a copy
// from one node reaches another only if reach(from, to) holds when it is sent
// and when it arrives. Nil, the default, restricts nothing. Check assumes
// every node hears every other.
func (n *Network) SetReach(reach func(from, to int) bool) { n.reach = reach }

// reaches reports whether a copy from node i can reach node j now.
func (n *Network) reaches(i, j int) bool {
	return n.nodes[i].group == n.nodes[j].group && (n.reach == nil || n.reach(i, j))
}

// Group returns node i's partition group; 0 for every node when healed.
func (n *Network) Group(i int) int { return n.nodes[i].group }

// Connected reports whether every node is in the same partition group.
func (n *Network) Connected() bool {
	for _, nd := range n.nodes {
		if nd.group != n.nodes[0].group {
			return false
		}
	}
	return true
}

// Links returns the links of a routed mesh.
func (n *Network) Links() []Link { return slices.Clone(n.cfg.Links) }

// LinkUp reports whether link k is up.
func (n *Network) LinkUp(k int) bool { return n.links[k].up }

// SetLink brings link k down or up. A link that goes down also loses the
// copies on their way over it.
func (n *Network) SetLink(k int, up bool) {
	if n.links[k].up == up {
		return
	}
	n.links[k].up = up
	state := "down"
	if up {
		state = "up"
	}
	n.tracef("link %d n%d-n%d %s", k, n.links[k].A, n.links[k].B, state)
}

// Cut takes down every link between a node of set and a node outside it,
// and returns their indexes (for Rejoin).
func (n *Network) Cut(set []int) []int {
	in := make([]bool, len(n.nodes))
	for _, i := range set {
		in[i] = true
	}
	var cut []int
	for k, l := range n.links {
		if l.up && in[l.A] != in[l.B] {
			n.SetLink(k, false)
			cut = append(cut, k)
		}
	}
	return cut
}

// Rejoin brings the given links up again.
func (n *Network) Rejoin(links []int) {
	for _, k := range links {
		n.SetLink(k, true)
	}
}

// At schedules fn to run at time t, or now if t has passed, after
// everything already scheduled for that instant.
func (n *Network) At(t time.Duration, fn func()) {
	n.push(&event{kind: evAction, fn: fn, index: -1}, max(t, n.now))
}

// Act calls fn with node i's claim engine at the current time, then carries
// out what the node decided: the way to call engine methods such as
// EndLearning or Want. It reports false if the node is down.
func (n *Network) Act(i int, fn func(e *claim.Engine, now time.Duration)) bool {
	nd := n.nodes[i]
	if !nd.up {
		return false
	}
	nd.node.Act(n.now, func(e *claim.Engine) { fn(e, n.now) })
	n.settle(i, false)
	return true
}

// Client steps node i with a packet from one of its DHCP clients and
// carries out what it decided. It reports false if the node is down.
func (n *Network) Client(i int, p node.ClientPacket) bool {
	nd := n.nodes[i]
	if !nd.up {
		return false
	}
	nd.node.Step(n.now, p)
	n.settle(i, false)
	return true
}

// RunFor runs every event due in the next d and leaves the clock at now+d.
func (n *Network) RunFor(d time.Duration) {
	end := n.now + d
	for len(n.q) > 0 && n.q[0].at <= end {
		n.step()
	}
	n.now = end
}

// RunUntil runs events until cond holds, checking it before the first event
// and after each one, for at most limit of virtual time. It reports whether
// cond held; on false the clock is at now+limit.
func (n *Network) RunUntil(cond func() bool, limit time.Duration) bool {
	end := n.now + limit
	if cond() {
		return true
	}
	for len(n.q) > 0 && n.q[0].at <= end {
		n.step()
		if cond() {
			return true
		}
	}
	n.now = end
	return cond()
}

// RunUntilEvery runs in slices of poll until cond holds, for at most limit,
// for conditions that cost as much as the whole network: cond is checked
// between slices only.
func (n *Network) RunUntilEvery(cond func() bool, poll, limit time.Duration) bool {
	end := n.now + limit
	for {
		if cond() {
			return true
		}
		if n.now >= end {
			return false
		}
		n.RunFor(min(poll, end-n.now))
	}
}

// step runs the earliest event.
func (n *Network) step() {
	e := n.q[0]
	n.now = e.at
	switch e.kind {
	case evTick:
		nd := n.nodes[e.node]
		nd.node.Tick(n.now)
		n.settle(e.node, true)
	case evCast:
		mc := e.cast
		c := mc.rx[mc.next]
		mc.next++
		if mc.next < len(mc.rx) {
			e.at = mc.rx[mc.next].at // keeps its seq: copies of one datagram stay in order among ties
			heap.Fix(&n.q, e.index)
		} else {
			heap.Pop(&n.q)
		}
		n.deliver(mc, c)
	case evAction:
		heap.Pop(&n.q)
		e.fn()
	}
}

// settle carries out what node i decided and moves its tick to the node's
// Next, which a step may have made earlier.
func (n *Network) settle(i int, ticked bool) {
	nd := n.nodes[i]
	if nd.node.HasReady() {
		rd := nd.node.Ready()
		for _, d := range rd.Mesh {
			n.send(i, d)
		}
		for _, ev := range rd.Claims {
			n.record(i, ev)
		}
		for _, ev := range rd.Tree {
			if n.cfg.Trace != nil {
				n.tracef("n%d %v root %v old %v epoch %d size %d", i, ev.Kind, ev.Root, ev.OldRoot, ev.Epoch, ev.Size)
			}
			if n.cfg.ObserveTree != nil {
				n.cfg.ObserveTree(n.now, i, ev)
			}
		}
		if n.cfg.OnReady != nil {
			n.cfg.OnReady(i, rd)
		}
		if !nd.up || nd.node == nil {
			return // OnReady crashed it
		}
	}
	next := nd.node.Next()
	if next <= n.now {
		if ticked {
			// Tick must leave nothing due; otherwise the node would spin
			// at one instant forever. Report it and go on a little later.
			n.anomaly("node %d: Next() = %v right after Tick(%v)", i, next, n.now)
			next = n.now + time.Millisecond
		} else {
			next = n.now
		}
	}
	n.move(nd.tick, next)
}

// send puts a datagram of node i on its links.
func (n *Network) send(i int, d node.Datagram) {
	from := n.nodes[i]
	from.stats.Sent++
	from.stats.SentBytes += uint64(len(d.Data))
	from.stats.MaxSent = max(from.stats.MaxSent, len(d.Data))
	n.count(d)
	if n.cfg.Trace != nil {
		n.tracef("n%d send %s", i, describe(d.Port, d.To, d.Data))
	}
	if len(d.Data) > n.cfg.MaxDatagram {
		from.stats.TooBig++
		return
	}
	mc := &multicast{from: i, port: d.Port, srcPort: d.Port, data: d.Data}
	switch {
	case d.To.IsValid():
		mc.port, mc.relayed = d.To.Port(), true
		if !n.unicast(i, d.To.Addr(), mc) {
			from.stats.NoLink++
			return
		}
	case n.cfg.Links == nil:
		mc.rx = make([]copyTo, 0, len(n.nodes)-1)
		for j := range n.nodes {
			if j != i {
				n.copies(i, j, -1, 0, addrOf(i, 0).WithZone(n.nodes[j].ifaces[0]), mc)
			}
		}
	default:
		for k, ifc := range from.ifaces {
			if d.Iface != "" && d.Iface != ifc {
				continue
			}
			for _, li := range n.ports[i][k] {
				if l := n.links[li]; l.up {
					j, kj := l.other(i, k)
					n.copies(i, j, li, kj, addrOf(i, k).WithZone(n.nodes[j].ifaces[kj]), mc)
				}
			}
		}
	}
	if len(mc.rx) == 0 {
		return
	}
	slices.SortFunc(mc.rx, func(a, b copyTo) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.to, b.to))
	})
	n.push(&event{kind: evCast, cast: mc, index: -1}, mc.rx[0].at)
}

// other is the far end of a link seen from interface k of node i.
func (l link) other(i, k int) (j, kj int) {
	if l.A == i && l.IfA == k {
		return l.B, l.IfB
	}
	return l.A, l.IfA
}

// unicast finds the node at dst, through the sender's interface named by
// dst's zone, and queues its copies.
func (n *Network) unicast(i int, dst netip.Addr, mc *multicast) bool {
	from := n.nodes[i]
	k := slices.Index(from.ifaces, dst.Zone())
	if k < 0 {
		return false
	}
	bare := dst.WithZone("")
	if n.cfg.Links == nil {
		j := int(binary.BigEndian.Uint32(bare.AsSlice()[12:])) - 1
		if j < 0 || j >= len(n.nodes) || j == i || addrOf(j, 0) != bare {
			return false
		}
		n.copies(i, j, -1, 0, addrOf(i, 0).WithZone(n.nodes[j].ifaces[0]), mc)
		return true
	}
	for _, li := range n.ports[i][k] {
		l := n.links[li]
		if j, kj := l.other(i, k); l.up && addrOf(j, kj) == bare {
			n.copies(i, j, li, kj, addrOf(i, k).WithZone(n.nodes[j].ifaces[kj]), mc)
			return true
		}
	}
	return false
}

// copies adds the copies of mc that node j gets over link li, on its
// interface kj: none when it is cut off, two when duplicated, none of those
// lost.
func (n *Network) copies(i, j, li, kj int, src netip.Addr, mc *multicast) {
	from, to := n.nodes[i], n.nodes[j]
	// A node that is down gets the copy if it has started by the time the
	// copy arrives (its next life); one that is up, only if it is still
	// in the same life then.
	if !n.reaches(i, j) {
		return
	}
	life := to.life
	if !to.up {
		life++
	}
	k := 1
	if n.dup > 0 && from.link.Float64() < n.dup {
		k = 2
		to.stats.Dups++
	}
	for range k {
		if n.loss > 0 && from.link.Float64() < n.loss {
			to.stats.Lost++
			continue
		}
		lat := n.latMin
		if n.latMax > n.latMin {
			lat += time.Duration(from.link.Int64N(int64(n.latMax-n.latMin) + 1))
		}
		mc.rx = append(mc.rx, copyTo{at: n.now + lat, to: j, life: life, link: li, iface: kj, src: src})
	}
}

func (n *Network) deliver(mc *multicast, c copyTo) {
	to := n.nodes[c.to]
	if !to.up || to.life != c.life || !n.reaches(mc.from, c.to) || (c.link >= 0 && !n.links[c.link].up) {
		to.stats.Dropped++
		return
	}
	if n.cfg.RxRate > 0 {
		// The queue drains at RxRate; a copy that finds it full is lost.
		to.backlog = max(0, to.backlog-(n.now-to.rxAt).Seconds()*n.cfg.RxRate)
		to.rxAt = n.now
		if to.backlog+1 > float64(n.cfg.RxQueue) {
			to.stats.Overflow++
			return
		}
		to.backlog++
	}
	to.stats.Received++
	if n.cfg.Trace != nil {
		n.tracef("n%d recv n%d %s", c.to, mc.from, describe(mc.port, netip.AddrPort{}, mc.data))
	}
	to.node.Step(n.now, node.MeshDatagram{
		Src:     netip.AddrPortFrom(c.src, mc.srcPort),
		Iface:   to.ifaces[c.iface],
		Port:    mc.port,
		Relayed: mc.relayed,
		Data:    mc.data,
	})
	n.settle(c.to, false)
}

// count adds a datagram to the traffic by kind.
func (n *Network) count(d node.Datagram) {
	t := &n.traffic
	size := uint64(len(d.Data))
	port := d.Port
	if d.To.IsValid() {
		port = d.To.Port()
	}
	switch {
	case port == node.PortClaim:
		t.Claims++
		t.ClaimBytes += size
	case port == node.PortRenew:
		t.Renews++
		t.RenewBytes += size
	case len(d.Data) > 1 && d.Data[1] == wire.ExtSync:
		t.Syncs++
		t.SyncBytes += size
	case len(d.Data) > 1 && int(d.Data[1]) < len(t.Sent):
		t.Sent[d.Data[1]]++
		t.Bytes[d.Data[1]] += size
	}
}

// record keeps the index of owners up to date from the engines' events, so
// an overlap is caught at the instant it begins.
func (n *Network) record(i int, ev claim.Event) {
	switch ev.Kind {
	case claim.EventOwned:
		holders := n.owners[ev.Block]
		if slices.Contains(holders, i) {
			n.anomaly("node %d: owned event for block %d it already owns", i, ev.Block)
			break
		}
		holders = append(holders, i)
		n.owners[ev.Block] = holders
		if len(holders) > 1 {
			n.overlaps = append(n.overlaps, Overlap{At: n.now, Block: ev.Block, Nodes: slices.Clone(holders)})
		}
	case claim.EventLost, claim.EventReleased:
		holders := n.owners[ev.Block]
		if !slices.Contains(holders, i) {
			n.anomaly("node %d: %v event for block %d it does not own", i, ev.Kind, ev.Block)
			break
		}
		if holders = deleteNode(holders, i); len(holders) == 0 {
			delete(n.owners, ev.Block)
		} else {
			n.owners[ev.Block] = holders
		}
	}
	if n.cfg.Trace != nil {
		peer := ""
		if !ev.Peer.IsZero() {
			j, _ := n.NodeOf(ev.Peer)
			peer = fmt.Sprintf(" peer n%d", j)
		}
		n.tracef("n%d %v %d%s", i, ev.Kind, ev.Block, peer)
	}
	if n.cfg.Observe != nil {
		n.cfg.Observe(n.now, i, ev)
	}
}

func deleteNode(s []int, i int) []int {
	if k := slices.Index(s, i); k >= 0 {
		return slices.Delete(s, k, k+1)
	}
	return s
}

// maxAnomalies bounds the anomalies kept; more are only counted.
const maxAnomalies = 20

// anomaly records something that must never happen, whatever the faults:
// Check reports it.
func (n *Network) anomaly(format string, args ...any) {
	n.nAnomaly++
	if len(n.anomalies) < maxAnomalies {
		n.anomalies = append(n.anomalies, fmt.Sprintf("at %v: ", n.now)+fmt.Sprintf(format, args...))
	}
	n.tracef("ANOMALY "+format, args...)
}

func (n *Network) tracef(format string, args ...any) {
	if n.cfg.Trace != nil {
		n.cfg.Trace(fmt.Sprintf("%12s ", n.now) + fmt.Sprintf(format, args...))
	}
}

// describe is a short human form of a datagram for traces and errors.
func describe(port uint16, to netip.AddrPort, data []byte) string {
	var b strings.Builder
	if to.IsValid() {
		fmt.Fprintf(&b, "to %v ", to)
		port = to.Port()
	}
	if port == node.PortExt {
		e, err := wire.DecodeExt(data)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "bad extension: %v", err)
		case e.Type == wire.ExtSync:
			b.WriteString("SYNC")
		case wire.IsOverlay(e.Type):
			if m, err := wire.ParseOverlay(e); err == nil {
				b.WriteString(describeOverlay(&m))
			}
		default:
			b.WriteString(wire.OverlayTypeName(e.Type))
		}
		return b.String()
	}
	m, err := wire.Decode(data)
	if err != nil {
		fmt.Fprintf(&b, "bad message: %v", err)
		return b.String()
	}
	switch m.Command {
	case wire.CmdUpdateClaim:
		b.WriteString("UPDATECLAIM")
		for _, c := range m.Claims {
			fmt.Fprintf(&b, " %d:%ds", c.Block, c.Lifetime)
		}
	case wire.CmdInquire:
		b.WriteString("INQUIRE")
		for _, i := range m.Inquiries {
			fmt.Fprintf(&b, " %d", i)
		}
	default:
		fmt.Fprintf(&b, "command %d", m.Command)
	}
	return b.String()
}

// describeOverlay is a short human form of an overlay message.
func describeOverlay(m *wire.Overlay) string {
	return fmt.Sprintf("%s %v/%d #%d", wire.OverlayTypeName(m.Type), shortID(m.Origin), m.Epoch, m.Seq)
}

// shortID is the last two bytes of an id, enough to tell nodes apart in a
// trace.
func shortID(id wire.NodeID) string { return fmt.Sprintf("%02x%02x", id[6], id[7]) }
