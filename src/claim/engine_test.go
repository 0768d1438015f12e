package claim_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// node is one engine under test with its own clock.
type node struct {
	t   *testing.T
	e   *claim.Engine
	now time.Duration
	out []wire.Message // everything sent so far
	ev  []claim.Event
}

func id(b byte) wire.NodeID { return wire.NodeID{0, 0, 0, 0, 0, 0, 0, b} }

func testPool(t testing.TB, prefix string, exp uint8, reserved ...string) *pool.Pool {
	t.Helper()
	var rs []pool.Range
	for _, s := range reserved {
		r, err := pool.ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	p, err := pool.New(netip.MustParsePrefix(prefix), exp, rs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func swarmOf(p *pool.Pool) wire.Swarm {
	return wire.Swarm{Prefix: p.Prefix().Addr(), PrefixLen: uint8(p.Prefix().Bits()), BlockSize: uint8(p.BlockSize())}
}

// baseConfig has short, round timers so the tests can name exact instants.
func baseConfig(me wire.NodeID, p *pool.Pool) claim.Config {
	return claim.Config{
		Node:             me,
		Swarm:            swarmOf(p),
		SpareLeases:      2,
		BlockTimeout:     60 * time.Second,
		TentativeTimeout: 15 * time.Second,
		InquireInterval:  time.Second,
		NeedlessTimeout:  300 * time.Second,
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func newNode(t *testing.T, cfg claim.Config, p *pool.Pool, seed uint64) *node {
	t.Helper()
	e, err := claim.New(cfg, p, rand.New(rand.NewPCG(seed, seed)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &node{t: t, e: e}
}

func (n *node) collect() {
	n.out = append(n.out, n.e.Outbox()...)
	n.ev = append(n.ev, n.e.Events()...)
}

// run ticks the engine at every instant it asks for, up to now+d.
func (n *node) run(d time.Duration, u claim.Usage) {
	end := n.now + d
	for {
		next := n.e.Next()
		if next > end {
			break
		}
		n.now = max(next, n.now)
		n.e.Tick(n.now, u)
		n.collect()
	}
	n.now = end
}

// endLearning ends learning and runs the first round at once.
func (n *node) endLearning() {
	n.e.EndLearning(n.now)
	n.e.Tick(n.now, nil)
	n.collect()
}

func (n *node) step(from wire.NodeID, m wire.Message) error {
	m.Node = from
	m.Swarm = n.e.Config().Swarm
	err := n.e.Step(n.now, addrOf(from), &m)
	n.collect()
	return err
}

func addrOf(id wire.NodeID) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: id[7]}).WithZone("mesh0")
}

func claimMsg(entries ...wire.Claim) wire.Message {
	return wire.Message{Header: wire.Header{Command: wire.CmdUpdateClaim, Count: uint8(len(entries))}, Claims: entries}
}

func inquireMsg(blocks ...uint32) wire.Message {
	return wire.Message{Header: wire.Header{Command: wire.CmdInquire, Count: uint8(len(blocks))}, Inquiries: blocks}
}

func (n *node) state(b uint32) claim.State { return n.e.Block(b).State }

// sent returns the messages of a command sent since index from.
func (n *node) sent(from int, cmd uint8) []wire.Message {
	var out []wire.Message
	for _, m := range n.out[from:] {
		if m.Command == cmd {
			out = append(out, m)
		}
	}
	return out
}

func (n *node) claiming() []uint32 {
	var out []uint32
	for _, b := range n.e.Blocks() {
		if b.State == claim.Claiming {
			out = append(out, b.Index)
		}
	}
	return out
}

func TestClaimsAfterThreeInquiries(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	inq := n.sent(0, wire.CmdInquire)
	if len(inq) != 1 || len(inq[0].Inquiries) != 1 {
		t.Fatalf("first round: %+v", inq)
	}
	blk := inq[0].Inquiries[0]
	n.run(2900*time.Millisecond, nil)
	if got := len(n.sent(0, wire.CmdInquire)); got != 3 || n.state(blk) != claim.Claiming {
		t.Fatalf("after 2.9 s: %d inquiries, state %v", got, n.state(blk))
	}
	n.run(100*time.Millisecond, nil)
	if n.state(blk) != claim.Ours {
		t.Fatalf("after 3 s: state %v, want ours", n.state(blk))
	}
	claims := n.sent(0, wire.CmdUpdateClaim)
	if len(claims) != 1 || claims[0].Claims[0] != (wire.Claim{Block: blk, Lifetime: 60}) {
		t.Fatalf("claim at ownership: %+v", claims)
	}
	if !slices.ContainsFunc(n.ev, func(e claim.Event) bool { return e.Kind == claim.EventOwned && e.Block == blk }) {
		t.Error("no owned event")
	}
	// One block of 32 covers two spare leases: nothing more is claimed.
	n.run(10*time.Second, nil)
	if got := n.e.Owned(); len(got) != 1 {
		t.Errorf("owned %v", got)
	}
}

func TestRefreshEveryQuarterLifetime(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	n.run(3*time.Second, nil)
	mark := len(n.out)
	n.run(60*time.Second, nil)
	claims := n.sent(mark, wire.CmdUpdateClaim)
	if len(claims) != 4 {
		t.Errorf("%d refreshes in one lifetime, want 4", len(claims))
	}
}

func TestLearningPhase(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(id(9), p)
	cfg.LearningTime = 10 * time.Second
	n := newNode(t, cfg, p, 1)
	n.run(9*time.Second, nil)
	if len(n.out) != 0 || !n.e.Learning() {
		t.Fatalf("sent %d messages while learning", len(n.out))
	}
	n.run(time.Second, nil)
	if n.e.Learning() || len(n.sent(0, wire.CmdInquire)) != 1 {
		t.Fatalf("learning did not end at 10 s")
	}
	if !slices.ContainsFunc(n.ev, func(e claim.Event) bool { return e.Kind == claim.EventLearningEnded }) {
		t.Error("no endlearning event")
	}
	// What was learnt is respected: claimed blocks are never picked.
	cfg.LearningTime = 5 * time.Second
	m := newNode(t, cfg, p, 1)
	var all []wire.Claim
	for b := range uint32(8) {
		if b != 3 {
			all = append(all, wire.Claim{Block: b, Lifetime: 60})
		}
	}
	m.step(id(200), claimMsg(all...))
	m.run(10*time.Second, nil)
	if got := m.e.Owned(); !slices.Equal(got, []uint32{3}) {
		t.Errorf("owned %v, want the only free block [3]", got)
	}
}

func TestInquiryForOurBlockIsAnswered(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	n.run(3*time.Second, nil)
	blk := n.e.Owned()[0]
	n.run(5*time.Second, nil) // clear of the announce gap
	mark := len(n.out)
	n.step(id(5), inquireMsg(blk))
	if c := n.sent(mark, wire.CmdUpdateClaim); len(c) != 1 || c[0].Claims[0].Block != blk {
		t.Fatalf("inquiry not answered at once: %+v", c)
	}
	// A flood of inquiries is answered at most once per announce gap.
	mark = len(n.out)
	for range 100 {
		n.step(id(5), inquireMsg(blk))
	}
	n.run(time.Second, nil)
	if c := n.sent(mark, wire.CmdUpdateClaim); len(c) > 5 || len(c) < 1 {
		t.Errorf("%d claims for 100 inquiries in 1 s", len(c))
	}
}

func TestConflictOnOurBlock(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	n.run(3*time.Second, nil)
	blk := n.e.Owned()[0]
	n.run(5*time.Second, nil)

	// A lower id claiming our block is told at once.
	mark := len(n.out)
	n.step(id(3), claimMsg(wire.Claim{Block: blk, Lifetime: 60}))
	if n.state(blk) != claim.Ours || len(n.sent(mark, wire.CmdUpdateClaim)) != 1 {
		t.Fatalf("lower id: state %v, %d claims", n.state(blk), len(n.sent(mark, wire.CmdUpdateClaim)))
	}
	// A higher id wins.
	n.step(id(20), claimMsg(wire.Claim{Block: blk, Lifetime: 60}))
	bi := n.e.Block(blk)
	if bi.State != claim.Claimed || bi.Owner != id(20) || bi.OwnerAddr != addrOf(id(20)) {
		t.Fatalf("higher id: %+v", bi)
	}
	if !slices.ContainsFunc(n.ev, func(e claim.Event) bool { return e.Kind == claim.EventLost && e.Block == blk && e.Peer == id(20) }) {
		t.Error("no lost event")
	}
}

// C bug 5: a foreign block whose shadow leases ran out was reset to free while
// its owner still claimed it. Here a lost block stays claimed by its owner for
// as long as the owner refreshes it, and is never inquired.
func TestLostBlockStaysWithOwner(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	n.run(3*time.Second, nil)
	blk := n.e.Owned()[0]
	n.step(id(20), claimMsg(wire.Claim{Block: blk, Lifetime: 60}))
	mark := len(n.out)
	for range 40 { // 10 minutes of refreshes every 15 s
		n.run(15*time.Second, nil)
		n.step(id(20), claimMsg(wire.Claim{Block: blk, Lifetime: 60}))
		if bi := n.e.Block(blk); bi.State != claim.Claimed || bi.Owner != id(20) {
			t.Fatalf("at %v: %+v", n.now, bi)
		}
	}
	for _, m := range n.sent(mark, wire.CmdInquire) {
		if slices.Contains(m.Inquiries, blk) {
			t.Fatalf("inquired the owned-elsewhere block %d", blk)
		}
	}
	// Once the owner is silent, the claim expires after its lifetime.
	n.run(61*time.Second, nil)
	if s := n.state(blk); s == claim.Claimed {
		t.Errorf("claim did not expire: %v", s)
	}
}

// C bug 3: the inquiry counter was checked before the state, so a block
// claimed by someone else, backed off or timed out meanwhile was still taken.
func TestNeverTakesBlockThatChangedState(t *testing.T) {
	tests := []struct {
		name string
		msg  func(blk uint32) (wire.NodeID, wire.Message)
		want claim.State
	}{
		{"claimed by a lower id", func(b uint32) (wire.NodeID, wire.Message) {
			return id(2), claimMsg(wire.Claim{Block: b, Lifetime: 60})
		}, claim.Claimed},
		{"claimed by a higher id", func(b uint32) (wire.NodeID, wire.Message) {
			return id(200), claimMsg(wire.Claim{Block: b, Lifetime: 60})
		}, claim.Claimed},
		{"inquired by a higher id", func(b uint32) (wire.NodeID, wire.Message) {
			return id(200), inquireMsg(b)
		}, claim.Tentative},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, "10.0.0.0/24", 5)
			n := newNode(t, baseConfig(id(9), p), p, 1)
			n.endLearning()
			blk := n.claiming()[0]
			n.run(2500*time.Millisecond, nil) // three inquiries sent
			n.step(tt.msg(blk))
			if got := n.state(blk); got != tt.want {
				t.Fatalf("state after message: %v, want %v", got, tt.want)
			}
			n.run(5*time.Second, nil)
			if slices.Contains(n.e.Owned(), blk) {
				t.Fatalf("took block %d after it changed state", blk)
			}
			if len(n.e.Owned()) != 1 {
				t.Errorf("did not claim another block: owned %v", n.e.Owned())
			}
		})
	}
}

// An inquiry from a lower id does not stop us; the lower id backs off.
func TestLowerInquiryDoesNotStopClaiming(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	blk := n.claiming()[0]
	n.step(id(2), inquireMsg(blk))
	n.run(3*time.Second, nil)
	if n.state(blk) != claim.Ours {
		t.Errorf("state %v", n.state(blk))
	}
}

// C bug 4: every received multicast packet ran housekeeping, so the three
// inquiry rounds of competing nodes collapsed into milliseconds. Here packets
// never advance an inquiry round: ownership comes at 3 intervals however much
// traffic arrives.
func TestPacketsDoNotAdvanceInquiries(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	blk := n.claiming()[0]
	other := (blk + 1) % 8
	for i := range 1000 {
		n.now = time.Duration(i) * time.Millisecond
		n.step(id(2), inquireMsg(other))
		n.step(id(3), claimMsg(wire.Claim{Block: (blk + 2) % 8, Lifetime: 60}))
		n.e.Tick(n.now, nil) // extra ticks, as a busy daemon would make
		n.collect()
	}
	if n.state(blk) != claim.Claiming || len(n.sent(0, wire.CmdInquire)) != 1 {
		t.Fatalf("after 1 s of traffic: state %v, %d inquiries", n.state(blk), len(n.sent(0, wire.CmdInquire)))
	}
}

// C bugs 1 and 2: every C node had id zero and nodes started in the same
// second picked the same blocks with the same rand() seed, and all of them
// took the block. Two engines with the same picking seed but distinct ids
// resolve it while inquiring: only the higher id ever owns the block.
func TestSameSeedSimultaneousStart(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	lo := newNode(t, baseConfig(id(1), p), p, 42)
	hi := newNode(t, baseConfig(id(2), p), p, 42)
	lo.endLearning()
	hi.endLearning()
	if !slices.Equal(lo.claiming(), hi.claiming()) {
		t.Fatalf("same seed picked %v and %v; the test needs a collision", lo.claiming(), hi.claiming())
	}
	nodes := []*node{lo, hi}
	sentIdx := []int{0, 0}
	for tick := range 200 {
		now := time.Duration(tick) * 100 * time.Millisecond
		for i, n := range nodes {
			n.now = now
			n.e.Tick(now, nil)
			n.collect()
			// Deliver what n sent to the other node.
			o := nodes[1-i]
			o.now = now
			for _, m := range n.out[sentIdx[i]:] {
				if err := o.e.Step(now, addrOf(m.Node), &m); err != nil {
					t.Fatal(err)
				}
				o.collect()
			}
			sentIdx[i] = len(n.out)
		}
		for b := range uint32(8) {
			if lo.state(b) == claim.Ours && hi.state(b) == claim.Ours {
				t.Fatalf("at %v both own block %d", now, b)
			}
		}
	}
	if len(lo.e.Owned()) != 1 || len(hi.e.Owned()) != 1 {
		t.Errorf("owned lo=%v hi=%v", lo.e.Owned(), hi.e.Owned())
	}
}

func TestZeroNodeIDRefused(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(wire.NodeID{}, p)
	if _, err := claim.New(cfg, p, rand.New(rand.NewPCG(1, 1)), 0); err == nil {
		t.Fatal("engine accepted node id zero")
	}
}

func TestDrops(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	m := inquireMsg(1)
	m.Node = id(4)
	m.Swarm = swarmOf(p)
	m.Swarm.BlockSize = 16
	if err := n.e.Step(0, addrOf(id(4)), &m); err != claim.ErrForeignSwarm {
		t.Errorf("foreign block size: %v", err)
	}
	if err := n.step(id(9), inquireMsg(1)); err != claim.ErrOwnID {
		t.Errorf("own id: %v", err)
	}
	if err := n.step(id(4), inquireMsg(8, 1000, 1<<31)); err != nil {
		t.Fatal(err)
	}
	if err := n.step(id(4), claimMsg(wire.Claim{Block: 8, Lifetime: 60})); err != nil {
		t.Fatal(err)
	}
	st := n.e.Stats()
	if st.BadIndex != 4 || st.ForeignSwarm != 1 || st.OwnID != 1 || n.e.Tracked() != 0 {
		t.Errorf("stats %+v, tracked %d", st, n.e.Tracked())
	}
}

func TestExpiryAndRelease(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(id(9), p)
	cfg.LearningTime = time.Hour
	n := newNode(t, cfg, p, 1)
	n.step(id(4), claimMsg(wire.Claim{Block: 2, Lifetime: 10}, wire.Claim{Block: 3, Lifetime: 60}))
	n.step(id(5), inquireMsg(4))
	n.run(10*time.Second, nil)
	if n.state(2) != claim.Free || n.state(3) != claim.Claimed || n.state(4) != claim.Tentative {
		t.Fatalf("at 10 s: %v %v %v", n.state(2), n.state(3), n.state(4))
	}
	n.run(5*time.Second, nil)
	if n.state(4) != claim.Free {
		t.Errorf("tentative did not expire: %v", n.state(4))
	}
	// Lifetime 0 releases, but only from the owner.
	n.step(id(6), claimMsg(wire.Claim{Block: 3, Lifetime: 0}))
	if n.state(3) != claim.Claimed {
		t.Errorf("release by a stranger accepted")
	}
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 0}))
	if n.state(3) != claim.Free || n.e.Tracked() != 0 {
		t.Errorf("release by the owner ignored: %v, %d tracked", n.state(3), n.e.Tracked())
	}
}

