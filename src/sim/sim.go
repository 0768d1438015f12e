// Package sim is a deterministic discrete-event simulator of ddhcpd nodes.
//
// A Network holds N nodes on one broadcast domain, the way batman-adv's bat0
// makes one link-local multicast reach every node of a mesh. Every node runs
// a real claim.Engine; what an engine puts in its outbox is encoded with the
// wire codec, copied to every other node with its own latency, loss and
// duplication, and decoded again at each receiver, so the codec is exercised
// on every hop. Faults (partitions, crashes, restarts, lossy links) are
// applied by methods that act at the current virtual time, or scheduled for
// later with At.
//
// Nodes are down until started (Start, StartAll, or a Start scheduled with
// At), which allows staggered and simultaneous starts. A node's engine ticks
// at its Next time; the simulator keeps exactly one pending tick per running
// node and moves it after every Step and Tick, since either can make the
// engine due earlier. Check and CheckSupply state the ownership invariants;
// Overlaps records every moment two nodes held the same block. Hooks for
// later layers: SetUsage (a lease table's view), Act (call engine methods
// such as EndLearning or Want), Observe (engine events), At (any scheduled
// action) and SetLinks (meshes where a multicast does not reach everyone).
//
// Time is virtual: a time.Duration since the start of the run, advanced only
// by the event queue. All randomness comes from the run's seed: each node has
// its own generators (for its id, its block picks and its links), derived from
// the seed and the node's index, so a run is reproduced exactly by its
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
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// Config describes a run.
type Config struct {
	Nodes    int
	Pool     netip.Prefix
	SizeExp  uint8        // block size is 2^SizeExp addresses
	Reserved []pool.Range // besides the pool's network and broadcast addresses

	// Claim is the template of every node's engine configuration; the
	// simulator sets Node and Swarm. NodeConfig, when set, may change it
	// per node at every start (for instance to give nodes different
	// SpareLeases); it sees Node and Swarm already filled in.
	Claim      claim.Config
	NodeConfig func(node int, c *claim.Config)

	// Each copy of a multicast takes a latency drawn uniformly from
	// [LatencyMin, LatencyMax], independently per receiver, so copies can
	// overtake each other. Loss is the probability that one copy is lost;
	// Dup the probability that a receiver gets a second, independently
	// delayed copy. SetLatency, SetLoss and SetDup change them during a run.
	LatencyMin, LatencyMax time.Duration
	Loss, Dup              float64

	Seed uint64

	// PickGroup, when not nil, holds a group number per node. Nodes of the
	// same group > 0 draw their block picks from the same random seed, as C
	// nodes started in the same second share rand()'s seed; their ids still
	// differ. Group 0 means a seed of the node's own.
	PickGroup []int

	Zone string // zone of the nodes' link-local addresses; "bat0" if empty

	// Observe, when set, is called for every engine event, after the
	// simulator has recorded it.
	Observe func(at time.Duration, node int, ev claim.Event)
	// Trace, when set, receives one line per datagram sent and received,
	// per engine event and per fault; for debugging a replayed seed.
	Trace func(line string)
}

// NodeStats counts the traffic of one node.
type NodeStats struct {
	Sent      uint64 // multicast datagrams sent
	SentBytes uint64 // their UDP payload bytes
	Received  uint64 // datagrams handed to the engine
	Lost      uint64 // copies addressed to the node and lost on the link
	Dropped   uint64 // copies that arrived while the node was down, restarted or cut off by a partition
	Dups      uint64 // extra copies made by duplication
	Errors    uint64 // datagrams the codec or the engine refused
	Boots     int    // times the node was started
}

func (s *NodeStats) add(o NodeStats) {
	s.Sent += o.Sent
	s.SentBytes += o.SentBytes
	s.Received += o.Received
	s.Lost += o.Lost
	s.Dropped += o.Dropped
	s.Dups += o.Dups
	s.Errors += o.Errors
	s.Boots += o.Boots
}

// Overlap records a moment at which a block became ours on a node while it
// was ours on another one already: two nodes could lease the same addresses.
type Overlap struct {
	At    time.Duration
	Block uint32
	Nodes []int // every node holding the block, the new owner last
}

