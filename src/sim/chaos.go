package sim

// Chaos runs: whole routers with DHCP clients, under every fault at once.
//
// RunChaos builds one random scenario from a seed. Every router is the
// node.Node the daemon runs, with DHCP on, hosted by this package's Network:
// claims, forwarded renewals and their answers, handovers and SYNCs are
// encoded with wire and lost, duplicated and delayed on every hop, and Check
// states the ownership invariants. The run plays only what lies outside a
// node: the daemon's state file (written when the node says its state
// changed, at most every save interval, plus a persistent copy; restored at
// a start through node.Config.Saved as the daemon's restore does), the
// clients' link, and the faults (partitions, crashes and restarts, loss,
// duplication, latency, stalls, wall-clock jumps, roaming). Simulated DHCP
// clients (chaos_client.go) attach to one router at a time, do DORA, renew,
// rebind, roam, sleep and release. The invariants are in chaos_check.go.
//
// Everything random comes from the seed, through streams of its own (the
// Network's streams are untouched), so a run is replayed exactly by its seed.

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/lease"
	"ddhcpd/src/node"
	"ddhcpd/src/statedir"
)

// Random streams of chaos runs, apart from the Network's.
const (
	streamChaosScenario = iota + 100
	streamChaosFault
	streamChaosLink // a router's client link
	_               // retired: the routers' glue, now the nodes' own
	streamChaosClient
)

// ChaosOptions changes how a run is observed, never what happens in it.
type ChaosOptions struct {
	// Trace receives one line per fault, DHCP exchange, forward, owner
	// answer and datagram; for debugging a replayed seed.
	Trace func(line string)
}

// ChaosResult is the outcome of one chaos run.
type ChaosResult struct {
	Seed     uint64
	Scenario string // parameters and fault log, for a failure report
	Err      error  // the broken invariants; nil if all held
	// Known is what broke only through the known bug (chaosKnown in
	// chaos_check.go), kept apart from Err.
	Known   error
	Counts  ChaosCounts
	Virtual time.Duration // virtual time simulated
	// Settle is the bound of invariant (A): from the last fault until no
	// address may be held by two clients. LastConflict is how long after
	// the last fault the latest conflict actually ended (0: none outlived
	// the last fault), the settling time measured.
	Settle, LastConflict time.Duration
}

// ChaosCounts counts what happened in runs, by name: the run's own counts
// (faults, clients, conflicts, restores) and the nodes' counters
// (node.Counters, by their names in the control socket's stats).
type ChaosCounts map[string]int

// Add adds o to c.
func (c ChaosCounts) Add(o ChaosCounts) {
	for k, v := range o {
		c[k] += v
	}
}

// String lists the counts by name, a few per line.
func (c ChaosCounts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	group := ""
	for _, k := range keys {
		g, _, _ := strings.Cut(k, ".")
		if g != group {
			if group != "" {
				b.WriteByte('\n')
			}
			group = g
			fmt.Fprintf(&b, "%-9s", g)
		}
		fmt.Fprintf(&b, " %s=%d", strings.TrimPrefix(k, g+"."), c[k])
	}
	return b.String()
}

// RunChaos runs the chaos scenario of seed and checks its invariants. A
// panic in any part is turned into the result's error, so that the report
// still names the seed.
func RunChaos(seed uint64, opt ChaosOptions) (res ChaosResult) {
	sc := newChaosScenario(seed)
	c := &chaosRun{sc: sc, trace: opt.Trace}
	res.Seed, res.Settle = seed, sc.settleBound()
	defer func() {
		if p := recover(); p != nil {
			res.Err = fmt.Errorf("panic at %v: %v\n%s", c.now(), p, debug.Stack())
		}
		res.Scenario = c.describe()
		res.Counts = c.counts
		if c.net != nil {
			res.Virtual = c.net.Now()
		}
		if c.lastConflictEnd > c.tq && c.tq > 0 {
			res.LastConflict = c.lastConflictEnd - c.tq
		}
	}()
	res.Err = c.run()
	res.Known = c.known.err(fmt.Sprintf("chaos seed %d, known bug", seed))
	return res
}

type chaosLearning uint8

