package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func overlaySamples() []Overlay {
	a, b, c := NodeID{1, 1, 1, 1, 1, 1, 1, 1}, NodeID{2, 2, 2, 2, 2, 2, 2, 2}, NodeID{0xff, 0, 0, 0, 0, 0, 0, 3}
	common := func(t uint8) Overlay {
		return Overlay{Type: t, Node: b, Swarm: cSwarm, Origin: a, Epoch: 7, Seq: 0x01020304}
	}
	var out []Overlay
	h := common(ExtHello)
	h.Hello = Hello{HasTree: true, Depth: 3, Digest: 0xdeadbeefcafe, WalkState: WalkFinishing, WalkOrigin: a, WalkEpoch: 8,
		Neighbours: []HelloEntry{{ID: a, Flags: HelloParent}, {ID: c, Flags: HelloChild}}}
	out = append(out, h)
	h2 := common(ExtHello)
	out = append(out, h2) // no tree, no neighbours
	hp := common(ExtHello)
	hp.Hello = Hello{Partial: true, Lo: a, Hi: c, Neighbours: []HelloEntry{{ID: a}, {ID: c, Flags: HelloChild}}}
	out = append(out, hp)
	f := common(ExtForward)
	f.Path = []NodeID{a, c, b}
	out = append(out, f)
	f0 := common(ExtForward)
	out = append(out, f0) // the origin's FORWARD may leave the path out
	r := common(ExtReturn)
	r.Step, r.Sub, r.Part, r.Parts = 99, Subtree{Size: 150, Digest: 1<<63 | 9}, 1, 2
	r.Members = []NodeID{b, c, a}
	out = append(out, r)
	fin := common(ExtFinished)
	fin.Tree = TreeSummary{Depth: 2, Size: 40, Digest: 1<<63 | 5}
	out = append(out, fin)
	w := common(ExtWorking)
	w.State = WalkWorking
	out = append(out, w)
	ack := common(ExtAck)
	ack.Ref = ExtForward
	out = append(out, ack)
	ackr := common(ExtAck)
	ackr.Ref, ackr.Part = ExtReturn, 3
	out = append(out, ackr)
	ref := common(ExtRefuse)
	ref.Ref, ref.Reason, ref.Better, ref.BetterEpoch = ExtForward, RefuseLower, c, 12
	out = append(out, ref)
	ab := common(ExtAbort)
	ab.Better, ab.BetterEpoch = c, 1
	out = append(out, ab)
	rb := common(ExtRebuild)
	rb.Reason = 2
	out = append(out, rb)
	out = append(out, common(ExtDissolve))
	return out
}

func TestOverlayRoundTrip(t *testing.T) {
	for _, o := range overlaySamples() {
		b, err := o.Encode()
		if err != nil {
			t.Fatalf("%s: %v", OverlayTypeName(o.Type), err)
		}
		if len(b) != o.Len() {
			t.Errorf("%s: %d bytes, Len says %d", OverlayTypeName(o.Type), len(b), o.Len())
		}
		got, err := DecodeOverlay(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", OverlayTypeName(o.Type), err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", OverlayTypeName(o.Type), got, o)
		}
		// Every shorter or longer datagram is refused, never a panic.
		for cut := 0; cut < len(b); cut++ {
			if _, err := DecodeOverlay(b[:cut]); err == nil {
				t.Errorf("%s: accepted %d of %d bytes", OverlayTypeName(o.Type), cut, len(b))
			}
		}
		if _, err := DecodeOverlay(append(bytes.Clone(b), 0)); !errors.Is(err, ErrLength) {
			t.Errorf("%s: one byte more: %v", OverlayTypeName(o.Type), err)
		}
	}
}

// TestOverlayBytes pins the byte layout of the messages with lists, as
// docs/overlay.md documents it.
func TestOverlayBytes(t *testing.T) {
	head := "01" + "%02x" + "0202020202020202" + "0a008000" + "18" + "20" + // extension header: sender 02…, swarm 10.0.128.0/24, block size 32
		"0101010101010101" + "00000007" + "01020304" // origin, epoch, seq
	want := map[string]string{
		"HELLO/0": "01" + "0003" + "0000deadbeefcafe" + "02" + "0101010101010101" + "00000008" +
			"0002" + "0101010101010101" + "01" + "ff00000000000003" + "02",
		"HELLO/1": "00" + "0000" + "0000000000000000" + "00" + "0000000000000000" + "00000000" + "0000",
		"HELLO/2": "02" + "0000" + "0000000000000000" + "00" + "0000000000000000" + "00000000" +
			"0101010101010101" + "ff00000000000003" + // lo, hi
			"0002" + "0101010101010101" + "00" + "ff00000000000003" + "02",
		"FORWARD/0": "03" + "0101010101010101" + "ff00000000000003" + "0202020202020202",
		"FORWARD/1": "00",
		"RETURN/0": "00000063" + "00000096" + "8000000000000009" + "0001" + "0002" + "0003" +
			"0202020202020202" + "ff00000000000003" + "0101010101010101",
		"ACK/0": "03" + "0000",
		"ACK/1": "04" + "0003",
	}
	seen := map[string]int{}
	for _, o := range overlaySamples() {
		name := OverlayTypeName(o.Type)
		key := name + "/" + string(rune('0'+seen[name]))
		seen[name]++
		w, ok := want[key]
		if !ok {
			continue
		}
		b, err := o.Encode()
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		exp := strings.Replace(head, "%02x", hex.EncodeToString([]byte{o.Type}), 1) + w
		if got := hex.EncodeToString(b); got != exp {
			t.Errorf("%s:\n got %s\nwant %s", key, got, exp)
		}
		delete(want, key)
	}
	for k := range want {
		t.Errorf("no sample %s", k)
	}
}

