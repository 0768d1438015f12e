package overlay

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/wire"
)

// MaxNeighbours bounds the neighbour table, so that a host sending under
// many ids cannot make it grow without end; a real mesh node hears far
// fewer. maxLinks bounds the links of one neighbour likewise.
const (
	MaxNeighbours = 1024
	maxLinks      = 16
)

// link is one way of reaching a neighbour: an interface (the address's zone)
// and its link-local address there.
type link struct {
	addr  netip.Addr
	heard time.Duration
	sym   bool // its last HELLO on this link listed us, or it sent us a unicast
}

// view is what a neighbour's last HELLO said about it.
type view struct {
	hello     bool
	hasTree   bool
	tree      rank
	digest    uint64
	depth     uint16
	walkState uint8
	walk      rank
	// flags is what the HELLO says about us (wire.HelloParent: we are its
	// parent; wire.HelloChild: we are its child), valid when the HELLO
	// listed us at all.
	flagsKnown bool
	flags      uint8
}

// best is the rank the neighbour stands for: its walk, its tree, or itself
// as a would-be origin.
func (v *view) best(id wire.NodeID) rank {
	b := rank{origin: id}
	if v.hasTree && v.tree.better(b) {
		b = v.tree
	}
	if v.walkState != wire.WalkIdle && v.walk.better(b) {
		b = v.walk
	}
	return b
}

type neighbour struct {
	id    wire.NodeID
	links []link // sorted by address (zone included)
	v     view

	// mismatch: the neighbour is outside our tree although it could be in
	// it, seen in mismatchHellos HELLOs in a row since mismatchSince.
	mismatch       bool
	mismatchSince  time.Duration
	mismatchHellos int
}

func (nb *neighbour) symmetric() bool {
	for _, l := range nb.links {
		if l.sym {
			return true
		}
	}
	return false
}

// neighbour finds a neighbour by id.
func (n *Node) neighbour(id wire.NodeID) *neighbour {
	i, ok := slices.BinarySearchFunc(n.nbs, id, func(nb *neighbour, id wire.NodeID) int { return nb.id.Compare(id) })
	if !ok {
		return nil
	}
	return n.nbs[i]
}

// peer returns the address to reach neighbour id: its first link that works
// both ways, else its first link. Links are sorted, so the choice is stable.
func (n *Node) peer(id wire.NodeID) (Peer, bool) {
	nb := n.neighbour(id)
	if nb == nil || len(nb.links) == 0 {
		return Peer{}, false
	}
	for _, l := range nb.links {
		if l.sym {
			return Peer{ID: id, Addr: l.addr}, true
		}
	}
	return Peer{ID: id, Addr: nb.links[0].addr}, true
}

// heard records a datagram of node id from address from, creating the
// neighbour and the link as needed. A unicast shows that the sender hears
// us, so it makes the link symmetric; a HELLO decides that itself.
// It returns nil when the table is full.
func (n *Node) heard(now time.Duration, id wire.NodeID, from netip.Addr, unicast bool) *neighbour {
	i, ok := slices.BinarySearchFunc(n.nbs, id, func(nb *neighbour, id wire.NodeID) int { return nb.id.Compare(id) })
	if !ok {
		if len(n.nbs) >= MaxNeighbours {
			return nil
		}
		n.nbs = slices.Insert(n.nbs, i, &neighbour{id: id})
	}
	nb := n.nbs[i]
	j, ok := slices.BinarySearchFunc(nb.links, from, func(l link, a netip.Addr) int { return l.addr.Compare(a) })
	if !ok {
		if len(nb.links) >= maxLinks {
			return nil
		}
		nb.links = slices.Insert(nb.links, j, link{addr: from})
		// Answer a new neighbour soon, so it learns that we hear it.
		n.helloSoon(now)
	}
	nb.links[j].heard = now
	if unicast {
		nb.links[j].sym = true
	}
	return nb
}

// helloSoon brings the next HELLO forward, at most four per period.
func (n *Node) helloSoon(now time.Duration) {
	n.nextHello = min(n.nextHello, max(now, n.lastHello+n.cfg.Hello/4))
}

