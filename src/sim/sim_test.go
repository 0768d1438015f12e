package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/node"
	"ddhcpd/src/wire"
)

// shortClaim is a claim configuration with short timers, so tests cover many
// block lifetimes in little virtual time.
func shortClaim() claim.Config {
	return claim.Config{
		SpareLeases:      2,
		BlockTimeout:     6 * time.Second,
		TentativeTimeout: 3 * time.Second,
		InquireInterval:  500 * time.Millisecond,
		NeedlessTimeout:  30 * time.Second,
	}
}

func testConfig(nodes int, seed uint64) Config {
	return Config{
		Nodes:      nodes,
		Pool:       netip.MustParsePrefix("10.0.0.0/16"),
		SizeExp:    2,
		Claim:      shortClaim(),
		LatencyMin: time.Millisecond,
		LatencyMax: 50 * time.Millisecond,
		Seed:       seed,
	}
}

func mustNew(t *testing.T, cfg Config) *Network {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustStartAll(t *testing.T, n *Network) {
	t.Helper()
	if err := n.StartAll(); err != nil {
		t.Fatal(err)
	}
}

// traceRun runs a small faulty scenario and returns its trace.
func traceRun(t *testing.T, seed uint64) []string {
	var lines []string
	cfg := testConfig(6, seed)
	cfg.Loss, cfg.Dup = 0.1, 0.1
	cfg.Trace = func(l string) { lines = append(lines, l) }
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	n.RunFor(5 * time.Second)
	n.Partition([]int{0, 1, 2})
	n.Crash(4)
	n.RunFor(10 * time.Second)
	n.Heal()
	if err := n.Start(4); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Second)
	return lines
}

func TestDeterministic(t *testing.T) {
	a, b := traceRun(t, 7), traceRun(t, 7)
	if !slices.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("same seed, runs differ at line %d:\n%s\n%s", i, a[i], b[i])
			}
		}
		t.Fatalf("same seed, runs differ in length: %d and %d lines", len(a), len(b))
	}
	if len(a) < 100 {
		t.Fatalf("only %d trace lines; the run did nothing", len(a))
	}
	if c := traceRun(t, 8); slices.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same run")
	}
}

func TestIdentity(t *testing.T) {
	n := mustNew(t, testConfig(20, 1))
	seen := make(map[string]bool)
	for i := range n.N() {
		id := n.ID(i)
		if id.IsZero() || seen[id.String()] {
			t.Fatalf("node %d: id %v is zero or repeated", i, id)
		}
		seen[id.String()] = true
		a := n.Addr(i)
		if !a.IsLinkLocalUnicast() || a.Zone() != "bat0" || a.As16()[15] != byte(i+1) {
			t.Errorf("node %d: address %v, want fe80::%x%%bat0", i, a, i+1)
		}
	}
	mustStartAll(t, n)
	n.RunFor(3 * time.Second)
	before := n.Engine(3).Config().Node
	if err := n.Restart(3); err != nil {
		t.Fatal(err)
	}
	if got := n.Engine(3).Config().Node; got != before || got != n.ID(3) {
		t.Errorf("restart changed the id from %v to %v", before, got)
	}
	if s := n.Stats(3); s.Boots != 2 {
		t.Errorf("boots = %d, want 2", s.Boots)
	}
	if n2 := mustNew(t, testConfig(20, 1)); n2.ID(5) != n.ID(5) {
		t.Error("ids are not reproducible from the seed")
	}
}

func TestConverges(t *testing.T) {
	for _, nodes := range []int{1, 2, 10} {
		n := mustNew(t, testConfig(nodes, 3))
		mustStartAll(t, n)
		n.RunFor(20 * time.Second)
		if err := n.Check(); err != nil {
			t.Errorf("%d nodes: %v", nodes, err)
		}
		if err := n.CheckSupply(); err != nil {
			t.Errorf("%d nodes: %v", nodes, err)
		}
		if s := n.Total(); nodes > 1 && (s.Sent == 0 || s.Received < s.Sent) {
			t.Errorf("%d nodes: sent %d, received %d", nodes, s.Sent, s.Received)
		}
	}
}