// TestRefreshAfterRelease: a refresh sent before a release but delivered
// after it is not taken for a new claim (the block would look owned for a
// block timeout); the former owner's inquiry, or the end of the inquiry
// window, ends that, so a real new claim is believed.
func TestRefreshAfterRelease(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(id(9), p)
	cfg.LearningTime = time.Hour
	n := newNode(t, cfg, p, 1)
	window := time.Duration(n.e.Config().Inquiries) * n.e.Config().InquireInterval
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 60}, wire.Claim{Block: 5, Lifetime: 60}))
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 0}, wire.Claim{Block: 5, Lifetime: 0}))
	n.now += 50 * time.Millisecond
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 60}, wire.Claim{Block: 5, Lifetime: 60}))
	if n.state(3) != claim.Free || n.state(5) != claim.Free {
		t.Fatalf("stale refresh believed: %v %v", n.state(3), n.state(5))
	}
	if got := n.e.Stats().StaleAfterRelease; got != 2 {
		t.Errorf("StaleAfterRelease %d, want 2", got)
	}
	// Another node's claim is believed at once.
	n.step(id(6), claimMsg(wire.Claim{Block: 5, Lifetime: 60}))
	if n.state(5) != claim.Claimed {
		t.Errorf("another node's claim ignored: %v", n.state(5))
	}
	// The former owner inquires, then claims: believed.
	n.step(id(4), inquireMsg(3))
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 60}))
	if n.state(3) != claim.Claimed {
		t.Errorf("claim after an inquiry ignored: %v", n.state(3))
	}
	// Without an inquiry heard, a claim after the window is believed.
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 0}))
	n.run(window, nil)
	n.step(id(4), claimMsg(wire.Claim{Block: 3, Lifetime: 60}))
	if n.state(3) != claim.Claimed {
		t.Errorf("claim after the window ignored: %v", n.state(3))
	}
}