func (n *Node) onHello(now time.Duration, nb *neighbour, from netip.Addr, m *wire.Overlay) {
	h := &m.Hello
	listed, flags := false, uint8(0)
	for _, e := range h.Neighbours {
		if e.ID == n.cfg.Node {
			listed, flags = true, e.Flags
			break
		}
	}
	covers := h.Covers(n.cfg.Node)
	if covers {
		for i := range nb.links {
			if nb.links[i].addr == from {
				nb.links[i].sym = listed
			}
		}
	}
	v := view{hello: true, hasTree: h.HasTree, digest: h.Digest, depth: h.Depth, walkState: h.WalkState, flagsKnown: listed, flags: flags}
	if !covers {
		// A partial HELLO for other ids: what the sender says about us
		// is in another part.
		v.flagsKnown, v.flags = nb.v.flagsKnown, nb.v.flags
	}
	if h.HasTree {
		v.tree = rank{m.Origin, m.Epoch}
	}
	if h.WalkState != wire.WalkIdle {
		v.walk = rank{h.WalkOrigin, h.WalkEpoch}
	}
	nb.v = v
	// Our own walks and trees from before a restart: continue above them.
	if v.hasTree && v.tree.origin == n.cfg.Node && v.tree.epoch >= n.nextEpoch {
		n.nextEpoch = v.tree.epoch + 1
	}
	if v.walkState != wire.WalkIdle && v.walk.origin == n.cfg.Node && v.walk.epoch >= n.nextEpoch {
		n.nextEpoch = v.walk.epoch + 1
	}
	n.checkParent(now, nb)
	n.evalNeighbour(now, nb)
}

// sendHellos multicasts a HELLO on every interface, listing the neighbours
// heard there, and schedules the next round with some jitter so that nodes
// started together do not stay in step. More neighbours than one HELLO can
// list are split over partial HELLOs, each for one range of ids.
func (n *Node) sendHellos(now time.Duration) {
	n.helloSeq++
	var r rank
	if n.tree.valid {
		r = n.tree.r
	}
	base := n.msg(wire.ExtHello, r, n.helloSeq)
	if n.tree.valid {
		base.Hello.HasTree, base.Hello.Digest = true, n.tree.digest
		base.Hello.Depth = uint16(min(n.tree.depth, 0xffff))
	}
	if n.walk.state != Idle {
		base.Hello.WalkState, base.Hello.WalkOrigin, base.Hello.WalkEpoch = uint8(n.walk.state), n.walk.r.origin, n.walk.r.epoch
	}
	emit := func(iface string, m wire.Overlay) {
		n.out = append(n.out, Out{Multicast: true, Iface: iface, Msg: m})
		n.stats.Out[wire.ExtHello]++
	}
	for _, iface := range n.cfg.Interfaces {
		var list []wire.HelloEntry
		for _, nb := range n.nbs {
			if !slices.ContainsFunc(nb.links, func(l link) bool { return l.addr.Zone() == iface }) {
				continue
			}
			var f uint8
			if n.tree.valid && n.tree.parent == nb.id {
				f |= wire.HelloParent
			}
			if n.tree.valid && n.tree.child(nb.id) >= 0 {
				f |= wire.HelloChild
			}
			list = append(list, wire.HelloEntry{ID: nb.id, Flags: f})
		}
		if len(list) <= wire.MaxHelloEntries {
			m := base
			m.Hello.Neighbours = list
			emit(iface, m)
			continue
		}
		// n.nbs is sorted by id, so each part covers the ids from the
		// one after the last part's end to its own last entry, and the
		// last part all the rest.
		var lo wire.NodeID
		for len(list) > 0 {
			k := min(len(list), wire.MaxPartialHelloEntries)
			m := base
			h := &m.Hello
			h.Partial, h.Lo, h.Neighbours = true, lo, list[:k]
			if k == len(list) {
				h.Hi = wire.NodeID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			} else {
				h.Hi = list[k-1].ID
				binary.BigEndian.PutUint64(lo[:], binary.BigEndian.Uint64(h.Hi[:])+1)
			}
			list = list[k:]
			emit(iface, m)
		}
	}
	n.lastHello = now
	jitter := time.Duration(n.rng.Int64N(int64(n.cfg.Hello/5) + 1))
	n.nextHello = now + n.cfg.Hello*9/10 + jitter
}