func TestOverlayFixedLengths(t *testing.T) {
	want := map[uint8]int{ExtFinished: 46, ExtWorking: 33, ExtAck: 35, ExtRefuse: 46, ExtAbort: 44, ExtRebuild: 33, ExtDissolve: 32}
	for _, o := range overlaySamples() {
		if n, ok := want[o.Type]; ok && o.Len() != n {
			t.Errorf("%s: %d bytes, documented %d", OverlayTypeName(o.Type), o.Len(), n)
		}
	}
	h := Overlay{Type: ExtHello, Hello: Hello{Neighbours: make([]HelloEntry, 3)}}
	hp := Overlay{Type: ExtHello, Hello: Hello{Partial: true, Neighbours: make([]HelloEntry, 3)}}
	f := Overlay{Type: ExtForward, Path: make([]NodeID, 3)}
	r := Overlay{Type: ExtReturn, Members: make([]NodeID, 3)}
	if h.Len() != 58+27 || hp.Len() != 74+27 || f.Len() != 33+24 || r.Len() != 54+24 {
		t.Errorf("list lengths %d %d %d %d", h.Len(), hp.Len(), f.Len(), r.Len())
	}
	if MaxDatagram != 1232 || MaxHelloEntries != 130 || MaxPartialHelloEntries != 128 || MaxPathEntries != 149 || MaxReturnMembers != 147 {
		t.Errorf("limits %d %d %d %d %d", MaxDatagram, MaxHelloEntries, MaxPartialHelloEntries, MaxPathEntries, MaxReturnMembers)
	}
}

// fullest returns the largest message of each list type, and the same with
// one entry more.
func fullest() (fit, over []Overlay) {
	mk := func(t uint8, n int) Overlay {
		o := Overlay{Type: t, Swarm: cSwarm}
		switch t {
		case ExtHello:
			o.Hello.Neighbours = make([]HelloEntry, n)
		case ExtHello | 0x80:
			o.Type = ExtHello
			o.Hello.Partial = true
			o.Hello.Neighbours = make([]HelloEntry, n)
		case ExtForward:
			o.Path = make([]NodeID, n)
		case ExtReturn:
			o.Parts = 1
			o.Members = make([]NodeID, n)
		}
		return o
	}
	for t, n := range map[uint8]int{ExtHello: MaxHelloEntries, ExtHello | 0x80: MaxPartialHelloEntries, ExtForward: MaxPathEntries, ExtReturn: MaxReturnMembers} {
		fit = append(fit, mk(t, n))
		over = append(over, mk(t, n+1))
	}
	return fit, over
}

func TestOverlayRefused(t *testing.T) {
	sync := Ext{Type: ExtSync, Swarm: cSwarm}
	b, _ := sync.Encode()
	if _, err := DecodeOverlay(b); !errors.Is(err, ErrOverlayType) {
		t.Errorf("SYNC: %v", err)
	}
	fit, over := fullest()
	for _, o := range fit {
		if b, err := o.Encode(); err != nil || len(b) > MaxDatagram || MaxDatagram-len(b) >= 9 {
			t.Errorf("fullest %s: %d bytes, %v", OverlayTypeName(o.Type), len(b), err)
		}
	}
	for _, o := range over {
		if b, err := o.Encode(); err == nil {
			t.Errorf("oversized %s encoded in %d bytes", OverlayTypeName(o.Type), len(b))
		}
		if _, err := o.Ext(); err == nil {
			t.Errorf("oversized %s made into an extension", OverlayTypeName(o.Type))
		}
	}
	big := Ext{Type: ExtSync, Swarm: cSwarm, Payload: make([]byte, MaxDatagram-ExtHeaderLen+1)}
	if _, err := big.Encode(); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversized extension: %v", err)
	}
	if _, err := DecodeExt(append(make([]byte, MaxDatagram), 0)); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversized datagram decoded: %v", err)
	}
	bad := Overlay{Type: 99, Swarm: cSwarm}
	if _, err := bad.Encode(); !errors.Is(err, ErrOverlayType) {
		t.Errorf("type 99: %v", err)
	}
	h := Overlay{Type: ExtHello, Swarm: cSwarm}
	b, _ = h.Encode()
	b[OverlayHeaderLen] = 4 // an undefined HELLO flag
	if _, err := DecodeOverlay(b); err == nil {
		t.Error("undefined HELLO flag accepted")
	}
	r := Overlay{Type: ExtReturn, Swarm: cSwarm, Part: 2, Parts: 2}
	if _, err := r.Encode(); !errors.Is(err, ErrCount) {
		t.Errorf("RETURN part 2 of 2 encoded: %v", err)
	}
	r.Part = 1
	b, _ = r.Encode()
	binary.BigEndian.PutUint16(b[OverlayHeaderLen+18:], 1)
	if _, err := DecodeOverlay(b); !errors.Is(err, ErrCount) {
		t.Errorf("RETURN part 1 of 1 decoded: %v", err)
	}
}

