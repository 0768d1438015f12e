package dhcp4

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
	"ddhcpd/src/pool"
)

// The test pool: 10.0.0.0/24 in blocks of 16. Block 1 (10.0.0.16/28) is ours,
// block 2 (10.0.0.32/28) a peer's, the rest unowned.
var (
	serverID = netip.MustParseAddr("10.0.0.1")
	peerAddr = netip.MustParseAddr("fe80::2").WithZone("bat0")
	peerNode = [8]byte{0, 0, 0, 0, 0, 0, 0, 2}
)

type fakeBlocks struct {
	loc      map[uint32]Location
	demanded int
	wanted   []uint32
}

func (f *fakeBlocks) Locate(i uint32) Location { return f.loc[i] }

// note keeps what a decision asked of the blocks, as the node carries it out.
func (f *fakeBlocks) note(d Decision) Decision {
	if d.Demand {
		f.demanded++
	}
	if d.HasWant {
		f.wanted = append(f.wanted, d.Want)
	}
	return d
}

type env struct {
	t   *testing.T
	s   *Server
	tab *lease.Table
	b   *fakeBlocks
	now time.Duration
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	// The server id and 10.0.0.31 (inside our block 1) are reserved.
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/24"), 4, []pool.Range{{First: serverID, Last: serverID},
		{First: netip.MustParseAddr("10.0.0.31"), Last: netip.MustParseAddr("10.0.0.31")}})
	if err != nil {
		t.Fatal(err)
	}
	tab := lease.NewTable(p)
	tab.AddBlock(1)
	b := &fakeBlocks{loc: map[uint32]Location{
		1: {Kind: Ours},
		2: {Kind: Peer, Node: peerNode, NodeAddr: peerAddr},
	}}
	s, err := New(Config{ServerID: serverID, Options: opts, AdmitRate: DefaultAdmitRate}, tab, b)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, s: s, tab: tab, b: b}
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, last} }

func msg(t *testing.T, mt dhcpv4.MessageType, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(hw),
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through bytes, as the daemon receives it.
	m, err = dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) handle(m *dhcpv4.DHCPv4, broadcast bool) Decision {
	return e.b.note(e.s.Handle(e.now, Request{Msg: m, Iface: "client0", SrcMAC: m.ClientHWAddr, Broadcast: broadcast}))
}

func ip(s string) net.IP { return net.ParseIP(s).To4() }

// secs reads a 4-byte seconds option.
func secs(o dhcpv4.Options, code uint8) time.Duration {
	b := o.Get(dhcpv4.GenericOptionCode(code))
	if len(b) != 4 {
		return -1
	}
	return time.Duration(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) * time.Second
}

func addrOf(i net.IP) netip.Addr { a, _ := netip.AddrFromSlice(i.To4()); return a }