func TestThirdPartyKeepsHigherOwner(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.step(id(20), claimMsg(wire.Claim{Block: 2, Lifetime: 60}))
	n.step(id(4), claimMsg(wire.Claim{Block: 2, Lifetime: 60}))
	if o := n.e.Block(2).Owner; o != id(20) {
		t.Errorf("owner %v, want the higher id", o)
	}
	n.step(id(30), claimMsg(wire.Claim{Block: 2, Lifetime: 60}))
	if o := n.e.Block(2).Owner; o != id(30) {
		t.Errorf("owner %v, want the new higher id", o)
	}
}

// usage is a lease table stand-in: used addresses per block.
type usage map[uint32]int

func (u usage) Free(b uint32) int    { return 32 - u[b] }
func (u usage) Active(b uint32) bool { return u[b] > 0 }

func TestNeedlessReleaseOfSurplus(t *testing.T) {
	tests := []struct {
		name  string
		spare int
		want  []uint32 // owned after the needless timeout
	}{
		{"surplus released, block with leases kept", 0, []uint32{10}},
		{"blocks still needed for spare are kept", 60, []uint32{10, 11, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, "10.0.0.0/16", 5)
			cfg := baseConfig(id(9), p)
			cfg.SpareLeases = tt.spare
			n := newNode(t, cfg, p, 1)
			u := usage{10: 5}  // block 10 has leases
			n.e.EndLearning(0) // Want before the first tick, so spare is met by these blocks
			for _, b := range []uint32{10, 11, 12} {
				if !n.e.Want(n.now, b) {
					t.Fatalf("Want(%d) refused", b)
				}
			}
			n.run(3*time.Second, u)
			if got := n.e.Owned(); !slices.Equal(got, []uint32{10, 11, 12}) {
				t.Fatalf("owned %v", got)
			}
			mark := len(n.out)
			n.run(298*time.Second, u)
			if got := n.e.Owned(); len(got) != 3 {
				t.Fatalf("released before the needless timeout: %v", got)
			}
			n.run(2*time.Second, u)
			if got := n.e.Owned(); !slices.Equal(got, tt.want) {
				t.Fatalf("after the needless timeout owned %v, want %v", got, tt.want)
			}
			var released []uint32
			for _, m := range n.sent(mark, wire.CmdUpdateClaim) {
				for _, c := range m.Claims {
					if c.Lifetime == 0 {
						released = append(released, c.Block)
					}
				}
			}
			if len(released) != 3-len(tt.want) {
				t.Errorf("releases announced for %v", released)
			}
		})
	}
}

