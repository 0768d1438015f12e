package overlay

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/wire"
)

// treeChild is a child of the finished tree with the nodes of its subtree.
type treeChild struct {
	id      wire.NodeID
	edge    uint32 // the walk edge, which FINISHED and its answers carry
	members []wire.NodeID
}

// tree is the finished tree in force.
type tree struct {
	valid      bool
	r          rank
	digest     uint64
	depth      int
	size       int
	parent     wire.NodeID // zero at the root
	parentEdge uint32
	children   []treeChild
	route      map[wire.NodeID]int // subtree member -> index in children
}

func (t *tree) child(id wire.NodeID) int {
	return slices.IndexFunc(t.children, func(c treeChild) bool { return c.id == id })
}

func (t *tree) childEdge(id wire.NodeID, edge uint32) int {
	return slices.IndexFunc(t.children, func(c treeChild) bool { return c.id == id && c.edge == edge })
}

func (t *tree) removeChild(i int) {
	t.children = slices.Delete(t.children, i, i+1)
	t.route = make(map[wire.NodeID]int)
	for k, c := range t.children {
		for _, id := range c.members {
			t.route[id] = k
		}
	}
}

// subtreeDigest names the subtree of node id with the given children by its
// shape: the hash of its id and of each child's id, size and digest, in the
// order they returned the token. The root's is the tree's digest, so every
// node of a tree can tell it from another walk with the same origin and
// epoch.
func subtreeDigest(id wire.NodeID, children []child) uint64 {
	h := fnv.New64a()
	h.Write(id[:])
	var b [20]byte
	for _, c := range children {
		copy(b[:8], c.id[:])
		binary.BigEndian.PutUint32(b[8:], c.sub.Size)
		binary.BigEndian.PutUint64(b[12:], c.sub.Digest)
		h.Write(b[:])
	}
	return h.Sum64()
}

// install puts a finished tree in force and passes FINISHED on to the
// children, with the nodes of each child's subtree for routing.
func (n *Node) install(now time.Duration, r rank, parent wire.NodeID, parentEdge uint32, children []child, depth, size int, dig uint64) {
	t := tree{valid: true, r: r, digest: dig, depth: depth, size: size, parent: parent, parentEdge: parentEdge,
		route: make(map[wire.NodeID]int)}
	for _, c := range children {
		tc := treeChild{id: c.id, edge: c.edge, members: slices.Clone(c.members)}
		slices.SortFunc(tc.members, wire.NodeID.Compare)
		for _, id := range tc.members {
			t.route[id] = len(t.children)
		}
		t.children = append(t.children, tc)
	}
	rebuild := n.walk.lostChild
	for i := len(t.children) - 1; i >= 0; i-- {
		if n.neighbour(t.children[i].id) == nil {
			t.removeChild(i)
			rebuild = true
		}
	}
	prev := n.lastRoot
	n.tree = t
	n.lastRoot = r.origin
	n.walk = walk{}
	n.lastWalkEnd = now
	n.stats.TreesMade++
	n.event(Event{Kind: EventTree, Root: r.origin, Epoch: r.epoch, Size: size})
	if prev != r.origin {
		n.event(Event{Kind: EventRoot, Root: r.origin, OldRoot: prev, Epoch: r.epoch, Size: size})
	}
	for i := range t.children {
		n.sendFinished(now, i)
	}
	n.resetMismatches()
	n.helloSoon(now)
	if rebuild {
		n.requestRebuild(now)
	}
}

// sendFinished tells child i of the tree that the walk is over.
func (n *Node) sendFinished(now time.Duration, i int) {
	c := n.tree.children[i]
	m := n.msg(wire.ExtFinished, n.tree.r, c.edge)
	m.Tree = wire.TreeSummary{Depth: uint16(min(n.tree.depth+1, 0xffff)), Size: uint32(n.tree.size), Digest: n.tree.digest}
	n.sendReliable(now, c.id, m)
}

