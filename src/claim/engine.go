// Package claim is the block-claim engine: a pure state machine that decides
// which blocks of the pool this node owns, by the inquire/claim protocol of
// the C ddhcpd with its bugs fixed.
//
// The engine does no I/O and reads no clock. The caller passes the current
// monotonic time (a time.Duration since any fixed origin) and a random source,
// feeds it received messages with Step, calls Tick at or before Next, and
// sends what Outbox returns to the mesh. This lets the simulator run hundreds
// of engines in one process and replay a run from its seed.
//
// Memory and work grow with the blocks that are tracked (ours, claimed by
// others, inquired), never with the size of the pool.
package claim

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// State is the state of one block. The numbers are the ones the C ddhcpctl
// prints, so status output stays comparable.
type State uint8

// Block states.
const (
	Free      State = iota // nobody known to hold it
	Tentative              // another node inquired about it
	Claimed                // another node owns it
	Claiming               // we are inquiring about it
	Ours                   // we own it
	Blocked                // every address is reserved; never claimed
)

var stateNames = [...]string{"free", "tentative", "claimed", "claiming", "ours", "blocked"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// Usage tells the engine how the addresses of its blocks are used. The lease
// table implements it; a nil Usage means no address is in use.
type Usage interface {
	// Free is the number of addresses of the block that can still be handed out.
	Free(block uint32) int
	// Active reports whether any address of the block is offered or leased.
	Active(block uint32) bool
}

// EventKind says what happened to a block.
type EventKind uint8

// Events reported by the engine.
const (
	EventOwned         EventKind = iota + 1 // a block became ours
	EventLost                               // a higher id took one of our blocks
	EventReleased                           // we gave up an unused block
	EventDefended                           // a lower id claimed one of our blocks; we re-announced
	EventLearningEnded                      // the learning phase is over
)

var eventNames = [...]string{"", "blockowned", "blocklost", "blockreleased", "blockdefended", "endlearning"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", k)
}

// Event is something the daemon may log, hook or hand to the lease table.
type Event struct {
	Kind     EventKind
	Block    uint32
	Peer     wire.NodeID // the other node, for lost and defended blocks
	PeerAddr netip.Addr
}

// Drop reasons returned by Step.
var (
	ErrForeignSwarm = errors.New("claim: packet from another pool or block size")
	ErrOwnID        = errors.New("claim: packet carries our own node id")
	ErrNotClaim     = errors.New("claim: not a claim message")
)

// Stats counts what the engine saw.
type Stats struct {
	ClaimsIn, InquiriesIn   uint64 // entries received
	BadIndex                uint64 // entries naming a block outside the pool
	ForeignSwarm, OwnID     uint64 // whole packets dropped
	Owned, Lost, Released   uint64
	Defended, BackedOff     uint64
	MessagesOut, EntriesOut uint64
	StaleAfterRelease       uint64 // claims ignored: sent before their owner's release
}

type block struct {
	idx       uint32
	state     State
	owner     wire.NodeID
	ownerAddr netip.Addr
	timeout   time.Duration // expiry of Claimed and Tentative
	heapAt    time.Duration // key in the timer heap: at most timeout
	heapIdx   int           // position in the timer heap, -1 when not in it

	inquiries   int // INQUIREs sent while Claiming
	nextInquiry time.Duration

	ownedAt       time.Duration
	announced     bool
	lastAnnounce  time.Duration
	announceDue   time.Duration
	pending       bool // queued for an immediate announcement
	needless      bool
	needlessSince time.Duration
}

// Engine is one node's view of the pool.
type Engine struct {
	cfg  Config
	pool *pool.Pool
	rng  *rand.Rand

	learnUntil time.Duration
	learning   bool
	lastTick   time.Duration
	syncSent   bool          // fast join: a SYNC went out while learning
	lastNews   time.Duration // last time the table learnt a block or a SYNC went out

	blocks   map[uint32]*block // every block not Free and not Blocked
	timers   timerHeap         // Claimed and Tentative blocks by timeout
	claiming []*block          // sorted by index
	ours     []*block          // sorted by index
	pending  []*block          // queued announcements
	refresh  time.Duration     // next periodic refresh of ours

	// preferred blocks are claimed first once learning ends (blocks we
	// owned before a restart).
	preferred []uint32

	// demand is extra need from clients that got nothing, on top of the
	// spare leases, until demandUntil.
	demand      int
	demandUntil time.Duration

	// released remembers for a while the blocks other nodes released, so
	// that a refresh the owner sent just before its release, delivered
	// after it, is not taken for a new claim (see onClaim).
	released map[uint32]releasedBy

	out    []wire.Message
	events []Event
	stats  Stats
}

type releasedBy struct {
	owner wire.NodeID
	until time.Duration
}

// maxReleased bounds the released memory against a flood of releases.
const maxReleased = 1024

// New makes an engine that starts at time now. The pool must agree with the
// swarm in cfg, which must be valid after defaults.
func New(cfg Config, p *pool.Pool, rng *rand.Rand, now time.Duration) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := cfg.Swarm
	if !s.Prefix.Is4() || netip.PrefixFrom(s.Prefix, int(s.PrefixLen)).Masked() != p.Prefix() || int(s.BlockSize) != p.BlockSize() {
		return nil, fmt.Errorf("claim: swarm %v/%d size %d does not match pool %v size %d", s.Prefix, s.PrefixLen, s.BlockSize, p.Prefix(), p.BlockSize())
	}
	if rng == nil {
		return nil, errors.New("claim: no random source")
	}
	switch cfg.MaxBlocks {
	case 0:
		cfg.MaxBlocks = AutoMaxBlocks(cfg.SpareLeases, p.BlockSize(), p.NumBlocks())
	case -1:
		cfg.MaxBlocks = 0 // no cap
	}
	e := &Engine{
		cfg:        cfg,
		pool:       p,
		rng:        rng,
		learnUntil: now + cfg.LearningTime,
		learning:   true,
		lastTick:   now,
		blocks:     make(map[uint32]*block),
		released:   make(map[uint32]releasedBy),
	}
	return e, nil
}