// C bug 15: no address was reserved and BLOCKED was never set. A block whose
// every address is reserved is never claimed, and reserved addresses do not
// count as spare.
func TestBlockedBlocksNeverClaimed(t *testing.T) {
	// 8 blocks of 32; blocks 0-6 fully reserved; block 7 keeps 31 (broadcast reserved).
	p := testPool(t, "10.0.0.0/24", 5, "10.0.0.0-10.0.0.223")
	cfg := baseConfig(id(9), p)
	cfg.SpareLeases = 100
	n := newNode(t, cfg, p, 1)
	n.endLearning()
	n.run(30*time.Second, nil)
	if got := n.e.Owned(); !slices.Equal(got, []uint32{7}) {
		t.Errorf("owned %v, want only block 7", got)
	}
	for b := range uint32(7) {
		if n.state(b) != claim.Blocked {
			t.Errorf("block %d state %v", b, n.state(b))
		}
	}
	// Inquiries for blocked blocks create no state.
	n.step(id(3), inquireMsg(0, 1, 2))
	if n.e.Tracked() != 1 {
		t.Errorf("tracked %d", n.e.Tracked())
	}
}

// C bug 10: block_num_owned looked only at block 0.
func TestOwnedCountsEveryBlock(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 3)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	for _, b := range []uint32{5, 9, 30} {
		n.e.Want(n.now, b)
	}
	n.run(4*time.Second, nil)
	if got := n.e.Owned(); len(got) < 3 || !slices.Contains(got, 5) || !slices.Contains(got, 30) {
		t.Errorf("owned %v", got)
	}
}

