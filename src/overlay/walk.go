package overlay

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/wire"
)

// MaxTreeSize bounds the nodes of one tree (and of the subtree a RETURN
// may announce), so that a peer cannot make us collect ids without end.
const MaxTreeSize = 1<<16 - 1

// PathLen is how many of the receiver's nearest ancestors a FORWARD carries
// (at most wire.MaxPathEntries). In a depth-first walk every neighbour that
// the token holder could find visited already is an ancestor of it or in a
// subtree it walked itself: the path names the recent ancestors, the
// returned subtrees the rest of its own part, and the neighbours' HELLOs
// the ancestors that joined long enough ago. A neighbour missed by all
// three is asked anyway and answers with a refusal (RefuseVisited).
const PathLen = 32

// child is a neighbour that returned the token to us, with its subtree.
type child struct {
	id      wire.NodeID
	edge    uint32
	sub     wire.Subtree
	members []wire.NodeID // its subtree, itself first
}

// returnIn collects the parts of the RETURN we wait for.
type returnIn struct {
	step  uint32
	sub   wire.Subtree
	parts [][]wire.NodeID // nil where not received yet
	have  int
}

// waitState is the FORWARD we are waiting on.
type waitState struct {
	id     wire.NodeID
	edge   uint32
	acked  bool
	next   time.Duration // retransmission
	heard  time.Duration // last sign of life
	msg    wire.Overlay
	sentAt time.Duration
	ret    *returnIn // the parts of its RETURN received so far
}

// walk is the node's part in one token walk. The token carries no visited
// set: each node remembers which of its neighbours are in the walk
// (inWalk: itself, its ancestors as far as the FORWARD named them, the
// subtrees its children returned) and which it has tried.
type walk struct {
	state  State
	r      rank
	parent wire.NodeID // zero at the origin
	edge   uint32      // the step of the FORWARD that brought us in
	step   uint32      // the token's step count
	path   []wire.NodeID
	inWalk map[wire.NodeID]bool
	tried  map[wire.NodeID]bool

	children  []child
	lostChild bool // a child that returned the token was lost since
	joined    time.Duration

	parentHeard time.Duration
	nextWorking time.Duration

	waiting bool
	wait    waitState

	ret      []wire.Overlay // the parts of our RETURN
	retGot   []bool         // which of them the parent acknowledged
	retLeft  int
	retAcked bool // all of them
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

// size is the number of nodes of our subtree so far.
func (w *walk) size() int {
	k := 1
	for _, c := range w.children {
		k += int(c.sub.Size)
	}
	return k
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
		inWalk:      map[wire.NodeID]bool{n.cfg.Node: true},
		tried:       map[wire.NodeID]bool{},
		joined:      now,
		parentHeard: now,
	}
	n.wantWalk = false
	n.stats.WalksStarted++
	n.event(Event{Kind: EventWalkStarted, Root: n.cfg.Node, Epoch: e})
	n.advance(now)
}

// visitedIn reports whether a neighbour's last HELLO shows it in walk r or
// in the tree r made: then it has been visited.
func (v *view) visitedIn(r rank) bool {
	return v.walkState != wire.WalkIdle && v.walk == r || v.hasTree && v.tree == r
}