// Config returns the settings in force, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Pool returns the pool the engine works on.
func (e *Engine) Pool() *pool.Pool { return e.pool }

// Step handles a received UPDATECLAIM or INQUIRE from the node at addr. It
// returns an error naming why a whole packet was dropped.
func (e *Engine) Step(now time.Duration, from netip.Addr, m *wire.Message) error {
	if !e.cfg.Swarm.Matches(m.Header) {
		e.stats.ForeignSwarm++
		return ErrForeignSwarm
	}
	if m.Node == e.cfg.Node {
		e.stats.OwnID++
		return ErrOwnID
	}
	switch m.Command {
	case wire.CmdUpdateClaim:
		for _, c := range m.Claims {
			e.stats.ClaimsIn++
			e.onClaim(now, m.Node, from, c)
		}
	case wire.CmdInquire:
		for _, i := range m.Inquiries {
			e.stats.InquiriesIn++
			e.onInquire(now, m.Node, i)
		}
	default:
		return ErrNotClaim
	}
	e.flushAnnouncements(now)
	return nil
}

func (e *Engine) onClaim(now time.Duration, id wire.NodeID, from netip.Addr, c wire.Claim) {
	if c.Block >= e.pool.NumBlocks() {
		e.stats.BadIndex++
		return
	}
	b := e.blocks[c.Block]
	if c.Lifetime == 0 {
		// The owner released it (the Python prototype's and our way; C
		// nodes let it time out).
		if b != nil && b.state == Claimed && b.owner == id {
			e.forget(b)
		}
		if b == nil || b.state != Ours {
			e.rememberRelease(now, c.Block, id)
		}
		return
	}
	if r, ok := e.released[c.Block]; ok && r.owner == id && now < r.until {
		// A refresh that its owner sent before releasing the block and
		// that arrived after the release: the owner cannot have claimed
		// the block again so soon without inquiring first (which would
		// have cleared this memory).
		e.stats.StaleAfterRelease++
		return
	}
	until := now + time.Duration(c.Lifetime)*time.Second
	if b == nil || (b.state != Claimed && b.state != Ours) {
		e.lastNews = now
	}
	if b == nil {
		b = e.track(c.Block)
	}
	switch b.state {
	case Ours:
		if id.Compare(e.cfg.Node) < 0 {
			// A lower id must yield; tell it at once.
			e.stats.Defended++
			e.events = append(e.events, Event{Kind: EventDefended, Block: b.idx, Peer: id, PeerAddr: from})
			e.queueAnnounce(b, now)
			return
		}
		e.ours = remove(e.ours, b)
		b.pending = false
		e.stats.Lost++
		e.events = append(e.events, Event{Kind: EventLost, Block: b.idx, Peer: id, PeerAddr: from})
	case Claiming:
		e.claiming = remove(e.claiming, b)
		e.stats.BackedOff++
	case Claimed:
		// Two nodes claim the same block: keep the higher one while its
		// claim lasts; it will defend the block and the lower one yields.
		if b.owner != id && id.Compare(b.owner) < 0 && b.timeout > now {
			return
		}
	}
	b.state, b.owner, b.ownerAddr = Claimed, id, from
	e.setTimeout(b, until)
}

