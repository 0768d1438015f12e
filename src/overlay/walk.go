package overlay

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/wire"
)

// child is a neighbour that returned the token to us: its excursion is
// list[from:to] of the walk, its own entry at from.
type child struct {
	id       wire.NodeID
	edge     uint32
	from, to int
}

// waitState is the FORWARD we are waiting on.
type waitState struct {
	id     wire.NodeID
	edge   uint32
	index  int // the child's entry in the list
	acked  bool
	next   time.Duration // retransmission
	heard  time.Duration // last sign of life
	msg    wire.Overlay
	sentAt time.Duration
}

// walk is the node's part in one token walk.
type walk struct {
	state   State
	r       rank
	parent  wire.NodeID // zero at the origin
	edge    uint32      // the step of the FORWARD that brought us in
	step    uint32      // the token's step count
	list    []wire.WalkEntry
	visited map[wire.NodeID]bool
	self    int

	children  []child
	lostChild bool // a child that returned the token was lost since
	joined    time.Duration

	parentHeard time.Duration
	nextWorking time.Duration

	waiting bool
	wait    waitState

	ret      wire.Overlay
	retAcked bool
	retNext  time.Duration
	retSince time.Duration

	probing     bool
	probeNext   time.Duration
	probeSince  time.Duration
	probeResend time.Duration
}

func (w *walk) child(id wire.NodeID, edge uint32) int {
	return slices.IndexFunc(w.children, func(c child) bool { return c.id == id && c.edge == edge })
}

// edgeRef is an edge of a walk we were part of.
type edgeRef struct {
	from wire.NodeID
	edge uint32
}

// maxSeen bounds the edges remembered per walk.
const maxSeen = 64

// trackWalk starts the memory of walk r, unless it is the one kept already:
// the edges we joined it by and the highest step we used in it.
func (n *Node) trackWalk(r rank) {
	if n.seenRank != r {
		n.seenRank, n.seen, n.seenStep = r, n.seen[:0], 0
	}
}

// nextStep numbers our next FORWARD or RETURN. The steps a node uses in one
// walk only grow, also when it leaves the walk and joins it again through
// another edge, so an edge (sender, step) never names two relations, and a
// late answer to the old one cannot be taken for an answer to the new one.
func (n *Node) nextStep() uint32 {
	w := &n.walk
	n.trackWalk(w.r)
	w.step = max(w.step, n.seenStep) + 1
	n.seenStep = w.step
	return w.step
}

// markSeen remembers an edge we joined walk r by, so that a late copy of its
// FORWARD cannot pull us back into the walk after we left it.
func (n *Node) markSeen(r rank, from wire.NodeID, edge uint32) {
	n.trackWalk(r)
	if len(n.seen) == maxSeen {
		n.seen = slices.Delete(n.seen, 0, 1)
	}
	n.seen = append(n.seen, edgeRef{from, edge})
}

func (n *Node) seenEdge(r rank, from wire.NodeID, edge uint32) bool {
	return n.seenRank == r && slices.Contains(n.seen, edgeRef{from, edge})
}

// startWalk makes this node the origin of a new walk.
func (n *Node) startWalk(now time.Duration) {
	e := n.nextEpoch
	n.nextEpoch++
	n.walk = walk{
		state:       Working,
		r:           rank{n.cfg.Node, e},
		list:        []wire.WalkEntry{{ID: n.cfg.Node, Parent: wire.WalkRoot}},
		visited:     map[wire.NodeID]bool{n.cfg.Node: true},
		joined:      now,
		parentHeard: now,
	}
	n.wantWalk = false
	n.stats.WalksStarted++
	n.event(Event{Kind: EventWalkStarted, Root: n.cfg.Node, Epoch: e})
	n.advance(now)
}

// advance is the seed's check: pass the token to the lowest unvisited
// neighbour that hears us, or, when there is none, return it to the parent
// (or finish, at the origin).
func (n *Node) advance(now time.Duration) {
	w := &n.walk
	w.waiting = false
	if len(w.list) < wire.MaxWalkEntries {
		for _, nb := range n.nbs {
			if !nb.symmetric() || w.visited[nb.id] {
				continue
			}
			step := n.nextStep()
			w.list = append(w.list, wire.WalkEntry{ID: nb.id, Parent: uint16(w.self)})
			w.visited[nb.id] = true
			m := n.msg(wire.ExtForward, w.r, step)
			m.Walk = slices.Clone(w.list)
			w.waiting = true
			w.wait = waitState{id: nb.id, edge: step, index: len(w.list) - 1, heard: now, next: now + n.cfg.T/2, msg: m, sentAt: now}
			n.send(nb.id, m)
			return
		}
	}
	if w.parent.IsZero() {
		n.finishWalk(now)
		return
	}
	w.state = Finishing
	m := n.msg(wire.ExtReturn, w.r, w.edge)
	m.Step = n.nextStep()
	m.Walk = slices.Clone(w.list)
	w.ret, w.retAcked, w.retNext, w.retSince = m, false, now+n.cfg.T/2, now
	n.send(w.parent, m)
}