// dora runs DISCOVER + SELECTING REQUEST for hw and returns the address.
func (e *env) dora(hw net.HardwareAddr, mods ...dhcpv4.Modifier) netip.Addr {
	e.t.Helper()
	off := e.handle(msg(e.t, dhcpv4.MessageTypeDiscover, hw, mods...), true)
	if off.Action != Reply || off.Reply.MessageType() != dhcpv4.MessageTypeOffer {
		e.t.Fatalf("DISCOVER from %v: %+v", hw, off)
	}
	a := addrOf(off.Reply.YourIPAddr)
	ack := e.handle(msg(e.t, dhcpv4.MessageTypeRequest, hw, append(mods,
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.1"))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(a.AsSlice()))))...), true)
	if ack.Action != Reply || ack.Reply.MessageType() != dhcpv4.MessageTypeAck || addrOf(ack.Reply.YourIPAddr) != a {
		e.t.Fatalf("REQUEST for %v: %+v", a, ack)
	}
	return a
}

func TestDORA(t *testing.T) {
	e := newEnv(t)
	a := e.dora(mac(1))
	if idx, _ := e.tab.Pool().Block(a); idx != 1 {
		t.Fatalf("leased %v outside our block", a)
	}
	l := e.tab.At(a)
	if l == nil || l.State != lease.Assigned || l.Expires != DefaultLeaseTime {
		t.Fatalf("lease %+v", l)
	}
}

// Kea 7, 11: what is dropped before any processing.
func TestDropped(t *testing.T) {
	e := newEnv(t)
	noType := msg(t, dhcpv4.MessageTypeDiscover, mac(1))
	noType.Options.Del(dhcpv4.OptionDHCPMessageType)
	reply := msg(t, dhcpv4.MessageTypeDiscover, mac(1))
	reply.OpCode = dhcpv4.OpcodeBootReply
	tests := []struct {
		name string
		m    *dhcpv4.DHCPv4
		want string
	}{
		{"Kea 7: no option 53", noType, DropNoType},
		{"Kea 7: an OFFER from a client", msg(t, dhcpv4.MessageTypeOffer, mac(1)), DropBadType},
		{"Kea 7: an ACK from a client", msg(t, dhcpv4.MessageTypeAck, mac(1)), DropBadType},
		{"BOOTREPLY op", reply, DropNotRequest},
		{"Kea 11: DISCOVER with option 54", msg(t, dhcpv4.MessageTypeDiscover, mac(1), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.1")))), DropDiscover54},
		{"Kea 11: no chaddr, no client id", msg(t, dhcpv4.MessageTypeDiscover, make(net.HardwareAddr, 6)), DropNoClient},
		{"Kea 10: REQUEST for another server", msg(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.99"))), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.0.20")))), DropNotForUs},
		{"Kea 10: INFORM for another server", msg(t, dhcpv4.MessageTypeInform, mac(1), dhcpv4.WithClientIP(ip("10.0.0.20")), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.99")))), DropNotForUs},
		{"Kea 12: INFORM without any address", msg(t, dhcpv4.MessageTypeInform, mac(1)), DropInform},
		{"Kea 56: DECLINE without option 50", msg(t, dhcpv4.MessageTypeDecline, mac(1)), DropBadRequest},
		{"REQUEST without any address", msg(t, dhcpv4.MessageTypeRequest, mac(1)), DropBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.handle(tt.m, true)
			if d.Action != Drop || d.Reason != tt.want {
				t.Errorf("got %v %q, want drop %q", d.Action, d.Reason, tt.want)
			}
		})
	}
}

// Kea 27: a client that picked another server's offer frees ours at once.
func TestOtherServerFreesOffer(t *testing.T) {
	e := newEnv(t)
	off := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(1)), true)
	a := addrOf(off.Reply.YourIPAddr)
	if l := e.tab.At(a); l == nil || l.State != lease.Offered {
		t.Fatalf("offer not held: %+v", l)
	}
	e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.77"))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.0.200")))), true)
	if l := e.tab.At(a); l != nil && l.Holds() {
		t.Errorf("offer still held: %+v", l)
	}
}

// Kea 14: nothing to offer means silence, and blocks are asked for at once.
func TestNothingToOffer(t *testing.T) {
	e := newEnv(t)
	e.tab.LoseBlock(1)
	d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(1)), true)
	if d.Action != Drop || d.Reason != DropNothing || e.b.demanded != 1 {
		t.Errorf("got %+v, demanded %d", d, e.b.demanded)
	}
}

// Kea 14, offer hold: the offered address is not offered to another client
// until the hold ends.
func TestOfferHold(t *testing.T) {
	e := newEnv(t)
	// Fill the block (15 usable: .16-.31 less the reserved .31) with offers.
	seen := map[netip.Addr]bool{}
	for i := range 15 {
		d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(byte(i+1))), true)
		if d.Action != Reply {
			t.Fatalf("client %d: %+v", i, d)
		}
		a := addrOf(d.Reply.YourIPAddr)
		if seen[a] || a.String() == "10.0.0.31" {
			t.Fatalf("%v offered twice or reserved", a)
		}
		seen[a] = true
	}
	if d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(100)), true); d.Action != Drop {
		t.Fatalf("16th client got an offer from a full block: %v", d.Reply.YourIPAddr)
	}
	e.now += DefaultOfferHold
	e.tab.Reclaim(e.now, 100)
	if d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(100)), true); d.Action != Reply {
		t.Errorf("no offer after the hold ended: %+v", d)
	}
}

