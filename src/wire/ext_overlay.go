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
//	2 HELLO      flags(1) depth(2) digest(8) walkState(1) walkOrigin(8)         58 + 9n
//	             walkEpoch(4) n(2) n × {id(8) flags(1)}
//	             partial (flags bit 1): lo(8) hi(8) before n                    74 + 9n
//	3 FORWARD    n(1) n × id(8)                                                 33 + 8n
//	4 RETURN     step(4) size(4) digest(8) part(2) parts(2) n(2) n × id(8)      54 + 8n
//	5 FINISHED   depth(2) size(4) digest(8)                                     46
//	6 WORKING    state(1)                                                       33
//	7 ACK        type acknowledged(1) part(2)                                   35
//	8 REFUSE     type refused(1) reason(1) better origin(8) better epoch(4)     46
//	9 ABORT      better origin(8) better epoch(4)                               44
//	10 REBUILD   reason(1)                                                      33
//	11 DISSOLVE  (nothing)                                                      32
//
// No message grows with the mesh, so none exceeds MaxDatagram: the token
// does not carry the set of visited nodes (every node remembers its own
// part of the walk), a FORWARD carries at most MaxPathEntries of the
// receiver's nearest ancestors, a RETURN hands the sender's subtree back in
// parts of at most MaxReturnMembers node ids, and a node with more
// neighbours on one interface than one HELLO can list sends several partial
// HELLOs, each listing the neighbours of one range of ids.
const (
	ExtHello    = 2  // multicast, periodic: neighbour discovery and the sender's tree
	ExtForward  = 3  // the token goes to a neighbour not known to be visited
	ExtReturn   = 4  // the token comes back with the neighbour's subtree (one part of it)
	ExtFinished = 5  // the walk is over: the tree, root to leaves
	ExtWorking  = 6  // keepalive of a busy node to its parent
	ExtAck      = 7  // acknowledges a FORWARD, RETURN part, FINISHED, WORKING, ABORT or REBUILD
	ExtRefuse   = 8  // explicit no: the token or edge is stale, visited, or loses to a better walk
	ExtAbort    = 9  // the walk is abandoned along this edge
	ExtRebuild  = 10 // asks the root, hop by hop up the tree, for a new walk
	ExtDissolve = 11 // the tree above is lost; sent to the children
)

// Sizes of the overlay format.
const (
	OverlayHeaderLen = ExtHeaderLen + 16
	helloFixedLen    = 26
	helloRangeLen    = 16
	helloEntryLen    = 9
	forwardFixedLen  = 1
	returnFixedLen   = 22
	idLen            = 8

	// MaxHelloEntries is how many neighbours one HELLO can list.
	MaxHelloEntries = (MaxDatagram - OverlayHeaderLen - helloFixedLen) / helloEntryLen
	// MaxPartialHelloEntries is how many neighbours one partial HELLO can
	// list.
	MaxPartialHelloEntries = (MaxDatagram - OverlayHeaderLen - helloFixedLen - helloRangeLen) / helloEntryLen
	// MaxPathEntries is how many ancestors a FORWARD can carry.
	MaxPathEntries = (MaxDatagram - OverlayHeaderLen - forwardFixedLen) / idLen
	// MaxReturnMembers is how many node ids one part of a RETURN carries.
	MaxReturnMembers = (MaxDatagram - OverlayHeaderLen - returnFixedLen) / idLen
)

// Flags of a HelloEntry.
const (
	HelloParent = 1 << 0 // this neighbour is the sender's tree parent
	HelloChild  = 1 << 1 // this neighbour is one of the sender's tree children
)

// Flags of a HELLO.
const (
	helloHasTree = 1 << 0
	helloPartial = 1 << 1
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
	// Partial: the HELLO lists only the neighbours whose ids are in
	// [Lo, Hi] (the sender hears more than one HELLO can list and sends one
	// per range); it says nothing about the ids outside.
	Partial    bool
	Lo, Hi     NodeID
	Neighbours []HelloEntry // heard on the interface the HELLO is sent on
}