// childDead gives up on the child we wait for: it stays in the list as dead
// (not in the tree), is told so in case it is alive after all, and the walk
// goes on.
func (n *Node) childDead(now time.Duration, tell bool) {
	w := &n.walk
	if !w.waiting {
		return
	}
	w.list[w.wait.index].Parent = wire.WalkDead
	n.stats.ChildrenDead++
	if tell {
		if _, ok := n.peer(w.wait.id); ok {
			n.sendReliable(now, w.wait.id, n.msg(wire.ExtAbort, w.r, w.wait.edge))
		}
	}
	n.advance(now)
}

// notChild goes on without the child we wait for, which answered that it is
// in the walk already or that our edge is stale.
func (n *Node) notChild(now time.Duration) {
	w := &n.walk
	w.list[w.wait.index].Parent = wire.WalkDead
	n.advance(now)
}

// abortWalk leaves the current walk and tells the walk neighbours along
// their edges (the parent only if toParent), except the one the abort came
// from. Better is the walk that wins, if one does.
func (n *Node) abortWalk(now time.Duration, better rank, toParent bool, except wire.NodeID) {
	w := n.walk
	if w.state == Idle {
		return
	}
	tell := func(to wire.NodeID, edge uint32) {
		if to == except {
			return
		}
		m := n.msg(wire.ExtAbort, w.r, edge)
		m.Better, m.BetterEpoch = better.origin, better.epoch
		n.sendReliable(now, to, m)
	}
	if toParent && !w.parent.IsZero() {
		tell(w.parent, w.edge)
	}
	for _, c := range w.children {
		tell(c.id, c.edge)
	}
	if w.waiting {
		tell(w.wait.id, w.wait.edge)
	}
	n.noteBetter(now, better)
	n.stats.WalksAborted++
	n.event(Event{Kind: EventWalkAborted, Root: w.r.origin, Epoch: w.r.epoch})
	n.walk = walk{}
	n.lastWalkEnd = now
	n.resetMismatches()
}

// finishWalk ends our own walk: the list is the tree.
func (n *Node) finishWalk(now time.Duration) {
	w := n.walk
	size := 0
	for _, e := range w.list {
		if e.Parent != wire.WalkDead {
			size++
		}
	}
	n.stats.WalksFinished++
	n.event(Event{Kind: EventWalkFinished, Root: n.cfg.Node, Epoch: w.r.epoch, Size: size})
	n.install(now, w.r, wire.NodeID{}, 0, w.children, w.list, 0, size, digest(w.list))
}

func (n *Node) onForward(now time.Duration, from netip.Addr, m *wire.Overlay) error {
	if err := n.validForward(m); err != nil {
		return err
	}
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	if w.state != Idle && r == w.r {
		if s == w.parent && m.Seq == w.edge {
			n.ack(m, from) // a copy of the FORWARD we took
		} else {
			n.refuse(m, from, wire.RefuseVisited, w.r)
		}
		return nil
	}
	if n.seenEdge(r, s, m.Seq) {
		n.refuse(m, from, wire.RefuseStale, rank{})
		return nil
	}
	if c := n.commitment(); !r.better(c) {
		n.refuse(m, from, wire.RefuseLower, c)
		return nil
	}
	if w.state != Idle {
		n.abortWalk(now, r, true, wire.NodeID{}) // overtaken by a better walk
	}
	list := slices.Clone(m.Walk)
	visited := make(map[wire.NodeID]bool, len(list))
	for _, e := range list {
		visited[e.ID] = true
	}
	n.walk = walk{
		state:       Working,
		r:           r,
		parent:      s,
		edge:        m.Seq,
		step:        m.Seq,
		list:        list,
		visited:     visited,
		self:        len(list) - 1,
		joined:      now,
		parentHeard: now,
		nextWorking: now + n.cfg.T/2,
	}
	n.markSeen(r, s, m.Seq)
	n.ack(m, from)
	n.resetMismatches()
	n.advance(now)
	return nil
}

// validForward checks the list of a FORWARD: it starts at the origin, ends
// with us as a child of the sender, and every entry's parent comes before
// it and is alive; ids are distinct and not zero.
func (n *Node) validForward(m *wire.Overlay) error {
	l := m.Walk
	k := len(l)
	if k < 2 || l[0].ID != m.Origin || l[0].Parent != wire.WalkRoot {
		return fmt.Errorf("%w: FORWARD does not start at its origin", ErrMalformed)
	}
	last := l[k-1]
	if last.ID != n.cfg.Node || int(last.Parent) >= k-1 || l[last.Parent].ID != m.Node {
		return fmt.Errorf("%w: FORWARD does not end with us as the sender's child", ErrMalformed)
	}
	return validEntries(l, 1, 0, nil)
}

