// Package overlay builds and keeps a spanning tree over the ddhcpd nodes of
// a routed mesh, where a link-local multicast reaches only the nodes one hop
// away (babel, OLSR, BMX). Claim traffic is then relayed along the tree's
// edges, so every node of the partition hears it (SPEC §5).
//
// A Node is a pure state machine, like claim.Engine: it does no I/O and
// reads no clock. The caller passes the monotonic time, a random source, the
// messages received on UDP port 1236 (Step), calls Tick at or before Next,
// and sends what Outbox returns.
//
// # How the tree is made
//
// Neighbours are found by a HELLO multicast on every mesh interface; a
// neighbour is usable once its HELLO lists us (the link works both ways), and
// is forgotten when silent for NeighbourTimeout. The tree is built by the
// token walk of the seed (reference/spanning-tree-seed.md): a depth-first
// token (FORWARD down, RETURN up), then FINISHED from the root to the
// leaves. Unlike the seed's, the token does not carry the set of visited
// nodes, which would make its datagrams grow with the mesh: each node
// remembers its own part of the walk (its parent, the neighbours it tried,
// the subtrees its children returned). A FORWARD names the receiver's
// nearest ancestors (PathLen), a RETURN hands the sender's subtree back in
// parts of bounded size, and a neighbour's HELLO shows the walk it is in;
// together they name nearly every neighbour the token would find visited
// (in a depth-first walk those are ancestors or in the holder's own
// subtrees), and one it misses answers the FORWARD with a refusal, as in
// the DFS token algorithms of Awerbuch and Cidon. So no overlay datagram
// exceeds wire.MaxDatagram, whatever the size of the mesh. Nodes are idle,
// working (hold or wait for the token) or finishing (returned it, waiting
// for FINISHED). Competing walks are ordered by origin, the lowest id first
// (then the later epoch), and a node never joins a walk whose origin is
// higher than its own id, so the tree that survives is rooted at the lowest
// id of the partition.
//
// The seed's failures (§4 of the note) are fixed as §7 asks:
//
//   - Every message carries (origin, epoch, seq); seq names the edge (the step
//     of the FORWARD that made it), and anything about an edge or walk that is
//     not the current one is refused or dropped, so a late RETURN cannot fork
//     the token (b).
//   - A token that loses is refused explicitly (REFUSE with the better walk),
//     never dropped, so its sender does not take a live node for dead, and
//     the losing walk is called off along its edges (ABORT) (e).
//   - A working node sends WORKING to its parent every T/2 for as long as it
//     is busy, and the parent answers; a finishing node asks its parent every
//     Probe whether the walk still lives (a).
//   - Every state times out to idle: a walk whose parent falls silent for
//     DeadAfter is aborted, and no walk lasts more than WalkTimeout (d).
//   - FORWARD, RETURN, FINISHED, ABORT and REBUILD are sent again every T/2
//     until acknowledged; a child silent for DeadAfter is declared dead, told
//     so (ABORT), and the walk goes on without it (g, f).
//   - The token goes only to neighbours whose HELLO we hear and that hear us;
//     the ids a FORWARD or RETURN names are never taken for neighbours.
//
// # How the tree is kept
//
// A finished tree is soft state. Every node announces its tree (root, epoch,
// digest of the whole tree) and its tree edges in its periodic HELLO, and
// keeps the tree only while its parent is a live neighbour announcing the
// same tree with us as its child; otherwise it dissolves it and tells its
// children (DISSOLVE, repaired by the HELLOs if lost). A node whose neighbour
// is not in its tree although it could be (no tree, an older one, a higher
// root) asks the root for a new walk (REBUILD, hop by hop up the tree); so
// does a node that loses a child. A root that hears of a lower root's tree
// simply lets that root's walk take its nodes over. A node without a tree
// starts a walk itself if no lower id is known around it. The root id names
// the partition: a merge or a split shows as a change of root (EventRoot).
package overlay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/wire"
)

