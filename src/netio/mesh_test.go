package netio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

func TestGroup(t *testing.T) {
	if want := netip.MustParseAddr("ff02::1234"); Group != want || groupAddr() != want {
		t.Errorf("Group = %v, groupAddr() = %v, want %v", Group, groupAddr(), want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  MeshConfig
		want string // substring of the error; empty for valid
	}{
		{MeshConfig{Interfaces: []string{"bat0"}}, ""},
		{MeshConfig{Interfaces: []string{"bat0", "bat1"}, Ports: []uint16{1234, 1236}}, ""},
		{MeshConfig{}, "no mesh interfaces"},
		{MeshConfig{Interfaces: []string{""}}, "invalid"},
		{MeshConfig{Interfaces: []string{"0123456789abcdef"}}, "invalid"},
		{MeshConfig{Interfaces: []string{"bat0%1"}}, "invalid"},
		{MeshConfig{Interfaces: []string{"a/b"}}, "invalid"},
		{MeshConfig{Interfaces: []string{"bat0", "bat0"}}, "twice"},
		{MeshConfig{Interfaces: []string{"bat0"}, Ports: []uint16{0}}, "port 0"},
		{MeshConfig{Interfaces: []string{"bat0"}, Ports: []uint16{1234, 1234}}, "twice"},
	} {
		err := tc.cfg.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := OpenMesh(context.Background(), MeshConfig{}); err == nil {
		t.Errorf("OpenMesh with no interfaces succeeded")
	}
}

// TestMissingInterfaceAndClose opens a Mesh on an interface that does not
// exist (so it touches no real interface of the host), checks that sends
// fail with ErrIfaceDown, and that Close and context cancellation stop every
// goroutine.
func TestMissingInterfaceAndClose(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, viaCtx := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		m, err := OpenMesh(ctx, MeshConfig{Interfaces: []string{"ddtnx0", "ddtnx1"}, Recheck: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond) // let the periodic check run
		st := m.Interfaces()
		if len(st) != 2 || st[0].Name != "ddtnx0" || st[0].Open || st[0].Index != 0 || st[1].Name != "ddtnx1" {
			t.Errorf("Interfaces() = %+v", st)
		}
		if err := m.Multicast(McastPort, []byte("x")); !errors.Is(err, ErrIfaceDown) {
			t.Errorf("Multicast: %v, want ErrIfaceDown", err)
		}
		if err := m.MulticastOn("ddtnx1", ExtPort, []byte("x")); !errors.Is(err, ErrIfaceDown) {
			t.Errorf("MulticastOn: %v, want ErrIfaceDown", err)
		}
		if err := m.Unicast(UnicastPort, netip.MustParseAddrPort("[fe80::1%ddtnx0]:1235"), []byte("x")); !errors.Is(err, ErrIfaceDown) {
			t.Errorf("Unicast: %v, want ErrIfaceDown", err)
		}
		if viaCtx {
			cancel()
		} else {
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			cancel()
		}
		select {
		case _, ok := <-m.Packets():
			if ok {
				t.Fatal("packet received")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Packets not closed")
		}
		if _, ok := <-m.Events(); ok {
			t.Error("event received")
		}
		m.Close() // again: no-op
		if err := m.Multicast(McastPort, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Multicast after Close: %v, want ErrClosed", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// TestDeliverOddInput feeds deliver messages no kernel should produce; it
// must not panic, and it must count what it drops.
func TestDeliverOddInput(t *testing.T) {
	m := &Mesh{packets: make(chan Packet, 4)}
	m.own.Store(&map[string][]netip.Addr{"bat0": {netip.MustParseAddr("fe80::1")}, "bat1": {netip.MustParseAddr("fe80::2")}})
	s := &meshSock{ifname: "bat0", port: McastPort}
	buf := make([]byte, readBufSize)
	copy(buf, "hello")
	for _, msg := range []ipv6.Message{
		{Buffers: [][]byte{buf}, N: -1},
		{Buffers: [][]byte{buf}, N: readBufSize + 10, Flags: unix.MSG_TRUNC, Addr: &net.UDPAddr{IP: net.IP{1, 2, 3}}},
		{Buffers: [][]byte{buf}, N: 5, OOB: []byte{1, 2, 3}, NN: 10, Addr: &net.IPAddr{}},
		{Buffers: [][]byte{buf}, N: 5, OOB: make([]byte, 64), NN: 64, Addr: &net.UDPAddr{IP: net.ParseIP("fe80::1"), Port: 1}}, // own
		{Buffers: [][]byte{buf}, N: 5, Addr: &net.UDPAddr{IP: net.ParseIP("fe80::2"), Port: 1234, Zone: "other"}},
		{Buffers: [][]byte{buf}, N: 5}, // queue full
	} {
		m.deliver(s, &msg)
	}
	st := m.Stats()
	if st.Received != 4 || st.Own != 1 || st.Dropped != 1 || st.Truncated != 1 || m.Drops() != 1 {
		t.Errorf("stats %+v", st)
	}
	p := <-m.packets
	if len(p.Data) != 0 || p.Src.IsValid() || p.HopLimit != -1 {
		t.Errorf("first packet %+v", p)
	}
	p = <-m.packets
	if len(p.Data) != readBufSize || !p.Truncated {
		t.Errorf("second packet has %d bytes, truncated %v", len(p.Data), p.Truncated)
	}
	p = <-m.packets
	if string(p.Data) != "hello" || p.Src.IsValid() {
		t.Errorf("third packet %+v", p)
	}
	// The data is a copy: the reader's buffer is reused.
	buf[0] = 'j'
	if string(p.Data) != "hello" {
		t.Errorf("packet data shares the read buffer")
	}
	// The zone is always the socket's interface.
	p = <-m.packets
	if want := netip.MustParseAddrPort("[fe80::2%bat0]:1234"); p.Src != want || p.Iface != "bat0" || p.Port != McastPort {
		t.Errorf("fourth packet from %v on %s port %d, want from %v on bat0 port %d", p.Src, p.Iface, p.Port, want, McastPort)
	}
}
