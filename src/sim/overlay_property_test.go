package sim

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// Overlay property test: every seed makes a random connected graph of 2-200
// nodes (a tree, a sparse or dense random graph, a radio-like geometric
// graph, a line, a ring or a grid; some nodes with two interfaces, some
// pairs with two links), runs the overlay over it with latency 1-100 ms, 5 %
// loss and 2 % duplication, T = 200 ms, and applies faults: nodes that never
// start, starts all at once (many walks at the same time) or spread out,
// nodes killed before, during and after the walk (the root among them) and
// sometimes restarted, partitions that cut the graph and heal again
// (merges), and links that fail. Loss and duplication go on to the end.
//
// After the last fault, every connected component of live nodes must, within
// overlayBound, agree on one finished tree that spans exactly the component,
// rooted at its lowest id (CheckConverged), and then keep that very tree
// for overlayStable more, sending nothing but HELLOs after the first
// overlayQuietAfter of it: the run has ended.
//
//	OVERLAY_SEEDS=n      run n seeds instead of defaultOverlaySeeds (soak: 10000)
//	OVERLAY_SEED_BASE=b  start at seed b instead of 1
//	OVERLAY_SEED=s       run only seed s (replay a failure)
//	OVERLAY_TRACE=1      with OVERLAY_SEED: log every datagram, event and fault
const defaultOverlaySeeds = 300

const (
	overlayLatMax = 100 * time.Millisecond
	overlayT      = 200 * time.Millisecond
	overlayStable = 30 * time.Second
	// overlayQuietAfter: from this long after convergence on, a converged
	// overlay sends nothing but HELLOs.
	overlayQuietAfter = 10 * time.Second
)

// overlayBound is the time, after the last fault, within which the overlay
// must have converged. A walk over n nodes passes the token 2(n-1) times
// one after the other; each pass takes a latency (at most overlayLatMax)
// plus, when lost, a retransmission after T/2, so a walk takes at most
// about 2n(Lmax+T/2) (observed: about half, 2n × 55 ms). Before a walk
// starts, the fault must be noticed (a dead neighbour: NeighbourTimeout;
// a node outside the tree: MismatchHold; a stale lower id: Suppress), and a
// walk can be called off by a better one or restarted once when a node
// drops out of it, so the bound allows for those timers and three walks.
func overlayBound(n int, c overlay.Config) time.Duration {
	c = c.WithDefaults()
	walk := time.Duration(2*n) * (overlayLatMax + c.T/2)
	return c.NeighbourTimeout + c.MismatchHold + c.Suppress + c.StartDelay + 3*walk
}

func TestOverlayProperties(t *testing.T) {
	first, count := uint64(1), uint64(defaultOverlaySeeds)
	if v, err := envUint("OVERLAY_SEEDS"); err != nil {
		t.Fatal(err)
	} else if v > 0 {
		count = v
	}
	if v, err := envUint("OVERLAY_SEED_BASE"); err != nil {
		t.Fatal(err)
	} else if v > 0 {
		first = v
	}
	trace := false
	if v, err := envUint("OVERLAY_SEED"); err != nil {
		t.Fatal(err)
	} else if os.Getenv("OVERLAY_SEED") != "" {
		first, count = v, 1
		trace = os.Getenv("OVERLAY_TRACE") != ""
	}
	var (
		mu      sync.Mutex
		failed  []uint64
		results []overlayResult
	)
	t.Run("seed", func(t *testing.T) {
		for seed := first; seed < first+count; seed++ {
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
				t.Parallel()
				sc := newOverlayScenario(seed)
				if trace {
					sc.trace = func(l string) { t.Log(l) }
				}
				res, err := sc.runSafely()
				mu.Lock()
				results = append(results, res)
				if err != nil {
					failed = append(failed, seed)
				}
				mu.Unlock()
				if err != nil {
					t.Errorf("seed %d: %v\n%s\nreplay: OVERLAY_SEED=%d go test ./src/sim -run TestOverlayProperties -count=1 -v   (OVERLAY_TRACE=1 also logs every datagram)",
						seed, err, sc, seed)
				}
			})
		}
	})
	summary := fmt.Sprintf("overlay property seeds %d..%d: %d run, %d passed", first, first+count-1, count, count-uint64(len(failed)))
	t.Log(summary)
	t.Log(overlayStats(results))
	if len(failed) > 0 {
		slices.Sort(failed)
		const show = 20
		list := fmt.Sprint(failed[:min(show, len(failed))])
		if len(failed) > show {
			list += " ..."
		}
		t.Errorf("%s; failed: %s (replay one with OVERLAY_SEED=<seed> go test ./src/sim -run TestOverlayProperties -v)", summary, list)
	}
}

