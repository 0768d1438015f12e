package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Overlay messages (the spanning tree of SPEC §5) travel on the extension
// header like SYNC. After the 16-byte extension header every one of them
// carries the same 16 bytes,
//
//	origin (8) | epoch (4) | seq (4)
//
// naming the walk or tree the message belongs to (the walk's origin, which
// is the tree's root) and a sequence number whose meaning depends on the type
// (for the token messages the step of the FORWARD that made the edge, so a
// reply to an edge that no longer exists is recognised as stale). Then a
// fixed part and, for some types, a counted list. All integers big-endian;
// every type has one exact length for its count, like the C messages.
//
//	type         after the common 16 bytes                                      length
//	2 HELLO      hasTree(1) depth(2) digest(8) walkState(1) walkOrigin(8)        58 + 9n
//	             walkEpoch(4) n(2) n × {id(8) flags(1)}
//	3 FORWARD    n(2) n × {id(8) parent(2)}                                      34 + 10n
//	4 RETURN     step(4) n(2) n × {id(8) parent(2)}                              38 + 10n
//	5 FINISHED   depth(2) size(4) digest(8)                                      46
//	6 WORKING    state(1)                                                        33
//	7 ACK        type acknowledged(1)                                            33
//	8 REFUSE     type refused(1) reason(1) better origin(8) better epoch(4)      46
//	9 ABORT      better origin(8) better epoch(4)                                44
//	10 REBUILD   reason(1)                                                       33
//	11 DISSOLVE  (nothing)                                                       32
const (
	ExtHello    = 2  // multicast, periodic: neighbour discovery and the sender's tree
	ExtForward  = 3  // the token goes to an unvisited neighbour
	ExtReturn   = 4  // the token comes back with the neighbour's subtree
	ExtFinished = 5  // the walk is over: the tree, root to leaves
	ExtWorking  = 6  // keepalive of a busy node to its parent
	ExtAck      = 7  // acknowledges a FORWARD, RETURN, FINISHED, WORKING, ABORT or REBUILD
	ExtRefuse   = 8  // explicit no: the token or edge is stale or loses to a better walk
	ExtAbort    = 9  // the walk is abandoned along this edge
	ExtRebuild  = 10 // asks the root, hop by hop up the tree, for a new walk
	ExtDissolve = 11 // the tree above is lost; sent to the children
)

// Sizes of the overlay format.
const (
	OverlayHeaderLen = ExtHeaderLen + 16
	helloFixedLen    = 26
	helloEntryLen    = 9
	walkEntryLen     = 10

	// MaxDatagram is the largest UDP payload over IPv6 without jumbograms.
	MaxDatagram = 65527
	// MaxWalkEntries is how many nodes a FORWARD or RETURN can carry, so
	// the most nodes one tree can span.
	MaxWalkEntries = (MaxDatagram - OverlayHeaderLen - 6) / walkEntryLen
	// MaxHelloEntries is how many neighbours one HELLO can list.
	MaxHelloEntries = (MaxDatagram - OverlayHeaderLen - helloFixedLen) / helloEntryLen
)

// Parent values of a WalkEntry that are not an index.
const (
	WalkRoot = 0xffff // the walk's origin
	WalkDead = 0xfffe // visited but declared dead or refused: not in the tree
)

// Flags of a HelloEntry.
const (
	HelloParent = 1 << 0 // this neighbour is the sender's tree parent
	HelloChild  = 1 << 1 // this neighbour is one of the sender's tree children
)

// Walk states as carried by HELLO and WORKING.
const (
	WalkIdle      = 0
	WalkWorking   = 1
	WalkFinishing = 2
)

// Reasons of REFUSE.
const (
	RefuseLower   = 1 // the receiver is committed to a better walk or tree (Better says which)
	RefuseVisited = 2 // the receiver already belongs to this walk through another edge
	RefuseStale   = 3 // the edge the message refers to does not exist (any more)
)

// Errors of DecodeOverlay.
var (
	ErrOverlayType = errors.New("not an overlay message type")
)

// WalkEntry is one node of the token's list, in the order the walk visited
// them. Parent is the index of its parent entry, WalkRoot or WalkDead.
type WalkEntry struct {
	ID     NodeID
	Parent uint16
}

// HelloEntry is one neighbour heard by the sender of a HELLO.
type HelloEntry struct {
	ID    NodeID
	Flags uint8
}

// Hello is the payload of a HELLO. Origin and Epoch of the message name the
// sender's tree when HasTree is set.
type Hello struct {
	HasTree    bool
	Depth      uint16
	Digest     uint64
	WalkState  uint8
	WalkOrigin NodeID
	WalkEpoch  uint32
	Neighbours []HelloEntry // heard on the interface the HELLO is sent on
}

// TreeSummary describes a finished tree.
type TreeSummary struct {
	Depth  uint16 // of the receiver: the root is at 0
	Size   uint32 // nodes in the tree
	Digest uint64 // of the whole tree; equal on every node of one tree
}

