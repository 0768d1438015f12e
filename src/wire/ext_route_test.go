package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func routeSample() Route {
	r := Route{Node: NodeID{1, 2, 3, 4, 5, 6, 7, 8}, Swarm: cSwarm, Target: NodeID{9, 9, 9, 9, 9, 9, 9, 9}, Hops: 3}
	r.Inner = Message{Header: Header{Node: r.Node, Swarm: cSwarm, Command: CmdRenewLease}}
	r.Inner.Renew.SetAddress(netip.MustParseAddr("10.0.0.42"), OrderNetwork)
	r.Inner.Renew.Xid, r.Inner.Renew.LeaseSeconds = 0xabcdef01, 3600
	r.Inner.Renew.Chaddr = [16]byte{2, 0, 0, 0, 0, 1}
	return r
}

func decodeRoute(b []byte) (Route, error) {
	e, err := DecodeExt(b)
	if err != nil {
		return Route{}, err
	}
	return ParseRoute(e)
}

func TestRouteRoundTrip(t *testing.T) {
	for _, cmd := range []uint8{CmdRenewLease, CmdLeaseAck, CmdLeaseNak, CmdRelease} {
		r := routeSample()
		r.Inner.Command = cmd
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRoute(b)
		if err != nil {
			t.Fatalf("command %d: %v", cmd, err)
		}
		got.Inner.Count = r.Inner.Count
		if !reflect.DeepEqual(got, r) {
			t.Errorf("command %d: decoded %+v, want %+v", cmd, got, r)
		}
		b2, _ := got.Encode()
		if !bytes.Equal(b, b2) {
			t.Errorf("command %d: re-encoded differently", cmd)
		}
	}
}

func TestRouteRefused(t *testing.T) {
	r := routeSample()
	good, _ := r.Encode()
	claim := routeSample()
	claim.Inner = Message{Header: Header{Node: r.Node, Swarm: cSwarm, Command: CmdInquire}, Inquiries: []uint32{1}}
	wrongCmd, _ := claim.Encode()
	zeroWriter, zeroTarget := routeSample(), routeSample()
	zeroWriter.Node, zeroWriter.Inner.Node = NodeID{}, NodeID{}
	zeroTarget.Target = NodeID{}
	zw, _ := zeroWriter.Encode()
	zt, _ := zeroTarget.Encode()
	otherWriter, otherSwarm := routeSample(), routeSample()
	otherWriter.Inner.Node = NodeID{7, 7, 7, 7, 7, 7, 7, 7}
	otherSwarm.Inner.Swarm.BlockSize++
	ow, _ := otherWriter.Encode()
	os, _ := otherSwarm.Encode()
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"header only", good[:ExtHeaderLen], ErrShort},
		{"no inner message", good[:ExtHeaderLen+routeFixedLen], ErrShort},
		{"inner cut short", good[:len(good)-1], ErrLength},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrLength},
		{"a claim inside", wrongCmd, ErrCommand},
		{"written by node id zero", zw, ErrZeroNode},
		{"to node id zero", zt, ErrZeroNode},
		{"inner message written by another node", ow, ErrRouteWriter},
		{"inner message of another swarm", os, ErrRouteWriter},
	} {
		if _, err := decodeRoute(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	sync := Ext{Type: ExtSync, Node: r.Node, Swarm: cSwarm, Payload: good[ExtHeaderLen:]}
	if _, err := ParseRoute(sync); err == nil {
		t.Error("a SYNC parsed as ROUTE")
	}
}

func FuzzDecodeRoute(f *testing.F) {
	r := routeSample()
	b, _ := r.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRoute(b)
		if err != nil {
			return
		}
		out, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded %x but cannot encode: %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("decode/encode changed %x into %x", b, out)
		}
	})
}