const (
	chaosLearnSkip chaosLearning = iota // learning time 0 (-L)
	chaosLearnFull                      // a block timeout, the C default
	chaosLearnFast                      // a block timeout, ended early by SYNC answers
)

func (l chaosLearning) String() string { return [...]string{"skipped", "full", "fast join"}[l] }

// chaosScenario is what a seed draws: the mesh, the timers, the clients and
// how many faults hit them.
type chaosScenario struct {
	seed         uint64
	nodes        int
	clients      int
	exp          uint8
	prefix       netip.Prefix
	claim        claim.Config
	bt           time.Duration // block timeout in force
	lease        time.Duration // DHCP lease time
	learn        chaosLearning
	spare        []int
	tight        bool          // a pool little larger than the clients need
	saveEvery    time.Duration // the state file (tmpfs) at most this often
	persistEvery time.Duration // the persistent copy; 0: none configured
	sharedSID    bool          // one server id on every router (Gluon's next-node address)
	latLo, latHi time.Duration
	loss, dup    float64
	faults       int
	gapMax       time.Duration // between faults
	roamMean     time.Duration // a client moves to another router
	awayMean     time.Duration // a client sleeps or leaves (releasing)
	idleMean     time.Duration // and stays away
}

func newChaosScenario(seed uint64) *chaosScenario {
	r := newRand(derive(seed, streamChaosScenario))
	sc := &chaosScenario{seed: seed}
	switch k := r.IntN(10); {
	case k < 6:
		sc.nodes = 2 + r.IntN(7)
	case k < 9:
		sc.nodes = 6 + r.IntN(10)
	default:
		sc.nodes = 16 + r.IntN(17)
	}
	sc.clients = min(150, sc.nodes*(1+r.IntN(6)))
	sc.exp = [...]uint8{0, 1, 2, 2, 3, 3, 4}[r.IntN(7)]
	size := 1 << sc.exp

	var c claim.Config
	switch k := r.IntN(10); {
	case k < 7: // the simulator's short timers
		c = claim.Config{
			BlockTimeout:     6 * time.Second,
			TentativeTimeout: 3 * time.Second,
			InquireInterval:  500 * time.Millisecond,
			NeedlessTimeout:  30 * time.Second,
		}
	case k < 9:
		bt := time.Duration(10+r.IntN(11)) * time.Second
		c = claim.Config{
			BlockTimeout:     bt,
			TentativeTimeout: bt / 2,
			InquireInterval:  500 * time.Millisecond,
			NeedlessTimeout:  60 * time.Second,
		}
	default: // the defaults: block timeout 60 s
	}
	sc.learn = chaosLearning(r.IntN(3))
	switch sc.learn {
	case chaosLearnSkip:
		c.LearningTime = 0
	case chaosLearnFull:
		c.LearningTime = -1
	case chaosLearnFast:
		c.LearningTime = -1
		c.SyncQuiet = claim.DefaultSyncQuiet
	}
	sc.claim = c
	sc.bt = c.WithDefaults().BlockTimeout
	// A lease lasts a few block timeouts, as 300 s does against 60 s.
	sc.lease = max(10*time.Second, sc.bt*time.Duration(3+r.IntN(6)))

	sc.spare = make([]int, sc.nodes)
	for i := range sc.spare {
		sc.spare[i] = 1 + r.IntN(2*size)
	}
	sc.saveEvery = [...]time.Duration{time.Second, time.Second, 5 * time.Second, sc.bt}[r.IntN(4)]
	if r.IntN(2) == 0 {
		sc.persistEvery = sc.lease * time.Duration(1+r.IntN(5))
	}
	sc.sharedSID = r.IntN(4) > 0

	// Mostly enough blocks that clients and spare leases take at most a
	// third of the pool; a tight pool (a third of the runs) makes the
	// partitions' nodes pick the same blocks, and so conflicts, likely.
	need := sc.clients
	for _, s := range sc.spare {
		need += s
	}
	usable := max(1, size-1)
	blocks := (need+usable-1)/usable + sc.nodes
	if sc.tight = r.IntN(3) == 0; sc.tight {
		blocks = blocks * (12 + r.IntN(9)) / 10
	} else {
		blocks *= 3 + r.IntN(4)
	}
	hostBits := int(sc.exp) + bits.Len(uint(blocks-1))
	sc.prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), 0, 0}), 32-hostBits).Masked()

	sc.latLo, sc.latHi = chaosLatency(r)
	if r.IntN(3) > 0 {
		sc.loss = 0.2 * r.Float64()
	}
	if r.IntN(2) == 0 {
		sc.dup = 0.1 * r.Float64()
	}
	sc.faults = 3 + r.IntN(14)
	sc.gapMax = max(2*sc.bt, sc.lease/2)
	sc.roamMean = time.Duration(float64(sc.lease) * (0.5 + 3.5*r.Float64()))
	sc.awayMean = time.Duration(float64(sc.lease) * (1 + 5*r.Float64()))
	sc.idleMean = time.Duration(float64(sc.lease) * (0.1 + r.Float64()))
	return sc
}