// overlayResult is what one seed measured.
type overlayResult struct {
	n        int
	settle   time.Duration // from the last fault to convergence
	bound    time.Duration
	walks    int
	msgs     uint64
	passed   bool
	faultsOn bool
}

// overlayStats summarises convergence times by graph size.
func overlayStats(rs []overlayResult) string {
	type bucket struct {
		name   string
		lo, hi int
	}
	var b strings.Builder
	b.WriteString("convergence after the last fault (passed runs): size: runs, median, max, max/bound")
	for _, k := range []bucket{{"2-20", 2, 20}, {"21-80", 21, 80}, {"81-149", 81, 149}, {"150-200", 150, 200}} {
		var ds []time.Duration
		worst := 0.0
		for _, r := range rs {
			if r.passed && r.n >= k.lo && r.n <= k.hi {
				ds = append(ds, r.settle)
				worst = max(worst, float64(r.settle)/float64(r.bound))
			}
		}
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		fmt.Fprintf(&b, "\n\t%-8s %5d runs, median %v, max %v, %.0f%% of bound", k.name, len(ds),
			ds[len(ds)/2].Round(100*time.Millisecond), ds[len(ds)-1].Round(100*time.Millisecond), 100*worst)
	}
	return b.String()
}

type overlayFault struct {
	at   time.Duration
	what string
	do   func(o *Network)
}

// overlayScenario is one seeded run.
type overlayScenario struct {
	seed   uint64
	n      int
	graph  string
	links  []Link
	starts []time.Duration // per node; negative: never started
	faults []overlayFault
	last   time.Duration
	cfg    overlay.Config
	trace  func(string)
	log    []string
}