// Kea 34: DISCOVER prefers the existing lease, then the requested address.
func TestDiscoverPreference(t *testing.T) {
	e := newEnv(t)
	a := e.dora(mac(1))
	d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(1), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.0.30")))), true)
	if got := addrOf(d.Reply.YourIPAddr); got != a {
		t.Errorf("client with a lease offered %v, want its %v", got, a)
	}
	// Its remaining lease time, not a new one.
	e.now += time.Minute
	d = e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(1)), true)
	if lt := secs(d.Reply.Options, 51); lt != DefaultLeaseTime-time.Minute {
		t.Errorf("offer of a live lease announces %v", lt)
	}
	d = e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(2), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.0.30")))), true)
	if got := addrOf(d.Reply.YourIPAddr); got.String() != "10.0.0.30" {
		t.Errorf("requested free address not offered: %v", got)
	}
	// A requested address held by someone else, outside our blocks or
	// reserved is not offered.
	for _, req := range []string{a.String(), "10.0.0.40", "10.0.0.1", "10.0.0.31", "10.0.0.0", "192.168.1.1"} {
		d = e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(3), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(req)))), true)
		if got := addrOf(d.Reply.YourIPAddr); got.String() == req {
			t.Errorf("offered the requested %v", req)
		}
	}
}

// Kea 33 and SPEC §4: the address choice is a stable function of the client.
func TestStableChoice(t *testing.T) {
	a1 := newEnv(t).dora(mac(7))
	a2 := newEnv(t).dora(mac(7))
	if a1 != a2 {
		t.Errorf("same client, same blocks: %v then %v", a1, a2)
	}
	e := newEnv(t)
	got := map[netip.Addr]bool{}
	for i := range 10 {
		a := e.dora(mac(byte(10 + i)))
		if got[a] {
			t.Fatalf("two clients share %v", a)
		}
		got[a] = true
	}
	// The client id, when sent, is the identity: a new MAC with the same
	// id is the same client (Kea 28, 42).
	id := dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 9, 9, 9}))
	first := e.dora(mac(50), id)
	if again := e.dora(mac(51), id); again != first {
		t.Errorf("same client id, new MAC: %v then %v", first, again)
	}
}