// Covers reports whether the HELLO speaks about node id: whether the list
// saying or not saying id is news.
func (h *Hello) Covers(id NodeID) bool {
	return !h.Partial || id.Compare(h.Lo) >= 0 && id.Compare(h.Hi) <= 0
}

// TreeSummary describes a finished tree.
type TreeSummary struct {
	Depth  uint16 // of the receiver: the root is at 0
	Size   uint32 // nodes in the tree
	Digest uint64 // of the whole tree; equal on every node of one tree
}

// Subtree describes the subtree a RETURN hands back.
type Subtree struct {
	Size   uint32 // nodes in it, its root (the sender) included
	Digest uint64 // of its shape
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
	Path        []NodeID    // FORWARD: the receiver's nearest ancestors, the root side first, the sender last
	Step        uint32      // RETURN: the token's step after the excursion
	Sub         Subtree     // RETURN
	Part, Parts uint16      // RETURN: this part's index and the number of parts; ACK: the part acknowledged
	Members     []NodeID    // RETURN: this part's share of the subtree's nodes
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
	if n := ExtHeaderLen + len(e.Payload); n > MaxDatagram {
		return o, fmt.Errorf("wire: overlay type %d of %d bytes: %w", e.Type, n, ErrTooLong)
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
		if p[0]&^(helloHasTree|helloPartial) != 0 {
			return o, fmt.Errorf("wire: HELLO flags %#x: %w", p[0], ErrLength)
		}
		h.HasTree = p[0]&helloHasTree != 0
		h.Partial = p[0]&helloPartial != 0
		h.Depth = binary.BigEndian.Uint16(p[1:])
		h.Digest = binary.BigEndian.Uint64(p[3:])
		h.WalkState = p[11]
		copy(h.WalkOrigin[:], p[12:20])
		h.WalkEpoch = binary.BigEndian.Uint32(p[20:])
		q := p[24:]
		if h.Partial {
			if len(q) < helloRangeLen+2 {
				return o, bad()
			}
			copy(h.Lo[:], q[0:8])
			copy(h.Hi[:], q[8:16])
			q = q[helloRangeLen:]
		}
		n := int(binary.BigEndian.Uint16(q))
		q = q[2:]
		if len(q) != n*helloEntryLen {
			return o, bad()
		}
		if n > 0 {
			h.Neighbours = make([]HelloEntry, n)
		}
		for i := range h.Neighbours {
			r := q[i*helloEntryLen:]
			copy(h.Neighbours[i].ID[:], r[:8])
			h.Neighbours[i].Flags = r[8]
		}
	case ExtForward:
		if len(p) < forwardFixedLen {
			return o, bad()
		}
		n := int(p[0])
		if len(p) != forwardFixedLen+n*idLen {
			return o, bad()
		}
		o.Path = readIDs(p[forwardFixedLen:], n)
	case ExtReturn:
		if len(p) < returnFixedLen {
			return o, bad()
		}
		o.Step = binary.BigEndian.Uint32(p)
		o.Sub.Size = binary.BigEndian.Uint32(p[4:])
		o.Sub.Digest = binary.BigEndian.Uint64(p[8:])
		o.Part = binary.BigEndian.Uint16(p[16:])
		o.Parts = binary.BigEndian.Uint16(p[18:])
		n := int(binary.BigEndian.Uint16(p[20:]))
		if len(p) != returnFixedLen+n*idLen {
			return o, bad()
		}
		if o.Part >= o.Parts {
			return o, fmt.Errorf("wire: RETURN part %d of %d: %w", o.Part, o.Parts, ErrCount)
		}
		o.Members = readIDs(p[returnFixedLen:], n)
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
			o.Part = binary.BigEndian.Uint16(p[1:])
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

// readIDs copies n node ids from p, nil for none.
func readIDs(p []byte, n int) []NodeID {
	if n == 0 {
		return nil
	}
	ids := make([]NodeID, n)
	for i := range ids {
		copy(ids[i][:], p[i*idLen:])
	}
	return ids
}

// Encode returns the datagram for o. It refuses a message longer than
// MaxDatagram.
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
		if o.Hello.Partial {
			n += helloRangeLen
		}
	case ExtForward:
		n += forwardFixedLen + idLen*len(o.Path)
	case ExtReturn:
		n += returnFixedLen + idLen*len(o.Members)
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
	case ExtAck:
		return 3
	case ExtWorking, ExtRebuild:
		return 1
	}
	return 0
}