func (e *Engine) onInquire(now time.Duration, id wire.NodeID, idx uint32) {
	if idx >= e.pool.NumBlocks() {
		e.stats.BadIndex++
		return
	}
	if r, ok := e.released[idx]; ok && r.owner == id {
		delete(e.released, idx) // its former owner claims it anew
	}
	b := e.blocks[idx]
	if b == nil {
		if e.pool.Blocked(idx) {
			return
		}
		b = e.track(idx)
		b.state = Tentative
		e.setTimeout(b, now+e.cfg.TentativeTimeout)
		return
	}
	switch b.state {
	case Ours:
		e.queueAnnounce(b, now)
	case Claiming:
		if id.Compare(e.cfg.Node) > 0 {
			e.claiming = remove(e.claiming, b)
			e.stats.BackedOff++
			b.state = Tentative
			e.setTimeout(b, now+e.cfg.TentativeTimeout)
		}
		// A lower id keeps inquiring until it hears ours and backs off.
	case Tentative:
		e.setTimeout(b, max(b.timeout, now+e.cfg.TentativeTimeout))
	case Claimed:
		// The owner answers; the C node's switch to Tentative here made
		// every node forget the owner until its next claim.
	}
}

// Tick runs housekeeping: expiry, the end of learning, picking blocks when
// spare addresses run short, inquiring, taking blocks, refreshing claims and
// releasing needless blocks. Calling it more often than Next asks does no
// harm: inquiry rounds keep their own schedule.
func (e *Engine) Tick(now time.Duration, u Usage) {
	e.lastTick = now
	if len(e.released) > 0 {
		e.pruneReleased(now)
	}
	for len(e.timers) > 0 && e.timers[0].heapAt <= now {
		b := e.timers[0]
		if b.timeout <= now {
			e.forget(b)
			continue
		}
		// Refreshed since it was keyed: re-key it now, once per lifetime,
		// instead of on every refresh.
		b.heapAt = b.timeout
		heap.Fix(&e.timers, 0)
	}
	if e.learning && (now >= e.learnUntil || e.quiet(now)) {
		e.learning = false
		e.events = append(e.events, Event{Kind: EventLearningEnded})
	}
	if !e.learning {
		e.claimPreferred(now)
		e.claimMore(now, u)
	}
	e.inquire(now)
	e.releaseNeedless(now, u)
	if len(e.ours) > 0 && now >= e.refresh {
		for _, b := range e.ours {
			if !b.pending {
				b.pending = true
				e.pending = append(e.pending, b)
			}
			b.announceDue = now
		}
		e.refresh = now + e.refreshPeriod()
	}
	e.flushAnnouncements(now)
}

func (e *Engine) refreshPeriod() time.Duration {
	return e.cfg.BlockTimeout / time.Duration(e.cfg.RefreshFactor)
}

// free returns the free addresses in our blocks and in the blocks we are
// claiming (counted as if already ours).
func (e *Engine) free(u Usage) int {
	n := 0
	for _, b := range e.ours {
		if u != nil {
			n += u.Free(b.idx)
		} else {
			n += e.pool.Usable(b.idx)
		}
	}
	for _, b := range e.claiming {
		n += e.pool.Usable(b.idx)
	}
	return n
}

