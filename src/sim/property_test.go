package sim

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/node"
	"ddhcpd/src/pool"
)

// Property tests: every seed makes one random scenario (see newScenario),
// runs it through faults, then heals the mesh, stops loss and duplication,
// brings up every node that should be up, lets it be quiet for two block
// timeouts and checks the invariants of Check and CheckSupply.
//
//	SIM_SEEDS=n       run n seeds instead of defaultSeeds (soak)
//	SIM_SEED_BASE=b   start at seed b instead of 1
//	SIM_SEED=s        run only seed s (replay a failure)
//	SIM_TRACE=1       with SIM_SEED: log every datagram, event and fault
const defaultSeeds = 400

func TestProperties(t *testing.T) {
	first, count := uint64(1), uint64(defaultSeeds)
	if v, err := envUint("SIM_SEEDS"); err != nil {
		t.Fatal(err)
	} else if v > 0 {
		count = v
	}
	if v, err := envUint("SIM_SEED_BASE"); err != nil {
		t.Fatal(err)
	} else if v > 0 {
		first = v
	}
	trace := false
	if v, err := envUint("SIM_SEED"); err != nil {
		t.Fatal(err)
	} else if os.Getenv("SIM_SEED") != "" {
		first, count = v, 1
		trace = os.Getenv("SIM_TRACE") != ""
	}

	var (
		mu     sync.Mutex
		failed []uint64
	)
	t.Run("seed", func(t *testing.T) {
		for seed := first; seed < first+count; seed++ {
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
				t.Parallel()
				sc := newScenario(seed)
				if trace {
					sc.trace = func(l string) { t.Log(l) }
				}
				if err := sc.runSafely(); err != nil {
					mu.Lock()
					failed = append(failed, seed)
					mu.Unlock()
					t.Errorf("seed %d: %v\n%s\nreplay: SIM_SEED=%d go test ./src/sim -run TestProperties -count=1 -v   (SIM_TRACE=1 also logs every datagram)",
						seed, err, sc, seed)
				}
			})
		}
	})
	summary := fmt.Sprintf("property seeds %d..%d: %d run, %d passed", first, first+count-1, count, count-uint64(len(failed)))
	if len(failed) > 0 {
		slices.Sort(failed)
		const show = 20
		list := fmt.Sprint(failed[:min(show, len(failed))])
		if len(failed) > show {
			list += " ..."
		}
		t.Errorf("%s; failed: %s (replay one with SIM_SEED=<seed> go test ./src/sim -run TestProperties -v)", summary, list)
		return
	}
	t.Log(summary)
}

func envUint(name string) (uint64, error) {
	s := os.Getenv(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %v", name, s, err)
	}
	return v, nil
}

type kind uint8

const (
	mixed    kind = iota // everything goes
	sameSeed             // simultaneous start, shared picking seeds, no loss
	scarce               // fewer blocks than the nodes want: only (a) and (b)
)

func (k kind) String() string { return [...]string{"mixed", "same-seed", "scarce"}[k] }

type learning uint8

const (
	learnSkip learning = iota // LearningTime 0
	learnFull                 // LearningTime = block timeout, the C default
	learnFast                 // full, but ended early by EndLearning (fast join)
)

func (k learning) String() string { return [...]string{"skipped", "full", "fast join"}[k] }

type timerKind uint8

const (
	timersShort   timerKind = iota // block timeout 6 s, the others to match
	timersDefault                  // claim's defaults, block timeout 60 s
	timersTuned                    // random, within what keeps inquiries safe
)

func (k timerKind) String() string { return [...]string{"short", "default", "tuned"}[k] }

type usageKind uint8

const (
	usageNone    usageKind = iota // nil Usage: every usable address is free
	usageStatic                   // staticUsage
	usageDynamic                  // demand, filled and emptied by faults
)

func (k usageKind) String() string { return [...]string{"none", "static", "dynamic"}[k] }

// scenario is one seeded run. Everything random in it comes from r, which is
// seeded from the scenario's seed, and from the network, seeded likewise.
type scenario struct {
	seed     uint64
	r        *rand.Rand
	kind     kind
	timers   timerKind
	learning learning
	usage    usageKind
	spare    []int
	steps    int // faults before the quiet phase
	cfg      Config
	bt       time.Duration // block timeout in force

	net       *Network
	lossy     bool // loss or a partition happened: overlaps may occur
	stayDown  []bool
	lastStart time.Duration
	log       []string
	trace     func(string)
	events    [8]int // engine events seen, by kind
}