// settleBound is the time after the last fault from which no address may be
// held by two clients (invariant A). See chaos_check.go for why it suffices.
func (sc *chaosScenario) settleBound() time.Duration { return sc.lease + 2*sc.bt }

// chaosLatencyMax is the most a mesh datagram takes in any chaos run.
const chaosLatencyMax = 100 * time.Millisecond

// chaosLatency draws a latency range within 1..100 ms.
func chaosLatency(r *rand.Rand) (lo, hi time.Duration) {
	const floor, ceil = time.Millisecond, chaosLatencyMax
	lo = floor + time.Duration(r.Int64N(int64(ceil-floor)+1))
	hi = lo + time.Duration(r.Int64N(int64(ceil-lo)+1))
	return lo, hi
}

// chaosRun is one run in progress.
type chaosRun struct {
	sc      *chaosScenario
	r       *rand.Rand // fault choices
	net     *Network
	hosts   []*chaosHost
	clients []*chaosClient
	byHW    map[[6]byte]*chaosClient
	holders map[uint32][]int // who owns each block, from the engines' events

	// Invariant (A): who believes to hold which address, and the
	// conflicts (two believers at once) still going on.
	active map[netip.Addr][]*chaosClient
	open   map[netip.Addr][]*chaosConflict

	// What the checks observe of the nodes' decisions (chaos_check.go):
	// the client packet a node is being stepped with, and the handovers
	// on their way (a LEASEACK or LEASENAK answering one is no client's).
	asking    *chaosAsk
	handovers map[chaosRenewKey]bool

	stalled      []bool
	wallOff      []time.Duration // each node's wall clock minus the true time
	loss, dup    float64
	latLo, latHi time.Duration

	tq              time.Duration // the last fault; the quiet phase starts here
	lastConflictEnd time.Duration
	counts          ChaosCounts
	bad             violations // broken invariants
	known           violations // broken through the known bug (chaosKnown)
	log             []string
	trace           func(string)
}

