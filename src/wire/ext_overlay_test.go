package wire

import (
	"bytes"
	"errors"
	"reflect"
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
	f := common(ExtForward)
	f.Walk = []WalkEntry{{ID: a, Parent: WalkRoot}, {ID: b, Parent: 0}, {ID: c, Parent: WalkDead}}
	out = append(out, f)
	r := common(ExtReturn)
	r.Step = 99
	r.Walk = f.Walk
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

func TestOverlayFixedLengths(t *testing.T) {
	want := map[uint8]int{ExtFinished: 46, ExtWorking: 33, ExtAck: 33, ExtRefuse: 46, ExtAbort: 44, ExtRebuild: 33, ExtDissolve: 32}
	for _, o := range overlaySamples() {
		if n, ok := want[o.Type]; ok && o.Len() != n {
			t.Errorf("%s: %d bytes, documented %d", OverlayTypeName(o.Type), o.Len(), n)
		}
	}
	h := Overlay{Type: ExtHello, Hello: Hello{Neighbours: make([]HelloEntry, 3)}}
	f := Overlay{Type: ExtForward, Walk: make([]WalkEntry, 3)}
	r := Overlay{Type: ExtReturn, Walk: make([]WalkEntry, 3)}
	if h.Len() != 58+27 || f.Len() != 34+30 || r.Len() != 38+30 {
		t.Errorf("list lengths %d %d %d", h.Len(), f.Len(), r.Len())
	}
}

func TestOverlayRefused(t *testing.T) {
	sync := Ext{Type: ExtSync, Swarm: cSwarm}
	b, _ := sync.Encode()
	if _, err := DecodeOverlay(b); !errors.Is(err, ErrOverlayType) {
		t.Errorf("SYNC: %v", err)
	}
	big := Overlay{Type: ExtForward, Swarm: cSwarm, Walk: make([]WalkEntry, MaxWalkEntries+1)}
	if _, err := big.Encode(); !errors.Is(err, ErrCount) {
		t.Errorf("oversized walk: %v", err)
	}
	full := Overlay{Type: ExtReturn, Swarm: cSwarm, Walk: make([]WalkEntry, MaxWalkEntries)}
	if b, err := full.Encode(); err != nil || len(b) > MaxDatagram {
		t.Errorf("largest walk: %d bytes, %v", len(b), err)
	}
	bad := Overlay{Type: 99, Swarm: cSwarm}
	if _, err := bad.Encode(); !errors.Is(err, ErrOverlayType) {
		t.Errorf("type 99: %v", err)
	}
	h := Overlay{Type: ExtHello, Swarm: cSwarm}
	b, _ = h.Encode()
	b[OverlayHeaderLen] = 2 // an undefined tree flag
	if _, err := DecodeOverlay(b); err == nil {
		t.Error("undefined HELLO flag accepted")
	}
}

// FuzzDecodeOverlay checks that the decoder never panics and that what it
// accepts re-encodes to the same bytes.
func FuzzDecodeOverlay(f *testing.F) {
	for _, o := range overlaySamples() {
		b, _ := o.Encode()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOverlay(b)
		if err != nil {
			return
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