func newOverlayScenario(seed uint64) *overlayScenario {
	r := newRand(derive(seed, 0x0e71a7))
	s := &overlayScenario{seed: seed, cfg: overlay.Config{T: overlayT}}
	switch k := r.IntN(100); {
	case k < 45:
		s.n = 2 + r.IntN(19)
	case k < 80:
		s.n = 21 + r.IntN(60)
	case k < 93:
		s.n = 81 + r.IntN(69)
	default:
		s.n = 150 + r.IntN(51)
	}
	n := s.n
	switch k := r.IntN(12); k {
	case 0, 1:
		s.graph, s.links = "tree", TreeGraph(r, n)
	case 2, 3, 4:
		d := 3 + r.Float64()
		s.graph, s.links = fmt.Sprintf("sparse(deg %.1f)", d), SparseGraph(r, n, d)
	case 5, 6:
		p := 0.1 + 0.4*r.Float64()
		if n > 60 {
			p = 10 / float64(n) * (1 + 2*r.Float64())
		}
		s.graph, s.links = fmt.Sprintf("dense(p %.2f)", p), DenseGraph(r, n, p)
	case 7, 8:
		d := 4 + 4*r.Float64()
		s.graph, s.links = fmt.Sprintf("geometric(deg %.1f)", d), GeometricGraph(r, n, d)
	case 9:
		s.graph, s.links = "line", LineGraph(r, n)
	case 10:
		s.graph, s.links = "ring", RingGraph(r, n)
	default:
		s.graph, s.links = "grid", GridGraph(r, n)
	}
	s.links = Interfaces(r, n, s.links, 0.2, 0.3)

	// Starts: all at once, or spread; some nodes never start.
	s.starts = make([]time.Duration, n)
	spread := time.Duration(0)
	if r.IntN(2) == 0 {
		spread = time.Duration(r.Int64N(int64(20 * time.Second)))
	}
	for i := range s.starts {
		if spread > 0 {
			s.starts[i] = time.Duration(r.Int64N(int64(spread)))
		}
	}
	if n > 2 && r.IntN(4) == 0 {
		for range 1 + r.IntN(max(1, n/10)) {
			s.starts[r.IntN(n)] = -1
		}
	}
	s.last = spread

	// Faults during the first minute: each a kill (maybe followed by a
	// restart), a kill of the lowest id alive (the root), a partition
	// (maybe healed: a merge), or a failing link (maybe back).
	walk := time.Duration(n) * 110 * time.Millisecond
	for range r.IntN(5) {
		at := time.Duration(r.Int64N(int64(2*time.Second + 2*walk + 20*time.Second)))
		back := at + time.Duration(r.Int64N(int64(30*time.Second)))
		restore := r.IntN(3) > 0
		switch k := r.IntN(10); {
		case k < 3:
			x := r.IntN(n)
			s.add(at, fmt.Sprintf("crash n%d", x), func(o *Network) { o.Crash(x) })
			if restore {
				s.add(back, fmt.Sprintf("restart n%d", x), func(o *Network) { _ = o.Restart(x) })
			}
		case k < 5:
			s.add(at, "crash the lowest id alive", func(o *Network) {
				if x := lowestAlive(o); x >= 0 {
					s.note(o, fmt.Sprintf("it is n%d", x))
					o.Crash(x)
				}
			})
		case k < 8:
			set := region(r, n, s.links, 1+r.IntN(max(1, n/2)))
			var cut []int
			s.add(at, fmt.Sprintf("partition %d nodes off", len(set)), func(o *Network) { cut = o.Cut(set) })
			if restore {
				s.add(back, "heal the partition", func(o *Network) { o.Rejoin(cut) })
			}
		default:
			k := r.IntN(len(s.links) + 1)
			if k == len(s.links) {
				continue
			}
			s.add(at, fmt.Sprintf("link %d down", k), func(o *Network) { o.SetLink(k, false) })
			if restore {
				s.add(back, fmt.Sprintf("link %d up", k), func(o *Network) { o.SetLink(k, true) })
			}
		}
	}
	slices.SortStableFunc(s.faults, func(a, b overlayFault) int { return int(a.at - b.at) })
	return s
}

func (s *overlayScenario) add(at time.Duration, what string, do func(o *Network)) {
	s.faults = append(s.faults, overlayFault{at, what, do})
	s.last = max(s.last, at)
}

func (s *overlayScenario) note(o *Network, line string) {
	s.log = append(s.log, fmt.Sprintf("%v: %s", o.Now(), line))
}

// lowestAlive is the live node with the lowest id, -1 if none.
func lowestAlive(o *Network) int {
	best := -1
	for i := range o.N() {
		if o.Up(i) && (best < 0 || o.ID(i).Compare(o.ID(best)) < 0) {
			best = i
		}
	}
	return best
}

// region picks about k nodes connected through the graph, from a random
// node outwards: one side of a partition.
func region(r interface{ IntN(int) int }, n int, ls []Link, k int) []int {
	adj := make([][]int, n)
	for _, l := range ls {
		adj[l.A] = append(adj[l.A], l.B)
		adj[l.B] = append(adj[l.B], l.A)
	}
	start := r.IntN(n)
	in := map[int]bool{start: true}
	set := []int{start}
	for q := 0; q < len(set) && len(set) < k; q++ {
		for _, j := range adj[set[q]] {
			if !in[j] && len(set) < k {
				in[j] = true
				set = append(set, j)
			}
		}
	}
	slices.Sort(set)
	return set
}