// demandTTL is how long a client's demand outlives the request that made it.
const demandTTL = 30 * time.Second

// Demand records that a client asked for an address and none was free: at
// least n free addresses are wanted even if the spare-lease setting is lower
// (with -S or spare 0 a DISCOVER must still get an answer). The next Tick
// starts claiming.
func (e *Engine) Demand(now time.Duration, n int) {
	if now >= e.demandUntil {
		e.demand = 0
	}
	e.demand = max(e.demand, n)
	e.demandUntil = now + demandTTL
}

func (e *Engine) claimMore(now time.Duration, u Usage) {
	want := e.cfg.SpareLeases
	if now < e.demandUntil {
		want = max(want, e.demand)
	}
	need := want - e.free(u)
	for need > 0 && (e.cfg.MaxBlocks == 0 || len(e.ours)+len(e.claiming) < e.cfg.MaxBlocks) {
		idx, ok := e.pickFree()
		if !ok {
			return
		}
		e.startClaiming(idx, now)
		need -= e.pool.Usable(idx)
	}
}

// Prefer asks for blocks to be claimed (through inquiries) before any other
// once learning ends, e.g. the blocks of a state file too old to restore at
// once. Blocks someone else claims meanwhile are skipped.
func (e *Engine) Prefer(blocks ...uint32) {
	e.preferred = append(e.preferred, blocks...)
}

func (e *Engine) claimPreferred(now time.Duration) {
	for _, idx := range e.preferred {
		if idx < e.pool.NumBlocks() && e.blocks[idx] == nil && !e.pool.Blocked(idx) &&
			(e.cfg.MaxBlocks == 0 || len(e.ours)+len(e.claiming) < e.cfg.MaxBlocks) {
			e.startClaiming(idx, now)
		}
	}
	e.preferred = nil
}

// Want starts claiming a specific block at once if it is free, for a host
// reservation or an address a client asks for. It reports whether the block
// is ours or being claimed afterwards.
func (e *Engine) Want(now time.Duration, idx uint32) bool {
	if idx >= e.pool.NumBlocks() {
		return false
	}
	if b := e.blocks[idx]; b != nil {
		return b.state == Ours || b.state == Claiming
	}
	if e.learning || e.pool.Blocked(idx) || (e.cfg.MaxBlocks > 0 && len(e.ours)+len(e.claiming) >= e.cfg.MaxBlocks) {
		return false
	}
	e.startClaiming(idx, now)
	e.inquire(now)
	return true
}

// Restore takes a block we owned before a restart as ours at once and
// announces it, so its leases stay served and other nodes' copies of our
// claim are refreshed before they time out. The caller restores only blocks
// whose claims can still be alive elsewhere (saved less than a block timeout
// ago); a conflicting higher id still wins as usual.
func (e *Engine) Restore(now time.Duration, idx uint32) bool {
	if idx >= e.pool.NumBlocks() || e.pool.Blocked(idx) || e.blocks[idx] != nil {
		return false
	}
	e.takeOwnership(e.track(idx), now)
	return true
}

func (e *Engine) startClaiming(idx uint32, now time.Duration) {
	b := e.track(idx)
	b.state = Claiming
	b.inquiries = 0
	b.nextInquiry = now
	e.claiming = insert(e.claiming, b)
}

// pickFree returns a random block that is neither tracked nor blocked. A few
// random probes find one in any pool that is not nearly full; otherwise a scan
// from a random start skips tracked blocks one by one and reserved ranges in
// one jump, so its cost is bounded by the tracked blocks, not the pool.
func (e *Engine) pickFree() (uint32, bool) {
	n := e.pool.NumBlocks()
	for range 32 {
		i := e.rng.Uint32N(n)
		if e.blocks[i] == nil && !e.pool.Blocked(i) {
			return i, true
		}
	}
	i := e.rng.Uint32N(n)
	wrapped := false
	for range len(e.blocks) + 2 {
		i = e.pool.SkipBlocked(i)
		if i >= n {
			if wrapped {
				return 0, false
			}
			wrapped, i = true, 0
			continue
		}
		if e.blocks[i] == nil {
			return i, true
		}
		i++
	}
	return 0, false
}