// Config holds a node's settings. Zero durations take the defaults of
// WithDefaults.
type Config struct {
	Node       wire.NodeID
	Swarm      wire.Swarm
	Interfaces []string // mesh interfaces; a peer's address carries one as its zone

	// Epoch is the first epoch of the walks this node starts. Walks of one
	// origin are ordered by epoch, so it should grow across restarts (a
	// persisted counter, or seconds of wall time where there is a clock);
	// if it does not, the node learns its old epoch from its neighbours'
	// HELLOs and continues above it.
	Epoch uint32

	// T is the walk's time base: WORKING and retransmissions every T/2.
	T time.Duration
	// DeadAfter is how long a walk peer may stay silent (while we send to
	// it every T/2) before it is taken for dead. The seed used T; with
	// latencies up to T/2 one round trip can take T, so a single lost
	// datagram would declare a live node dead.
	DeadAfter time.Duration
	// Hello is the period of the HELLO on each interface.
	Hello time.Duration
	// NeighbourTimeout forgets a neighbour not heard for this long.
	NeighbourTimeout time.Duration
	// MismatchHold is how long a neighbour must be seen outside our tree
	// (over at least two HELLOs) before we ask for a rebuild, so a FINISHED
	// still on its way does not cause one.
	MismatchHold time.Duration
	// StartDelay is how long a node without a tree listens after its
	// start before it may start a walk of its own.
	StartDelay time.Duration
	// Suppress is how long a lower id we were told about (by a refusal or
	// an abort) keeps us from starting walks.
	Suppress time.Duration
	// Probe is the period at which a finishing node asks its parent
	// whether the walk is still alive.
	Probe time.Duration
	// WalkTimeout is the longest any walk state lasts.
	WalkTimeout time.Duration
	// RebuildGap spaces the walks of one root and the REBUILD requests of
	// one node.
	RebuildGap time.Duration
}

// Defaults.
const (
	DefaultT           = 200 * time.Millisecond
	DefaultHello       = time.Second
	DefaultSuppress    = 10 * time.Second
	DefaultWalkTimeout = 10 * time.Minute
	DefaultRebuildGap  = time.Second
)

// WithDefaults fills unset fields; the derived ones follow T and Hello.
func (c Config) WithDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.T, DefaultT)
	set(&c.Hello, DefaultHello)
	set(&c.DeadAfter, 5*c.T)
	set(&c.NeighbourTimeout, 6*c.Hello)
	set(&c.MismatchHold, 2*c.Hello)
	set(&c.StartDelay, 2*c.Hello)
	set(&c.Suppress, DefaultSuppress)
	set(&c.Probe, 10*c.T)
	set(&c.WalkTimeout, DefaultWalkTimeout)
	set(&c.RebuildGap, DefaultRebuildGap)
	if c.Epoch == 0 {
		c.Epoch = 1
	}
	return c
}

// Validate reports a setting the node cannot work with.
func (c Config) Validate() error {
	switch {
	case c.Node.IsZero():
		return errors.New("overlay: node id is zero")
	case len(c.Interfaces) == 0:
		return errors.New("overlay: no mesh interface")
	case c.T < time.Millisecond:
		return fmt.Errorf("overlay: T %v too short", c.T)
	case c.DeadAfter < c.T:
		return fmt.Errorf("overlay: DeadAfter %v shorter than T %v", c.DeadAfter, c.T)
	case c.NeighbourTimeout <= c.Hello:
		return fmt.Errorf("overlay: neighbour timeout %v not longer than the hello period %v", c.NeighbourTimeout, c.Hello)
	case c.Hello <= 0 || c.MismatchHold <= 0 || c.StartDelay < 0 || c.Suppress <= 0 || c.Probe <= 0 || c.WalkTimeout <= 0 || c.RebuildGap <= 0:
		return errors.New("overlay: a duration is not positive")
	}
	seen := make(map[string]bool, len(c.Interfaces))
	for _, i := range c.Interfaces {
		if i == "" || seen[i] {
			return fmt.Errorf("overlay: interface %q empty or listed twice", i)
		}
		seen[i] = true
	}
	return nil
}

// Peer is a neighbour as the tree uses it: its id and its link-local
// address, whose zone is the interface it is reached on.
type Peer struct {
	ID   wire.NodeID
	Addr netip.Addr
}

// Out is a message to send. A multicast (HELLO) goes to the extension group
// (ff02::1234, port 1236) on interface Iface; anything else is unicast to
// To.Addr, whose zone names the interface.
type Out struct {
	Multicast bool
	Iface     string
	To        Peer
	Msg       wire.Overlay
}

// State is a node's part in the current walk.
type State uint8

// Walk states.
const (
	Idle      State = wire.WalkIdle      // in no walk
	Working   State = wire.WalkWorking   // holds the token or waits for a child to return it
	Finishing State = wire.WalkFinishing // returned the token; waits for FINISHED
)

func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Working:
		return "working"
	case Finishing:
		return "finishing"
	}
	return fmt.Sprintf("state(%d)", s)
}