func (o *Overlay) payload() ([]byte, error) {
	if !IsOverlay(o.Type) {
		return nil, fmt.Errorf("wire: encode extension type %d: %w", o.Type, ErrOverlayType)
	}
	switch {
	case o.Type == ExtHello && !o.Hello.Partial && len(o.Hello.Neighbours) > MaxHelloEntries:
		return nil, fmt.Errorf("wire: HELLO with %d neighbours (max %d): %w", len(o.Hello.Neighbours), MaxHelloEntries, ErrCount)
	case o.Type == ExtHello && o.Hello.Partial && len(o.Hello.Neighbours) > MaxPartialHelloEntries:
		return nil, fmt.Errorf("wire: partial HELLO with %d neighbours (max %d): %w", len(o.Hello.Neighbours), MaxPartialHelloEntries, ErrCount)
	case o.Type == ExtForward && len(o.Path) > MaxPathEntries:
		return nil, fmt.Errorf("wire: FORWARD with a path of %d (max %d): %w", len(o.Path), MaxPathEntries, ErrCount)
	case o.Type == ExtReturn && len(o.Members) > MaxReturnMembers:
		return nil, fmt.Errorf("wire: RETURN part with %d nodes (max %d): %w", len(o.Members), MaxReturnMembers, ErrCount)
	case o.Type == ExtReturn && o.Part >= o.Parts:
		return nil, fmt.Errorf("wire: RETURN part %d of %d: %w", o.Part, o.Parts, ErrCount)
	case o.Len() > MaxDatagram:
		return nil, fmt.Errorf("wire: %s of %d bytes: %w", OverlayTypeName(o.Type), o.Len(), ErrTooLong)
	}
	b := make([]byte, 0, o.Len()-ExtHeaderLen)
	b = append(b, o.Origin[:]...)
	b = binary.BigEndian.AppendUint32(b, o.Epoch)
	b = binary.BigEndian.AppendUint32(b, o.Seq)
	switch o.Type {
	case ExtHello:
		h := &o.Hello
		var flags uint8
		if h.HasTree {
			flags |= helloHasTree
		}
		if h.Partial {
			flags |= helloPartial
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint16(b, h.Depth)
		b = binary.BigEndian.AppendUint64(b, h.Digest)
		b = append(b, h.WalkState)
		b = append(b, h.WalkOrigin[:]...)
		b = binary.BigEndian.AppendUint32(b, h.WalkEpoch)
		if h.Partial {
			b = append(b, h.Lo[:]...)
			b = append(b, h.Hi[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Neighbours)))
		for _, e := range h.Neighbours {
			b = append(b, e.ID[:]...)
			b = append(b, e.Flags)
		}
	case ExtForward:
		b = append(b, uint8(len(o.Path)))
		for _, id := range o.Path {
			b = append(b, id[:]...)
		}
	case ExtReturn:
		b = binary.BigEndian.AppendUint32(b, o.Step)
		b = binary.BigEndian.AppendUint32(b, o.Sub.Size)
		b = binary.BigEndian.AppendUint64(b, o.Sub.Digest)
		b = binary.BigEndian.AppendUint16(b, o.Part)
		b = binary.BigEndian.AppendUint16(b, o.Parts)
		b = binary.BigEndian.AppendUint16(b, uint16(len(o.Members)))
		for _, id := range o.Members {
			b = append(b, id[:]...)
		}
	case ExtFinished:
		b = binary.BigEndian.AppendUint16(b, o.Tree.Depth)
		b = binary.BigEndian.AppendUint32(b, o.Tree.Size)
		b = binary.BigEndian.AppendUint64(b, o.Tree.Digest)
	case ExtWorking:
		b = append(b, o.State)
	case ExtAck:
		b = append(b, o.Ref)
		b = binary.BigEndian.AppendUint16(b, o.Part)
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