// C bug 39: INQUIRE carried every claiming block with a one-byte count.
func TestLargeRoundsAreSplit(t *testing.T) {
	p := testPool(t, "10.0.0.0/16", 0)
	cfg := baseConfig(id(9), p)
	cfg.SpareLeases = 300
	n := newNode(t, cfg, p, 1)
	n.endLearning()
	inq := n.sent(0, wire.CmdInquire)
	total := 0
	for _, m := range inq {
		if len(m.Inquiries) > 255 || int(m.Count) != len(m.Inquiries) {
			t.Fatalf("inquiry of %d entries, count %d", len(m.Inquiries), m.Count)
		}
		total += len(m.Inquiries)
	}
	if total != 300 || len(inq) != 2 {
		t.Errorf("%d entries in %d messages", total, len(inq))
	}
	mark := len(n.out)
	n.run(3*time.Second, nil)
	claims := n.sent(mark, wire.CmdUpdateClaim)
	total = 0
	for _, m := range claims {
		if len(m.Claims) > 32 {
			t.Fatalf("claim of %d entries", len(m.Claims))
		}
		total += len(m.Claims)
	}
	if total != 300 || len(claims) != 10 {
		t.Errorf("%d claims in %d messages", total, len(claims))
	}
	for _, m := range claims {
		b, err := m.Encode()
		if err != nil || len(b) != 16+7*len(m.Claims) {
			t.Fatalf("encode: %v", err)
		}
	}
}