// EventKind says what happened to the tree.
type EventKind uint8

// Events.
const (
	EventTree         EventKind = iota + 1 // a new tree is in force (Root, Epoch, Size)
	EventRoot                              // the new tree has another root than the last one (OldRoot; zero at the first): a merge or split
	EventTreeLost                          // the tree was dissolved (Root is the old root)
	EventWalkStarted                       // this node started a walk (Epoch)
	EventWalkFinished                      // this node's walk finished (Size)
	EventWalkAborted                       // a walk this node was in was called off
)

var eventNames = [...]string{"", "tree", "root", "treelost", "walkstarted", "walkfinished", "walkaborted"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", k)
}

// Event is something the daemon may log or act on. On EventRoot the node's
// partition has joined another (or split off): only the side whose root
// changed sees it, so the daemon should send a SYNC along the new tree to
// make both sides re-announce their claims.
type Event struct {
	Kind    EventKind
	Root    wire.NodeID
	OldRoot wire.NodeID
	Epoch   uint32
	Size    int
}

// Step errors: why a whole message was dropped.
var (
	ErrForeignSwarm = errors.New("overlay: message from another pool or block size")
	ErrOwnID        = errors.New("overlay: message carries our own node id")
	ErrZeroID       = errors.New("overlay: message from node id zero")
	ErrInterface    = errors.New("overlay: message from an interface that is not a mesh interface")
	ErrNotOverlay   = errors.New("overlay: not an overlay message")
	ErrMalformed    = errors.New("overlay: malformed walk message")
	ErrTooMany      = errors.New("overlay: neighbour table full")
)

// Stats counts what the node did. Indexes of In and Out are message types.
type Stats struct {
	In, Out              [wire.ExtDissolve + 1]uint64
	Dropped              uint64 // messages refused by Step with an error
	Stale                uint64 // messages about an edge or walk that is not current
	Bounced              uint64 // our FORWARDs refused: the neighbour was in the walk already
	NoPeer               uint64 // sends to a neighbour without a live link, skipped
	WalksStarted         uint64
	WalksFinished        uint64
	WalksAborted         uint64 // walks this node left because they were called off
	ChildrenDead         uint64
	RebuildsAsked        uint64
	TreesLost, TreesMade uint64
}

// Node is one node's part of the overlay.
type Node struct {
	cfg   Config
	rng   *rand.Rand
	boot  time.Duration
	clock time.Duration // the last time passed to Step or Tick

	nbs       []*neighbour // sorted by id
	helloSeq  uint32
	nextHello time.Duration
	lastHello time.Duration

	nextEpoch uint32
	walk      walk
	seenRank  rank      // the walk seen and seenStep are about
	seen      []edgeRef // edges we joined seenRank by
	seenStep  uint32    // the highest step we used in seenRank
	tree      tree
	retx      []*retx

	lastRoot    wire.NodeID // root of the last tree we had, for EventRoot
	rebuildSeq  uint32
	lastRebuild time.Duration
	rebuildFor  rank
	wantWalk    bool // root: a rebuild was asked for
	lastWalkEnd time.Duration

	startSet      bool
	startAt       time.Duration
	suppress      wire.NodeID
	suppressUntil time.Duration

	out    []Out
	events []Event
	stats  Stats
}

// New makes a node that starts at time now.
func New(cfg Config, rng *rand.Rand, now time.Duration) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("overlay: no random source")
	}
	cfg.Interfaces = slices.Clone(cfg.Interfaces)
	n := &Node{
		cfg:         cfg,
		rng:         rng,
		boot:        now,
		nextEpoch:   cfg.Epoch,
		lastWalkEnd: now - cfg.RebuildGap,
		lastRebuild: now - cfg.RebuildGap,
	}
	// The first HELLO goes out at once, so neighbours learn of us while we
	// wait StartDelay.
	n.nextHello = now
	return n, nil
}

// Config returns the settings in force, defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Step handles a message received from the link-local address from, whose
// zone is the interface it came in on. It returns an error naming why a
// message was dropped; stale messages are answered or ignored, not errors.
func (n *Node) Step(now time.Duration, from netip.Addr, m *wire.Overlay) error {
	n.clock = now
	err := n.step(now, from, m)
	if err != nil {
		n.stats.Dropped++
	}
	n.settle(now)
	return err
}