// Kea 23, 25, 26, 30-32: REQUEST in its four states.
func TestRequestStates(t *testing.T) {
	sid := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.1")))
	req := func(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(s))) }
	ci := func(s string) dhcpv4.Modifier { return dhcpv4.WithClientIP(ip(s)) }
	tests := []struct {
		name      string
		hw        byte // client 1 holds 10.0.0.20, client 2 holds 10.0.0.21
		mods      []dhcpv4.Modifier
		broadcast bool
		want      string
	}{
		{"Kea 23 SELECTING own offer", 3, []dhcpv4.Modifier{sid, req("10.0.0.22")}, true, "ack"},
		{"Kea 30 SELECTING an address held by another", 3, []dhcpv4.Modifier{sid, req("10.0.0.20")}, true, "nak_address_taken"},
		{"Kea 25 INIT-REBOOT known client, its address", 1, []dhcpv4.Modifier{req("10.0.0.20")}, true, "ack"},
		// Kea NAKs here; in a mesh the client may hold that address from
		// the block's previous owner (RFC 2131 §4.3.2: NAK only for the
		// wrong network), so a free one is granted and the old lease freed.
		{"INIT-REBOOT known client, another free address of ours", 1, []dhcpv4.Modifier{req("10.0.0.25")}, true, "ack_adopted"},
		{"Kea 25 INIT-REBOOT unknown client, free address of ours: adopted", 4, []dhcpv4.Modifier{req("10.0.0.26")}, true, "ack_adopted"},
		{"Kea 25 INIT-REBOOT unknown client, address held by another", 4, []dhcpv4.Modifier{req("10.0.0.21")}, true, "nak_address_taken"},
		{"Kea 26 INIT-REBOOT outside the pool: silence", 4, []dhcpv4.Modifier{req("192.168.0.9")}, true, DropNotOurRange},
		{"INIT-REBOOT in an unowned block: silence", 4, []dhcpv4.Modifier{req("10.0.0.100")}, true, DropUnowned},
		{"INIT-REBOOT in a peer's block: forwarded", 4, []dhcpv4.Modifier{req("10.0.0.40")}, true, "forward_renew"},
		{"Kea 23 RENEWING", 1, []dhcpv4.Modifier{ci("10.0.0.20")}, false, "ack"},
		{"Kea 23 REBINDING", 1, []dhcpv4.Modifier{ci("10.0.0.20")}, true, "ack"},
		{"RENEWING someone else's address", 1, []dhcpv4.Modifier{ci("10.0.0.21")}, false, "nak_address_taken"},
		{"RENEWING in a peer's block: forwarded", 1, []dhcpv4.Modifier{ci("10.0.0.41")}, false, "forward_renew"},
		{"REBINDING outside the pool: silence", 1, []dhcpv4.Modifier{ci("172.16.0.1")}, true, DropNotOurRange},
		{"a reserved address in an unowned block: silence", 4, []dhcpv4.Modifier{req("10.0.0.1")}, true, DropUnowned},
		{"C bug 15: a reserved address in our block: NAK", 4, []dhcpv4.Modifier{req("10.0.0.31")}, true, "nak_address_taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := func(b byte) lease.Client { return lease.Client{Key: lease.KeyOf(nil, mac(b)), HW: mac(b)} }
			e.tab.Assign(0, c(1), netip.MustParseAddr("10.0.0.20"), time.Hour)
			e.tab.Assign(0, c(2), netip.MustParseAddr("10.0.0.21"), time.Hour)
			e.tab.Offer(0, c(3), netip.MustParseAddr("10.0.0.22"), 1, time.Minute)
			d := e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(tt.hw), tt.mods...), tt.broadcast)
			if d.Reason != tt.want {
				t.Fatalf("reason %q, want %q (%+v)", d.Reason, tt.want, d)
			}
			switch {
			case tt.want == "ack" || tt.want == "ack_adopted":
				if d.Reply.MessageType() != dhcpv4.MessageTypeAck || len(d.Events) != 1 || d.Events[0].Kind != EventLease {
					t.Errorf("not an ACK with a lease event: %+v", d)
				}
			case tt.want == "forward_renew":
				if d.Action != Forward || d.Forward.Node != peerNode || d.Forward.NodeAddr != peerAddr {
					t.Errorf("forward %+v", d.Forward)
				}
			case tt.want[:3] == "nak":
				// C bug 13: the NAK carries the server identifier.
				if d.Reply.MessageType() != dhcpv4.MessageTypeNak || d.Reply.ServerIdentifier() == nil || !d.Reply.YourIPAddr.Equal(net.IPv4zero) {
					t.Errorf("NAK %v", d.Reply.Summary())
				}
				if d.Dest.IP.String() != "255.255.255.255" {
					t.Errorf("NAK sent to %v, not broadcast", d.Dest.IP)
				}
			default:
				if d.Action != Drop {
					t.Errorf("not silent: %+v", d)
				}
			}
		})
	}
}

// Kea 35: one lease per client; moving to another address frees the old one.
func TestOneLeasePerClient(t *testing.T) {
	e := newEnv(t)
	a := e.dora(mac(1))
	other := netip.MustParseAddr("10.0.0.29")
	if other == a {
		other = netip.MustParseAddr("10.0.0.28")
	}
	d := e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.0.1"))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(other.AsSlice())))), true)
	if d.Reason != "ack" {
		t.Fatalf("%+v", d)
	}
	if l := e.tab.At(a); l != nil && l.Holds() {
		t.Errorf("old lease %v still held: %+v", a, l)
	}
}

// Kea 56: DECLINE puts the address on probation; only the holder may decline.
func TestDecline(t *testing.T) {
	e := newEnv(t)
	a := e.dora(mac(1))
	dec := func(hw byte) Decision {
		return e.handle(msg(t, dhcpv4.MessageTypeDecline, mac(hw), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(a.AsSlice())))), true)
	}
	if d := dec(2); d.Reason != DropUnknown {
		t.Fatalf("decline by a stranger: %+v", d)
	}
	if d := dec(1); d.Reason != "declined" || d.Events[0].Kind != EventDecline {
		t.Fatalf("decline: %+v", d)
	}
	for i := range 20 { // never offered during probation, not even to the decliner
		d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(byte(i+1))), true)
		if d.Action == Reply && addrOf(d.Reply.YourIPAddr) == a {
			t.Fatalf("declined %v offered during probation", a)
		}
		e.tab.CancelOffer(lease.Client{Key: lease.KeyOf(nil, mac(byte(i+1))), HW: mac(byte(i + 1))})
	}
	e.now += DefaultProbation
	e.tab.Reclaim(e.now, 100)
	if l := e.tab.At(a); l != nil {
		t.Errorf("probation did not end: %+v", l)
	}
}