func newScenario(seed uint64) *scenario {
	r := rand.New(rand.NewPCG(seed, 0x51a7e))
	s := &scenario{seed: seed, r: r}
	switch k := r.IntN(10); {
	case k < 6:
		s.kind = mixed
	case k < 8:
		s.kind = sameSeed
	default:
		s.kind = scarce
	}
	switch k := r.IntN(12); {
	case k < 2:
		s.timers = timersDefault
	case k < 5:
		s.timers = timersTuned
	}
	nodes := 2 + r.IntN(49)
	exp := uint8(r.IntN(5))
	size := 1 << exp

	s.learning = learning(r.IntN(3))
	if s.kind == sameSeed && s.learning == learnFast {
		// Fast join ends learning at a different moment on every node;
		// this scenario wants them in lockstep.
		s.learning = learnFull
	}
	if s.kind != sameSeed {
		s.usage = usageKind(r.IntN(3))
	}
	s.steps = r.IntN(10)
	if s.kind == sameSeed {
		s.steps = r.IntN(4)
	}

	s.spare = make([]int, nodes)
	for i := range s.spare {
		if s.kind == mixed && r.IntN(10) == 0 {
			continue // a node that serves no clients
		}
		s.spare[i] = 1 + r.IntN(2*size)
	}
	if s.kind == sameSeed {
		for i := range s.spare {
			s.spare[i] = s.spare[0]
		}
	}

	var c claim.Config
	switch s.timers {
	case timersShort:
		c = claim.Config{
			BlockTimeout:     6 * time.Second,
			TentativeTimeout: 3 * time.Second,
			InquireInterval:  500 * time.Millisecond,
			NeedlessTimeout:  30 * time.Second,
		}
	case timersTuned:
		c = tunedTimers(r)
	}
	if s.kind == mixed && r.IntN(8) == 0 {
		c.MaxBlocks = 1 + r.IntN(3)
	}
	switch s.learning {
	case learnSkip:
		c.LearningTime = 0
	default:
		c.LearningTime = -1
	}
	s.bt = c.WithDefaults().BlockTimeout

	// Size the pool. Blocks hold size-1 usable addresses at worst (the
	// pool's first and last, and the gateway's); the usage hook leaves at
	// least half of them free.
	minFree := max(1, size-1)
	if s.usage == usageStatic {
		minFree = max(1, size/2)
	}
	need, most := 0, 0
	for _, sp := range s.spare {
		need += (sp + minFree - 1) / minFree
		most = max(most, (sp+minFree-1)/minFree)
	}
	if s.usage == usageDynamic {
		// Every fault may fill one node's blocks, so it needs new ones.
		need += s.steps * most
	}
	var blocks, reservedBlocks int
	if s.kind == scarce {
		blocks = max(2, nodes/2)
		if exp == 0 {
			blocks = max(4, blocks)
		}
	} else {
		reservedBlocks = r.IntN(4)
		blocks = (2 + r.IntN(3)) * (need + reservedBlocks + 3)
	}
	hostBits := int(exp) + bits.Len(uint(blocks-1))
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), 0, 0}), 32-hostBits).Masked()
	p, _ := pool.New(prefix, exp, nil)
	var reserved []pool.Range
	if reservedBlocks > 0 && p.NumBlocks() > uint32(reservedBlocks)+2 {
		b := 1 + r.Uint32N(p.NumBlocks()-uint32(reservedBlocks)-1)
		reserved = append(reserved, pool.Range{First: p.Addr(b, 0), Last: p.Addr(b+uint32(reservedBlocks)-1, size-1)})
		gw := p.Addr(r.Uint32N(p.NumBlocks()), r.IntN(size))
		reserved = append(reserved, pool.Range{First: gw, Last: gw})
	}

	lo, hi := latencyRange(r)
	s.cfg = Config{
		Nodes:      nodes,
		Pool:       prefix,
		SizeExp:    exp,
		Reserved:   reserved,
		Claim:      c,
		LatencyMin: lo,
		LatencyMax: hi,
		Seed:       seed,
	}
	s.cfg.NodeConfig = func(i int, c *node.Config) { c.Claim.SpareLeases = s.spare[i] }
	if s.kind != sameSeed && r.IntN(3) > 0 {
		s.cfg.Loss = 0.2 * r.Float64()
	}
	if r.IntN(2) == 0 {
		s.cfg.Dup = 0.1 * r.Float64()
	}
	if s.kind == sameSeed {
		s.cfg.PickGroup = make([]int, nodes)
		groups := 1 + r.IntN(3)
		for i := range s.cfg.PickGroup {
			s.cfg.PickGroup[i] = 1 + r.IntN(groups)
		}
	}
	return s
}

