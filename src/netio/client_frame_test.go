package netio

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// refSum is an Internet checksum written differently from the one under
// test: byte by byte, with the end-around carry folded in at every step.
// It returns the ones' complement sum, not its complement.
func refSum(parts ...[]byte) uint16 {
	var data []byte
	for _, p := range parts {
		data = append(data, p...)
	}
	if len(data)%2 == 1 {
		data = append(data, 0)
	}
	var s uint32
	for i := 0; i < len(data); i += 2 {
		s += uint32(data[i])<<8 | uint32(data[i+1])
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// refCheckFrame verifies the IPv4 header checksum and the UDP checksum of an
// Ethernet/IPv4/UDP frame with refSum, independently of ParseFrame. A zero
// UDP checksum is an error here: everything we send has one.
func refCheckFrame(frame []byte) error {
	if len(frame) < 14+20 {
		return errors.New("short frame")
	}
	ip := frame[14:]
	ihl := int(ip[0]&0xf) * 4
	total := int(ip[2])<<8 | int(ip[3])
	if ihl < 20 || total < ihl+8 || total > len(ip) {
		return errors.New("bad IPv4 lengths")
	}
	if s := refSum(ip[:ihl]); s != 0xffff {
		return errors.New("IPv4 header checksum does not add up")
	}
	udp := ip[ihl:total]
	ulen := int(udp[4])<<8 | int(udp[5])
	if ulen != len(udp) {
		return errors.New("UDP length differs from the IPv4 payload length")
	}
	if udp[6] == 0 && udp[7] == 0 {
		return errors.New("no UDP checksum")
	}
	pseudo := slices.Concat(ip[12:20], []byte{0, ip[9], byte(ulen >> 8), byte(ulen)})
	if s := refSum(pseudo, udp); s != 0xffff {
		return errors.New("UDP checksum does not add up")
	}
	return nil
}

func TestChecksumKnownValues(t *testing.T) {
	// RFC 1071 §3: the sum of these bytes is ddf2, the checksum 220d.
	rfc := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := checksumFold(checksumAdd(0, rfc)); got != 0x220d {
		t.Errorf("RFC 1071 example: checksum %#04x, want 0x220d", got)
	}
	if got := refSum(rfc); got != 0xddf2 {
		t.Errorf("refSum of the RFC 1071 example = %#04x, want 0xddf2", got)
	}
	// The textbook IPv4 header with checksum b861.
	hdr, _ := hex.DecodeString("450000730000400040110000c0a80001c0a800c7")
	if got := checksumFold(checksumAdd(0, hdr)); got != 0xb861 {
		t.Errorf("IPv4 header checksum %#04x, want 0xb861", got)
	}
	// Odd length: the last byte is padded with zero.
	if got, want := checksumFold(checksumAdd(0, []byte{0x12, 0x34, 0x56})), ^refSum([]byte{0x12, 0x34, 0x56, 0}); got != want {
		t.Errorf("odd length: %#04x, want %#04x", got, want)
	}
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

// TestAppendFrameKnown compares a built frame byte by byte with one
// computed independently (IPv4 checksum 544d, UDP checksum 01e7).
func TestAppendFrameKnown(t *testing.T) {
	f := UDPFrame{
		DstMAC:  macB,
		SrcMAC:  macA,
		Src:     netip.MustParseAddrPort("10.9.0.1:67"),
		Dst:     netip.MustParseAddrPort("10.9.0.50:68"),
		ID:      0x1234,
		Payload: []byte("ddhcpd OFFER"),
	}
	want, _ := hex.DecodeString("020000000002020000000001080045000028123400004011544d0a0900010a09003200430044001401e7646468637064204f46464552000000000000")
	prefix := []byte("keep")
	got, err := AppendFrame(slices.Clone(prefix), f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendFrame:\n got %x\nwant %x", got, append(prefix, want...))
	}
	if err := refCheckFrame(want); err != nil {
		t.Errorf("reference check of the known frame: %v", err)
	}

	pkt, err := AppendIPv4UDP(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkt, want[14:14+40]) {
		t.Errorf("AppendIPv4UDP:\n got %x\nwant %x", pkt, want[14:14+40])
	}

	p, err := ParseFrame(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.DstMAC, macB) || !bytes.Equal(p.SrcMAC, macA) || p.Src != f.Src || p.Dst != f.Dst ||
		p.TTL != DefaultTTL || p.ID != 0x1234 || string(p.Payload) != "ddhcpd OFFER" {
		t.Errorf("ParseFrame = %+v", p)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		size := rng.IntN(1500)
		if i < 40 {
			size = i // around the minimum frame size and odd lengths
		}
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		var a4, b4 [4]byte
		binary.BigEndian.PutUint32(a4[:], rng.Uint32())
		binary.BigEndian.PutUint32(b4[:], rng.Uint32())
		f := UDPFrame{
			DstMAC:  net.HardwareAddr{byte(i), 1, 2, 3, 4, 5},
			SrcMAC:  net.HardwareAddr{6, 7, 8, 9, 10, byte(i)},
			Src:     netip.AddrPortFrom(netip.AddrFrom4(a4), uint16(rng.Uint32())),
			Dst:     netip.AddrPortFrom(netip.AddrFrom4(b4), uint16(rng.Uint32())),
			TTL:     uint8(rng.Uint32()),
			ID:      uint16(rng.Uint32()),
			Payload: payload,
		}
		frame, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) < 60 || len(frame) != max(60, 14+28+size) {
			t.Fatalf("frame of %d bytes for a payload of %d", len(frame), size)
		}
		if err := refCheckFrame(frame); err != nil {
			t.Fatalf("payload %d bytes: %v\n%x", size, err, frame)
		}
		if binary.BigEndian.Uint16(frame[14+20+6:]) == 0 {
			t.Fatalf("zero UDP checksum sent")
		}
		got, err := ParseFrame(frame)
		if err != nil {
			t.Fatalf("payload %d bytes: %v", size, err)
		}
		if f.TTL == 0 {
			f.TTL = DefaultTTL
		}
		if !frameEqual(got, f) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
		}
	}
}

func frameEqual(a, b UDPFrame) bool {
	return bytes.Equal(a.DstMAC, b.DstMAC) && bytes.Equal(a.SrcMAC, b.SrcMAC) && a.Src == b.Src && a.Dst == b.Dst &&
		a.TTL == b.TTL && a.ID == b.ID && bytes.Equal(a.Payload, b.Payload)
}

// TestUDPChecksumZero builds a datagram whose checksum computes to zero: it
// must go out as ffff (zero would mean "no checksum") and parse.
func TestUDPChecksumZero(t *testing.T) {
	f := UDPFrame{DstMAC: macB, SrcMAC: macA, Src: netip.MustParseAddrPort("10.0.0.1:67"),
		Dst: netip.MustParseAddrPort("10.0.0.2:68"), Payload: []byte("abcd\x00\x00")}
	frame, _ := AppendFrame(nil, f)
	// With the last payload word set to the checksum of the datagram with
	// it zero, the sum becomes ffff and the checksum zero.
	sum := binary.BigEndian.Uint16(frame[14+20+6:])
	binary.BigEndian.PutUint16(f.Payload[4:], sum)
	frame, _ = AppendFrame(nil, f)
	if got := binary.BigEndian.Uint16(frame[14+20+6:]); got != 0xffff {
		t.Fatalf("UDP checksum %#04x, want 0xffff", got)
	}
	if err := refCheckFrame(frame); err != nil {
		t.Error(err)
	}
	if _, err := ParseFrame(frame); err != nil {
		t.Error(err)
	}
}

func TestAppendFrameErrors(t *testing.T) {
	good := UDPFrame{DstMAC: macB, SrcMAC: macA, Src: netip.MustParseAddrPort("10.0.0.1:67"),
		Dst: netip.MustParseAddrPort("10.0.0.2:68")}
	for name, mod := range map[string]func(*UDPFrame){
		"short MAC":    func(f *UDPFrame) { f.DstMAC = f.DstMAC[:5] },
		"nil MAC":      func(f *UDPFrame) { f.SrcMAC = nil },
		"IPv6 source":  func(f *UDPFrame) { f.Src = netip.MustParseAddrPort("[fe80::1]:67") },
		"mapped dest":  func(f *UDPFrame) { f.Dst = netip.MustParseAddrPort("[::ffff:10.0.0.2]:68") },
		"zero dest":    func(f *UDPFrame) { f.Dst = netip.AddrPort{} },
		"huge payload": func(f *UDPFrame) { f.Payload = make([]byte, MaxUDPPayload+1) },
	} {
		f := good
		mod(&f)
		b := []byte("x")
		got, err := AppendFrame(b, f)
		if err == nil || !bytes.Equal(got, b) {
			t.Errorf("%s: AppendFrame = %x, %v; want an error and the buffer unchanged", name, got, err)
		}
	}
	f := good
	f.Payload = make([]byte, MaxUDPPayload)
	if pkt, err := AppendIPv4UDP(nil, f); err != nil || len(pkt) != 0xffff {
		t.Errorf("largest datagram: %d bytes, %v", len(pkt), err)
	}
}

// testFrame returns a valid frame from 10.0.0.1:68 to 255.255.255.255:67
// with IP options opts (a multiple of 4 bytes), built by hand.
func testFrame(opts []byte, payload string) []byte {
	f := UDPFrame{DstMAC: broadcastMAC(), SrcMAC: macA, Src: netip.MustParseAddrPort("10.0.0.1:68"),
		Dst: netip.MustParseAddrPort("255.255.255.255:67"), ID: 7, Payload: []byte(payload)}
	frame, _ := AppendFrame(nil, f)
	frame = frame[:14+28+len(payload)] // no padding
	if len(opts) > 0 {
		frame = slices.Insert(frame, 14+20, opts...)
		ip := frame[14:]
		ip[0] = 0x40 | byte((20+len(opts))/4)
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		fixIPChecksum(frame)
	}
	return frame
}

// fixIPChecksum recomputes the IPv4 header checksum of a frame after a test
// changed the header.
func fixIPChecksum(frame []byte) {
	if len(frame) < 14+20 {
		return
	}
	ip := frame[14:]
	ihl := int(ip[0]&0xf) * 4
	if ihl < 20 || ihl > len(ip) {
		return
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^refSum(ip[:ihl]))
}

func TestParseFrameAccepts(t *testing.T) {
	padded := append(testFrame(nil, "pad"), make([]byte, 20)...)
	noSum := testFrame(nil, "nosum")
	noSum[14+20+6], noSum[14+20+7] = 0, 0
	// A UDP length shorter than the IPv4 payload: the rest is ignored.
	shortUDP := testFrame(nil, "short+junk")
	binary.BigEndian.PutUint16(shortUDP[14+20+4:], 8+5)
	udp := shortUDP[14+20 : 14+20+13]
	udp[6], udp[7] = 0, 0
	pseudo := slices.Concat(shortUDP[14+12:14+20], []byte{0, 17, 0, 13})
	binary.BigEndian.PutUint16(udp[6:], ^refSum(pseudo, udp))

	for _, tc := range []struct {
		name, payload string
		frame         []byte
	}{
		{"plain", "hello", testFrame(nil, "hello")},
		{"empty payload", "", testFrame(nil, "")},
		{"Ethernet padding", "pad", padded},
		{"IP options", "opts", testFrame([]byte{1, 1, 1, 0}, "opts")},
		{"40 bytes of IP options", "maxopts", testFrame(make([]byte, 40), "maxopts")},
		{"no UDP checksum", "nosum", noSum},
		{"UDP shorter than IP payload", "short", shortUDP},
	} {
		f, err := ParseFrame(tc.frame)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(f.Payload) != tc.payload || f.Src != netip.MustParseAddrPort("10.0.0.1:68") ||
			f.Dst != netip.MustParseAddrPort("255.255.255.255:67") || f.ID != 7 {
			t.Errorf("%s: parsed %+v", tc.name, f)
		}
	}
}

func TestParseFrameMalformed(t *testing.T) {
	mod := func(payload string, fn func(b []byte) []byte) []byte {
		return fn(testFrame(nil, payload))
	}
	setIP := func(off int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[14+off] = v; fixIPChecksum(b); return b }
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		frag  bool // ErrFragment rather than ErrMalformedFrame
	}{
		{"empty", nil, false},
		{"13 bytes", make([]byte, 13), false},
		{"Ethernet only", testFrame(nil, "x")[:14], false},
		{"IPv6 EtherType", mod("x", func(b []byte) []byte { b[12], b[13] = 0x86, 0xdd; return b }), false},
		{"VLAN tag", mod("x", func(b []byte) []byte {
			return slices.Insert(b, 12, 0x81, 0x00, 0x00, 0x05)
		}), false},
		{"ARP", mod("x", func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b }), false},
		{"truncated IP header", testFrame(nil, "x")[:14+19], false},
		{"IP version 6", mod("x", setIP(0, 0x65)), false},
		{"IHL 4", mod("x", setIP(0, 0x44)), false},
		{"IHL 0", mod("x", setIP(0, 0x40)), false},
		{"IHL beyond the packet", mod("x", setIP(0, 0x4f)), false},
		{"total length beyond the frame", mod("x", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+2:], uint16(len(b)-14+1))
			fixIPChecksum(b)
			return b
		}), false},
		{"total length too short for UDP", mod("x", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+2:], 27)
			fixIPChecksum(b)
			return b
		}), false},
		{"truncated UDP", testFrame(nil, "xyz")[:14+20+7], false},
		{"bad IP checksum", mod("x", func(b []byte) []byte { b[14+10] ^= 1; return b }), false},
		{"TCP", mod("x", setIP(9, 6)), false},
		{"ICMP", mod("x", setIP(9, 1)), false},
		{"UDP length 7", mod("x", func(b []byte) []byte { binary.BigEndian.PutUint16(b[14+24:], 7); return b }), false},
		{"UDP length beyond the IP payload", mod("x", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+24:], 10)
			return b
		}), false},
		{"bad UDP checksum", mod("abc", func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }), false},
		{"more fragments", mod("x", setIP(6, 0x20)), true},
		{"fragment offset", mod("x", setIP(7, 0x01)), true},
		{"last fragment", mod("x", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+6:], 0x0100)
			fixIPChecksum(b)
			return b
		}), true},
	} {
		_, err := ParseFrame(tc.frame)
		t.Logf("%s: %v", tc.name, err)
		want := ErrMalformedFrame
		if tc.frag {
			want = ErrFragment
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, want)
		}
	}
}