// Kea 57: RELEASE frees the lease of its sender only; a roamed one is forwarded.
func TestRelease(t *testing.T) {
	e := newEnv(t)
	a := e.dora(mac(1))
	rel := func(hw byte, addr string) Decision {
		return e.handle(msg(t, dhcpv4.MessageTypeRelease, mac(hw), dhcpv4.WithClientIP(ip(addr))), false)
	}
	if d := rel(2, a.String()); d.Reason != DropUnknown {
		t.Fatalf("release by a stranger: %+v", d)
	}
	if d := rel(1, a.String()); d.Reason != "released" || d.Action != Drop {
		t.Fatalf("release: %+v", d)
	}
	if l := e.tab.At(a); l == nil || l.State != lease.Released {
		t.Fatalf("lease after release: %+v", l)
	}
	// The released address comes back to the same client (affinity).
	if again := e.dora(mac(1)); again != a {
		t.Errorf("returning client got %v, had %v", again, a)
	}
	if d := rel(1, "10.0.0.40"); d.Action != Forward || d.Forward.Kind != ForwardRelease {
		t.Errorf("roamed release: %+v", d)
	}
}

// Kea 55: INFORM gets options only.
func TestInform(t *testing.T) {
	e := newEnv(t, Option{Code: 6, Data: []byte{10, 0, 0, 1}})
	d := e.handle(msg(t, dhcpv4.MessageTypeInform, mac(1), dhcpv4.WithClientIP(ip("10.0.0.77"))), false)
	r := d.Reply
	if d.Action != Reply || r.MessageType() != dhcpv4.MessageTypeAck || !r.YourIPAddr.Equal(net.IPv4zero) ||
		!r.ClientIPAddr.Equal(ip("10.0.0.77")) || r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !r.Options.Has(dhcpv4.OptionDomainNameServer) {
		t.Fatalf("INFORM reply %v", r.Summary())
	}
	if d.Dest.IP.String() != "10.0.0.77" || d.Dest.Port != 68 {
		t.Errorf("INFORM reply to %+v", d.Dest)
	}
	if e.tab.Len() != 0 {
		t.Error("INFORM touched the lease table")
	}
}

// Kea 16, 17, 44, 46, 48: what a reply carries.
func TestOptions(t *testing.T) {
	e := newEnv(t,
		Option{Code: 3, Data: []byte{10, 0, 0, 1}},
		Option{Code: 6, Data: []byte{10, 0, 0, 1, 10, 0, 0, 2}},
		Option{Code: 15, Data: []byte("mesh")},
		Option{Code: 42, Data: []byte{10, 0, 0, 3}},         // NTP: only when asked
		Option{Code: 252, Data: []byte("\n"), Always: true}, // WPAD, always sent
	)
	d := e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(1)), true)
	o := d.Reply.Options
	for _, c := range []uint8{1, 3, 6, 15, 28, 51, 54, 58, 59, 252} {
		if !o.Has(dhcpv4.GenericOptionCode(c)) {
			t.Errorf("option %d missing without a PRL", c)
		}
	}
	if o.Has(dhcpv4.GenericOptionCode(42)) {
		t.Error("option 42 sent unasked")
	}
	lt := secs(o, 51)
	t1 := secs(o, 58)
	t2 := secs(o, 59)
	if !(0 < t1 && t1 < t2 && t2 < lt) || t1 != (lt/2).Truncate(time.Second) || t2 != (lt*7/8).Truncate(time.Second) {
		t.Errorf("T1 %v T2 %v lease %v", t1, t2, lt)
	}
	if m := dhcpv4.GetIP(dhcpv4.OptionSubnetMask, o); !m.Equal(ip("255.255.255.0")) {
		t.Errorf("mask %v", m)
	}
	prl := dhcpv4.WithOption(dhcpv4.OptParameterRequestList(dhcpv4.GenericOptionCode(42)))
	cid := dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{0xff, 1, 2}))
	d = e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(2), prl, cid), true)
	if !d.Reply.Options.Has(dhcpv4.GenericOptionCode(42)) {
		t.Error("requested option 42 missing")
	}
	if got := d.Reply.Options.Get(dhcpv4.OptionClientIdentifier); !bytes.Equal(got, []byte{0xff, 1, 2}) {
		t.Errorf("client id echoed as %x", got)
	}
}