func (n *Node) step(now time.Duration, from netip.Addr, m *wire.Overlay) error {
	switch {
	case !wire.IsOverlay(m.Type):
		return ErrNotOverlay
	case m.Swarm != n.cfg.Swarm:
		return ErrForeignSwarm
	case m.Node == n.cfg.Node:
		return ErrOwnID
	case m.Node.IsZero():
		return ErrZeroID
	case !slices.Contains(n.cfg.Interfaces, from.Zone()):
		return ErrInterface
	}
	n.stats.In[m.Type]++
	nb := n.heard(now, m.Node, from, m.Type != wire.ExtHello)
	if nb == nil {
		return ErrTooMany
	}
	if w := &n.walk; w.state != Idle && m.Type != wire.ExtHello && (rank{m.Origin, m.Epoch}) == w.r {
		// Any word about the walk is a sign of life of the peer.
		if m.Node == w.parent {
			w.parentHeard = now
		}
		if w.waiting && m.Node == w.wait.id {
			w.wait.heard = now
		}
	}
	switch m.Type {
	case wire.ExtHello:
		n.onHello(now, nb, from, m)
	case wire.ExtForward:
		return n.onForward(now, from, m)
	case wire.ExtReturn:
		return n.onReturn(now, from, m)
	case wire.ExtFinished:
		n.onFinished(now, from, m)
	case wire.ExtWorking:
		n.onWorking(now, from, m)
	case wire.ExtAck:
		n.onAck(now, m)
	case wire.ExtRefuse:
		n.onRefuse(now, m)
	case wire.ExtAbort:
		n.onAbort(now, from, m)
	case wire.ExtRebuild:
		n.onRebuild(now, from, m)
	case wire.ExtDissolve:
		n.onDissolve(now, m)
	}
	return nil
}

// Tick runs the timers: neighbour expiry, HELLOs, retransmissions,
// keepalives and timeouts of the walk, rebuild requests and the start of a
// walk. Calling it more often than Next asks does no harm.
func (n *Node) Tick(now time.Duration) {
	n.clock = now
	n.expireNeighbours(now)
	n.walkTimers(now)
	n.retxTimers(now)
	n.mismatchTimers(now)
	n.maybeStart(now)
	// Last, so that a HELLO brought forward by what happened above goes
	// out now rather than being due already when Tick returns.
	if now >= n.nextHello {
		n.sendHellos(now)
	}
	n.settle(now)
}

// settle re-derives the start schedule after anything changed.
func (n *Node) settle(now time.Duration) {
	if n.canStart(now) {
		if !n.startSet {
			n.startSet = true
			n.startAt = max(now, n.boot+n.cfg.StartDelay) + time.Duration(n.rng.Int64N(int64(n.cfg.Hello/2)+1))
		}
	} else {
		n.startSet = false
	}
}

// Next is the latest time at which Tick must run again.
func (n *Node) Next() time.Duration {
	t := n.nextHello
	at := func(d time.Duration) { t = min(t, d) }
	for _, nb := range n.nbs {
		for _, l := range nb.links {
			at(l.heard + n.cfg.NeighbourTimeout)
		}
		if nb.mismatch && nb.mismatchHellos >= 2 {
			at(nb.mismatchSince + n.cfg.MismatchHold)
		}
	}
	n.walkNext(at)
	for _, r := range n.retx {
		at(r.next)
		at(r.giveUp)
	}
	if n.startSet {
		at(n.startAt)
	}
	if n.wantWalk && n.walk.state == Idle {
		at(n.lastWalkEnd + n.cfg.RebuildGap)
	}
	if !n.tree.valid && n.walk.state == Idle {
		// Moments at which a node without a tree may become free to start.
		for _, d := range []time.Duration{n.suppressUntil, n.boot + n.cfg.StartDelay} {
			if d > n.clock {
				at(d)
			}
		}
	}
	return t
}

// Outbox returns the messages to send, in order, and empties it.
func (n *Node) Outbox() []Out {
	o := n.out
	n.out = nil
	return o
}

// Events returns what happened since the last call and empties the list.
func (n *Node) Events() []Event {
	e := n.events
	n.events = nil
	return e
}

// Stats returns the counters.
func (n *Node) Stats() Stats { return n.stats }

// ChildInfo is one child of the tree.
type ChildInfo struct {
	Peer
	Subtree int // nodes in its subtree, itself included
}

// NeighbourInfo is one neighbour.
type NeighbourInfo struct {
	ID        wire.NodeID
	Links     []netip.Addr // one per interface and address it is heard on
	Symmetric bool         // it hears us too: the token may go to it
	Root      wire.NodeID  // of its tree, zero if none (from its last HELLO)
	Epoch     uint32
}