// inquire sends one INQUIRE round for every claiming block that is due, and
// takes the blocks that have been inquired often enough without objection.
// Only blocks still Claiming are in the list, so a block that was claimed by
// someone else, backed off or expired meanwhile is never taken (C bug 3).
func (e *Engine) inquire(now time.Duration) {
	var ask []uint32
	for i := 0; i < len(e.claiming); {
		b := e.claiming[i]
		if b.nextInquiry > now {
			i++
			continue
		}
		if b.inquiries >= e.cfg.Inquiries {
			e.claiming = slices.Delete(e.claiming, i, i+1)
			e.takeOwnership(b, now)
			continue
		}
		b.inquiries++
		b.nextInquiry = now + e.cfg.InquireInterval
		ask = append(ask, b.idx)
		i++
	}
	for _, c := range wire.ChunkInquiries(ask) {
		e.send(wire.Message{Header: e.header(wire.CmdInquire), Inquiries: c})
	}
}

func (e *Engine) takeOwnership(b *block, now time.Duration) {
	b.state = Ours
	b.ownedAt = now
	b.needless = false
	if len(e.ours) == 0 {
		e.refresh = now + e.refreshPeriod()
	}
	e.ours = insert(e.ours, b)
	b.announced = false
	e.queueAnnounce(b, now)
	e.stats.Owned++
	e.events = append(e.events, Event{Kind: EventOwned, Block: b.idx})
}

// releaseNeedless gives up surplus blocks that have had no active lease for
// the needless timeout, youngest first, while enough spare stays.
func (e *Engine) releaseNeedless(now time.Duration, u Usage) {
	if len(e.ours) == 0 {
		return
	}
	surplus := e.free(u) - e.cfg.SpareLeases
	byAge := slices.Clone(e.ours)
	slices.SortStableFunc(byAge, func(a, b *block) int { return cmp.Compare(b.ownedAt, a.ownedAt) })
	var release []*block
	for _, b := range byAge {
		f := e.pool.Usable(b.idx)
		if u != nil {
			f = u.Free(b.idx)
		}
		if (u != nil && u.Active(b.idx)) || f > surplus {
			b.needless = false
			continue
		}
		surplus -= f
		if !b.needless {
			b.needless, b.needlessSince = true, now
		}
		if now-b.needlessSince >= e.cfg.NeedlessTimeout {
			release = append(release, b)
		}
	}
	if len(release) == 0 {
		return
	}
	var claims []wire.Claim
	for _, b := range release {
		e.ours = remove(e.ours, b)
		claims = append(claims, wire.Claim{Block: b.idx, Lifetime: 0})
		e.forget(b)
		e.stats.Released++
		e.events = append(e.events, Event{Kind: EventReleased, Block: b.idx})
	}
	slices.SortFunc(claims, func(a, b wire.Claim) int { return cmpU32(a.Block, b.Block) })
	for _, c := range wire.ChunkClaims(claims) {
		e.send(wire.Message{Header: e.header(wire.CmdUpdateClaim), Claims: c})
	}
}

// queueAnnounce schedules an UPDATECLAIM for one of our blocks, at most once
// per AnnounceGap for the same block.
func (e *Engine) queueAnnounce(b *block, now time.Duration) {
	due := now
	if b.announced {
		due = max(now, b.lastAnnounce+e.cfg.AnnounceGap)
	}
	if b.pending {
		b.announceDue = min(b.announceDue, due)
		return
	}
	b.pending, b.announceDue = true, due
	e.pending = append(e.pending, b)
}

func (e *Engine) flushAnnouncements(now time.Duration) {
	if len(e.pending) == 0 {
		return
	}
	var claims []wire.Claim
	keep := e.pending[:0]
	for _, b := range e.pending {
		if !b.pending || b.state != Ours {
			b.pending = false
			continue
		}
		if b.announceDue > now {
			keep = append(keep, b)
			continue
		}
		b.pending, b.announced, b.lastAnnounce = false, true, now
		claims = append(claims, wire.Claim{Block: b.idx, Lifetime: uint16(e.cfg.BlockTimeout / time.Second)})
	}
	clear(e.pending[len(keep):])
	e.pending = keep
	slices.SortFunc(claims, func(a, b wire.Claim) int { return cmpU32(a.Block, b.Block) })
	for _, c := range wire.ChunkClaims(claims) {
		e.send(wire.Message{Header: e.header(wire.CmdUpdateClaim), Claims: c})
	}
}