// advance is the seed's check: pass the token to the lowest neighbour that
// hears us and is not known to be in the walk, or, when there is none,
// return it to the parent (or finish, at the origin).
func (n *Node) advance(now time.Duration) {
	w := &n.walk
	w.waiting = false
	if w.size() < MaxTreeSize {
		for _, nb := range n.nbs {
			if !nb.symmetric() || w.inWalk[nb.id] || w.tried[nb.id] || nb.v.visitedIn(w.r) {
				continue
			}
			step := n.nextStep()
			w.tried[nb.id] = true
			m := n.msg(wire.ExtForward, w.r, step)
			m.Path = append(slices.Clone(w.path[max(0, len(w.path)-(PathLen-1)):]), n.cfg.Node)
			w.waiting = true
			w.wait = waitState{id: nb.id, edge: step, heard: now, next: now + n.cfg.T/2, msg: m, sentAt: now}
			n.send(nb.id, m)
			return
		}
	}
	if w.parent.IsZero() {
		n.finishWalk(now)
		return
	}
	w.state = Finishing
	members := []wire.NodeID{n.cfg.Node}
	for _, c := range w.children {
		members = append(members, c.members...)
	}
	sub := wire.Subtree{Size: uint32(len(members)), Digest: subtreeDigest(n.cfg.Node, w.children)}
	step := n.nextStep()
	parts := (len(members) + wire.MaxReturnMembers - 1) / wire.MaxReturnMembers
	w.ret = make([]wire.Overlay, parts)
	for i := range w.ret {
		m := n.msg(wire.ExtReturn, w.r, w.edge)
		m.Step, m.Sub, m.Part, m.Parts = step, sub, uint16(i), uint16(parts)
		m.Members = members[i*wire.MaxReturnMembers : min(len(members), (i+1)*wire.MaxReturnMembers)]
		w.ret[i] = m
	}
	w.retGot, w.retLeft, w.retAcked = make([]bool, parts), parts, false
	w.retNext, w.retSince = now+n.cfg.T/2, now
	for i := range w.ret {
		n.send(w.parent, w.ret[i])
	}
}