// TreeInfo is the node's view of the tree, for status output and tests.
type TreeInfo struct {
	Valid    bool // a finished tree is in force
	Root     wire.NodeID
	Epoch    uint32
	Digest   uint64 // equal on every node of one tree
	Depth    int    // 0 at the root
	Size     int    // nodes in the tree
	Parent   Peer   // zero at the root
	Children []ChildInfo

	State      State // in the current walk
	WalkOrigin wire.NodeID
	WalkEpoch  uint32

	Neighbours []NeighbourInfo
}

// Tree describes the tree and the walk in progress.
func (n *Node) Tree() TreeInfo {
	t := TreeInfo{State: n.walk.state}
	if n.walk.state != Idle {
		t.WalkOrigin, t.WalkEpoch = n.walk.r.origin, n.walk.r.epoch
	}
	if n.tree.valid {
		t.Valid = true
		t.Root, t.Epoch = n.tree.r.origin, n.tree.r.epoch
		t.Digest, t.Depth, t.Size = n.tree.digest, n.tree.depth, n.tree.size
		if !n.tree.parent.IsZero() {
			t.Parent = Peer{ID: n.tree.parent}
			if p, ok := n.peer(n.tree.parent); ok {
				t.Parent = p
			}
		}
		for _, c := range n.tree.children {
			ci := ChildInfo{Peer: Peer{ID: c.id}, Subtree: len(c.members)}
			if p, ok := n.peer(c.id); ok {
				ci.Peer = p
			}
			t.Children = append(t.Children, ci)
		}
	}
	for _, nb := range n.nbs {
		ni := NeighbourInfo{ID: nb.id, Symmetric: nb.symmetric()}
		for _, l := range nb.links {
			ni.Links = append(ni.Links, l.addr)
		}
		if nb.v.hasTree {
			ni.Root, ni.Epoch = nb.v.tree.origin, nb.v.tree.epoch
		}
		t.Neighbours = append(t.Neighbours, ni)
	}
	return t
}