// TestParseFrameChecksumNotReady: a frame whose UDP checksum holds only the
// pseudo-header sum (checksum offload on the sending host) is refused by
// ParseFrame but accepted when the kernel says the checksum is not filled in.
func TestParseFrameChecksumNotReady(t *testing.T) {
	frame := testFrame(nil, "offloaded")
	udp := frame[14+20:]
	binary.BigEndian.PutUint16(udp[6:], ^checksumFold(pseudoHeaderSum(
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("255.255.255.255"), len(udp))))
	if _, err := ParseFrame(frame); !errors.Is(err, ErrMalformedFrame) || !strings.Contains(err.Error(), "UDP checksum") {
		t.Errorf("ParseFrame: %v, want a bad UDP checksum", err)
	}
	if f, err := parseFrame(frame, false); err != nil || string(f.Payload) != "offloaded" {
		t.Errorf("parseFrame without UDP checksum check: %+v, %v", f, err)
	}
}

func TestClientFilter(t *testing.T) {
	raw, err := clientFilter()
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("cannot disassemble the filter")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	withPort := func(port uint16, opts []byte) []byte {
		b := testFrame(opts, "payload")
		binary.BigEndian.PutUint16(b[14+20+len(opts)+2:], port)
		return b
	}
	// Options whose last two bytes read as port 67 if the filter assumed
	// a 20-byte header: NOP, NOP, EOL, and then 0x43 as padding.
	fakeOpts := []byte{1, 1, 0, 0x43}
	fake := withPort(68, fakeOpts)
	fake[14+20+2] = 0 // the bytes a fixed-offset filter would read: 0x0043
	if binary.BigEndian.Uint16(fake[14+22:]) != 67 {
		t.Fatal("test frame is not tricky enough")
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"UDP to 67", testFrame(nil, "x"), true},
		{"UDP to 67 with IP options", withPort(67, []byte{1, 1, 1, 0}), true},
		{"UDP to 67 with 40 bytes of options", withPort(67, make([]byte, 40)), true},
		{"first fragment", func() []byte { b := testFrame(nil, "x"); b[14+6] = 0x20; return b }(), true},
		{"UDP to 68", withPort(68, nil), false},
		{"UDP to 5353", withPort(5353, nil), false},
		{"UDP to 68, options hiding 67", fake, false},
		{"UDP to 67 from 67 (relay)", func() []byte {
			b := testFrame(nil, "x")
			binary.BigEndian.PutUint16(b[14+20:], 67)
			return b
		}(), true},
		{"UDP from 67 to 68", func() []byte {
			b := withPort(68, nil)
			binary.BigEndian.PutUint16(b[14+20:], 67)
			return b
		}(), false},
		{"TCP to 67", func() []byte { b := testFrame(nil, "x"); b[14+9] = 6; return b }(), false},
		{"ICMP", func() []byte { b := testFrame(nil, "x"); b[14+9] = 1; return b }(), false},
		{"later fragment", func() []byte { b := testFrame(nil, "x"); b[14+7] = 1; return b }(), false},
		{"IPv6", func() []byte { b := testFrame(nil, "x"); b[12], b[13] = 0x86, 0xdd; return b }(), false},
		{"ARP", func() []byte { b := testFrame(nil, "x"); b[12], b[13] = 0x08, 0x06; return b }(), false},
		{"VLAN tag", slices.Insert(testFrame(nil, "x"), 12, 0x81, 0x00, 0x00, 0x05), false},
		{"short", testFrame(nil, "x")[:14+21], false},
	} {
		n, err := vm.Run(tc.frame)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if pass := n > 0; pass != tc.pass {
			t.Errorf("%s: filter returned %d, want pass=%v", tc.name, n, tc.pass)
		}
		if n > 0 && n != clientSnapLen {
			t.Errorf("%s: snap length %d", tc.name, n)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(testFrame(nil, "seed"))
	f.Add(testFrame([]byte{1, 1, 1, 0}, "options"))
	f.Add(append(testFrame(nil, "padded"), 0, 0, 0, 0))
	known, _ := hex.DecodeString("020000000002020000000001080045000028123400004011544d0a0900010a09003200430044001401e7646468637064204f46464552000000000000")
	f.Add(known)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Random bytes rarely have a correct IPv4 header checksum; a
		// copy with it made right reaches the checks behind it.
		fixed := slices.Clone(b)
		fixIPChecksum(fixed)
		for _, tc := range []struct {
			b        []byte
			checkUDP bool
		}{{b, true}, {b, false}, {fixed, true}, {fixed, false}} {
			b, checkUDP := tc.b, tc.checkUDP
			before := slices.Clone(b)
			p, err := parseFrame(b, checkUDP)
			if !bytes.Equal(b, before) {
				t.Fatal("parseFrame changed its input")
			}
			if err != nil {
				if !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrFragment) {
					t.Fatalf("error %v wraps neither ErrMalformedFrame nor ErrFragment", err)
				}
				continue
			}
			if len(p.DstMAC) != 6 || len(p.SrcMAC) != 6 || !p.Src.Addr().Is4() || !p.Dst.Addr().Is4() {
				t.Fatalf("parsed %+v", p)
			}
			if len(p.Payload) > len(b)-14-28 {
				t.Fatalf("payload of %d bytes from a frame of %d", len(p.Payload), len(b))
			}
			// What parses must build again and parse the same; the
			// built frame must pass the reference check.
			rebuilt, err := AppendFrame(nil, p)
			if err != nil {
				t.Fatalf("rebuild %+v: %v", p, err)
			}
			if err := refCheckFrame(rebuilt); err != nil {
				t.Fatalf("rebuilt frame: %v", err)
			}
			again, err := ParseFrame(rebuilt)
			if err != nil {
				t.Fatalf("parse rebuilt frame: %v", err)
			}
			if p.TTL == 0 {
				p.TTL = DefaultTTL
			}
			if !frameEqual(again, p) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", again, p)
			}
		}
	})
}