func TestHelloCovers(t *testing.T) {
	lo, mid, hi := NodeID{0, 0, 0, 0, 0, 0, 0, 5}, NodeID{0, 0, 0, 0, 0, 0, 0, 7}, NodeID{0, 0, 0, 0, 0, 0, 1, 0}
	h := Hello{Partial: true, Lo: lo, Hi: hi}
	if !h.Covers(lo) || !h.Covers(mid) || !h.Covers(hi) || h.Covers(NodeID{0, 0, 0, 0, 0, 0, 0, 4}) || h.Covers(NodeID{0, 0, 0, 0, 0, 0, 1, 1}) {
		t.Error("partial HELLO covers the wrong ids")
	}
	if full := (Hello{}); !full.Covers(NodeID{0xff}) {
		t.Error("a whole HELLO does not cover every id")
	}
}

// FuzzDecodeOverlay checks that the decoder never panics, that what it
// accepts re-encodes to the same bytes, and that it accepts nothing longer
// than MaxDatagram.
func FuzzDecodeOverlay(f *testing.F) {
	for _, o := range overlaySamples() {
		b, _ := o.Encode()
		f.Add(b)
	}
	fit, _ := fullest()
	for _, o := range fit {
		b, _ := o.Encode()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOverlay(b)
		if err != nil {
			return
		}
		if len(b) > MaxDatagram {
			t.Fatalf("accepted %d bytes, over %d", len(b), MaxDatagram)
		}
		enc, err := o.Encode()
		if err != nil {
			t.Fatalf("accepted %x but cannot encode it: %v", b, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("decode/encode changed %x into %x", b, enc)
		}
	})
}

// FuzzEncodeOverlay builds messages of every type with lists of any length
// and checks that the encoder either refuses them or produces at most
// MaxDatagram bytes that decode to the same message.
func FuzzEncodeOverlay(f *testing.F) {
	f.Add(uint8(ExtHello), false, uint16(3), uint16(0), uint16(1))
	f.Add(uint8(ExtHello), true, uint16(MaxPartialHelloEntries), uint16(0), uint16(1))
	f.Add(uint8(ExtHello), false, uint16(MaxHelloEntries+1), uint16(0), uint16(1))
	f.Add(uint8(ExtForward), false, uint16(MaxPathEntries), uint16(0), uint16(1))
	f.Add(uint8(ExtForward), false, uint16(300), uint16(0), uint16(1))
	f.Add(uint8(ExtReturn), false, uint16(MaxReturnMembers+1), uint16(6), uint16(7))
	f.Add(uint8(ExtAck), false, uint16(0), uint16(9), uint16(0))
	f.Fuzz(func(t *testing.T, typ uint8, partial bool, n, part, parts uint16) {
		o := Overlay{Type: typ, Node: NodeID{1}, Swarm: cSwarm, Origin: NodeID{2}, Epoch: 3, Seq: 4}
		id := func(i int) NodeID {
			var x NodeID
			binary.BigEndian.PutUint64(x[:], uint64(i)*0x9e3779b97f4a7c15)
			return x
		}
		switch typ {
		case ExtHello:
			o.Hello.Partial = partial
			if partial {
				o.Hello.Hi = NodeID{0xff}
			}
			for i := range int(n) {
				o.Hello.Neighbours = append(o.Hello.Neighbours, HelloEntry{ID: id(i), Flags: uint8(i)})
			}
		case ExtForward:
			for i := range int(n) {
				o.Path = append(o.Path, id(i))
			}
		case ExtReturn:
			o.Part, o.Parts, o.Sub = part, parts, Subtree{Size: uint32(n), Digest: 5}
			for i := range int(n) {
				o.Members = append(o.Members, id(i))
			}
		case ExtAck:
			o.Ref, o.Part = ExtReturn, part
		}
		b, err := o.Encode()
		if err != nil {
			return
		}
		if len(b) > MaxDatagram {
			t.Fatalf("%s with %d entries encoded in %d bytes, over %d", OverlayTypeName(typ), n, len(b), MaxDatagram)
		}
		got, err := DecodeOverlay(b)
		if err != nil {
			t.Fatalf("%s with %d entries: encoded, but decoding fails: %v", OverlayTypeName(typ), n, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Fatalf("%s with %d entries: round trip\n got %+v\nwant %+v", OverlayTypeName(typ), n, got, o)
		}
	})
}