// Overlay is a decoded overlay message. Which payload fields are used
// depends on Type, as the table at ExtHello says.
type Overlay struct {
	Type   uint8
	Node   NodeID // sender
	Swarm  Swarm
	Origin NodeID
	Epoch  uint32
	Seq    uint32

	Hello       Hello       // HELLO
	Walk        []WalkEntry // FORWARD, RETURN
	Step        uint32      // RETURN: the token's step after the excursion
	Tree        TreeSummary // FINISHED
	State       uint8       // WORKING
	Ref         uint8       // ACK, REFUSE: the type answered
	Reason      uint8       // REFUSE, REBUILD
	Better      NodeID      // REFUSE, ABORT: the walk or tree that wins; zero if none
	BetterEpoch uint32      // REFUSE, ABORT
}

// IsOverlay reports whether an extension type is an overlay message.
func IsOverlay(typ uint8) bool { return typ >= ExtHello && typ <= ExtDissolve }

// DecodeOverlay parses an overlay datagram. It never panics.
func DecodeOverlay(b []byte) (Overlay, error) {
	e, err := DecodeExt(b)
	if err != nil {
		return Overlay{}, err
	}
	return ParseOverlay(e)
}

// ParseOverlay parses the payload of an extension message already decoded
// with DecodeExt. Lists are copied, so the message does not alias e.
func ParseOverlay(e Ext) (Overlay, error) {
	o := Overlay{Type: e.Type, Node: e.Node, Swarm: e.Swarm}
	if !IsOverlay(e.Type) {
		return o, fmt.Errorf("wire: extension type %d: %w", e.Type, ErrOverlayType)
	}
	p := e.Payload
	if len(p) < 16 {
		return o, fmt.Errorf("wire: overlay type %d with %d payload bytes: %w", e.Type, len(p), ErrLength)
	}
	copy(o.Origin[:], p[0:8])
	o.Epoch = binary.BigEndian.Uint32(p[8:])
	o.Seq = binary.BigEndian.Uint32(p[12:])
	p = p[16:]
	bad := func() error {
		return fmt.Errorf("wire: overlay type %d in %d bytes: %w", e.Type, ExtHeaderLen+16+len(p), ErrLength)
	}
	switch e.Type {
	case ExtHello:
		if len(p) < helloFixedLen {
			return o, bad()
		}
		h := &o.Hello
		h.HasTree = p[0]&1 != 0
		if p[0]&^1 != 0 {
			return o, fmt.Errorf("wire: HELLO tree flags %#x: %w", p[0], ErrLength)
		}
		h.Depth = binary.BigEndian.Uint16(p[1:])
		h.Digest = binary.BigEndian.Uint64(p[3:])
		h.WalkState = p[11]
		copy(h.WalkOrigin[:], p[12:20])
		h.WalkEpoch = binary.BigEndian.Uint32(p[20:])
		n := int(binary.BigEndian.Uint16(p[24:]))
		if len(p) != helloFixedLen+n*helloEntryLen {
			return o, bad()
		}
		if n > 0 {
			h.Neighbours = make([]HelloEntry, n)
		}
		for i := range h.Neighbours {
			q := p[helloFixedLen+i*helloEntryLen:]
			copy(h.Neighbours[i].ID[:], q[:8])
			h.Neighbours[i].Flags = q[8]
		}
	case ExtForward, ExtReturn:
		if e.Type == ExtReturn {
			if len(p) < 4 {
				return o, bad()
			}
			o.Step = binary.BigEndian.Uint32(p)
			p = p[4:]
		}
		if len(p) < 2 {
			return o, bad()
		}
		n := int(binary.BigEndian.Uint16(p))
		if len(p) != 2+n*walkEntryLen {
			return o, bad()
		}
		if n > 0 {
			o.Walk = make([]WalkEntry, n)
		}
		for i := range o.Walk {
			q := p[2+i*walkEntryLen:]
			copy(o.Walk[i].ID[:], q[:8])
			o.Walk[i].Parent = binary.BigEndian.Uint16(q[8:])
		}
	default:
		if len(p) != fixedLen(e.Type) {
			return o, bad()
		}
		switch e.Type {
		case ExtFinished:
			o.Tree.Depth = binary.BigEndian.Uint16(p)
			o.Tree.Size = binary.BigEndian.Uint32(p[2:])
			o.Tree.Digest = binary.BigEndian.Uint64(p[6:])
		case ExtWorking:
			o.State = p[0]
		case ExtAck:
			o.Ref = p[0]
		case ExtRefuse:
			o.Ref, o.Reason = p[0], p[1]
			copy(o.Better[:], p[2:10])
			o.BetterEpoch = binary.BigEndian.Uint32(p[10:])
		case ExtAbort:
			copy(o.Better[:], p[0:8])
			o.BetterEpoch = binary.BigEndian.Uint32(p[8:])
		case ExtRebuild:
			o.Reason = p[0]
		}
	}
	return o, nil
}