func (s *overlayScenario) String() string {
	var b strings.Builder
	never := 0
	for _, st := range s.starts {
		if st < 0 {
			never++
		}
	}
	fmt.Fprintf(&b, "scenario: %d nodes, %s, %d links, starts spread over %v, %d never started, last fault at %v, bound %v\n",
		s.n, s.graph, len(s.links), s.spread(), never, s.last, overlayBound(s.n, s.cfg))
	for _, f := range s.faults {
		fmt.Fprintf(&b, "  %v: %s\n", f.at, f.what)
	}
	for _, l := range s.log {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	return b.String()
}

func (s *overlayScenario) spread() time.Duration {
	var m time.Duration
	for _, st := range s.starts {
		m = max(m, st)
	}
	return m
}

// runSafely runs the scenario and turns a panic into an error.
func (s *overlayScenario) runSafely() (res overlayResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return s.run()
}

func (s *overlayScenario) run() (overlayResult, error) {
	res := overlayResult{n: s.n, bound: overlayBound(s.n, s.cfg), faultsOn: len(s.faults) > 0}
	o, err := newOverlay(overlayConfig{
		Nodes: s.n, Links: s.links, Overlay: s.cfg,
		LatencyMin: time.Millisecond, LatencyMax: overlayLatMax, Loss: 0.05, Dup: 0.02,
		Seed: s.seed, Trace: s.trace,
		Observe: func(_ time.Duration, _ int, ev overlay.Event) {
			if ev.Kind == overlay.EventWalkStarted {
				res.walks++
			}
		},
	})
	if err != nil {
		return res, err
	}
	for i, st := range s.starts {
		if st >= 0 {
			o.At(st, func() { _ = o.Start(i) })
		}
	}
	for _, f := range s.faults {
		o.At(f.at, func() { f.do(o) })
	}
	o.RunFor(s.last)
	// Converged means: at some moment within the bound the check holds,
	// and from then on it keeps holding with the very same trees for
	// overlayStable. A check that holds at once but is undone later by
	// a timer the last fault set (a neighbour that times out) does not
	// count as convergence.
	deadline := s.last + res.bound
	for {
		if o.CheckConverged() == nil {
			since, trees := o.Now(), o.snapshot()
			if since > deadline {
				return res, fmt.Errorf("converged only %v after the last fault, bound %v (walks: %d)", since-s.last, res.bound, res.walks)
			}
			// Every rebuild raises the epoch, so an unchanged snapshot
			// means an unchanged tree.
			stable := true
			var quiet Traffic
			for stable && o.Now()-since < overlayStable {
				o.RunFor(time.Second)
				stable = slices.Equal(o.snapshot(), trees)
				if o.Now()-since == overlayQuietAfter {
					quiet = o.Traffic()
				}
			}
			if stable && o.CheckConverged() == nil {
				res.settle = since - s.last
				// The run has ended: nothing but HELLOs goes out.
				end := o.Traffic()
				for typ := range end.Sent {
					if typ != wire.ExtHello && end.Sent[typ] != quiet.Sent[typ] {
						return res, fmt.Errorf("converged %v after the last fault, but %d %s sent in the last %v",
							res.settle, end.Sent[typ]-quiet.Sent[typ], wire.OverlayTypeName(uint8(typ)), overlayStable-overlayQuietAfter)
					}
				}
				break
			}
			continue
		}
		if o.Now() >= deadline {
			return res, fmt.Errorf("not converged %v after the last fault (walks: %d): %v\n%s",
				res.bound, res.walks, o.CheckConverged(), o.TreeSummary())
		}
		o.RunFor(500 * time.Millisecond)
	}
	res.msgs, _ = o.Traffic().Overlay()
	res.passed = true
	return res, nil
}

// snapshot lists every live node's tree (root, epoch, digest).
func (n *Network) snapshot() []string {
	var out []string
	for i := range n.N() {
		if ov := n.Tree(i); ov != nil {
			t := ov.Tree()
			out = append(out, fmt.Sprintf("%d:%v/%d/%x", i, t.Root, t.Epoch, t.Digest))
		}
	}
	return out
}
