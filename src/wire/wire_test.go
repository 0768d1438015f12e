package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
)

// vectorFile prefers the shared capture next to the repository and falls back
// to the copy in testdata, so the test runs in a clone without shared/.
func vectorFile(t testing.TB) []byte {
	t.Helper()
	for _, p := range []string{"../../../shared/vectors/ddhcpd-c-wire.txt", "testdata/ddhcpd-c-wire.txt"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Fatal("no vector file found")
	return nil
}

type vector struct {
	name string
	raw  []byte
}

func readVectors(t testing.TB) []vector {
	var vs []vector
	sc := bufio.NewScanner(bytes.NewReader(vectorFile(t)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) < 3 {
			t.Fatalf("bad vector line %q", line)
		}
		raw, err := hex.DecodeString(strings.TrimSpace(f[2]))
		if err != nil {
			t.Fatalf("vector %s: %v", f[0], err)
		}
		vs = append(vs, vector{strings.TrimSpace(f[0]), raw})
	}
	return vs
}

var cSwarm = Swarm{Prefix: netip.MustParseAddr("10.0.128.0"), PrefixLen: 24, BlockSize: 32}

func chaddr(last byte) [16]byte { return [16]byte{0x02, 0, 0, 0, 0, last} }

// want describes each captured datagram by its fields, as the capture's
// comments state them. addr is the client address as a host would read it.
var want = map[string]struct {
	msg   Message
	addr  string
	order AddrOrder
}{
	"inquire-6":       {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdInquire, Count: 1}, Inquiries: []uint32{6}}},
	"inquire-7":       {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdInquire, Count: 1}, Inquiries: []uint32{7}}},
	"inquire-1":       {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdInquire, Count: 1}, Inquiries: []uint32{1}}},
	"updateclaim-6":   {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdUpdateClaim, Count: 1}, Claims: []Claim{{Block: 6, Lifetime: 60}}}},
	"updateclaim-5":   {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdUpdateClaim, Count: 1}, Claims: []Claim{{Block: 5, Lifetime: 60}}}},
	"updateclaim-4":   {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdUpdateClaim, Count: 1}, Claims: []Claim{{Block: 4, Lifetime: 60}}}},
	"renewlease-le":   {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdRenewLease}, Renew: Renew{Xid: 0x5edb3d39, Chaddr: chaddr(0xc0)}}, addr: "10.0.128.192", order: OrderReversed},
	"leaseack-le":     {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdLeaseAck}, Renew: Renew{Xid: 0x5edb3d39, Chaddr: chaddr(0xc0)}}, addr: "10.0.128.192", order: OrderReversed},
	"renewlease-le-2": {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdRenewLease}, Renew: Renew{Xid: 0x43e4c068, Chaddr: chaddr(0xc0)}}, addr: "10.0.128.192", order: OrderReversed},
	"leaseack-le-2":   {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdLeaseAck}, Renew: Renew{Xid: 0x43e4c068, Chaddr: chaddr(0xc0)}}, addr: "10.0.128.192", order: OrderReversed},
	"renewlease-be":   {msg: Message{Header: Header{Swarm: cSwarm, Command: CmdRenewLease}, Renew: Renew{Xid: 0xdeadbeef, Chaddr: chaddr(0xc1)}}, addr: "10.0.128.69", order: OrderNetwork},
}

func TestCVectors(t *testing.T) {
	pool := netip.MustParsePrefix("10.0.128.0/24")
	seen := 0
	for _, v := range readVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			w, ok := want[v.name]
			if !ok {
				t.Fatalf("vector %s has no expected fields in this test", v.name)
			}
			seen++
			got, err := Decode(v.raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !cSwarm.Matches(got.Header) {
				t.Errorf("swarm filter rejects %+v", got.Swarm)
			}
			exp := w.msg
			if w.addr != "" {
				a, order, ok := got.Renew.ResolveAddress(pool, OrderUnknown)
				if !ok || a != netip.MustParseAddr(w.addr) || order != w.order {
					t.Errorf("renew address = %v order %v ok %v, want %s %v", a, order, ok, w.addr, w.order)
				}
				// Re-encode from the fields: the address in the sender's order.
				exp.Renew.SetAddress(netip.MustParseAddr(w.addr), w.order)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, exp)
			}
			enc, err := exp.Encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, v.raw) {
				t.Errorf("re-encoded\n %x\nwant\n %x", enc, v.raw)
			}
		})
	}
	if seen != len(want) {
		t.Errorf("checked %d vectors, want %d", seen, len(want))
	}
}

func TestResolveAddressHint(t *testing.T) {
	// In a /8 pool both readings of 10.1.2.10 are inside; the learned order decides.
	pool := netip.MustParsePrefix("10.0.0.0/8")
	var r Renew
	r.SetAddress(netip.MustParseAddr("10.1.2.10"), OrderNetwork)
	if a, o, _ := r.ResolveAddress(pool, OrderUnknown); a.String() != "10.1.2.10" || o != OrderNetwork {
		t.Errorf("unknown order: %v %v", a, o)
	}
	if a, o, _ := r.ResolveAddress(pool, OrderReversed); a.String() != "10.2.1.10" || o != OrderReversed {
		t.Errorf("reversed hint: %v %v", a, o)
	}
	r.SetAddress(netip.MustParseAddr("192.168.1.1"), OrderNetwork)
	if _, _, ok := r.ResolveAddress(pool, OrderUnknown); ok {
		t.Error("address outside the pool in both orders was accepted")
	}
}