func (s *scenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %d nodes, pool %v blocks of %d, %s timers, learning %s, latency %v..%v, loss %.3f, dup %.3f, usage %s\nspare leases %v",
		s.kind, s.cfg.Nodes, s.cfg.Pool, 1<<s.cfg.SizeExp, s.timers, s.learning,
		s.cfg.LatencyMin, s.cfg.LatencyMax, s.cfg.Loss, s.cfg.Dup, s.usage, s.spare)
	if s.timers == timersTuned || s.cfg.Claim.MaxBlocks > 0 {
		fmt.Fprintf(&b, "\nclaim config %+v", s.cfg.Claim)
	}
	if s.cfg.Reserved != nil {
		fmt.Fprintf(&b, "\nreserved %v", s.cfg.Reserved)
	}
	if s.cfg.PickGroup != nil {
		fmt.Fprintf(&b, "\npick groups %v", s.cfg.PickGroup)
	}
	const maxLog = 40
	for i, l := range s.log {
		if i == maxLog {
			fmt.Fprintf(&b, "\n\t... %d more", len(s.log)-maxLog)
			break
		}
		b.WriteString("\n\t")
		b.WriteString(l)
	}
	return b.String()
}

func (s *scenario) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf("%12s ", s.net.Now())+fmt.Sprintf(format, args...))
}

// boot starts node i, and for fast join ends its learning a little later,
// as a SYNC answered by the neighbours would.
func (s *scenario) boot(i int) error {
	if err := s.net.Start(i); err != nil {
		return err
	}
	if s.learning == learnFast {
		life := s.net.Stats(i).Boots
		d := 200*time.Millisecond + time.Duration(s.r.Int64N(int64(3*time.Second)))
		s.net.At(s.net.Now()+d, func() {
			if s.net.Stats(i).Boots == life {
				s.net.Act(i, func(e *claim.Engine, now time.Duration) { e.EndLearning(now) })
			}
		})
	}
	return nil
}

// runSafely is run with a panic (of the engine, say) turned into an error,
// so the failure report still names the seed and the scenario.
func (s *scenario) runSafely() (err error) {
	defer func() {
		if p := recover(); p != nil {
			var at time.Duration
			if s.net != nil {
				at = s.net.Now()
			}
			err = fmt.Errorf("panic at %v: %v\n%s", at, p, debug.Stack())
		}
	}()
	return s.run()
}