func TestTotalLoss(t *testing.T) {
	cfg := testConfig(3, 1)
	cfg.Loss = 1
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	n.RunFor(10 * time.Second)
	s := n.Total()
	if s.Received != 0 || s.Sent == 0 || s.Lost != 2*s.Sent {
		t.Errorf("total loss: sent %d, received %d, lost %d", s.Sent, s.Received, s.Lost)
	}
}

func TestDuplication(t *testing.T) {
	cfg := testConfig(2, 1)
	cfg.Dup = 1
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	n.RunFor(10 * time.Second)
	s := n.Total()
	if s.Received != 2*s.Sent || s.Dups != s.Sent {
		t.Errorf("full duplication: sent %d, received %d, dups %d", s.Sent, s.Received, s.Dups)
	}
	if err := n.Check(); err != nil {
		t.Error(err)
	}
}

func TestLatency(t *testing.T) {
	cfg := testConfig(2, 1)
	cfg.LatencyMin, cfg.LatencyMax = 30*time.Millisecond, 40*time.Millisecond
	var sent, recv []time.Duration
	n := mustNew(t, cfg)
	n.cfg.Trace = func(l string) {
		f := strings.Fields(l)
		at, _ := time.ParseDuration(f[0])
		switch {
		case f[1] == "n0" && f[2] == "send":
			sent = append(sent, at)
		case f[1] == "n1" && f[2] == "recv":
			recv = append(recv, at)
		}
	}
	mustStartAll(t, n)
	n.RunFor(10 * time.Second)
	if len(sent) == 0 || len(sent) < len(recv) {
		t.Fatalf("%d sent, %d received", len(sent), len(recv))
	}
	// Without loss and duplication, and with latency below the spacing of
	// a node's messages, the i-th copy belongs to the i-th datagram.
	for i, r := range recv {
		if d := r - sent[i]; d < cfg.LatencyMin || d > cfg.LatencyMax {
			t.Errorf("datagram %d took %v, outside [%v, %v]", i, d, cfg.LatencyMin, cfg.LatencyMax)
		}
	}
}

func TestCrashLosesInFlight(t *testing.T) {
	cfg := testConfig(2, 1)
	cfg.LatencyMin, cfg.LatencyMax = 100*time.Millisecond, 100*time.Millisecond
	cfg.Claim.LearningTime = 0
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	// Both nodes inquire at time 0; crash and restart node 1 before the
	// copies arrive: the new life must not get the old life's copies.
	n.RunFor(50 * time.Millisecond)
	if n.InFlight() != 2 {
		t.Fatalf("%d copies in flight, want 2", n.InFlight())
	}
	if err := n.Restart(1); err != nil {
		t.Fatal(err)
	}
	n.RunFor(60 * time.Millisecond)
	if s := n.Stats(1); s.Dropped != 1 || s.Received != 0 {
		t.Errorf("restarted node: dropped %d, received %d; want 1, 0", s.Dropped, s.Received)
	}
	if s := n.Stats(0); s.Received != 1 {
		t.Errorf("node 0 received %d, want 1", s.Received)
	}
	n.Crash(0)
	if n.Up(0) || n.Engine(0) != nil {
		t.Error("crashed node is up")
	}
	n.RunFor(time.Second)
	if s := n.Stats(0); s.Received != 1 {
		t.Errorf("crashed node received %d, want still 1", s.Received)
	}
}

// TestPartitionAndCheck gives two nodes a pool of two usable blocks and
// spare leases for two: split, each takes both, and Check must see it; once
// healed the higher id keeps both and Check is content, while CheckSupply
// reports the lower id as short.
func TestPartitionAndCheck(t *testing.T) {
	cfg := testConfig(2, 5)
	cfg.Pool = netip.MustParsePrefix("10.0.0.0/30")
	cfg.SizeExp = 0
	cfg.Claim.LearningTime = 0
	n := mustNew(t, cfg)
	n.Partition([]int{0}, []int{1})
	mustStartAll(t, n)
	n.RunFor(5 * time.Second)
	for i := range 2 {
		if got := n.Engine(i).Owned(); !slices.Equal(got, []uint32{1, 2}) {
			t.Fatalf("node %d owns %v in its partition, want [1 2]", i, got)
		}
	}
	err := n.Check()
	if err == nil || !strings.Contains(err.Error(), "(a) block 1") {
		t.Fatalf("Check with two owners: %v", err)
	}
	if ov := n.Overlaps(); len(ov) != 2 {
		t.Errorf("overlaps %v, want two", ov)
	}
	n.Heal()
	n.RunFor(2 * cfg.Claim.BlockTimeout)
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	hi, lo := 0, 1
	if n.ID(1).Compare(n.ID(0)) > 0 {
		hi, lo = 1, 0
	}
	if got := n.Engine(hi).Owned(); len(got) != 2 {
		t.Errorf("higher id owns %v, want both blocks", got)
	}
	err = n.CheckSupply()
	if err == nil || !strings.Contains(err.Error(), n.name(lo)) {
		t.Errorf("CheckSupply with the lower id empty-handed: %v", err)
	}
}

