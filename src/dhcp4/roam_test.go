package dhcp4

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
)

func TestOwnerRenew(t *testing.T) {
	held := netip.MustParseAddr("10.0.0.20")
	tests := []struct {
		name   string
		addr   string
		hw     byte
		want   time.Duration
		verd   Verdict
		leased time.Duration
	}{
		{"renewal of the client's lease", "10.0.0.20", 1, 0, Grant, DefaultLeaseTime},
		{"shorter lease asked (handover of a lease's remaining time)", "10.0.0.20", 1, time.Minute, Grant, time.Minute},
		{"C bug 6: another client's address is refused", "10.0.0.20", 2, 0, Refuse, 0},
		{"an address we have no record of is adopted", "10.0.0.22", 2, 0, Grant, DefaultLeaseTime},
		{"a reserved address is refused", "10.0.0.31", 2, 0, Refuse, 0},
		{"not our block: silence", "10.0.0.40", 2, 0, Silent, 0},
		{"a block nobody serves: silence", "10.0.0.100", 2, 0, Silent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.tab.Assign(0, lease.Client{Key: lease.KeyOf([]byte{1, 1}, mac(1)), ID: []byte{1, 1}, HW: mac(1)}, held, time.Hour)
			v, d, ev := e.s.OwnerRenew(time.Second, netip.MustParseAddr(tt.addr), mac(tt.hw), tt.want)
			if v != tt.verd || d != tt.leased {
				t.Fatalf("verdict %v %v, want %v %v", v, d, tt.verd, tt.leased)
			}
			if v == Grant {
				l := e.tab.At(netip.MustParseAddr(tt.addr))
				if l == nil || l.State != lease.Assigned || l.Expires != time.Second+tt.leased || len(ev) != 1 {
					t.Errorf("lease not recorded: %+v", l)
				}
			}
		})
	}
	// The client keeps its identity (client id) across a roamed renewal.
	e := newEnv(t)
	c := lease.Client{Key: lease.KeyOf([]byte{1, 1}, mac(1)), ID: []byte{1, 1}, HW: mac(1)}
	e.tab.Assign(0, c, held, time.Hour)
	e.s.OwnerRenew(time.Second, held, mac(1), 0)
	if l := e.tab.Current(c); l == nil || l.Addr != held {
		t.Errorf("client id lost its lease: %+v", l)
	}
}

func TestOwnerRelease(t *testing.T) {
	e := newEnv(t)
	a := e.dora(mac(1))
	if e.s.OwnerRelease(0, a, mac(2)) {
		t.Error("released by another client's MAC")
	}
	if !e.s.OwnerRelease(0, a, mac(1)) || e.tab.At(a).State != lease.Released {
		t.Errorf("release: %+v", e.tab.At(a))
	}
}

func TestRoamedReply(t *testing.T) {
	e := newEnv(t)
	m := msg(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithClientIP(ip("10.0.0.40")))
	r := Request{Msg: m, SrcMAC: mac(1)}
	d := e.s.Roamed(r, netip.MustParseAddr("10.0.0.40"), true, time.Minute)
	if d.Reply.MessageType() != dhcpv4.MessageTypeAck || addrOf(d.Reply.YourIPAddr).String() != "10.0.0.40" ||
		secs(d.Reply.Options, 51) != time.Minute || d.Dest.IP.String() != "10.0.0.40" || len(d.Events) != 1 {
		t.Errorf("roamed ACK %v to %+v", d.Reply.Summary(), d.Dest)
	}
	if d := e.s.Roamed(r, netip.MustParseAddr("10.0.0.40"), false, 0); d.Reply.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("roamed NAK: %v", d.Reply.Summary())
	}
}

// A renewal for an address in a block nobody owns (its owner vanished) makes
// the node claim that block, so the client's next try is adopted.
func TestOrphanedBlockWanted(t *testing.T) {
	e := newEnv(t)
	d := e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithClientIP(ip("10.0.0.100"))), false)
	if d.Action != Drop || len(e.b.wanted) != 1 || e.b.wanted[0] != 6 {
		t.Errorf("decision %+v, wanted %v", d, e.b.wanted)
	}
}

// A client renewing an address while the owner still holds an older lease
// for it (its RELEASE was lost) has moved on: granted, the old one freed.
func TestOwnerRenewMovedClient(t *testing.T) {
	e := newEnv(t)
	c := lease.Client{Key: lease.KeyOf(nil, mac(1)), HW: mac(1)}
	old := netip.MustParseAddr("10.0.0.20")
	e.tab.Assign(0, c, old, time.Hour)
	v, _, _ := e.s.OwnerRenew(time.Second, netip.MustParseAddr("10.0.0.22"), mac(1), 0)
	if v != Grant {
		t.Fatalf("verdict %v", v)
	}
	if l := e.tab.At(old); l != nil && l.Holds() {
		t.Errorf("old lease still held: %+v", l)
	}
}