func (e *Engine) header(cmd uint8) wire.Header {
	return wire.Header{Node: e.cfg.Node, Swarm: e.cfg.Swarm, Command: cmd}
}

func (e *Engine) send(m wire.Message) {
	e.stats.MessagesOut++
	e.stats.EntriesOut += uint64(len(m.Claims) + len(m.Inquiries))
	if m.Command == wire.CmdUpdateClaim {
		m.Count = uint8(len(m.Claims))
	} else {
		m.Count = uint8(len(m.Inquiries))
	}
	e.out = append(e.out, m)
}

// Next is the latest time at which Tick must run again.
func (e *Engine) Next() time.Duration {
	t := e.lastTick + e.cfg.TickInterval
	if len(e.timers) > 0 {
		t = min(t, e.timers[0].heapAt)
	}
	if e.learning {
		t = min(t, e.learnUntil)
		if e.syncSent {
			t = min(t, e.lastNews+e.cfg.SyncQuiet)
		}
	}
	for _, b := range e.claiming {
		t = min(t, b.nextInquiry)
	}
	if len(e.ours) > 0 {
		t = min(t, e.refresh)
	}
	for _, b := range e.pending {
		t = min(t, b.announceDue)
	}
	return t
}

// Outbox returns the messages to multicast, in order, and empties it.
func (e *Engine) Outbox() []wire.Message {
	out := e.out
	e.out = nil
	return out
}

// Events returns what happened since the last call and empties the list.
func (e *Engine) Events() []Event {
	ev := e.events
	e.events = nil
	return ev
}

// Stats returns the counters.
func (e *Engine) Stats() Stats { return e.stats }

// Learning reports whether the engine is still in its learning phase.
func (e *Engine) Learning() bool { return e.learning }

// SyncSent records that a SYNC went out (fast join): learning ends once the
// table has been quiet for SyncQuiet after it.
func (e *Engine) SyncSent(now time.Duration) {
	if e.learning && e.cfg.SyncQuiet > 0 {
		e.syncSent, e.lastNews = true, now
	}
}

// quiet reports whether fast join may end learning.
func (e *Engine) quiet(now time.Duration) bool {
	return e.syncSent && now >= e.lastNews+e.cfg.SyncQuiet
}

// SyncRequested answers another node's SYNC: all our blocks are announced
// within a random delay of up to SyncJitter, so a mesh of many nodes does
// not answer in one burst.
func (e *Engine) SyncRequested(now time.Duration) {
	if len(e.ours) == 0 {
		return
	}
	due := now + time.Duration(e.rng.Int64N(int64(e.cfg.SyncJitter)+1))
	for _, b := range e.ours {
		if !b.pending {
			b.pending, b.announceDue = true, due
			e.pending = append(e.pending, b)
		} else {
			b.announceDue = min(b.announceDue, due)
		}
	}
}

// EndLearning ends the learning phase now (fast join or -L); the next Tick
// starts claiming.
func (e *Engine) EndLearning(now time.Duration) {
	if e.learning {
		e.learning, e.learnUntil = false, now
		e.events = append(e.events, Event{Kind: EventLearningEnded})
	}
}

// BlockInfo is one tracked block, for status output and tests.
type BlockInfo struct {
	Index     uint32
	State     State
	Owner     wire.NodeID   // ours for Ours, the claimer for Claimed
	OwnerAddr netip.Addr    // where the owner's claim came from
	Timeout   time.Duration // absolute expiry for Claimed and Tentative
	Inquiries int           // for Claiming
	OwnedAt   time.Duration // for Ours
}

// Block describes block idx, whether tracked or not.
func (e *Engine) Block(idx uint32) BlockInfo {
	if b := e.blocks[idx]; b != nil {
		return e.info(b)
	}
	if idx < e.pool.NumBlocks() && e.pool.Blocked(idx) {
		return BlockInfo{Index: idx, State: Blocked}
	}
	return BlockInfo{Index: idx, State: Free}
}