// expireNeighbours forgets links not heard for NeighbourTimeout, and
// neighbours without links.
func (n *Node) expireNeighbours(now time.Duration) {
	var gone []wire.NodeID
	for _, nb := range n.nbs {
		nb.links = slices.DeleteFunc(nb.links, func(l link) bool { return now-l.heard >= n.cfg.NeighbourTimeout })
		if len(nb.links) == 0 {
			gone = append(gone, nb.id)
		}
	}
	if len(gone) == 0 {
		return
	}
	n.nbs = slices.DeleteFunc(n.nbs, func(nb *neighbour) bool { return len(nb.links) == 0 })
	for _, id := range gone {
		n.lost(now, id)
	}
}

// lost handles a neighbour that went silent: a walk edge or a tree edge to
// it is gone.
func (n *Node) lost(now time.Duration, id wire.NodeID) {
	w := &n.walk
	if w.state != Idle {
		switch {
		case w.waiting && w.wait.id == id:
			n.childDead(now, false)
		case w.parent == id:
			n.abortWalk(now, rank{}, false, id)
		default:
			// A child that returned the token is gone, and its subtree
			// with it (a RETURN we sent may count it already): the tree
			// the walk makes will lack nodes. Finish it (the rest of
			// the partition needs a tree meanwhile) and ask for another.
			if i := slices.IndexFunc(w.children, func(c child) bool { return c.id == id }); i >= 0 {
				w.children = slices.Delete(w.children, i, i+1)
				w.lostChild = true
			}
		}
	}
	if !n.tree.valid {
		return
	}
	if n.tree.parent == id {
		n.dissolve(now)
		return
	}
	if i := n.tree.child(id); i >= 0 {
		n.tree.removeChild(i)
		n.requestRebuild(now)
	}
}

// checkParent keeps the tree only while the parent announces the same tree
// with us as its child. A parent announcing a newer tree we are being walked
// into is fine: our FINISHED is on its way.
func (n *Node) checkParent(now time.Duration, nb *neighbour) {
	if !n.tree.valid || nb.id != n.tree.parent {
		return
	}
	v := &nb.v
	same := v.hasTree && v.tree == n.tree.r && v.digest == n.tree.digest
	switch {
	case v.walkState != wire.WalkIdle && v.walk == n.tree.r:
		// Sent while the parent was still in the walk that made our tree:
		// overtaken by the FINISHED it sent later. Says nothing.
	case !same && n.walk.state != Idle && v.hasTree && v.tree == n.walk.r:
	case !same:
		n.dissolve(now)
	case v.flagsKnown && v.flags&wire.HelloChild == 0:
		n.dissolve(now)
	}
}

// evalNeighbour updates whether a neighbour is outside our tree although our
// tree could take it: it has no tree, an older one, or a higher root, and is
// in no better walk; or it is in our tree but disagrees about the edge
// between us. Only a node in no walk judges, and only neighbours that hear
// it, since the token cannot reach the others.
func (n *Node) evalNeighbour(now time.Duration, nb *neighbour) {
	bad := false
	if n.tree.valid && n.walk.state == Idle && nb.symmetric() && nb.v.hello {
		theirs := nb.v.best(nb.id)
		switch {
		case n.tree.r.better(theirs):
			bad = true
		case nb.v.hasTree && nb.v.tree == n.tree.r:
			if nb.v.digest != n.tree.digest {
				bad = true // two walks with one (origin, epoch): an epoch reused after a restart
			} else if nb.v.flagsKnown {
				mine := n.tree.child(nb.id) >= 0
				says := nb.v.flags&wire.HelloParent != 0
				bad = mine != says
			}
		}
	}
	if !bad {
		nb.mismatch, nb.mismatchHellos = false, 0
		return
	}
	if !nb.mismatch {
		nb.mismatch, nb.mismatchSince = true, now
	}
	nb.mismatchHellos++
}

// resetMismatches forgets every judgement, after our own tree changed.
func (n *Node) resetMismatches() {
	for _, nb := range n.nbs {
		nb.mismatch, nb.mismatchHellos = false, 0
	}
}

// mismatchTimers asks for a rebuild when a neighbour has stayed outside our
// tree for MismatchHold.
func (n *Node) mismatchTimers(now time.Duration) {
	for _, nb := range n.nbs {
		if !nb.mismatch || nb.mismatchHellos < 2 || now < nb.mismatchSince+n.cfg.MismatchHold {
			continue
		}
		if !n.tree.valid || n.walk.state != Idle || !nb.symmetric() {
			nb.mismatch, nb.mismatchHellos = false, 0
			continue
		}
		nb.mismatchSince = now
		n.requestRebuild(now)
	}
}
