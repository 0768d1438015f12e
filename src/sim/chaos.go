package sim

// Chaos runs: whole routers with DHCP clients, under every fault at once.
//
// RunChaos builds one random scenario from a seed. The claim engines run on
// this package's Network, so their traffic is encoded and decoded with wire
// on every hop and Check states the ownership invariants. Around each engine
// the run puts the rest of a router as the daemon glues it (chaos_router.go):
// a lease table, a dhcp4.Server, renewals for another node's block forwarded
// with RENEWLEASE over the simulated mesh (encoded with wire, lost,
// duplicated and delayed like the claim traffic), the owner's LEASEACK or
// LEASENAK, the handover of live leases when a block is lost, Want for a
// renewal in a block nobody owns, parked DISCOVERs and forwards with a
// bounded wait, the state file, and fast join's SYNC. Simulated DHCP clients
// (chaos_client.go) attach to one router at a time, do DORA, renew, rebind,
// roam, sleep and release. The invariants are in chaos_check.go.
//
// Everything random comes from the seed, through streams of its own (the
// Network's streams are untouched), so a run is replayed exactly by its seed.

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"ddhcpd/src/claim"
)

// Random streams of chaos runs, apart from the Network's.
const (
	streamChaosScenario = iota + 100
	streamChaosFault
	streamChaosLink
	streamChaosRouter
	streamChaosClient
)