// dissolve drops the tree: its parent is gone or announces another tree.
// The children are told at once; if that is lost, our HELLO tells them.
func (n *Node) dissolve(now time.Duration) {
	if !n.tree.valid {
		return
	}
	t := n.tree
	for _, c := range t.children {
		n.send(c.id, n.msg(wire.ExtDissolve, t.r, 0))
	}
	n.retx = slices.DeleteFunc(n.retx, func(x *retx) bool {
		return x.msg.Type == wire.ExtFinished && x.msg.Origin == t.r.origin && x.msg.Epoch == t.r.epoch
	})
	n.tree = tree{}
	n.wantWalk = false
	n.stats.TreesLost++
	n.event(Event{Kind: EventTreeLost, Root: t.r.origin, Epoch: t.r.epoch})
	n.resetMismatches()
	n.helloSoon(now)
}

// requestRebuild asks the root for a new walk: the root itself starts one
// (after RebuildGap), any other node sends REBUILD to its parent, at most
// once per RebuildGap for one tree.
func (n *Node) requestRebuild(now time.Duration) {
	if !n.tree.valid {
		return
	}
	if n.tree.r.origin == n.cfg.Node {
		if n.walk.state == Idle {
			n.wantWalk = true
		}
		return
	}
	if n.walk.state != Idle && n.walk.r.origin == n.tree.r.origin && n.walk.r.epoch > n.tree.r.epoch {
		return // the root walks already
	}
	if n.rebuildFor == n.tree.r && now < n.lastRebuild+n.cfg.RebuildGap {
		return
	}
	n.rebuildSeq++
	n.sendReliable(now, n.tree.parent, n.msg(wire.ExtRebuild, n.tree.r, n.rebuildSeq))
	n.lastRebuild, n.rebuildFor = now, n.tree.r
	n.stats.RebuildsAsked++
}

func (n *Node) onFinished(now time.Duration, from netip.Addr, m *wire.Overlay) {
	s, r := m.Node, rank{m.Origin, m.Epoch}
	w := &n.walk
	switch {
	case w.state == Finishing && r == w.r && s == w.parent && m.Seq == w.edge:
		n.ack(m, from)
		n.install(now, w.r, s, w.edge, w.children, int(m.Tree.Depth), int(m.Tree.Size), m.Tree.Digest)
	case n.tree.valid && n.tree.r == r && n.tree.parent == s && n.tree.parentEdge == m.Seq:
		n.ack(m, from)
	default:
		n.refuse(m, from, wire.RefuseStale, rank{})
	}
}

func (n *Node) onRebuild(now time.Duration, from netip.Addr, m *wire.Overlay) {
	n.ack(m, from)
	if n.tree.valid && n.tree.r == (rank{m.Origin, m.Epoch}) && n.tree.child(m.Node) >= 0 {
		n.requestRebuild(now)
	}
}

func (n *Node) onDissolve(now time.Duration, m *wire.Overlay) {
	if n.tree.valid && n.tree.r == (rank{m.Origin, m.Epoch}) && n.tree.parent == m.Node {
		n.dissolve(now)
	}
}

// retx is a message sent again every T/2 until acknowledged or refused, or
// until DeadAfter has passed.
type retx struct {
	to     wire.NodeID
	msg    wire.Overlay
	next   time.Duration
	giveUp time.Duration
}

func (n *Node) sendReliable(now time.Duration, to wire.NodeID, m wire.Overlay) {
	n.retx = slices.DeleteFunc(n.retx, func(x *retx) bool { return x.to == to && sameMsg(&x.msg, &m) })
	n.send(to, m)
	n.retx = append(n.retx, &retx{to: to, msg: m, next: now + n.cfg.T/2, giveUp: now + n.cfg.DeadAfter})
}

func sameMsg(a, b *wire.Overlay) bool {
	return a.Type == b.Type && a.Origin == b.Origin && a.Epoch == b.Epoch && a.Seq == b.Seq
}

// ackRetx ends the retransmission that an ACK or REFUSE answers.
func (n *Node) ackRetx(from wire.NodeID, m *wire.Overlay) {
	n.retx = slices.DeleteFunc(n.retx, func(x *retx) bool {
		return x.to == from && x.msg.Type == m.Ref && x.msg.Origin == m.Origin && x.msg.Epoch == m.Epoch && x.msg.Seq == m.Seq
	})
}

func (n *Node) retxTimers(now time.Duration) {
	n.retx = slices.DeleteFunc(n.retx, func(x *retx) bool { return now >= x.giveUp })
	for _, x := range n.retx {
		if now >= x.next {
			n.send(x.to, x.msg)
			x.next = now + n.cfg.T/2
		}
	}
}