// Kea 19: 53 first, 82 last, padding to 300 bytes, long options split.
func TestEncode(t *testing.T) {
	e := newEnv(t, Option{Code: 121, Data: bytes.Repeat([]byte{7}, 300), Always: true})
	m := msg(t, dhcpv4.MessageTypeDiscover, mac(1), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 2, 3, 4})))
	d := e.handle(m, true)
	b := Encode(d.Reply)
	if len(b) < 300 || b[240] != 53 {
		t.Fatalf("%d bytes, first option %d", len(b), b[240])
	}
	var codes []uint8
	for i := 240; i < len(b) && b[i] != 255; {
		if b[i] == 0 {
			i++
			continue
		}
		codes = append(codes, b[i])
		i += 2 + int(b[i+1])
	}
	if codes[len(codes)-1] != 82 {
		t.Errorf("option order %v: 82 not last", codes)
	}
	if n := len(slices.DeleteFunc(slices.Clone(codes), func(c uint8) bool { return c != 121 })); n != 2 {
		t.Errorf("300-byte option in %d pieces", n)
	}
	back, err := dhcpv4.FromBytes(b)
	if err != nil || len(back.Options.Get(dhcpv4.GenericOptionCode(121))) != 300 || !back.YourIPAddr.Equal(d.Reply.YourIPAddr) {
		t.Fatalf("re-parse: %v", err)
	}
}