func (e *Engine) info(b *block) BlockInfo {
	bi := BlockInfo{Index: b.idx, State: b.state, Owner: b.owner, OwnerAddr: b.ownerAddr}
	switch b.state {
	case Ours:
		bi.Owner, bi.OwnedAt = e.cfg.Node, b.ownedAt
	case Claiming:
		bi.Inquiries = b.inquiries
	case Claimed, Tentative:
		bi.Timeout = b.timeout
	}
	return bi
}

// Blocks lists every tracked block by index.
func (e *Engine) Blocks() []BlockInfo {
	out := make([]BlockInfo, 0, len(e.blocks))
	for _, b := range e.blocks {
		out = append(out, e.info(b))
	}
	slices.SortFunc(out, func(a, b BlockInfo) int { return cmpU32(a.Index, b.Index) })
	return out
}

// Owned lists our blocks by index.
func (e *Engine) Owned() []uint32 {
	out := make([]uint32, len(e.ours))
	for i, b := range e.ours {
		out[i] = b.idx
	}
	return out
}

// Tracked is the number of blocks the engine keeps state for.
func (e *Engine) Tracked() int { return len(e.blocks) }

func (e *Engine) track(idx uint32) *block {
	b := e.blocks[idx]
	if b == nil {
		b = &block{idx: idx, heapIdx: -1}
		e.blocks[idx] = b
	}
	return b
}

// rememberRelease notes that node id released block idx at now. The memory
// lasts one inquiry window: the earliest the former owner can claim the
// block again, after inquiring, which clears it.
func (e *Engine) rememberRelease(now time.Duration, idx uint32, id wire.NodeID) {
	if len(e.released) >= maxReleased {
		e.pruneReleased(now)
		if len(e.released) >= maxReleased {
			return
		}
	}
	e.released[idx] = releasedBy{owner: id, until: now + time.Duration(e.cfg.Inquiries)*e.cfg.InquireInterval}
}

func (e *Engine) pruneReleased(now time.Duration) {
	for idx, r := range e.released {
		if now >= r.until {
			delete(e.released, idx)
		}
	}
}

// forget returns a block to Free (or Blocked) and drops its state.
func (e *Engine) forget(b *block) {
	if b.heapIdx >= 0 {
		heap.Remove(&e.timers, b.heapIdx)
	}
	switch b.state {
	case Claiming:
		e.claiming = remove(e.claiming, b)
	case Ours:
		e.ours = remove(e.ours, b)
	}
	b.pending = false
	delete(e.blocks, b.idx)
}

// setTimeout sets a block's expiry. A later expiry (the common refresh) only
// updates the block; the heap is touched when the expiry moves earlier or the
// block enters it.
func (e *Engine) setTimeout(b *block, t time.Duration) {
	b.timeout = t
	switch {
	case b.heapIdx < 0:
		b.heapAt = t
		heap.Push(&e.timers, b)
	case t < b.heapAt:
		b.heapAt = t
		heap.Fix(&e.timers, b.heapIdx)
	}
}

func cmpU32(a, b uint32) int { return cmp.Compare(a, b) }

func insert(s []*block, b *block) []*block {
	i, _ := slices.BinarySearchFunc(s, b.idx, func(x *block, idx uint32) int { return cmpU32(x.idx, idx) })
	return slices.Insert(s, i, b)
}

func remove(s []*block, b *block) []*block {
	i, ok := slices.BinarySearchFunc(s, b.idx, func(x *block, idx uint32) int { return cmpU32(x.idx, idx) })
	if ok {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// timerHeap orders Claimed and Tentative blocks by heapAt.
type timerHeap []*block

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].heapAt != h[j].heapAt {
		return h[i].heapAt < h[j].heapAt
	}
	return h[i].idx < h[j].idx
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *timerHeap) Push(x any) {
	b := x.(*block)
	b.heapIdx = len(*h)
	*h = append(*h, b)
}
func (h *timerHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	b.heapIdx = -1
	*h = old[:len(old)-1]
	return b
}