func TestMaxBlocksCap(t *testing.T) {
	p := testPool(t, "10.0.0.0/16", 2)
	cfg := baseConfig(id(9), p)
	cfg.SpareLeases = 1000
	cfg.MaxBlocks = 5
	n := newNode(t, cfg, p, 1)
	n.endLearning()
	n.run(30*time.Second, nil)
	if got := len(n.e.Owned()); got != 5 {
		t.Errorf("owned %d blocks with a cap of 5", got)
	}
}

func TestFullPoolPicksRemainingBlock(t *testing.T) {
	// 256 blocks of 1; all but block 77 claimed by others: the random probes
	// miss and the bounded scan finds it.
	p := testPool(t, "10.0.0.0/24", 0)
	cfg := baseConfig(id(9), p)
	cfg.SpareLeases = 1
	n := newNode(t, cfg, p, 3)
	var cl []wire.Claim
	for b := range uint32(256) {
		if b != 77 && !p.Blocked(b) {
			cl = append(cl, wire.Claim{Block: b, Lifetime: 600})
		}
	}
	for _, c := range wire.ChunkClaims(cl) {
		n.step(id(4), claimMsg(c...))
	}
	n.endLearning()
	n.run(4*time.Second, nil)
	if got := n.e.Owned(); !slices.Equal(got, []uint32{77}) {
		t.Errorf("owned %v, want [77]", got)
	}
	// Nothing left: picking fails quietly.
	n.step(id(4), claimMsg(wire.Claim{Block: 77, Lifetime: 600}))
	n.run(4*time.Second, nil)
	if len(n.claiming()) != 0 {
		t.Errorf("claiming %v in a full pool", n.claiming())
	}
}