// Encode returns the datagram for o.
func (o *Overlay) Encode() ([]byte, error) {
	p, err := o.payload()
	if err != nil {
		return nil, err
	}
	e := Ext{Type: o.Type, Node: o.Node, Swarm: o.Swarm, Payload: p}
	return e.Encode()
}

// Ext returns o as an extension message, for callers that send Ext.
func (o *Overlay) Ext() (Ext, error) {
	p, err := o.payload()
	if err != nil {
		return Ext{}, err
	}
	return Ext{Version: ExtVersion, Type: o.Type, Node: o.Node, Swarm: o.Swarm, Payload: p}, nil
}

// Len is the length of o's datagram, without encoding it.
func (o *Overlay) Len() int {
	n := OverlayHeaderLen
	switch o.Type {
	case ExtHello:
		n += helloFixedLen + helloEntryLen*len(o.Hello.Neighbours)
	case ExtForward:
		n += 2 + walkEntryLen*len(o.Walk)
	case ExtReturn:
		n += 6 + walkEntryLen*len(o.Walk)
	default:
		n += fixedLen(o.Type)
	}
	return n
}

// fixedLen is the length after the common 16 bytes of the types without a
// list.
func fixedLen(t uint8) int {
	switch t {
	case ExtFinished, ExtRefuse:
		return 14
	case ExtAbort:
		return 12
	case ExtWorking, ExtAck, ExtRebuild:
		return 1
	}
	return 0
}

func (o *Overlay) payload() ([]byte, error) {
	if !IsOverlay(o.Type) {
		return nil, fmt.Errorf("wire: encode extension type %d: %w", o.Type, ErrOverlayType)
	}
	b := make([]byte, 0, o.Len()-ExtHeaderLen)
	b = append(b, o.Origin[:]...)
	b = binary.BigEndian.AppendUint32(b, o.Epoch)
	b = binary.BigEndian.AppendUint32(b, o.Seq)
	switch o.Type {
	case ExtHello:
		h := &o.Hello
		if len(h.Neighbours) > MaxHelloEntries {
			return nil, fmt.Errorf("wire: HELLO with %d neighbours (max %d): %w", len(h.Neighbours), MaxHelloEntries, ErrCount)
		}
		var flags uint8
		if h.HasTree {
			flags = 1
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint16(b, h.Depth)
		b = binary.BigEndian.AppendUint64(b, h.Digest)
		b = append(b, h.WalkState)
		b = append(b, h.WalkOrigin[:]...)
		b = binary.BigEndian.AppendUint32(b, h.WalkEpoch)
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Neighbours)))
		for _, e := range h.Neighbours {
			b = append(b, e.ID[:]...)
			b = append(b, e.Flags)
		}
	case ExtForward, ExtReturn:
		if len(o.Walk) > MaxWalkEntries {
			return nil, fmt.Errorf("wire: walk of %d nodes (max %d): %w", len(o.Walk), MaxWalkEntries, ErrCount)
		}
		if o.Type == ExtReturn {
			b = binary.BigEndian.AppendUint32(b, o.Step)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(o.Walk)))
		for _, e := range o.Walk {
			b = append(b, e.ID[:]...)
			b = binary.BigEndian.AppendUint16(b, e.Parent)
		}
	case ExtFinished:
		b = binary.BigEndian.AppendUint16(b, o.Tree.Depth)
		b = binary.BigEndian.AppendUint32(b, o.Tree.Size)
		b = binary.BigEndian.AppendUint64(b, o.Tree.Digest)
	case ExtWorking:
		b = append(b, o.State)
	case ExtAck:
		b = append(b, o.Ref)
	case ExtRefuse:
		b = append(b, o.Ref, o.Reason)
		b = append(b, o.Better[:]...)
		b = binary.BigEndian.AppendUint32(b, o.BetterEpoch)
	case ExtAbort:
		b = append(b, o.Better[:]...)
		b = binary.BigEndian.AppendUint32(b, o.BetterEpoch)
	case ExtRebuild:
		b = append(b, o.Reason)
	}
	return b, nil
}

// OverlayTypeName is a short name of an overlay type for logs and traces.
func OverlayTypeName(t uint8) string {
	switch t {
	case ExtHello:
		return "HELLO"
	case ExtForward:
		return "FORWARD"
	case ExtReturn:
		return "RETURN"
	case ExtFinished:
		return "FINISHED"
	case ExtWorking:
		return "WORKING"
	case ExtAck:
		return "ACK"
	case ExtRefuse:
		return "REFUSE"
	case ExtAbort:
		return "ABORT"
	case ExtRebuild:
		return "REBUILD"
	case ExtDissolve:
		return "DISSOLVE"
	}
	return fmt.Sprintf("type(%d)", t)
}