func TestDecodeRejects(t *testing.T) {
	hdr := func(cmd, count byte) []byte {
		return []byte{0, 0, 0, 0, 0, 0, 0, 1, 10, 0, 128, 0, 24, 32, cmd, count}
	}
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"15 bytes", hdr(1, 0)[:15], ErrShort},
		{"claim count 1 no entry", hdr(1, 1), ErrLength},
		{"claim count 0 with entry", append(hdr(1, 0), 0, 0, 0, 1, 0, 60, 0), ErrLength},
		{"claim entry truncated", append(hdr(1, 1), 0, 0, 0, 1, 0, 60), ErrLength},
		{"claim trailing byte", append(hdr(1, 1), 0, 0, 0, 1, 0, 60, 0, 9), ErrLength},
		{"inquire count 2 one entry", append(hdr(2, 2), 0, 0, 0, 1), ErrLength},
		{"inquire count 255 short", append(hdr(2, 255), make([]byte, 1000)...), ErrLength},
		{"renew 43 bytes", append(hdr(16, 0), make([]byte, 27)...), ErrLength},
		{"release 45 bytes", append(hdr(19, 0), make([]byte, 29)...), ErrLength},
		{"unknown command 3", append(hdr(3, 0), make([]byte, 28)...), ErrCommand},
		{"command 0", hdr(0, 0), ErrCommand},
		{"command 255", hdr(255, 0), ErrCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b)
			if !errors.Is(err, tt.err) {
				t.Errorf("Decode = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestReleaseRoundTrip(t *testing.T) {
	// Command 19 is rejected by every C node (no length rule); we accept it.
	m := Message{Header: Header{Node: NodeID{1, 2, 3, 4, 5, 6, 7, 8}, Swarm: cSwarm, Command: CmdRelease}}
	m.Renew.SetAddress(netip.MustParseAddr("10.0.128.7"), OrderNetwork)
	m.Renew.Xid = 7
	m.Renew.Chaddr = chaddr(7)
	b, err := m.Encode()
	if err != nil || len(b) != RenewLen {
		t.Fatalf("encode: %d bytes, %v", len(b), err)
	}
	got, err := Decode(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func TestEncodeLimits(t *testing.T) {
	m := Message{Header: Header{Swarm: cSwarm, Command: CmdUpdateClaim}, Claims: make([]Claim, 33)}
	if _, err := m.Encode(); !errors.Is(err, ErrCount) {
		t.Errorf("33 claims: %v", err)
	}
	m = Message{Header: Header{Swarm: cSwarm, Command: CmdInquire}, Inquiries: make([]uint32, 256)}
	if _, err := m.Encode(); !errors.Is(err, ErrCount) {
		t.Errorf("256 inquiries: %v", err)
	}
	m = Message{Header: Header{Swarm: cSwarm, Command: 77}}
	if _, err := m.Encode(); !errors.Is(err, ErrCommand) {
		t.Errorf("command 77: %v", err)
	}
}

func TestChunk(t *testing.T) {
	for _, n := range []int{0, 1, 32, 33, 64, 65, 300} {
		got := ChunkClaims(make([]Claim, n))
		total := 0
		for _, c := range got {
			if len(c) == 0 || len(c) > MaxClaimsPerMessage {
				t.Errorf("n=%d: chunk of %d", n, len(c))
			}
			total += len(c)
		}
		if total != n || len(got) != (n+31)/32 {
			t.Errorf("n=%d: %d chunks, %d entries", n, len(got), total)
		}
	}
	if got := ChunkInquiries(make([]uint32, 511)); len(got) != 3 || len(got[2]) != 1 {
		t.Errorf("511 inquiries: %d chunks", len(got))
	}
}

func TestNodeIDCompare(t *testing.T) {
	lo, _ := ParseNodeID("00000000000000ff")
	hi, _ := ParseNodeID("0100000000000000")
	if lo.Compare(hi) != -1 || hi.Compare(lo) != 1 || hi.Compare(hi) != 0 {
		t.Error("ids must compare as big-endian unsigned integers")
	}
	if _, err := ParseNodeID("xyz"); err == nil {
		t.Error("bad id accepted")
	}
	if !(NodeID{}).IsZero() || hi.IsZero() {
		t.Error("IsZero")
	}
}

// FuzzDecode checks that the decoder never panics and that everything it
// accepts re-encodes to the same bytes (the format has no slack).
func FuzzDecode(f *testing.F) {
	for _, v := range readVectors(f) {
		f.Add(v.raw)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted %x but cannot encode it: %v", b, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("decode/encode changed %x into %x", b, enc)
		}
	})
}

func TestExt(t *testing.T) {
	e := Ext{Type: ExtSync, Node: NodeID{1, 2, 3, 4, 5, 6, 7, 8}, Swarm: cSwarm, Payload: []byte{9}}
	b, err := e.Encode()
	if err != nil || len(b) != ExtHeaderLen+1 || b[0] != ExtVersion {
		t.Fatalf("%x %v", b, err)
	}
	got, err := DecodeExt(b)
	e.Version = ExtVersion
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := DecodeExt(b[:15]); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	b[0] = 2
	if _, err := DecodeExt(b); !errors.Is(err, ErrExtVersion) {
		t.Errorf("version 2: %v", err)
	}
}