func (s *scenario) run() error {
	cfg := s.cfg
	cfg.Trace = s.trace
	cfg.Observe = s.observe
	net, err := New(cfg)
	if err != nil {
		return err
	}
	s.net = net
	s.stayDown = make([]bool, cfg.Nodes)
	s.lossy = cfg.Loss > 0
	r := s.r
	switch s.usage {
	case usageStatic:
		for i := range cfg.Nodes {
			net.SetUsage(i, staticUsage{p: net.Pool(), seed: s.seed})
		}
	case usageDynamic:
		for i := range cfg.Nodes {
			net.SetUsage(i, &demand{p: net.Pool(), used: make(map[uint32]int)})
		}
	}

	// Starts: all at one instant, or spread over up to three block timeouts.
	if s.kind == sameSeed || r.IntN(5) < 2 {
		at := time.Duration(r.Int64N(int64(time.Second)))
		s.lastStart = at
		net.At(at, func() {
			s.logf("start all")
			for i := range cfg.Nodes {
				if err := s.boot(i); err != nil {
					panic(err) // a config the scenario made cannot fail
				}
			}
		})
	} else {
		spread := time.Duration(r.Int64N(int64(3 * s.bt)))
		for i := range cfg.Nodes {
			at := time.Duration(r.Int64N(int64(spread) + 1))
			s.lastStart = max(s.lastStart, at)
			net.At(at, func() {
				if !net.Up(i) && net.Stats(i).Boots == 0 {
					s.logf("start n%d", i)
					if err := s.boot(i); err != nil {
						panic(err)
					}
				}
			})
		}
	}

	for range s.steps {
		net.RunFor(time.Duration(r.Int64N(int64(2 * s.bt))))
		if err := s.fault(); err != nil {
			return err
		}
	}
	if net.Now() <= s.lastStart {
		net.RunFor(s.lastStart - net.Now() + time.Millisecond)
	}

	// Quiet: connected, lossless, every node up that should be.
	net.Heal()
	_ = net.SetLoss(0)
	_ = net.SetDup(0)
	for i := range cfg.Nodes {
		if !net.Up(i) && !s.stayDown[i] {
			if err := s.boot(i); err != nil {
				return err
			}
		}
	}
	s.logf("quiet")
	quiet := 2 * s.bt
	if s.kind == sameSeed {
		// With one picking seed, every loser of a round picks the same
		// next block, so only one node per round gets a block: the nodes
		// need about one housekeeping tick per node beyond the timeouts.
		tick := cfg.Claim.WithDefaults().TickInterval
		quiet += time.Duration(cfg.Nodes) * (tick + cfg.LatencyMax)
	}
	if s.timers == timersTuned {
		// Claiming can take a good part of a short lifetime here.
		c := cfg.Claim.WithDefaults()
		quiet += 2 * (c.TickInterval + time.Duration(c.Inquiries)*c.InquireInterval)
	}
	net.RunFor(quiet)
	if err := s.check(); err != nil {
		return err
	}
	// Again a little later, so a state that only looks right at one instant
	// is caught too.
	net.RunFor(time.Duration(r.Int64N(int64(s.bt))))
	return s.check()
}

func (s *scenario) check() error {
	if err := s.net.Check(); err != nil {
		return err
	}
	if s.kind != scarce {
		if err := s.net.CheckSupply(); err != nil {
			return err
		}
	}
	if ov := s.net.Overlaps(); !s.lossy && len(ov) > 0 {
		return fmt.Errorf("without loss or partition, blocks were ours on two nodes at once: %v", ov)
	}
	return nil
}

// fault applies one random fault of those the scenario's kind allows.
func (s *scenario) fault() error {
	net, r := s.net, s.r
	var up, down []int
	for i := range net.N() {
		if net.Up(i) {
			up = append(up, i)
		} else if net.Stats(i).Boots > 0 {
			down = append(down, i)
		}
	}
	choice := r.IntN(8)
	if s.kind == sameSeed && choice < 3 {
		choice += 3 // no partitions and no loss
	}
	if s.usage == usageDynamic && r.IntN(2) == 0 {
		choice = 8
	}
	switch choice {
	case 0, 1: // partition into 2 or 3 groups
		k := 2 + r.IntN(2)
		groups := make([][]int, k)
		for i := range net.N() {
			g := r.IntN(k)
			groups[g] = append(groups[g], i)
		}
		net.Partition(groups...)
		s.lossy = true
		s.logf("partition %v", groups)
	case 2: // heal, and maybe change the loss
		net.Heal()
		loss := 0.0
		if r.IntN(2) == 0 {
			loss = 0.2 * r.Float64()
		}
		_ = net.SetLoss(loss)
		s.lossy = s.lossy || loss > 0
		s.logf("heal, loss %.3f", loss)
	case 3, 4: // crash a few nodes, some for good
		if len(up) == 0 {
			break
		}
		for range 1 + r.IntN(max(1, len(up)/4)) {
			i := up[r.IntN(len(up))]
			if net.Up(i) {
				net.Crash(i)
				s.stayDown[i] = s.kind != sameSeed && r.IntN(4) == 0
				s.logf("crash n%d (stays down: %v)", i, s.stayDown[i])
			}
		}
	case 5, 6: // restart: a crashed node, or a running one in place
		i := -1
		switch {
		case len(down) > 0 && r.IntN(3) > 0:
			i = down[r.IntN(len(down))]
		case len(up) > 0:
			i = up[r.IntN(len(up))]
		}
		if i < 0 {
			break
		}
		net.Crash(i)
		s.stayDown[i] = false
		s.logf("restart n%d", i)
		return s.boot(i)
	case 7: // new latency range and duplication
		lo, hi := latencyRange(r)
		dup := 0.0
		if r.IntN(2) == 0 {
			dup = 0.1 * r.Float64()
		}
		if err := net.SetLatency(lo, hi); err != nil {
			return err
		}
		_ = net.SetDup(dup)
		s.logf("latency %v..%v, dup %.3f", lo, hi, dup)
	case 8: // clients come or go on one node
		if len(up) == 0 {
			break
		}
		i := up[r.IntN(len(up))]
		d := net.Usage(i).(*demand)
		if len(d.used) == 0 {
			for _, b := range net.Engine(i).Owned() {
				d.used[b] = net.Pool().Usable(b)
			}
			s.logf("n%d: blocks %v full", i, net.Engine(i).Owned())
		} else {
			clear(d.used)
			s.logf("n%d: all leases gone", i)
		}
	}
	return nil
}

