package dhcp4

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
)

func key(i int) lease.ClientKey { return lease.ClientKey(fmt.Sprintf("hw:%06x", i)) }

func TestAdmission(t *testing.T) {
	a := NewAdmission()
	// A burst of new clients: Burst pass, the rest wait for tokens.
	passed := 0
	for i := range 100 {
		if why, _ := a.Admit(0, key(i)); why == "" {
			passed++
		}
	}
	if passed != DefaultAdmitBurst {
		t.Errorf("%d of 100 new clients at once passed, want %d", passed, DefaultAdmitBurst)
	}
	// A refused client that retries after a second is let in (it is seen).
	if why, repeat := a.Admit(time.Second, key(99)); why != "" || !repeat {
		t.Errorf("retransmitting client refused: %s %v", why, repeat)
	}
	// ... but not faster than once per MinInterval.
	if why, _ := a.Admit(time.Second+100*time.Millisecond, key(99)); why != DropTooSoon {
		t.Errorf("client twice within 100 ms: %q", why)
	}
	// Tokens refill at Rate from the moment the burst was spent (t=0);
	// seen clients took none: 1.5 s gives 30.
	n := 0
	for i := 1000; i < 1100; i++ {
		if why, _ := a.Admit(1500*time.Millisecond, key(i)); why == "" {
			n++
		}
	}
	if want := int(1.5 * DefaultAdmitRate); n != want {
		t.Errorf("%d new clients passed at 1.5 s, want %d", n, want)
	}
	// Memory is bounded.
	for i := range 10000 {
		a.Admit(time.Hour+time.Duration(i)*time.Millisecond, key(100000+i))
	}
	if a.Tracked() > DefaultAdmitRemember {
		t.Errorf("tracks %d clients", a.Tracked())
	}
}

// A flood of DISCOVERs from random MACs does not stop known clients.
func TestFloodSparesKnownClients(t *testing.T) {
	e := newEnv(t)
	known := e.dora(mac(1))
	for i := range 2000 {
		hw := net.HardwareAddr{0x0a, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		e.handle(msg(t, dhcpv4.MessageTypeDiscover, hw), true)
	}
	// Its DISCOVER (a reboot) and its renewal are answered at once.
	d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(1)), true)
	if d.Action != Reply || addrOf(d.Reply.YourIPAddr) != known {
		t.Errorf("known client's DISCOVER during a flood: %+v", d)
	}
	d = e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithClientIP(ip(known.String()))), false)
	if d.Reason != "ack" {
		t.Errorf("renewal during a flood: %+v", d)
	}
}

// The last Reserve free addresses go only to known or repeating clients, so a
// flood of first-time DISCOVERs cannot take them.
func TestReserveForRepeatingClients(t *testing.T) {
	e := newEnv(t)
	e.s.cfg.Reserve = 2
	// 15 usable addresses: 13 first-time clients get offers.
	for i := range 13 {
		if d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(byte(10+i))), true); d.Action != Reply {
			t.Fatalf("client %d: %+v", i, d)
		}
	}
	d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(50)), true)
	if d.Reason != DropReserve || e.b.demanded == 0 {
		t.Fatalf("first-time client took the reserve: %+v", d)
	}
	e.now += time.Second // it retransmits: now a repeat
	if d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(50)), true); d.Action != Reply {
		t.Fatalf("repeating client refused: %+v", d)
	}
}