type node struct {
	id     wire.NodeID
	addr   netip.Addr
	up     bool
	life   int // incremented at every start; copies for an earlier life are lost
	engine *claim.Engine
	usage  claim.Usage
	link   *rand.Rand // latency, loss and duplication of what the node sends
	tick   *event     // the node's one pending tick, queued while it is up
	group  int        // partition group
	stats  NodeStats
}

// Network is a simulated mesh. It is not safe for concurrent use; run
// independent Networks in parallel instead.
type Network struct {
	cfg    Config
	pool   *pool.Pool
	swarm  wire.Swarm
	nodes  []*node
	byID   map[wire.NodeID]int
	q      queue
	now    time.Duration
	seq    uint64
	latMin time.Duration
	latMax time.Duration
	loss   float64
	dup    float64

	links func(from, to int) bool

	owners    map[uint32][]int // who holds each block, as told by the engines' events
	overlaps  []Overlap
	anomalies []string
	nAnomaly  int
}

// Purposes of the random streams derived from the seed.
const (
	streamID = iota + 1
	streamLink
	streamPick
	streamGroupPick
)

// New builds a network whose nodes are all down; start them with Start,
// StartAll or At.
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
	for i := range cfg.Nodes {
		nd := &node{
			id:   n.newID(i),
			addr: linkLocal(i+1, cfg.Zone),
			link: newRand(derive(cfg.Seed, streamLink, uint64(i))),
		}
		n.byID[nd.id] = i
		n.nodes = append(n.nodes, nd)
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

// linkLocal returns fe80::k with the given zone.
func linkLocal(k int, zone string) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	binary.BigEndian.PutUint64(b[8:], uint64(k))
	return netip.AddrFrom16(b).WithZone(zone)
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

// Addr is node i's link-local address, the source of its datagrams.
func (n *Network) Addr(i int) netip.Addr { return n.nodes[i].addr }

// NodeOf returns the index of the node with the given id.
func (n *Network) NodeOf(id wire.NodeID) (int, bool) {
	i, ok := n.byID[id]
	return i, ok
}

// Up reports whether node i is running.
func (n *Network) Up(i int) bool { return n.nodes[i].up }

// Engine is node i's running engine, or nil while it is down. Call its
// methods that change state through Act, so that what it sends goes out.
func (n *Network) Engine(i int) *claim.Engine {
	if !n.nodes[i].up {
		return nil
	}
	return n.nodes[i].engine
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
// every tick (nil: no address is in use). It survives restarts.
func (n *Network) SetUsage(i int, u claim.Usage) { n.nodes[i].usage = u }

// Usage returns what SetUsage set for node i.
func (n *Network) Usage(i int) claim.Usage { return n.nodes[i].usage }

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

// Loss and Dup return the current link probabilities.
func (n *Network) Loss() float64 { return n.loss }

// Dup returns the current duplication probability.
func (n *Network) Dup() float64 { return n.dup }

// Start boots node i now with a fresh engine and the node's permanent id,
// as the daemon does after a reboot that lost its blocks. Learning follows
// the node's claim configuration.
func (n *Network) Start(i int) error {
	nd := n.nodes[i]
	if nd.up {
		return fmt.Errorf("sim: node %d is already up", i)
	}
	c := n.cfg.Claim
	c.Node, c.Swarm = nd.id, n.swarm
	if n.cfg.NodeConfig != nil {
		n.cfg.NodeConfig(i, &c)
	}
	e, err := claim.New(c, n.pool, n.pickRand(i), n.now)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", i, err)
	}
	nd.engine, nd.up = e, true
	nd.life++
	nd.stats.Boots++
	nd.tick = &event{kind: evTick, node: i, index: -1}
	n.push(nd.tick, max(e.Next(), n.now))
	n.tracef("n%d start id %v", i, nd.id)
	return nil
}

// pickRand is the random source of node i's engine for its coming life.
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
	for _, b := range nd.engine.Owned() {
		n.owners[b] = deleteNode(n.owners[b], i)
		if len(n.owners[b]) == 0 {
			delete(n.owners, b)
		}
	}
	n.unqueue(nd.tick)
	nd.up, nd.engine, nd.tick = false, nil, nil
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

// SetLinks restricts who hears whom beyond partitions: a copy from one node
// reaches another only if links(from, to) holds when it is sent and when it
// arrives. Nil, the default, is one broadcast domain. It lets a test build
// meshes where a multicast does not reach every node (for an overlay); Check
// assumes every node hears every other.
func (n *Network) SetLinks(links func(from, to int) bool) { n.links = links }

// reaches reports whether a copy from node i can reach node j now.
func (n *Network) reaches(i, j int) bool {
	return n.nodes[i].group == n.nodes[j].group && (n.links == nil || n.links(i, j))
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

// At schedules fn to run at time t, or now if t has passed, after
// everything already scheduled for that instant.
func (n *Network) At(t time.Duration, fn func()) {
	n.push(&event{kind: evAction, fn: fn, index: -1}, max(t, n.now))
}

// Act calls fn with node i's engine at the current time, then sends what the
// engine queued and reschedules its tick: the way to call engine methods
// such as EndLearning or Want. It reports false if the node is down.
func (n *Network) Act(i int, fn func(e *claim.Engine, now time.Duration)) bool {
	nd := n.nodes[i]
	if !nd.up {
		return false
	}
	fn(nd.engine, n.now)
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

// step runs the earliest event.
func (n *Network) step() {
	e := n.q[0]
	n.now = e.at
	switch e.kind {
	case evTick:
		nd := n.nodes[e.node]
		nd.engine.Tick(n.now, nd.usage)
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

// settle sends what node i's engine queued, records its events and moves its
// tick to the engine's Next, which a Step may have made earlier.
func (n *Network) settle(i int, ticked bool) {
	nd := n.nodes[i]
	for _, m := range nd.engine.Outbox() {
		n.send(i, &m)
	}
	for _, ev := range nd.engine.Events() {
		n.record(i, ev)
	}
	next := nd.engine.Next()
	if next <= n.now {
		if ticked {
			// Tick must leave nothing due; otherwise the engine would spin
			// at one instant forever. Report it and go on a little later.
			n.anomaly("node %d: Next() = %v right after Tick(%v)", i, next, n.now)
			next = n.now + time.Millisecond
		} else {
			next = n.now
		}
	}
	n.move(nd.tick, next)
}

func (n *Network) send(i int, m *wire.Message) {
	from := n.nodes[i]
	data, err := m.Encode()
	if err != nil {
		n.anomaly("node %d: cannot encode its message: %v", i, err)
		return
	}
	from.stats.Sent++
	from.stats.SentBytes += uint64(len(data))
	if n.cfg.Trace != nil {
		n.tracef("n%d send %s", i, describe(m))
	}
	mc := &multicast{from: i, addr: from.addr, data: data, rx: make([]copyTo, 0, len(n.nodes)-1)}
	for j, to := range n.nodes {
		// Multicast loop is off: a node does not hear itself. Nodes on
		// the other side of a partition get no copy. A node that is down
		// gets the copy if it has started by the time the copy arrives
		// (its next life); one that is up, only if it is still in the
		// same life then.
		if j == i || !n.reaches(i, j) {
			continue
		}
		life := to.life
		if !to.up {
			life++
		}
		copies := 1
		if n.dup > 0 && from.link.Float64() < n.dup {
			copies = 2
			to.stats.Dups++
		}
		for range copies {
			if n.loss > 0 && from.link.Float64() < n.loss {
				to.stats.Lost++
				continue
			}
			lat := n.latMin
			if n.latMax > n.latMin {
				lat += time.Duration(from.link.Int64N(int64(n.latMax-n.latMin) + 1))
			}
			mc.rx = append(mc.rx, copyTo{at: n.now + lat, to: j, life: life})
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

func (n *Network) deliver(mc *multicast, c copyTo) {
	to := n.nodes[c.to]
	if !to.up || to.life != c.life || !n.reaches(mc.from, c.to) {
		to.stats.Dropped++
		return
	}
	m, err := wire.Decode(mc.data)
	if err != nil {
		to.stats.Errors++
		n.anomaly("node %d: cannot decode a datagram of node %d: %v", c.to, mc.from, err)
		return
	}
	to.stats.Received++
	if n.cfg.Trace != nil {
		n.tracef("n%d recv n%d %s", c.to, mc.from, describe(&m))
	}
	if err := to.engine.Step(n.now, mc.addr, &m); err != nil {
		to.stats.Errors++
		n.anomaly("node %d: Step refused %s from node %d: %v", c.to, describe(&m), mc.from, err)
	}
	n.settle(c.to, false)
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

// describe is a short human form of a message for traces and errors.
func describe(m *wire.Message) string {
	var b strings.Builder
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
