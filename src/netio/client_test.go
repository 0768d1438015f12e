package netio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ddhcpd/src/nolog"
)

func TestClientConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  ClientConfig
		want string // substring of the error; empty for valid
	}{
		{ClientConfig{Interfaces: []string{"br-client"}}, ""},
		{ClientConfig{Interfaces: []string{"br-client", "eth1"}}, ""},
		{ClientConfig{}, "no client interfaces"},
		{ClientConfig{Interfaces: []string{""}}, "invalid"},
		{ClientConfig{Interfaces: []string{"0123456789abcdef"}}, "invalid"},
		{ClientConfig{Interfaces: []string{"br client"}}, "invalid"},
		{ClientConfig{Interfaces: []string{".."}}, "invalid"},
		{ClientConfig{Interfaces: []string{"eth1", "eth1"}}, "twice"},
	} {
		err := tc.cfg.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := OpenClients(context.Background(), ClientConfig{}); err == nil {
		t.Errorf("OpenClients with no interfaces succeeded")
	}
}

// TestClientsMissingInterfaceAndClose opens Clients on interfaces that do
// not exist (so it touches no real interface of the host and needs no
// root), checks status and sends, and that Close and context cancellation
// stop every goroutine.
func TestClientsMissingInterfaceAndClose(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, viaCtx := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := OpenClients(ctx, ClientConfig{Interfaces: []string{"ddtnc0", "ddtnc1"}, Recheck: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		st := c.Interfaces()
		if len(st) != 2 || st[0].Name != "ddtnc0" || st[1].Name != "ddtnc1" {
			t.Fatalf("Interfaces() = %+v", st)
		}
		for _, s := range st {
			if s.Open || s.Index != 0 || s.MAC != nil || s.Addr.IsValid() ||
				!errors.Is(s.Err, ErrClientIfaceDown) || !strings.Contains(s.Err.Error(), "does not exist") {
				t.Errorf("status %+v", s)
			}
		}
		if a, ok := c.IfaceAddr("ddtnc0"); ok || a.IsValid() {
			t.Errorf("IfaceAddr = %v, %v", a, ok)
		}
		d := Dest{Iface: "ddtnc0", IP: netip.MustParseAddr("255.255.255.255"), Port: DHCPClientPort}
		src := netip.MustParseAddr("10.0.0.1")
		if err := c.Send(d, src, []byte("x")); !errors.Is(err, ErrClientIfaceDown) {
			t.Errorf("send on a missing interface: %v", err)
		}
		d.Iface = "eth0"
		if err := c.Send(d, src, []byte("x")); err == nil || errors.Is(err, ErrClientIfaceDown) ||
			!strings.Contains(err.Error(), "not a client interface") {
			t.Errorf("send on a non-client interface: %v", err)
		}
		time.Sleep(120 * time.Millisecond) // a few periodic checks
		if viaCtx {
			cancel()
			for range c.Packets() {
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c.Close() // twice is fine
		if _, ok := <-c.Packets(); ok {
			t.Errorf("Packets not closed")
		}
		d.Iface = "ddtnc0"
		if err := c.Send(d, src, []byte("x")); !errors.Is(err, ErrClientsClosed) {
			t.Errorf("send after Close: %v", err)
		}
		if s := c.Stats(); s.SendErrors != 3 || s.Opens != 0 || s.Frames != 0 {
			t.Errorf("stats %+v", s)
		}
		cancel()
	}
	var now int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if now = runtime.NumGoroutine(); now <= base {
			return
		}
	}
	buf := make([]byte, 1<<16)
	t.Errorf("goroutines: %d before, %d after\n%s", base, now, buf[:runtime.Stack(buf, true)])
}

// TestClientSendValidation checks that bad destinations are refused before
// any socket is looked at.
func TestClientSendValidation(t *testing.T) {
	c, err := OpenClients(context.Background(), ClientConfig{Interfaces: []string{"ddtnc0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src := netip.MustParseAddr("10.0.0.1")
	ok := Dest{Iface: "ddtnc0", IP: netip.MustParseAddr("10.0.0.50"), Port: DHCPClientPort, MAC: macB}
	for _, tc := range []struct {
		name string
		mod  func(d *Dest, src *netip.Addr, payload *[]byte)
		want string
	}{
		{"IPv6 destination", func(d *Dest, _ *netip.Addr, _ *[]byte) { d.IP = netip.MustParseAddr("fe80::1") }, "not an IPv4 address"},
		{"no destination", func(d *Dest, _ *netip.Addr, _ *[]byte) { d.IP = netip.Addr{} }, "not an IPv4 address"},
		{"0.0.0.0", func(d *Dest, _ *netip.Addr, _ *[]byte) { d.IP = netip.IPv4Unspecified() }, "not an IPv4 address"},
		{"port 0", func(d *Dest, _ *netip.Addr, _ *[]byte) { d.Port = 0 }, "port 0"},
		{"no source", func(_ *Dest, s *netip.Addr, _ *[]byte) { *s = netip.Addr{} }, "source"},
		{"source 0.0.0.0", func(_ *Dest, s *netip.Addr, _ *[]byte) { *s = netip.IPv4Unspecified() }, "source"},
		{"broadcast source", func(_ *Dest, s *netip.Addr, _ *[]byte) { *s = netip.MustParseAddr("255.255.255.255") }, "source"},
		{"short MAC", func(d *Dest, _ *netip.Addr, _ *[]byte) { d.MAC = d.MAC[:4] }, "MAC"},
		{"routed broadcast", func(d *Dest, _ *netip.Addr, _ *[]byte) {
			d.Routed, d.IP = true, netip.MustParseAddr("255.255.255.255")
		}, "unicast"},
		{"routed multicast", func(d *Dest, _ *netip.Addr, _ *[]byte) {
			d.Routed, d.IP = true, netip.MustParseAddr("224.0.0.1")
		}, "unicast"},
		{"huge payload", func(_ *Dest, _ *netip.Addr, p *[]byte) { *p = make([]byte, MaxUDPPayload+1) }, "too long"},
	} {
		d, s, p := ok, src, []byte("x")
		tc.mod(&d, &s, &p)
		err := c.Send(d, s, p)
		if err == nil || errors.Is(err, ErrClientIfaceDown) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	// Mapped addresses are fine: the check gets as far as the interface.
	d := ok
	d.IP = netip.MustParseAddr("::ffff:10.0.0.50")
	if err := c.Send(d, netip.MustParseAddr("::ffff:10.0.0.1"), nil); !errors.Is(err, ErrClientIfaceDown) {
		t.Errorf("mapped addresses: %v", err)
	}
}

// auxData returns a PACKET_AUXDATA control message with the given status.
func auxData(t *testing.T, status uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	var h unix.Cmsghdr
	h.Level = unix.SOL_PACKET
	h.Type = unix.PACKET_AUXDATA
	h.SetLen(unix.CmsgLen(20))
	if err := binary.Write(&b, binary.NativeEndian, h); err != nil {
		t.Fatal(err)
	}
	for b.Len() < unix.CmsgLen(0) {
		b.WriteByte(0)
	}
	if err := binary.Write(&b, binary.NativeEndian, unix.TpacketAuxdata{Status: status, Vlan_tci: 5}); err != nil {
		t.Fatal(err)
	}
	for b.Len() < unix.CmsgSpace(20) {
		b.WriteByte(0)
	}
	return b.Bytes()
}

// TestClientHandle feeds frames to the receive path as the reader would and
// checks what is queued and what is counted.
func TestClientHandle(t *testing.T) {
	c := &Clients{log: slog.New(nolog.Handler), packets: make(chan ClientPacket, 2)}
	s := &clientSock{ifname: "br-client", mac: macB}
	host := &unix.SockaddrLinklayer{Pkttype: unix.PACKET_HOST}
	bcast := &unix.SockaddrLinklayer{Pkttype: unix.PACKET_BROADCAST}

	discover := testFrame(nil, "DISCOVER")
	c.handle(s, discover, false, bcast, auxData(t, 0))
	p := <-c.packets
	want := ClientPacket{Payload: []byte("DISCOVER"), Iface: "br-client", SrcMAC: macA, DstMAC: broadcastMAC(),
		SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("255.255.255.255"),
		SrcPort: 68, DstPort: 67, Broadcast: true}
	if !clientPacketEqual(p, want) {
		t.Errorf("queued %+v, want %+v", p, want)
	}
	// The packet owns its memory.
	copy(discover, make([]byte, len(discover)))
	if !clientPacketEqual(p, want) {
		t.Errorf("packet changed with the read buffer: %+v", p)
	}

	// Unicast to us (a renewal): not broadcast.
	f := UDPFrame{DstMAC: macB, SrcMAC: macA, Src: netip.MustParseAddrPort("10.0.0.9:68"),
		Dst: netip.MustParseAddrPort("10.0.0.1:67"), Payload: []byte("REQUEST")}
	renew, _ := AppendFrame(nil, f)
	c.handle(s, renew, false, host, nil)
	if p := <-c.packets; p.Broadcast || string(p.Payload) != "REQUEST" || p.SrcIP != netip.MustParseAddr("10.0.0.9") {
		t.Errorf("renewal queued as %+v", p)
	}

	// An offloaded checksum is accepted only when the kernel says so.
	offloaded := testFrame(nil, "offloaded")
	offloaded[14+20+6] ^= 0x55
	c.handle(s, offloaded, false, bcast, auxData(t, unix.TP_STATUS_CSUMNOTREADY))
	c.handle(s, offloaded, false, bcast, auxData(t, unix.TP_STATUS_CSUM_VALID))
	<-c.packets
	<-c.packets
	if st := c.Stats(); st.Frames != 4 || st.Received != 4 || st.Malformed+st.Ignored+st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}

	ownFrame := testFrame(nil, "own")
	copy(ownFrame[6:12], macB)
	fragment := testFrame(nil, "frag")
	fragment[14+6] = 0x20
	fixIPChecksum(fragment)
	for _, tc := range []struct {
		name    string
		frame   []byte
		cut     bool
		from    unix.Sockaddr
		oob     []byte
		ignored bool // else malformed
	}{
		{"outgoing", testFrame(nil, "x"), false, &unix.SockaddrLinklayer{Pkttype: unix.PACKET_OUTGOING}, nil, true},
		{"loopback", testFrame(nil, "x"), false, &unix.SockaddrLinklayer{Pkttype: unix.PACKET_LOOPBACK}, nil, true},
		{"other host", testFrame(nil, "x"), false, &unix.SockaddrLinklayer{Pkttype: unix.PACKET_OTHERHOST}, nil, true},
		{"VLAN tag", testFrame(nil, "x"), false, bcast, auxData(t, unix.TP_STATUS_VLAN_VALID), true},
		{"own MAC", ownFrame, false, bcast, nil, true},
		{"fragment", fragment, false, bcast, nil, true},
		{"to port 68", func() []byte {
			f := UDPFrame{DstMAC: broadcastMAC(), SrcMAC: macA, Src: netip.MustParseAddrPort("10.0.0.1:67"),
				Dst: netip.MustParseAddrPort("10.0.0.2:68")}
			b, _ := AppendFrame(nil, f)
			return b
		}(), false, bcast, nil, true},
		{"bad UDP checksum", offloaded, false, bcast, auxData(t, 0), false},
		{"cut", testFrame(nil, "x"), true, bcast, nil, false},
		{"garbage", []byte("not a frame"), false, host, nil, false},
		{"no control message", testFrame(nil, "x")[:20], false, nil, []byte{1, 2, 3}, false},
	} {
		before := c.Stats()
		c.handle(s, tc.frame, tc.cut, tc.from, tc.oob)
		after := c.Stats()
		wantIgn, wantMal := before.Ignored, before.Malformed+1
		if tc.ignored {
			wantIgn, wantMal = before.Ignored+1, before.Malformed
		}
		if after.Frames != before.Frames+1 || after.Ignored != wantIgn || after.Malformed != wantMal || after.Received != before.Received {
			t.Errorf("%s: stats %+v -> %+v", tc.name, before, after)
		}
	}
	if len(c.packets) != 0 {
		t.Errorf("%d packets queued", len(c.packets))
	}

	// A full queue drops and counts.
	for range 3 {
		c.handle(s, testFrame(nil, "burst"), false, bcast, nil)
	}
	if st := c.Stats(); st.Dropped != 1 || len(c.packets) != 2 {
		t.Errorf("after a burst: %+v, %d queued", st, len(c.packets))
	}
}

func clientPacketEqual(a, b ClientPacket) bool {
	return bytes.Equal(a.Payload, b.Payload) && a.Iface == b.Iface && bytes.Equal(a.SrcMAC, b.SrcMAC) &&
		bytes.Equal(a.DstMAC, b.DstMAC) && a.SrcIP == b.SrcIP && a.DstIP == b.DstIP &&
		a.SrcPort == b.SrcPort && a.DstPort == b.DstPort && a.Broadcast == b.Broadcast
}

func TestClientAuxStatus(t *testing.T) {
	if got := clientAuxStatus(auxData(t, 0x88)); got != 0x88 {
		t.Errorf("status %#x, want 0x88", got)
	}
	for _, oob := range [][]byte{nil, {1, 2, 3}, auxData(t, 1)[:unix.CmsgLen(0)+2]} {
		if got := clientAuxStatus(oob); got != 0 {
			t.Errorf("clientAuxStatus(%x) = %#x", oob, got)
		}
	}
	if net.HardwareAddr(broadcastMAC()).String() != "ff:ff:ff:ff:ff:ff" {
		t.Error("broadcastMAC")
	}
}