// childDead gives up on the child we wait for: it stays out of the tree, is
// told so in case it is alive after all, and the walk goes on.
func (n *Node) childDead(now time.Duration, tell bool) {
	w := &n.walk
	if !w.waiting {
		return
	}
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

// finishWalk ends our own walk: our subtree is the tree.
func (n *Node) finishWalk(now time.Duration) {
	w := n.walk
	size := w.size()
	n.stats.WalksFinished++
	n.event(Event{Kind: EventWalkFinished, Root: n.cfg.Node, Epoch: w.r.epoch, Size: size})
	n.install(now, w.r, wire.NodeID{}, 0, w.children, 0, size, subtreeDigest(n.cfg.Node, w.children))
}

func (n *Node) onForward(now time.Duration, from netip.Addr, m *wire.Overlay) error {
	if err := n.validForward(m); err != nil {
		return err
	}
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	if m.Origin == n.cfg.Node || slices.Contains(m.Path, n.cfg.Node) {
		// We are the walk's origin or an ancestor of the sender: in the
		// walk, or out of it (called off here) while a branch below us
		// lives on, doomed. Either way not a child of the sender.
		n.refuse(m, from, wire.RefuseVisited, r)
		return nil
	}
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
	inWalk := make(map[wire.NodeID]bool, len(m.Path)+1)
	inWalk[n.cfg.Node] = true
	for _, a := range m.Path {
		inWalk[a] = true
	}
	n.walk = walk{
		state:       Working,
		r:           r,
		parent:      s,
		edge:        m.Seq,
		step:        m.Seq,
		path:        slices.Clone(m.Path),
		inWalk:      inWalk,
		tried:       map[wire.NodeID]bool{},
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

// validForward checks the path of a FORWARD: the receiver's ancestors, the
// sender last, the origin first if it is named at all; ids distinct and not
// zero. (A path that names us is well formed, but we cannot join: see
// onForward.)
func (n *Node) validForward(m *wire.Overlay) error {
	p := m.Path
	k := len(p)
	if k == 0 || p[k-1] != m.Node {
		return fmt.Errorf("%w: FORWARD path does not end with its sender", ErrMalformed)
	}
	seen := make(map[wire.NodeID]bool, k)
	for i, a := range p {
		if a.IsZero() || seen[a] || a == m.Origin && i != 0 {
			return fmt.Errorf("%w: FORWARD path entry %d", ErrMalformed, i)
		}
		seen[a] = true
	}
	return nil
}

func (n *Node) onReturn(now time.Duration, from netip.Addr, m *wire.Overlay) error {
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	switch {
	case w.state == Working && r == w.r && w.waiting && s == w.wait.id && m.Seq == w.wait.edge:
		done, err := n.collectReturn(m)
		if err != nil {
			n.childDead(now, true)
			return err
		}
		n.ack(m, from)
		if !done {
			return nil
		}
		in := w.wait.ret
		if n.overlap(in) {
			// A node of the subtree is in the walk twice: it left the
			// walk (aborted, or given up by its parent) and was walked
			// into it again, while the old branch it was in still
			// lives on, doomed. Not malformed, but no tree either: go
			// on without this child, as without a dead one.
			n.stats.Stale++
			n.childDead(now, true)
			return nil
		}
		c := child{id: s, edge: m.Seq, sub: in.sub}
		c.members = make([]wire.NodeID, 0, in.sub.Size)
		for _, p := range in.parts {
			c.members = append(c.members, p...)
		}
		for _, id := range c.members {
			w.inWalk[id] = true
		}
		w.children = append(w.children, c)
		w.step = max(w.step, in.step)
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

// collectReturn files one part of the RETURN we wait for. Done is true once
// every part is in. Every part carries the same step, size, digest and count
// of parts; each but the last holds wire.MaxReturnMembers ids, and the
// first id is the sender's.
func (n *Node) collectReturn(m *wire.Overlay) (done bool, err error) {
	w := &n.walk
	size := int(m.Sub.Size)
	parts := (size + wire.MaxReturnMembers - 1) / wire.MaxReturnMembers
	if size < 1 || size > MaxTreeSize-w.size() || int(m.Parts) != parts || m.Part >= m.Parts {
		return false, fmt.Errorf("%w: RETURN of %d nodes in %d parts", ErrMalformed, size, m.Parts)
	}
	if want := min(size-int(m.Part)*wire.MaxReturnMembers, wire.MaxReturnMembers); len(m.Members) != want {
		return false, fmt.Errorf("%w: RETURN part %d with %d nodes, want %d", ErrMalformed, m.Part, len(m.Members), want)
	}
	if m.Part == 0 && m.Members[0] != m.Node {
		return false, fmt.Errorf("%w: RETURN subtree does not start at its sender", ErrMalformed)
	}
	if slices.ContainsFunc(m.Members, wire.NodeID.IsZero) {
		return false, fmt.Errorf("%w: RETURN names node id zero", ErrMalformed)
	}
	in := w.wait.ret
	if in == nil {
		in = &returnIn{step: m.Step, sub: m.Sub, parts: make([][]wire.NodeID, parts)}
		w.wait.ret = in
	} else if in.step != m.Step || in.sub != m.Sub {
		return false, fmt.Errorf("%w: RETURN parts disagree", ErrMalformed)
	}
	if in.parts[m.Part] == nil {
		in.parts[m.Part] = slices.Clone(m.Members)
		in.have++
	}
	return in.have == parts, nil
}

// overlap reports whether a complete RETURN names a node twice, or one that
// is in the walk already as far as we know (us, our ancestors, our other
// children's subtrees).
func (n *Node) overlap(in *returnIn) bool {
	w := &n.walk
	seen := make(map[wire.NodeID]bool, in.sub.Size)
	for _, p := range in.parts {
		for _, id := range p {
			if seen[id] || w.inWalk[id] {
				return true
			}
			seen[id] = true
		}
	}
	return false
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
		if w.state == Finishing && r == w.r && s == w.parent && m.Seq == w.edge && !w.retAcked && int(m.Part) < len(w.retGot) {
			if !w.retGot[m.Part] {
				w.retGot[m.Part] = true
				w.retLeft--
			}
			if w.retLeft == 0 {
				w.retAcked, w.parentHeard, w.probeNext = true, now, now+n.cfg.Probe
			}
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
		if m.Reason == wire.RefuseVisited || better == w.r {
			n.stats.Bounced++
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
			for i := range w.ret {
				if !w.retGot[i] {
					n.send(w.parent, w.ret[i])
				}
			}
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