func TestConfigValidate(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	good := baseConfig(id(1), p).WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*claim.Config)
	}{
		{"zero id", func(c *claim.Config) { c.Node = wire.NodeID{} }},
		{"negative spare", func(c *claim.Config) { c.SpareLeases = -1 }},
		{"block timeout too long", func(c *claim.Config) { c.BlockTimeout = 70000 * time.Second }},
		{"block timeout fraction", func(c *claim.Config) { c.BlockTimeout = 1500 * time.Millisecond }},
		{"one inquiry", func(c *claim.Config) { c.Inquiries = 1 }},
		{"inquiry window shorter than the announce gap", func(c *claim.Config) { c.InquireInterval = 50 * time.Millisecond }},
		{"refresh factor 1", func(c *claim.Config) { c.RefreshFactor = 1 }},
		{"negative cap", func(c *claim.Config) { c.MaxBlocks = -3 }},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	// The swarm must match the pool.
	c := good
	c.Swarm.BlockSize = 16
	if _, err := claim.New(c, p, rand.New(rand.NewPCG(1, 1)), 0); err == nil {
		t.Error("swarm/pool mismatch accepted")
	}
}

// A client that got nothing makes the engine claim even with no spare
// configured; the demand fades once nobody asks.
func TestDemand(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(id(9), p)
	cfg.SpareLeases = 0
	n := newNode(t, cfg, p, 1)
	n.endLearning()
	n.run(5*time.Second, nil)
	if len(n.e.Owned()) != 0 {
		t.Fatalf("claimed with spare 0 and no demand: %v", n.e.Owned())
	}
	full := usage{}
	n.e.Demand(n.now, 1)
	n.e.Tick(n.now, full)
	n.collect()
	if len(n.claiming()) != 1 {
		t.Fatalf("demand did not start a claim at once: %v", n.claiming())
	}
	n.run(3*time.Second, full)
	if len(n.e.Owned()) != 1 {
		t.Fatalf("owned %v", n.e.Owned())
	}
}

func TestRestore(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5, "10.0.0.64-10.0.0.95")
	cfg := baseConfig(id(9), p)
	cfg.LearningTime = time.Hour
	n := newNode(t, cfg, p, 1)
	if !n.e.Restore(0, 5) || n.state(5) != claim.Ours {
		t.Fatalf("restore: %v", n.state(5))
	}
	if n.e.Restore(0, 2) {
		t.Error("restored a blocked block")
	}
	if n.e.Restore(0, 99) || n.e.Restore(0, 5) {
		t.Error("restored an out-of-pool or already tracked block")
	}
	n.run(time.Millisecond, nil)
	c := n.sent(0, wire.CmdUpdateClaim)
	if len(c) != 1 || c[0].Claims[0].Block != 5 {
		t.Errorf("restored block not announced at once (while learning): %+v", c)
	}
}