// validEntries checks l[from:]: parents inside [lo, i) and alive, or dead;
// ids distinct (also from those in seen) and not zero.
func validEntries(l []wire.WalkEntry, from, lo int, seen map[wire.NodeID]bool) error {
	if len(l) > wire.MaxWalkEntries {
		return fmt.Errorf("%w: %d entries", ErrMalformed, len(l))
	}
	ids := make(map[wire.NodeID]bool, len(l))
	for i, e := range l {
		if i >= from {
			if e.ID.IsZero() || ids[e.ID] || seen[e.ID] {
				return fmt.Errorf("%w: entry %d repeats or is zero", ErrMalformed, i)
			}
			if e.Parent != wire.WalkDead && (int(e.Parent) < lo || int(e.Parent) >= i || l[e.Parent].Parent == wire.WalkDead) {
				return fmt.Errorf("%w: entry %d has parent %d", ErrMalformed, i, e.Parent)
			}
		}
		ids[e.ID] = true
	}
	return nil
}

func (n *Node) onReturn(now time.Duration, from netip.Addr, m *wire.Overlay) error {
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	switch {
	case w.state == Working && r == w.r && w.waiting && s == w.wait.id && m.Seq == w.wait.edge:
		if err := n.validReturn(m); err != nil {
			n.childDead(now, true)
			return err
		}
		w.children = append(w.children, child{id: s, edge: m.Seq, from: w.wait.index, to: len(m.Walk)})
		for _, e := range m.Walk[len(w.list):] {
			w.visited[e.ID] = true
		}
		w.list = slices.Clone(m.Walk)
		w.step = max(w.step, m.Step)
		n.ack(m, from)
		n.advance(now)
	case w.state != Idle && r == w.r && w.child(s, m.Seq) >= 0:
		n.ack(m, from)
	case n.tree.valid && n.tree.r == r && n.tree.childEdge(s, m.Seq) >= 0:
		n.ack(m, from)
	default:
		n.refuse(m, from, wire.RefuseStale, rank{})
	}
	return nil
}

// validReturn checks that a RETURN extends the list we sent with the
// child's excursion only.
func (n *Node) validReturn(m *wire.Overlay) error {
	w := &n.walk
	l := m.Walk
	if len(l) < len(w.list) || !slices.Equal(l[:len(w.list)], w.list) {
		return fmt.Errorf("%w: RETURN does not extend our list", ErrMalformed)
	}
	return validEntries(l, len(w.list), w.wait.index, w.visited)
}

func (n *Node) onAck(now time.Duration, m *wire.Overlay) {
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	switch m.Ref {
	case wire.ExtForward:
		if w.state == Working && w.waiting && r == w.r && s == w.wait.id && m.Seq == w.wait.edge {
			w.wait.acked, w.wait.heard = true, now
		}
	case wire.ExtReturn:
		if w.state == Finishing && r == w.r && s == w.parent && m.Seq == w.edge && !w.retAcked {
			w.retAcked, w.parentHeard, w.probeNext = true, now, now+n.cfg.Probe
		}
	case wire.ExtWorking:
		if w.state != Idle && r == w.r && s == w.parent && m.Seq == w.edge {
			w.parentHeard = now
			if w.probing {
				w.probing, w.probeNext = false, now+n.cfg.Probe
			}
		}
	default:
		n.ackRetx(s, m)
	}
}

func (n *Node) onWorking(now time.Duration, from netip.Addr, m *wire.Overlay) {
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	if w.state != Idle && r == w.r {
		if w.waiting && s == w.wait.id && m.Seq == w.wait.edge {
			w.wait.acked, w.wait.heard = true, now
			n.ack(m, from)
			return
		}
		if w.child(s, m.Seq) >= 0 {
			n.ack(m, from) // a finishing child asks whether the walk lives
			return
		}
	}
	if n.tree.valid && n.tree.r == r {
		if i := n.tree.childEdge(s, m.Seq); i >= 0 {
			// A child still waits for the FINISHED we gave up sending.
			n.sendFinished(now, i)
			return
		}
	}
	n.refuse(m, from, wire.RefuseStale, rank{})
}