// TreeNeighbours returns the parent and the children that have a live link:
// where claim traffic is relayed. Nil without a tree.
func (n *Node) TreeNeighbours() []Peer {
	if !n.tree.valid {
		return nil
	}
	var ps []Peer
	if !n.tree.parent.IsZero() {
		if p, ok := n.peer(n.tree.parent); ok {
			ps = append(ps, p)
		}
	}
	for _, c := range n.tree.children {
		if p, ok := n.peer(c.id); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// Relay returns the tree neighbours a message heard from node from is passed
// on to: all of them but from. A message of our own (from is our id or zero)
// goes to all. With a Dedup in front, every node of the tree hears each
// message once.
func (n *Node) Relay(from wire.NodeID) []Peer {
	ps := n.TreeNeighbours()
	return slices.DeleteFunc(ps, func(p Peer) bool { return p.ID == from })
}

// Route returns the next hop towards node target: the target itself if it
// is a neighbour we hear both ways, else the child whose subtree holds it,
// else the parent (the target is elsewhere in the tree, or nowhere: the root
// then has no route). False when there is no next hop.
func (n *Node) Route(target wire.NodeID) (Peer, bool) {
	if target == n.cfg.Node || target.IsZero() {
		return Peer{}, false
	}
	if nb := n.neighbour(target); nb != nil && nb.symmetric() {
		if p, ok := n.peer(target); ok {
			return p, true
		}
	}
	if !n.tree.valid {
		return Peer{}, false
	}
	if i, ok := n.tree.route[target]; ok {
		return n.peer(n.tree.children[i].id)
	}
	if n.tree.parent.IsZero() {
		return Peer{}, false
	}
	return n.peer(n.tree.parent)
}

// Neighbour returns the peer of a neighbour by id, if it has a live link.
func (n *Node) Neighbour(id wire.NodeID) (Peer, bool) { return n.peer(id) }

// event records an event.
func (n *Node) event(e Event) { n.events = append(n.events, e) }

// msg starts a message of ours about walk or tree r.
func (n *Node) msg(t uint8, r rank, seq uint32) wire.Overlay {
	return wire.Overlay{Type: t, Node: n.cfg.Node, Swarm: n.cfg.Swarm, Origin: r.origin, Epoch: r.epoch, Seq: seq}
}

// send queues m for neighbour id on its preferred live link.
func (n *Node) send(id wire.NodeID, m wire.Overlay) bool {
	p, ok := n.peer(id)
	if !ok {
		n.stats.NoPeer++
		return false
	}
	n.out = append(n.out, Out{To: p, Msg: m})
	n.stats.Out[m.Type]++
	return true
}

// reply answers a message on the link it came in on, whatever the
// neighbour table says.
func (n *Node) reply(id wire.NodeID, from netip.Addr, m wire.Overlay) {
	n.out = append(n.out, Out{To: Peer{ID: id, Addr: from}, Msg: m})
	n.stats.Out[m.Type]++
}

func (n *Node) ack(m *wire.Overlay, from netip.Addr) {
	a := n.msg(wire.ExtAck, rank{m.Origin, m.Epoch}, m.Seq)
	a.Ref = m.Type
	if m.Type == wire.ExtReturn {
		a.Part = m.Part
	}
	n.reply(m.Node, from, a)
}

func (n *Node) refuse(m *wire.Overlay, from netip.Addr, reason uint8, better rank) {
	r := n.msg(wire.ExtRefuse, rank{m.Origin, m.Epoch}, m.Seq)
	r.Ref, r.Reason, r.Better, r.BetterEpoch = m.Type, reason, better.origin, better.epoch
	n.reply(m.Node, from, r)
	if reason == wire.RefuseStale {
		n.stats.Stale++
	}
}

// rank orders walks and trees: the lower origin is better, and for the same
// origin the later epoch. The zero rank is none, worse than any.
type rank struct {
	origin wire.NodeID
	epoch  uint32
}

func (a rank) none() bool { return a.origin.IsZero() }

func (a rank) better(b rank) bool {
	if a.none() {
		return false
	}
	if b.none() {
		return true
	}
	if c := a.origin.Compare(b.origin); c != 0 {
		return c < 0
	}
	return a.epoch > b.epoch
}

// own is the rank a node claims for itself without walk or tree: it would
// be the origin of a walk, so nothing with a higher origin may take it.
func (n *Node) own() rank { return rank{origin: n.cfg.Node} }

// commitment is the best of what the node belongs to: a token must beat it
// to be accepted.
func (n *Node) commitment() rank {
	c := n.own()
	if n.tree.valid && n.tree.r.better(c) {
		c = n.tree.r
	}
	if n.walk.state != Idle && n.walk.r.better(c) {
		c = n.walk.r
	}
	return c
}

// noteBetter remembers, for Suppress, that a lower id than ours is alive:
// we do not start walks meanwhile, its walk will come.
func (n *Node) noteBetter(now time.Duration, r rank) {
	if r.none() || r.origin.Compare(n.cfg.Node) >= 0 {
		return
	}
	if now >= n.suppressUntil || r.origin.Compare(n.suppress) <= 0 {
		n.suppress, n.suppressUntil = r.origin, now+n.cfg.Suppress
	}
}

// lowestKnown is the lowest id that may start or root a walk near us.
func (n *Node) lowestKnown(now time.Duration) wire.NodeID {
	low := n.cfg.Node
	lower := func(id wire.NodeID) {
		if !id.IsZero() && id.Compare(low) < 0 {
			low = id
		}
	}
	if now < n.suppressUntil {
		lower(n.suppress)
	}
	for _, nb := range n.nbs {
		if !nb.symmetric() || !nb.v.hello {
			continue
		}
		lower(nb.id)
		if nb.v.hasTree {
			lower(nb.v.tree.origin)
		}
		if nb.v.walkState != wire.WalkIdle {
			lower(nb.v.walk.origin)
		}
	}
	return low
}

// canStart reports whether a node without a tree should start a walk.
func (n *Node) canStart(now time.Duration) bool {
	return n.walk.state == Idle && !n.tree.valid && now >= n.boot+n.cfg.StartDelay &&
		n.lowestKnown(now) == n.cfg.Node
}

// maybeStart starts a walk of our own when one is due: a node without a tree
// that knows of no lower id, or a root asked to rebuild.
func (n *Node) maybeStart(now time.Duration) {
	if n.startSet && now >= n.startAt && n.canStart(now) {
		n.startSet = false
		n.startWalk(now)
		return
	}
	if n.wantWalk {
		switch {
		case !n.tree.valid || n.tree.r.origin != n.cfg.Node:
			n.wantWalk = false
		case n.walk.state == Idle && now >= n.lastWalkEnd+n.cfg.RebuildGap:
			n.startWalk(now)
		}
	}
}