// Blocks owned before a restart are claimed first when learning ends, so
// spare leases are met by them rather than by new blocks.
func TestPreferredFirst(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(id(9), p)
	cfg.LearningTime = 5 * time.Second
	n := newNode(t, cfg, p, 1)
	n.e.Prefer(6, 7)
	n.step(id(20), claimMsg(wire.Claim{Block: 7, Lifetime: 60})) // taken meanwhile
	n.run(9*time.Second, nil)
	if got := n.e.Owned(); !slices.Equal(got, []uint32{6}) {
		t.Errorf("owned %v, want [6] (7 is claimed by another node, 6 meets the spare)", got)
	}
}

// Fast join: learning ends once the table has been quiet for SyncQuiet after
// the SYNC, not after the full learning time.
func TestFastJoin(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	cfg := baseConfig(id(9), p)
	cfg.LearningTime = 60 * time.Second
	cfg.SyncQuiet = 2 * time.Second
	n := newNode(t, cfg, p, 1)
	n.e.SyncSent(0)
	// Claims keep arriving for a while (re-announcements to our SYNC).
	for i := range uint32(3) {
		n.run(time.Second, nil)
		n.step(id(20+byte(i)), claimMsg(wire.Claim{Block: i, Lifetime: 60}))
	}
	if !n.e.Learning() {
		t.Fatal("learning ended while claims were still arriving")
	}
	n.run(1900*time.Millisecond, nil)
	if !n.e.Learning() {
		t.Fatal("learning ended before the table was quiet for 2 s")
	}
	n.run(200*time.Millisecond, nil)
	if n.e.Learning() {
		t.Fatalf("learning still on at %v", n.now)
	}
	// A refresh of a known claim is not news.
	m := newNode(t, cfg, p, 1)
	m.step(id(20), claimMsg(wire.Claim{Block: 1, Lifetime: 60}))
	m.e.SyncSent(0)
	for range 4 {
		m.run(500*time.Millisecond, nil)
		m.step(id(20), claimMsg(wire.Claim{Block: 1, Lifetime: 60}))
	}
	if m.e.Learning() {
		t.Error("refreshes of a known claim kept learning on")
	}
	// Without fast join, learning lasts the learning time.
	cfg.SyncQuiet = 0
	c := newNode(t, cfg, p, 1)
	c.e.SyncSent(0)
	c.run(59*time.Second, nil)
	if !c.e.Learning() {
		t.Error("learning ended early without fast join")
	}
}

func TestSyncRequested(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 5)
	n := newNode(t, baseConfig(id(9), p), p, 1)
	n.endLearning()
	n.run(5*time.Second, nil) // owns a block; next refresh at 18 s
	mark := len(n.out)
	n.e.SyncRequested(n.now)
	n.run(500*time.Millisecond, nil)
	if c := n.sent(mark, wire.CmdUpdateClaim); len(c) != 1 {
		t.Errorf("%d claims within the jitter after a SYNC", len(c))
	}
}

func TestAutoMaxBlocks(t *testing.T) {
	tests := []struct {
		spare, size int
		blocks      uint32
		want        int
	}{
		{2, 32, 8, 4},        // /24 of 32s: half the pool
		{2, 4, 1024, 64},     // the Freifunk /20 of 4s: 256 addresses
		{2000, 128, 512, 63}, // a big spare raises it
		{1, 1, 2, 1},         // tiny pools keep one block
	}
	for _, tt := range tests {
		if got := claim.AutoMaxBlocks(tt.spare, tt.size, tt.blocks); got != tt.want {
			t.Errorf("AutoMaxBlocks(%d, %d, %d) = %d, want %d", tt.spare, tt.size, tt.blocks, got, tt.want)
		}
	}
	// The engine applies it when MaxBlocks is 0: a huge demand stops at the cap.
	p := testPool(t, "10.0.0.0/16", 2)
	cfg := baseConfig(id(9), p)
	n := newNode(t, cfg, p, 1)
	n.endLearning()
	n.e.Demand(n.now, 100000)
	n.run(10*time.Second, nil)
	if got := len(n.e.Owned()); got != 64 {
		t.Errorf("owned %d blocks under unbounded demand, want the automatic cap 64", got)
	}
}