// ChaosOptions changes how a run is observed, never what happens in it.
type ChaosOptions struct {
	// Trace receives one line per fault, DHCP exchange, forward, owner
	// answer and claim datagram; for debugging a replayed seed.
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

// ChaosCounts counts what happened in runs, by name.
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

// chaosLatency draws a latency range within 1..100 ms.
func chaosLatency(r *rand.Rand) (lo, hi time.Duration) {
	const floor, ceil = time.Millisecond, 100 * time.Millisecond
	lo = floor + time.Duration(r.Int64N(int64(ceil-floor)+1))
	hi = lo + time.Duration(r.Int64N(int64(ceil-lo)+1))
	return lo, hi
}

// chaosRun is one run in progress.
type chaosRun struct {
	sc      *chaosScenario
	r       *rand.Rand // fault choices
	net     *Network
	routers []*chaosRouter
	clients []*chaosClient
	byHW    map[[6]byte]*chaosClient
	byAddr  map[netip.Addr]int // node link-local address, without zone -> node
	holders map[uint32][]int   // who owns each block, from the engines' events

	// Invariant (A): who believes to hold which address, and the
	// conflicts (two believers at once) still going on.
	active map[netip.Addr][]*chaosClient
	open   map[netip.Addr][]*chaosConflict

	stalled      []bool
	wallOff      []time.Duration // each node's wall clock minus the true time
	links        []*rand.Rand    // per node: what its unicasts and SYNCs meet
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
	c.byAddr = make(map[netip.Addr]int)
	c.holders = make(map[uint32][]int)
	c.active = make(map[netip.Addr][]*chaosClient)
	c.open = make(map[netip.Addr][]*chaosConflict)
	c.stalled = make([]bool, sc.nodes)
	c.wallOff = make([]time.Duration, sc.nodes)
	c.loss, c.dup, c.latLo, c.latHi = sc.loss, sc.dup, sc.latLo, sc.latHi
	c.tq = -1

	cfg := Config{
		Nodes:      sc.nodes,
		Pool:       sc.prefix,
		SizeExp:    sc.exp,
		Claim:      sc.claim,
		NodeConfig: func(i int, cc *claim.Config) { cc.SpareLeases = sc.spare[i] },
		LatencyMin: sc.latLo,
		LatencyMax: sc.latHi,
		Loss:       sc.loss,
		Dup:        sc.dup,
		Seed:       sc.seed,
		Observe:    c.observe,
		Trace:      c.trace,
	}
	net, err := New(cfg)
	if err != nil {
		return err
	}
	c.net = net
	// A stalled node neither sends nor receives (its socket buffers
	// overflow); partitions are the Network's own.
	net.SetLinks(func(from, to int) bool { return !c.stalled[from] && !c.stalled[to] })
	for i := range sc.nodes {
		c.byAddr[net.Addr(i).WithZone("")] = i
		c.links = append(c.links, newRand(derive(sc.seed, streamChaosLink, uint64(i))))
		c.routers = append(c.routers, &chaosRouter{c: c, i: i, hkAt: -1})
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
				c.boot(i, nil, "first start")
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

// boot starts node i with the given state file (nil: none) and everything
// the daemon does before its loop: a fresh lease table and DHCP server,
// the restore, the end of learning with -L 0, and fast join's SYNC.
func (c *chaosRun) boot(i int, state *chaosSaved, how string) {
	r := c.routers[i]
	r.reset()
	c.net.SetUsage(i, r.table)
	if err := c.net.Start(i); err != nil {
		c.bad.addf("at %v: %v", c.now(), err)
		return
	}
	c.logf("n%d start (%s)", i, how)
	c.net.Act(i, func(e *claim.Engine, now time.Duration) {
		if state != nil {
			c.restore(r, e, now, c.encode(state, i))
		}
		if c.sc.learn == chaosLearnSkip {
			e.EndLearning(now)
		}
	})
	if c.sc.learn == chaosLearnFast {
		life := r.life
		c.sync(i, life)
		c.net.At(c.now()+time.Second, func() { c.sync(i, life) })
	}
	r.poke(c.now())
	r.saveLoop(r.life)
	if c.sc.persistEvery > 0 {
		r.persistLoop(r.life)
	}
}

// crash stops node i at once. What a clean stop would have written is kept,
// for a restart that finds the state of the crash moment.
func (c *chaosRun) crash(i int) {
	if !c.net.Up(i) {
		return
	}
	r := c.routers[i]
	r.final = r.snapshot()
	for _, b := range c.net.Engine(i).Owned() {
		c.dropHolder(b, i)
	}
	c.stalled[i] = false // a crashed node's queue entries are gone anyway
	c.net.Crash(i)
	r.down()
}

// Restart kinds: how a node comes back, and with which state file.
const (
	restartFresh  = iota // no state: wiped, or never written
	restartTmpfs         // the daemon crashed; procd starts it with the last periodic save
	restartFinal         // a clean restart: the state of the stop moment
	restartReboot        // the router rebooted: tmpfs is gone, the persistent copy (if any) remains
)

// restart boots a node that is down, with a state file chosen at random.
func (c *chaosRun) restart(i int) {
	r := c.routers[i]
	kind := [...]int{restartFresh, restartTmpfs, restartTmpfs, restartFinal, restartFinal, restartReboot, restartReboot}[c.r.IntN(7)]
	var st *chaosSaved
	how := ""
	switch kind {
	case restartFresh:
		r.tmpfs, r.persist = nil, nil
		how = "no state file"
		c.count("fault.restart_fresh")
	case restartTmpfs:
		st, how = r.tmpfs, "last periodic save"
		c.count("fault.restart_periodic_save")
	case restartFinal:
		st, how = r.final, "state of the stop"
		c.count("fault.restart_clean")
	case restartReboot:
		r.tmpfs = nil
		st, how = r.persist, "reboot, persistent copy"
		if st == nil {
			how = "reboot, no persistent copy"
		}
		c.count("fault.reboot")
		if c.r.IntN(2) == 0 {
			// No RTC: the clock starts at the firmware's build date,
			// years behind, until NTP steps it forward.
			c.wallOff[i] = chaosBuildDate().Sub(chaosEpoch()) - c.now()
			how += ", wall clock at build date"
			c.count("fault.wall_reset")
			life := r.life + 1
			c.net.At(c.now()+time.Duration(5+c.r.IntN(55))*time.Second, func() {
				if r.life == life && c.net.Up(i) {
					c.wallOff[i] = 0
					c.logf("n%d NTP sync: wall clock steps forward to the true time", i)
					c.count("fault.wall_ntp_sync")
				}
			})
		}
	}
	c.boot(i, st, how)
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
			life := c.routers[i].life
			net.At(c.now()+d, func() {
				if !net.Up(i) && c.routers[i].life == life {
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

// stall freezes node i for d: no housekeeping, nothing sent or received, no
// DHCP answered. When it resumes, its monotonic clock has jumped d at once.
func (c *chaosRun) stall(i int, d time.Duration) {
	r := c.routers[i]
	c.stalled[i] = true
	c.net.pauseTicks(i)
	c.count("fault.stall")
	c.logf("n%d stalls for %v", i, d)
	life := r.life
	c.net.At(c.now()+d, func() { c.resume(i, life) })
}

func (c *chaosRun) resume(i, life int) {
	r := c.routers[i]
	if !c.stalled[i] || r.life != life {
		return
	}
	c.stalled[i] = false
	c.net.resumeTicks(i)
	c.tracef("n%d resumes", i)
	r.poke(c.now())
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
			c.resume(i, c.routers[i].life)
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

// observe applies an engine event to the node's lease table, as the
// daemon's flush does.
func (c *chaosRun) observe(_ time.Duration, i int, ev claim.Event) {
	r := c.routers[i]
	now := c.now()
	switch ev.Kind {
	case claim.EventOwned:
		c.count("block.owned")
		r.markDirty()
		c.holders[ev.Block] = append(c.holders[ev.Block], i)
		r.table.AddBlock(ev.Block)
		// Parked DISCOVERs are answered after the engine is done.
		life := r.life
		c.net.At(now, func() { r.replayParked(life) })
	case claim.EventLost:
		c.count("block.lost")
		r.markDirty()
		c.dropHolder(ev.Block, i)
		r.table.LoseBlock(ev.Block)
		r.handOver(now, ev.Block, ev.PeerAddr)
	case claim.EventReleased:
		c.count("block.released")
		r.markDirty()
		c.dropHolder(ev.Block, i)
		r.table.DropBlock(ev.Block)
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

// node returns the node with link-local address a.
func (c *chaosRun) node(a netip.Addr) (int, bool) {
	i, ok := c.byAddr[a.WithZone("")]
	return i, ok
}

// reaches reports whether a datagram from i can reach j now.
func (c *chaosRun) reaches(i, j int) bool {
	return c.net.Group(i) == c.net.Group(j) && !c.stalled[i] && !c.stalled[j]
}

// mesh sends a datagram from node i to node j the way the Network sends a
// multicast copy: lost, duplicated and delayed independently, and dropped
// if a partition or a stall lies between the two when it is sent or when it
// arrives. A copy reaches whatever runs on j when it arrives.
func (c *chaosRun) mesh(i, j int, data []byte, deliver func(data []byte)) {
	if !c.reaches(i, j) {
		c.count("mesh.cut")
		return
	}
	link := c.links[i]
	copies := 1
	if c.dup > 0 && link.Float64() < c.dup {
		copies = 2
		c.count("mesh.duplicated")
	}
	for range copies {
		if c.loss > 0 && link.Float64() < c.loss {
			c.count("mesh.lost")
			continue
		}
		lat := c.latLo
		if c.latHi > c.latLo {
			lat += time.Duration(link.Int64N(int64(c.latHi-c.latLo) + 1))
		}
		c.net.At(c.now()+lat, func() {
			if !c.net.Up(j) || !c.reaches(i, j) {
				c.count("mesh.cut")
				return
			}
			deliver(data)
		})
	}
}

// pauseTicks takes node i's housekeeping tick out of the queue while it is
// stalled; resumeTicks puts it back, due now. The Network has no stall of
// its own: these reach into its queue, and rely on nothing else running the
// node meanwhile (the links cut it off; the chaos run calls no Act on it).
func (n *Network) pauseTicks(i int) {
	if nd := n.nodes[i]; nd.up && nd.tick != nil {
		n.unqueue(nd.tick)
	}
}

func (n *Network) resumeTicks(i int) {
	if nd := n.nodes[i]; nd.up && nd.tick != nil && nd.tick.index < 0 {
		n.push(nd.tick, n.now)
	}
}