func (n *Node) onRefuse(now time.Duration, m *wire.Overlay) {
	s, r := m.Node, rank{m.Origin, m.Epoch}
	better := rank{m.Better, m.BetterEpoch}
	w := &n.walk
	switch m.Ref {
	case wire.ExtForward:
		if w.state != Working || !w.waiting || r != w.r || s != w.wait.id || m.Seq != w.wait.edge {
			return
		}
		if m.Reason == wire.RefuseLower && better.better(w.r) {
			// A better walk or tree, or a lower id, holds the neighbour:
			// ours cannot give the partition its tree. Call it off.
			n.abortWalk(now, better, true, s)
			return
		}
		n.notChild(now)
	case wire.ExtReturn, wire.ExtWorking:
		if w.state != Idle && r == w.r && s == w.parent && m.Seq == w.edge {
			if m.Reason != wire.RefuseLower || !better.better(w.r) {
				better = rank{}
			}
			n.abortWalk(now, better, false, s) // our edge is gone
		}
	default:
		n.ackRetx(s, m) // a no is an answer too
	}
}

func (n *Node) onAbort(now time.Duration, from netip.Addr, m *wire.Overlay) {
	n.ack(m, from)
	s, r := m.Node, rank{m.Origin, m.Epoch}
	better := rank{m.Better, m.BetterEpoch}
	w := &n.walk
	if w.state != Idle && r == w.r {
		wins := better.better(w.r)
		switch {
		case s == w.parent && m.Seq == w.edge:
			if !wins {
				better = rank{}
			}
			n.abortWalk(now, better, false, s)
		case w.waiting && s == w.wait.id && m.Seq == w.wait.edge:
			if wins {
				n.abortWalk(now, better, true, s)
			} else {
				n.stats.ChildrenDead++
				n.notChild(now)
			}
		case w.child(s, m.Seq) >= 0:
			if wins {
				n.abortWalk(now, better, true, s)
			} else {
				w.children = slices.Delete(w.children, w.child(s, m.Seq), w.child(s, m.Seq)+1)
			}
		}
		return
	}
	if n.tree.valid && n.tree.r == r {
		if i := n.tree.childEdge(s, m.Seq); i >= 0 {
			// It left the walk before our FINISHED reached it: it is not
			// in the tree after all.
			n.tree.removeChild(i)
			n.requestRebuild(now)
		}
	}
}

// walkTimers runs the walk's retransmissions, keepalives and timeouts.
func (n *Node) walkTimers(now time.Duration) {
	w := &n.walk
	if w.state == Idle {
		return
	}
	if now >= w.joined+n.cfg.WalkTimeout {
		n.abortWalk(now, rank{}, true, wire.NodeID{})
		return
	}
	if w.state == Working {
		if !w.parent.IsZero() {
			if now >= w.parentHeard+n.cfg.DeadAfter {
				n.abortWalk(now, rank{}, false, w.parent)
				return
			}
			if now >= w.nextWorking {
				k := n.msg(wire.ExtWorking, w.r, w.edge)
				k.State = wire.WalkWorking
				n.send(w.parent, k)
				w.nextWorking = now + n.cfg.T/2
			}
		}
		if w.waiting {
			if now >= w.wait.heard+n.cfg.DeadAfter {
				n.childDead(now, true)
				return
			}
			if !w.wait.acked && now >= w.wait.next {
				n.send(w.wait.id, w.wait.msg)
				w.wait.next = now + n.cfg.T/2
			}
		}
		return
	}
	if !w.retAcked {
		if now >= max(w.parentHeard, w.retSince)+n.cfg.DeadAfter {
			n.abortWalk(now, rank{}, false, w.parent)
			return
		}
		if now >= w.retNext {
			n.send(w.parent, w.ret)
			w.retNext = now + n.cfg.T/2
		}
		return
	}
	probe := func() {
		k := n.msg(wire.ExtWorking, w.r, w.edge)
		k.State = wire.WalkFinishing
		n.send(w.parent, k)
		w.probeResend = now + n.cfg.T/2
	}
	if w.probing {
		if now >= w.probeSince+n.cfg.DeadAfter {
			n.abortWalk(now, rank{}, false, w.parent)
			return
		}
		if now >= w.probeResend {
			probe()
		}
	} else if now >= w.probeNext {
		w.probing, w.probeSince = true, now
		probe()
	}
}

// walkNext reports the walk's timers to Next.
func (n *Node) walkNext(at func(time.Duration)) {
	w := &n.walk
	if w.state == Idle {
		return
	}
	at(w.joined + n.cfg.WalkTimeout)
	if w.state == Working {
		if !w.parent.IsZero() {
			at(w.parentHeard + n.cfg.DeadAfter)
			at(w.nextWorking)
		}
		if w.waiting {
			at(w.wait.heard + n.cfg.DeadAfter)
			if !w.wait.acked {
				at(w.wait.next)
			}
		}
		return
	}
	switch {
	case !w.retAcked:
		at(max(w.parentHeard, w.retSince) + n.cfg.DeadAfter)
		at(w.retNext)
	case w.probing:
		at(w.probeSince + n.cfg.DeadAfter)
		at(w.probeResend)
	default:
		at(w.probeNext)
	}
}