func TestPickGroup(t *testing.T) {
	cfg := testConfig(5, 9)
	cfg.Claim.LearningTime = 0
	cfg.LatencyMin, cfg.LatencyMax = time.Second, time.Second // nobody hears anybody yet
	cfg.PickGroup = []int{1, 1, 1, 0, 0}
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	n.RunFor(time.Millisecond)
	first := make([]uint32, n.N())
	for i := range n.N() {
		bs := n.Engine(i).Blocks()
		if len(bs) != 1 || bs[0].State != claim.Claiming {
			t.Fatalf("node %d: blocks %v, want one it is claiming", i, bs)
		}
		first[i] = bs[0].Index
	}
	if first[0] != first[1] || first[1] != first[2] {
		t.Errorf("same pick group picked %v", first[:3])
	}
	if first[3] == first[0] || first[4] == first[0] || first[3] == first[4] {
		t.Errorf("own seeds picked %v", first)
	}
}

func TestActAndAt(t *testing.T) {
	cfg := testConfig(3, 2)
	cfg.Claim.LearningTime = time.Hour
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	var ended time.Duration
	n.At(2*time.Second, func() {
		n.Act(1, func(e *claim.Engine, now time.Duration) {
			ended = now
			e.EndLearning(now)
		})
	})
	n.RunFor(5 * time.Second)
	if ended != 2*time.Second {
		t.Fatalf("action ran at %v", ended)
	}
	if n.Engine(1).Learning() || len(n.Engine(1).Owned()) == 0 {
		t.Error("node 1 did not end learning and claim")
	}
	if !n.Engine(0).Learning() || n.Engine(0).Tracked() == 0 {
		t.Error("node 0 should still learn, and have heard node 1")
	}
	if n.Stats(1).Sent == 0 {
		t.Error("node 1 sent nothing")
	}
	n.Crash(1)
	if n.Act(1, func(*claim.Engine, time.Duration) { t.Error("Act ran on a node that is down") }) {
		t.Error("Act reported a node that is down as up")
	}
}