// Kea 49-52: where replies go.
func TestDestinations(t *testing.T) {
	e := newEnv(t)
	relay := dhcpv4.WithGatewayIP(ip("192.168.7.1"))
	tests := []struct {
		name string
		m    *dhcpv4.DHCPv4
		ip   string
		port uint16
		mac  bool
		rt   bool
	}{
		{"Kea 52 direct unicast to yiaddr at chaddr", msg(t, dhcpv4.MessageTypeDiscover, mac(1)), "", 68, true, false},
		{"Kea 52 broadcast flag", msg(t, dhcpv4.MessageTypeDiscover, mac(2), dhcpv4.WithBroadcast(true)), "255.255.255.255", 68, false, false},
		{"Kea 49 relayed", msg(t, dhcpv4.MessageTypeDiscover, mac(3), relay), "192.168.7.1", 67, false, true},
		{"Kea 50 renewal to ciaddr", msg(t, dhcpv4.MessageTypeRequest, mac(4), dhcpv4.WithClientIP(ip("10.0.0.25"))), "10.0.0.25", 68, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.handle(tt.m, true)
			if d.Action != Reply {
				t.Fatalf("%+v", d)
			}
			want := tt.ip
			if want == "" {
				want = addrOf(d.Reply.YourIPAddr).String()
			}
			if d.Dest.IP.String() != want || d.Dest.Port != tt.port || (d.Dest.MAC != nil) != tt.mac || d.Dest.Routed != tt.rt {
				t.Errorf("dest %+v", d.Dest)
			}
		})
	}
	// A NAK to a relayed client goes to the relay with the broadcast bit.
	d := e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(9), relay, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.0.1")))), true)
	_ = d
	e.tab.Assign(0, lease.Client{Key: lease.KeyOf(nil, mac(8)), HW: mac(8)}, netip.MustParseAddr("10.0.0.30"), time.Hour)
	d = e.handle(msg(t, dhcpv4.MessageTypeRequest, mac(9), relay, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.0.30")))), true)
	if d.Reply.MessageType() != dhcpv4.MessageTypeNak || !d.Reply.IsBroadcast() || d.Dest.IP.String() != "192.168.7.1" || d.Dest.Port != 67 {
		t.Errorf("relayed NAK: %v to %+v", d.Reply.Summary(), d.Dest)
	}
}

// Host reservations: the reserved client gets its address, nobody else does,
// and an unowned reserved block is asked for.
func TestHostReservation(t *testing.T) {
	e := newEnv(t)
	c := lease.Client{Key: lease.KeyOf(nil, mac(9)), HW: mac(9)}
	e.tab.Reserve(c.Key, netip.MustParseAddr("10.0.0.27"))
	for i := range 13 {
		if a := e.dora(mac(byte(20 + i))); a.String() == "10.0.0.27" {
			t.Fatalf("reserved address given to client %d", i)
		}
	}
	if a := e.dora(mac(9)); a.String() != "10.0.0.27" {
		t.Errorf("reserved client got %v", a)
	}
	e.tab.Reserve(c.Key, netip.MustParseAddr("10.0.0.100"))
	e.handle(msg(t, dhcpv4.MessageTypeDiscover, mac(9)), true)
	if !slices.Contains(e.b.wanted, 6) {
		t.Errorf("reserved block not wanted: %v", e.b.wanted)
	}
}

func TestNoServerID(t *testing.T) {
	p, _ := pool.New(netip.MustParsePrefix("10.0.0.0/24"), 4, nil)
	if _, err := New(Config{}, lease.NewTable(p), &fakeBlocks{}); err == nil {
		t.Error("accepted a config without a server id")
	}
}

// encodeViaToBytes is Encode as it was, on the library's serializer: the
// header of ToBytes, then the options in Encode's order.
func encodeViaToBytes(d *dhcpv4.DHCPv4) []byte {
	hdr := *d
	hdr.Options = dhcpv4.Options{}
	b := hdr.ToBytes()[:240]
	var codes []int
	for c := range d.Options {
		if c != 0 && c != 255 && c != 53 && c != 82 {
			codes = append(codes, int(c))
		}
	}
	slices.Sort(codes)
	if _, ok := d.Options[53]; ok {
		codes = append([]int{53}, codes...)
	}
	if _, ok := d.Options[82]; ok {
		codes = append(codes, 82)
	}
	for _, c := range codes {
		for data := d.Options[uint8(c)]; ; {
			n := min(len(data), 255)
			b = append(b, uint8(c), uint8(n))
			b = append(b, data[:n]...)
			if data = data[n:]; len(data) == 0 {
				break
			}
		}
	}
	b = append(b, 255)
	for len(b) < 300 {
		b = append(b, 0)
	}
	return b
}

// Encode writes the header itself; it must write what the library does.
func TestEncodeMatchesToBytes(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 600)
	tests := []struct {
		name string
		d    dhcpv4.DHCPv4
	}{
		{"zero", dhcpv4.DHCPv4{}},
		{"ack to a relay", dhcpv4.DHCPv4{
			OpCode: dhcpv4.OpcodeBootReply, HWType: 1, HopCount: 1, TransactionID: dhcpv4.TransactionID{1, 2, 3, 4},
			NumSeconds: 513, Flags: 0x8000, ClientIPAddr: net.IPv4zero, YourIPAddr: ip("10.0.1.2"),
			ServerIPAddr: net.IPv4zero, GatewayIPAddr: ip("10.0.255.1"), ClientHWAddr: mac(9),
			Options: dhcpv4.Options{53: {5}, 54: {10, 0, 0, 1}, 82: {1, 2, 3, 4}, 3: {10, 0, 0, 254}, 1: {255, 255, 0, 0}},
		}},
		{"names, long chaddr, IPv4 in 16 bytes", dhcpv4.DHCPv4{
			OpCode: dhcpv4.OpcodeBootReply, HWType: 32, ClientHWAddr: bytes.Repeat([]byte{0xab}, 20),
			YourIPAddr: net.ParseIP("10.0.0.9"), ServerHostName: strings.Repeat("s", 80), BootFileName: strings.Repeat("f", 200),
			Options: dhcpv4.Options{121: long, 0: {1}, 255: {2}},
		}},
		{"short names, no type", dhcpv4.DHCPv4{ServerHostName: "tftp", BootFileName: "pxelinux.0", Options: dhcpv4.Options{66: []byte("x")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := Encode(&tt.d), encodeViaToBytes(&tt.d); !bytes.Equal(got, want) {
				t.Errorf("Encode:\n got %x\nwant %x", got, want)
			}
		})
	}
}