// chaosHost is what surrounds one router's node and outlives it: the state
// files on the router's disks, the daemon's schedule for writing them, and
// the router's client link.
type chaosHost struct {
	// life changes at every start and stop; scheduled work of another
	// life does nothing.
	life int
	link *rand.Rand // delays of the replies on the client link

	// saved is what the next start restores (node.Config.Saved).
	saved *node.Saved

	// State files: the last save to the state directory (tmpfs) and the
	// persistent copy (flash), and what a clean stop at the last crash
	// would have left in them. As the daemon, the router writes only
	// when its node said the state changed, the state file at most every
	// save interval, the copy at most every persist interval.
	tmpfs, persist           *chaosSaved
	finalTmpfs, finalPersist *chaosSaved
	dirty, persistDirty      bool
	last, persistLast        time.Duration // when each was last written
	wakeAt                   time.Duration // a write scheduled; -1 for none
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

func (c *chaosRun) now() time.Duration {
	if c.net == nil {
		return 0
	}
	return c.net.Now()
}

func (c *chaosRun) count(name string) { c.counts[name]++ }

func (c *chaosRun) tracef(format string, args ...any) {
	if c.trace != nil {
		c.trace(fmt.Sprintf("%12s ", c.now()) + fmt.Sprintf(format, args...))
	}
}

// logf records a fault for the failure report (and the trace).
func (c *chaosRun) logf(format string, args ...any) {
	line := fmt.Sprintf("%12s ", c.now()) + fmt.Sprintf(format, args...)
	c.log = append(c.log, line)
	if c.trace != nil {
		c.trace(line)
	}
}

func (c *chaosRun) describe() string {
	sc := c.sc
	var b strings.Builder
	fmt.Fprintf(&b, "chaos seed %d: %d nodes, %d clients, pool %v blocks of %d (tight %v), block timeout %v, lease %v, learning %s, spare %v\n",
		sc.seed, sc.nodes, sc.clients, sc.prefix, 1<<sc.exp, sc.tight, sc.bt, sc.lease, sc.learn, sc.spare)
	fmt.Fprintf(&b, "state saved every %v, persistent copy every %v, shared server id %v, latency %v..%v, loss %.3f, dup %.3f, %d faults, roam every %v, away every %v for %v",
		sc.saveEvery, sc.persistEvery, sc.sharedSID, sc.latLo, sc.latHi, sc.loss, sc.dup, sc.faults,
		sc.roamMean.Round(time.Second), sc.awayMean.Round(time.Second), sc.idleMean.Round(time.Second))
	const maxLog = 60
	for i, l := range c.log {
		if i == maxLog {
			fmt.Fprintf(&b, "\n\t... %d more", len(c.log)-maxLog)
			break
		}
		b.WriteString("\n\t")
		b.WriteString(l)
	}
	return b.String()
}

func (c *chaosRun) run() error {
	sc := c.sc
	c.counts = make(ChaosCounts)
	c.r = newRand(derive(sc.seed, streamChaosFault))
	c.byHW = make(map[[6]byte]*chaosClient)
	c.holders = make(map[uint32][]int)
	c.active = make(map[netip.Addr][]*chaosClient)
	c.open = make(map[netip.Addr][]*chaosConflict)
	c.handovers = make(map[chaosRenewKey]bool)
	c.stalled = make([]bool, sc.nodes)
	c.wallOff = make([]time.Duration, sc.nodes)
	c.loss, c.dup, c.latLo, c.latHi = sc.loss, sc.dup, sc.latLo, sc.latHi
	c.tq = -1

	cfg := Config{
		Nodes:      sc.nodes,
		Pool:       sc.prefix,
		SizeExp:    sc.exp,
		Claim:      sc.claim,
		NodeConfig: c.nodeConfig,
		LatencyMin: sc.latLo,
		LatencyMax: sc.latHi,
		Loss:       sc.loss,
		Dup:        sc.dup,
		Seed:       sc.seed,
		Observe:    c.observe,
		OnReady:    c.onReady,
		Trace:      c.trace,
	}
	net, err := New(cfg)
	if err != nil {
		return err
	}
	c.net = net
	// A stalled node neither sends nor receives (its socket buffers
	// overflow); partitions are the Network's own.
	net.SetReach(func(from, to int) bool { return !c.stalled[from] && !c.stalled[to] })
	for i := range sc.nodes {
		c.hosts = append(c.hosts, &chaosHost{
			link:   newRand(derive(sc.seed, streamChaosLink, uint64(i))),
			wakeAt: -1,
		})
	}
	for k := range sc.clients {
		c.clients = append(c.clients, newChaosClient(c, k))
	}

	// Nodes start together or spread over a block timeout; clients start
	// while they do.
	spread := time.Duration(0)
	if c.r.IntN(2) == 0 {
		spread = time.Duration(c.r.Int64N(int64(sc.bt)))
	}
	for i := range sc.nodes {
		at := time.Duration(c.r.Int64N(int64(spread) + 1))
		net.At(at, func() {
			if !net.Up(i) && net.Stats(i).Boots == 0 {
				c.boot(i, "first start")
			}
		})
	}
	for _, cl := range c.clients {
		cl.router = c.r.IntN(sc.nodes)
		at := time.Duration(c.r.Int64N(int64(spread + sc.lease/2)))
		net.At(at, cl.start)
	}
	c.monitor()

	// Chaos: faults at random moments, each a little after the last.
	t := sc.lease/2 + time.Duration(c.r.Int64N(int64(sc.lease)))
	for range sc.faults {
		net.RunFor(t - net.Now())
		c.fault()
		t += time.Duration(c.r.Int64N(int64(sc.gapMax))) + time.Millisecond
	}
	net.RunFor(t - net.Now())
	c.quiet()

	// Quiet: from here on only the clients act. (A) is checked from the
	// settling bound on, (C) from two block timeouts on, every half block
	// timeout; the run goes on for a lease time after the bound, so that
	// every lease granted in the settled mesh is renewed at least once.
	settle := c.tq + sc.settleBound()
	net.At(settle, c.checkSettled)
	for at := c.tq + 2*sc.bt; at < settle+sc.lease+sc.bt; at += sc.bt / 2 {
		net.At(at, c.checkOwnership)
	}
	net.RunFor(settle + sc.lease + sc.bt - net.Now())
	c.checkOwnership()
	c.checkEnd()
	return c.bad.err(fmt.Sprintf("chaos seed %d", sc.seed))
}

// nodeConfig is each start's configuration of node i: the daemon's, with
// DHCP on, the node's spare leases, and the state its start restores.
func (c *chaosRun) nodeConfig(i int, nc *node.Config) {
	sc := c.sc
	nc.Claim.SpareLeases = sc.spare[i]
	nc.DHCP = &dhcp4.Config{
		ServerID:  c.serverID(i),
		LeaseTime: sc.lease,
		Reserve:   max(2, sc.spare[i]/4),
	}
	nc.Saved, c.hosts[i].saved = c.hosts[i].saved, nil
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

// live reports whether node i runs and is not stalled.
func (c *chaosRun) live(i int) bool { return c.net.Up(i) && !c.stalled[i] }

// boot starts node i with what its state files hold, as the daemon starts:
// the state file, or the persistent copy when there is none.
func (c *chaosRun) boot(i int, how string) {
	h := c.hosts[i]
	h.life++
	h.dirty, h.persistDirty = false, false
	h.last, h.persistLast = -c.sc.saveEvery, -c.sc.persistEvery
	h.wakeAt = -1
	sv := c.readState(i)
	h.saved = sv
	if err := c.net.Start(i); err != nil {
		c.bad.addf("at %v: %v", c.now(), err)
		return
	}
	c.logf("n%d start (%s)", i, how)
	if sv != nil {
		c.noteRestore(i, sv)
	}
}

// readState is what the daemon's restore hands the node: the state file
// (the persistent copy if there is none), decoded from its JSON, its
// leases' times moved onto the new run's clock by how old the wall clock
// says it is (never counted backwards).
func (c *chaosRun) readState(i int) *node.Saved {
	h := c.hosts[i]
	s, from := h.tmpfs, "state file"
	if s == nil {
		s, from = h.persist, "persistent copy"
	}
	if s == nil {
		return nil
	}
	var st statedir.State
	if err := json.Unmarshal(c.encode(s, i), &st); err != nil {
		c.bad.addf("at %v: n%d cannot read its state: %v", c.now(), i, err)
		return nil
	}
	elapsed := max(c.wall(i).Sub(st.SavedAt), 0)
	sv := &node.Saved{From: from, Age: elapsed, Blocks: st.Blocks}
	sv.Leases, sv.Refused = statedir.Leases(c.now(), elapsed, st.Leases)
	return sv
}

// noteRestore counts what node i took back from its state right after its
// start: the blocks ours at once and those it will claim back, the leases in
// its table.
func (c *chaosRun) noteRestore(i int, sv *node.Saved) {
	nd := c.net.Node(i)
	restored := nd.Leases().Len()
	var now1, later []uint32
	for _, b := range sv.Blocks {
		if nd.Engine().Block(b).State == claim.Ours {
			now1 = append(now1, b)
		} else {
			later = append(later, b)
		}
	}
	c.counts["state.leases_restored"] += restored
	c.counts["state.leases_skipped"] += len(sv.Leases) + sv.Refused - restored
	c.counts["state.blocks_restored"] += len(now1)
	c.counts["state.blocks_preferred"] += len(later)
	c.logf("n%d restores its %s, %v old (wall clock): %d leases, blocks %v at once, %v later",
		i, sv.From, sv.Age.Round(time.Second), restored, now1, later)
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

// snapshot is the state file the daemon would write now: the blocks the
// engine owns, the lost blocks whose leases the table keeps, the leases.
func (c *chaosRun) snapshot(i int) *chaosSaved {
	nd := c.net.Node(i)
	s := &chaosSaved{savedAt: c.wall(i), now: c.now(), blocks: nd.Engine().Owned(), leases: nd.Leases().Leases()}
	idx, lost := nd.Leases().Blocks()
	for k, b := range idx {
		if lost[k] {
			s.lost = append(s.lost, b)
		}
	}
	return s
}

// save writes node i's state files that are out of date and due, and
// wakes up when the next one falls due, as the daemon's loop does.
func (c *chaosRun) save(i int) {
	h := c.hosts[i]
	if !c.live(i) {
		return // a stalled daemon writes when it resumes
	}
	now := c.now()
	if h.dirty {
		h.persistDirty = true
	}
	main := h.dirty && now >= h.last+c.sc.saveEvery
	persist := c.sc.persistEvery > 0 && h.persistDirty && now >= h.persistLast+c.sc.persistEvery
	if main || persist {
		s := c.snapshot(i)
		if main {
			h.tmpfs, h.dirty, h.last = s, false, now
		}
		if persist {
			h.persist, h.persistDirty, h.persistLast = s, false, now
		}
	}
	next := time.Duration(-1)
	if h.dirty {
		next = h.last + c.sc.saveEvery
	}
	if c.sc.persistEvery > 0 && h.persistDirty {
		if at := h.persistLast + c.sc.persistEvery; next < 0 || at < next {
			next = at
		}
	}
	if next < 0 || (h.wakeAt >= 0 && h.wakeAt <= next) {
		return
	}
	h.wakeAt = next
	life := h.life
	c.net.At(next, func() {
		if h.life == life && h.wakeAt == next {
			h.wakeAt = -1
			c.save(i)
		}
	})
}

// crash stops node i at once. What a clean stop would have written (the
// daemon's final save: each file that is out of date) is kept, for a
// restart that finds the state of the stop moment.
func (c *chaosRun) crash(i int) {
	if !c.net.Up(i) {
		return
	}
	h := c.hosts[i]
	h.finalTmpfs, h.finalPersist = h.tmpfs, h.persist
	if h.dirty || (c.sc.persistEvery > 0 && h.persistDirty) {
		s := c.snapshot(i)
		if h.dirty {
			h.finalTmpfs = s
		}
		if c.sc.persistEvery > 0 {
			h.finalPersist = s
		}
	}
	c.takeCounters(i)
	for _, b := range c.net.Engine(i).Owned() {
		c.dropHolder(b, i)
	}
	c.stalled[i] = false // a crashed node's queue entries are gone anyway
	c.net.Crash(i)
	h.life++
}

// Restart kinds: how a node comes back, and with which state file.
const (
	restartFresh  = iota // no state: wiped, or never written
	restartTmpfs         // the daemon crashed; procd starts it with the last periodic save
	restartFinal         // a clean restart: the state of the stop moment
	restartReboot        // the router rebooted: tmpfs is gone, the persistent copy (if any) remains
)

// restart boots a node that is down, with state files chosen at random.
func (c *chaosRun) restart(i int) {
	h := c.hosts[i]
	kind := [...]int{restartFresh, restartTmpfs, restartTmpfs, restartFinal, restartFinal, restartReboot, restartReboot}[c.r.IntN(7)]
	how := ""
	switch kind {
	case restartFresh:
		h.tmpfs, h.persist = nil, nil
		how = "no state file"
		c.count("fault.restart_fresh")
	case restartTmpfs:
		how = "last periodic save"
		c.count("fault.restart_periodic_save")
	case restartFinal:
		h.tmpfs, h.persist = h.finalTmpfs, h.finalPersist
		how = "state of the stop"
		c.count("fault.restart_clean")
	case restartReboot:
		h.tmpfs = nil
		how = "reboot, persistent copy"
		if h.persist == nil {
			how = "reboot, no persistent copy"
		}
		c.count("fault.reboot")
		if c.r.IntN(2) == 0 {
			// No RTC: the clock starts at the firmware's build date,
			// years behind, until NTP steps it forward.
			c.wallOff[i] = chaosBuildDate().Sub(chaosEpoch()) - c.now()
			how += ", wall clock at build date"
			c.count("fault.wall_reset")
			life := h.life + 1
			c.net.At(c.now()+time.Duration(5+c.r.IntN(55))*time.Second, func() {
				if h.life == life && c.net.Up(i) {
					c.wallOff[i] = 0
					c.logf("n%d NTP sync: wall clock steps forward to the true time", i)
					c.count("fault.wall_ntp_sync")
				}
			})
		}
	}
	c.boot(i, how)
}

// chaosEpoch is the true wall clock at virtual time 0.
func chaosEpoch() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// chaosBuildDate is where the wall clock of a router without RTC starts.
func chaosBuildDate() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }

// wall is node i's wall clock now.
func (c *chaosRun) wall(i int) time.Time { return chaosEpoch().Add(c.now() + c.wallOff[i]) }

// fault applies one random fault.
func (c *chaosRun) fault() {
	net, r, n := c.net, c.r, c.sc.nodes
	var up, down []int
	for i := range n {
		if net.Up(i) {
			if !c.stalled[i] {
				up = append(up, i)
			}
		} else {
			down = append(down, i)
		}
	}
	switch k := r.IntN(17); {
	case k < 3: // partition: two or three groups, or one node cut off
		var groups [][]int
		if r.IntN(3) == 0 {
			groups = [][]int{{r.IntN(n)}}
		} else {
			groups = make([][]int, 2+r.IntN(2))
			for i := range n {
				g := r.IntN(len(groups))
				groups[g] = append(groups[g], i)
			}
		}
		net.Partition(groups...)
		c.count("fault.partition")
		c.logf("partition %v", groups)
	case k < 5: // merge
		net.Heal()
		c.count("fault.merge")
		c.logf("merge")
	case k < 8: // crash a few nodes, for a while
		if len(up) == 0 {
			break
		}
		for range 1 + r.IntN(max(1, len(up)/4)) {
			i := up[r.IntN(len(up))]
			if !net.Up(i) {
				continue
			}
			c.crash(i)
			c.count("fault.crash")
			d := time.Duration(r.Int64N(int64(3*c.sc.bt))) + 500*time.Millisecond
			c.logf("crash n%d for %v", i, d)
			life := c.hosts[i].life
			net.At(c.now()+d, func() {
				if !net.Up(i) && c.hosts[i].life == life {
					c.restart(i)
				}
			})
			c.roamAway(i)
		}
	case k < 10: // restart a node in place, or one that is down
		var i int
		switch {
		case len(down) > 0 && r.IntN(2) == 0:
			i = down[r.IntN(len(down))]
		case len(up) > 0:
			i = up[r.IntN(len(up))]
			c.crash(i)
			c.logf("n%d stops to restart", i)
		default:
			return
		}
		c.count("fault.restart")
		c.restart(i)
	case k < 12: // a node stalls: its monotonic clock jumps when it resumes
		if len(up) == 0 {
			break
		}
		i := up[r.IntN(len(up))]
		d := time.Duration(r.Int64N(int64(3*c.sc.bt))) + 200*time.Millisecond
		c.stall(i, d)
	case k < 14: // links: loss, duplication, latency (reordering)
		loss, dup := 0.0, 0.0
		if r.IntN(3) > 0 {
			loss = 0.2 * r.Float64()
		}
		if r.IntN(2) == 0 {
			dup = 0.1 * r.Float64()
		}
		lo, hi := chaosLatency(r)
		c.setLinks(loss, dup, lo, hi)
		c.count("fault.links")
		c.logf("links: loss %.3f, dup %.3f, latency %v..%v", loss, dup, lo, hi)
	case k < 16: // a wall clock jumps years (it matters at the next restart)
		i := r.IntN(n)
		years := time.Duration(1+r.IntN(10)) * 365 * 24 * time.Hour
		if r.IntN(2) == 0 {
			years = -years
		}
		c.wallOff[i] += years
		c.count("fault.wall_jump")
		c.logf("n%d wall clock jumps %+.0f days", i, years.Hours()/24)
	default: // the clients of one router walk to another one
		if len(up) < 2 {
			break
		}
		from, to := up[r.IntN(len(up))], up[r.IntN(len(up))]
		moved := 0
		for _, cl := range c.clients {
			if cl.router == from && r.IntN(2) == 0 {
				cl.roam(to)
				moved++
			}
		}
		c.count("fault.mass_roam")
		c.logf("%d clients walk from n%d to n%d", moved, from, to)
	}
	c.sample()
}

// roamAway moves some clients of a router that went down to routers that
// are up, a little later, as phones find another access point.
func (c *chaosRun) roamAway(i int) {
	for _, cl := range c.clients {
		if cl.router != i || c.r.IntN(2) == 0 {
			continue
		}
		d := time.Second + time.Duration(c.r.Int64N(int64(9*time.Second)))
		c.net.At(c.now()+d, func() {
			if cl.router != i || c.net.Up(i) {
				return
			}
			var up []int
			for j := range c.sc.nodes {
				if c.net.Up(j) {
					up = append(up, j)
				}
			}
			if len(up) > 0 {
				cl.roam(up[cl.rng.IntN(len(up))])
			}
		})
	}
}

// stall freezes node i for d: no tick, nothing sent or received, no DHCP
// answered, no state written. When it resumes, its monotonic clock has
// jumped d at once: its next tick, due at once, covers the whole gap.
func (c *chaosRun) stall(i int, d time.Duration) {
	c.stalled[i] = true
	c.net.pauseTicks(i)
	c.count("fault.stall")
	c.logf("n%d stalls for %v", i, d)
	life := c.hosts[i].life
	c.net.At(c.now()+d, func() { c.resume(i, life) })
}

func (c *chaosRun) resume(i, life int) {
	if !c.stalled[i] || c.hosts[i].life != life {
		return
	}
	c.stalled[i] = false
	c.net.resumeTicks(i)
	c.tracef("n%d resumes", i)
	c.save(i)
}

func (c *chaosRun) setLinks(loss, dup float64, lo, hi time.Duration) {
	c.loss, c.dup, c.latLo, c.latHi = loss, dup, lo, hi
	_ = c.net.SetLoss(loss)
	_ = c.net.SetDup(dup)
	_ = c.net.SetLatency(lo, hi)
}

// quiet is the last fault: the mesh is merged, loss and duplication stop
// (latency keeps reordering), stalled nodes resume and nodes that are down
// start again, each with a state file chosen at random.
func (c *chaosRun) quiet() {
	c.net.Heal()
	c.setLinks(0, 0, c.latLo, c.latHi)
	for i := range c.sc.nodes {
		if c.stalled[i] {
			c.resume(i, c.hosts[i].life)
		}
	}
	for i := range c.sc.nodes {
		if !c.net.Up(i) {
			c.restart(i)
		}
	}
	c.tq = c.now()
	c.logf("quiet: merged, no loss, every node up; (A) holds from %v", c.tq+c.sc.settleBound())
	c.sample()
}

// observe follows the engines' events: who holds each block, for (B).
func (c *chaosRun) observe(_ time.Duration, i int, ev claim.Event) {
	switch ev.Kind {
	case claim.EventOwned:
		c.count("block.owned")
		c.holders[ev.Block] = append(c.holders[ev.Block], i)
	case claim.EventLost:
		c.count("block.lost")
		c.dropHolder(ev.Block, i)
	case claim.EventReleased:
		c.count("block.released")
		c.dropHolder(ev.Block, i)
	case claim.EventDefended:
		c.count("block.defended")
	case claim.EventLearningEnded:
		c.count("block.learning_ended")
	}
}

func (c *chaosRun) dropHolder(b uint32, i int) {
	if hs := deleteNode(c.holders[b], i); len(hs) > 0 {
		c.holders[b] = hs
	} else {
		delete(c.holders, b)
	}
}

// onReady carries out what node i decided besides its datagrams, as the
// daemon does: DHCP replies down the client link, and the state file when
// the state changed. The checks look at its renew-family datagrams.
func (c *chaosRun) onReady(i int, rd node.Ready) {
	for _, d := range rd.Mesh {
		c.watchRenew(i, d)
	}
	for _, r := range rd.Replies {
		c.reply(i, r)
	}
	if rd.StateChanged {
		c.hosts[i].dirty = true
		c.save(i)
	}
}