func TestRunUntil(t *testing.T) {
	n := mustNew(t, testConfig(4, 4))
	mustStartAll(t, n)
	ok := n.RunUntil(func() bool { return n.CheckSupply() == nil }, time.Minute)
	if !ok || n.Now() >= time.Minute || n.Now() < 1500*time.Millisecond {
		t.Errorf("RunUntil: %v at %v", ok, n.Now())
	}
	if n.RunUntil(func() bool { return false }, time.Second) {
		t.Error("RunUntil(false) held")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no nodes", func(c *Config) { c.Nodes = 0 }},
		{"bad latency", func(c *Config) { c.LatencyMin = time.Second }},
		{"bad loss", func(c *Config) { c.Loss = 1.5 }},
		{"bad dup", func(c *Config) { c.Dup = -1 }},
		{"bad pool", func(c *Config) { c.SizeExp = 8 }},
		{"pick groups", func(c *Config) { c.PickGroup = []int{1} }},
	}
	for _, tt := range tests {
		cfg := testConfig(2, 1)
		tt.edit(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	cfg := testConfig(2, 1)
	cfg.Claim.BlockTimeout = 1500 * time.Millisecond
	n := mustNew(t, cfg)
	if err := n.Start(0); err == nil {
		t.Error("engine with a fractional block timeout started")
	}
}

// TestNeedlessRelease fills a node's block so it claims a second one, then
// lets its clients go: after the needless timeout it releases a block, and
// the other nodes forget it at once instead of waiting for it to time out.
func TestNeedlessRelease(t *testing.T) {
	cfg := testConfig(3, 11)
	cfg.Claim.LearningTime = 0
	var released []uint32
	cfg.Observe = func(_ time.Duration, node int, ev claim.Event) {
		if node == 0 && ev.Kind == claim.EventReleased {
			released = append(released, ev.Block)
		}
	}
	n := mustNew(t, cfg)
	d := &demand{p: n.Pool(), used: make(map[uint32]int)}
	n.SetUsage(0, d)
	mustStartAll(t, n)
	n.RunFor(5 * time.Second)
	first := n.Engine(0).Owned()
	if len(first) != 1 {
		t.Fatalf("node 0 owns %v, want one block", first)
	}
	d.used[first[0]] = n.Pool().Usable(first[0])
	n.RunFor(5 * time.Second)
	if got := n.Engine(0).Owned(); len(got) != 2 {
		t.Fatalf("node 0 owns %v with its first block full, want two blocks", got)
	}
	clear(d.used)
	n.RunUntil(func() bool { return len(released) > 0 }, time.Minute)
	if len(released) != 1 {
		t.Fatalf("released %v, want one block", released)
	}
	n.RunFor(100 * time.Millisecond) // the release reaches everyone
	for i := 1; i < n.N(); i++ {
		if bi := n.Engine(i).Block(released[0]); bi.State != claim.Free {
			t.Errorf("node %d sees released block %d as %v", i, released[0], bi.State)
		}
	}
	if err := n.Check(); err != nil {
		t.Error(err)
	}
	if err := n.CheckSupply(); err != nil {
		t.Error(err)
	}
}

// TestCheckSeesWrongViews feeds a node forged claims, so that its view of
// two blocks disagrees with the owners: Check must name both.
func TestCheckSeesWrongViews(t *testing.T) {
	cfg := testConfig(3, 12)
	cfg.Claim.LearningTime = 0
	n := mustNew(t, cfg)
	mustStartAll(t, n)
	n.RunFor(5 * time.Second)
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	owned := n.Engine(1).Owned()[0]
	var unowned uint32
	for n.Engine(0).Block(unowned).State != claim.Free {
		unowned++
	}
	forge := func(from int, id wire.NodeID, block uint32) {
		m := wire.Message{
			Header: wire.Header{Node: id, Swarm: n.Swarm(), Command: wire.CmdUpdateClaim},
			Claims: []wire.Claim{{Block: block, Lifetime: 60}},
		}
		n.Act(2, func(e *claim.Engine, now time.Duration) {
			if err := e.Step(now, n.Addr(from), &m); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A claim for node 0 of a block it does not own, and a claim for a
	// stranger with a higher id than node 1 of node 1's block.
	forge(0, n.ID(0), unowned)
	forge(0, wire.NodeID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, owned)
	err := n.Check()
	if err == nil {
		t.Fatal("Check missed forged views")
	}
	t.Log(err)
	for _, want := range []string{
		fmt.Sprintf("node 2 sees block %d claimed by node 0", unowned),
		fmt.Sprintf("block %d is ours on node 1", owned),
		"claimed by unknown ffffffffffffffff",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check does not say %q:\n%v", want, err)
		}
	}
}

// TestSameSecondStart is the C ddhcpd's three-owners case (C bugs 1 and 2):
// nodes started in the same second draw the same blocks. With unique ids the
// inquiry tie-break must keep every block on one node at every moment.
func TestSameSecondStart(t *testing.T) {
	tests := []struct {
		nodes    int
		learning time.Duration
		latency  time.Duration
	}{
		{3, 0, time.Millisecond},
		{3, -1, 100 * time.Millisecond},
		{10, 0, 50 * time.Millisecond},
		{30, -1, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		cfg := testConfig(tt.nodes, uint64(tt.nodes))
		cfg.Pool = netip.MustParsePrefix("10.0.0.0/24") // 64 blocks
		cfg.Claim.LearningTime = tt.learning
		cfg.LatencyMin, cfg.LatencyMax = tt.latency/2, tt.latency
		cfg.PickGroup = make([]int, tt.nodes)
		for i := range cfg.PickGroup {
			cfg.PickGroup[i] = 1
		}
		n := mustNew(t, cfg)
		mustStartAll(t, n)
		if !n.RunUntil(func() bool { return n.CheckSupply() == nil }, 2*time.Minute) {
			t.Errorf("%d nodes: %v", tt.nodes, n.CheckSupply())
		}
		n.RunFor(2 * cfg.Claim.BlockTimeout)
		if err := n.Check(); err != nil {
			t.Errorf("%d nodes: %v", tt.nodes, err)
		}
		if ov := n.Overlaps(); len(ov) > 0 {
			t.Errorf("%d nodes: blocks ours on two nodes at once: %v", tt.nodes, ov)
		}
	}
}

// TestInquiryWindow sweeps the moment a second node starts against a first
// one that is claiming or already owns the block the second wants, with
// jittery latency and no loss: no block may ever be ours on both. The timer
// settings sit at the edge the property tests keep to: two or more
// inquiries spaced wider than the latency, in a window of at least four
// announce gaps (claim.Config.Validate) and longer than the owner's announce
// gap plus two crossings of the mesh.
func TestInquiryWindow(t *testing.T) {
	const maxLatency = 100 * time.Millisecond
	tests := []struct {
		inquiries int
		interval  time.Duration
		gap       time.Duration
	}{
		{3, 500 * time.Millisecond, 250 * time.Millisecond}, // the short timers
		{2, 500 * time.Millisecond, 250 * time.Millisecond}, // the shortest window claim.Config accepts for this gap
		{4, 250 * time.Millisecond, 250 * time.Millisecond},
		{2, 160 * time.Millisecond, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		c := shortClaim()
		c.LearningTime = 0
		c.Inquiries, c.InquireInterval, c.AnnounceGap = tt.inquiries, tt.interval, tt.gap
		refresh := c.BlockTimeout / 4
		for _, base := range []time.Duration{0, 10 * time.Second} {
			for off := base; off < base+refresh; off += 7 * time.Millisecond {
				for _, first := range []int{0, 1} {
					cfg := testConfig(2, 1)
					cfg.Pool, cfg.SizeExp = netip.MustParsePrefix("10.0.0.0/30"), 0 // blocks 1 and 2
					cfg.Claim = c
					cfg.LatencyMin, cfg.LatencyMax = time.Millisecond, maxLatency
					cfg.NodeConfig = func(i int, c *node.Config) { c.Claim.SpareLeases = 1 + i } // node 1 wants both
					n := mustNew(t, cfg)
					if err := n.Start(first); err != nil {
						t.Fatal(err)
					}
					n.RunFor(off)
					if err := n.Start(1 - first); err != nil {
						t.Fatal(err)
					}
					n.RunFor(5 * time.Second)
					if ov := n.Overlaps(); len(ov) > 0 {
						t.Fatalf("%+v: node %d started %v after node %d: %v", tt, 1-first, off, first, ov)
					}
				}
			}
		}
	}
}

// TestLinks builds a line 0 - 1 - 2: the ends never hear each other.
func TestLinks(t *testing.T) {
	cfg := testConfig(3, 6)
	cfg.Claim.LearningTime = 0
	n := mustNew(t, cfg)
	n.SetReach(func(from, to int) bool { return from-to == 1 || to-from == 1 })
	mustStartAll(t, n)
	n.RunFor(10 * time.Second)
	own := func(i int) uint32 { return n.Engine(i).Owned()[0] }
	if bi := n.Engine(0).Block(own(2)); bi.State != claim.Free {
		t.Errorf("node 0 sees node 2's block as %v", bi.State)
	}
	if bi := n.Engine(1).Block(own(2)); bi.State != claim.Claimed {
		t.Errorf("node 1 sees node 2's block as %v", bi.State)
	}
	if s := n.Stats(1); s.Received != n.Stats(0).Sent+n.Stats(2).Sent {
		t.Errorf("the middle node received %d of %d datagrams", s.Received, n.Stats(0).Sent+n.Stats(2).Sent)
	}
}