// observe forgets the leases of a block a node no longer owns, as the lease
// table does once they have expired or moved to the new owner.
func (s *scenario) observe(_ time.Duration, i int, ev claim.Event) {
	if int(ev.Kind) < len(s.events) {
		s.events[ev.Kind]++
	}
	if ev.Kind != claim.EventLost && ev.Kind != claim.EventReleased {
		return
	}
	if d, ok := s.net.Usage(i).(*demand); ok {
		delete(d.used, ev.Block)
	}
}

// tunedTimers draws claim timers around the short ones, within what keeps
// two nodes from owning a block at once without loss (see
// TestInquiryWindow): at least two inquiries, spaced wider than the
// latency, and a window (Inquiries × InquireInterval) that outlasts an
// owner's answer, which may wait for the announce gap and crosses the mesh
// twice at up to 100 ms.
func tunedTimers(r *rand.Rand) claim.Config {
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+r.IntN(hi-lo+1)) * time.Millisecond }
	gap := ms(1, 250)
	inq := 2 + r.IntN(3)
	// Rounded up: the window must reach 4 × gap exactly.
	floor := max(150*time.Millisecond, (gap+300*time.Millisecond)/time.Duration(inq), (4*gap+time.Duration(inq)-1)/time.Duration(inq))
	return claim.Config{
		BlockTimeout:     time.Duration(4+r.IntN(9)) * time.Second,
		TentativeTimeout: ms(1000, 5000),
		InquireInterval:  floor + ms(0, 500),
		Inquiries:        inq,
		RefreshFactor:    2 + r.IntN(5),
		NeedlessTimeout:  ms(2000, 40000),
		TickInterval:     ms(100, 1500),
		AnnounceGap:      gap,
	}
}

// latencyRange draws a range within 1..100 ms.
func latencyRange(r *rand.Rand) (lo, hi time.Duration) {
	const floor, ceil = time.Millisecond, 100 * time.Millisecond
	lo = floor + time.Duration(r.Int64N(int64(ceil-floor)+1))
	hi = lo + time.Duration(r.Int64N(int64(ceil-lo)+1))
	return lo, hi
}

// staticUsage pretends that a fixed, pseudo-random number of each block's
// addresses are leased, up to half of them, wherever the block is owned. It
// makes nodes need more than one block and keeps used blocks from being
// released as needless.
type staticUsage struct {
	p    *pool.Pool
	seed uint64
}

func (u staticUsage) used(b uint32) int {
	return int(splitmix(u.seed^uint64(b)) % uint64(u.p.Usable(b)/2+1))
}

func (u staticUsage) Free(b uint32) int    { return u.p.Usable(b) - u.used(b) }
func (u staticUsage) Active(b uint32) bool { return u.used(b) > 0 }

// demand is a lease table stand-in whose use the scenario changes.
type demand struct {
	p    *pool.Pool
	used map[uint32]int
}

func (d *demand) Free(b uint32) int    { return d.p.Usable(b) - d.used[b] }
func (d *demand) Active(b uint32) bool { return d.used[b] > 0 }
