package node

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
	"ddhcpd/src/wire"
)

// roamHarness is a node whose neighbours own blocks: block 5 a node of
// ours (higherID at peerAddr), block 7 a C node (id zero at cNodeAddr).
func roamHarness(t *testing.T, mods ...func(*Config)) *harness {
	t.Helper()
	h := newHarness(t, append([]func(*Config){func(c *Config) { c.Hooks = true }}, mods...)...)
	h.mesh(100*time.Millisecond, peerAddr, PortClaim, updateClaim(t, higherID, 5))
	h.mesh(100*time.Millisecond, cNodeAddr, PortClaim, updateClaim(t, cNodeID, 7))
	return h
}

// renewsOf decodes the renew-family datagrams of r, checking that each is
// unicast to port 1235 of to.
func renewsOf(t *testing.T, r Ready, to netip.Addr) []wire.Message {
	t.Helper()
	var out []wire.Message
	for _, d := range r.Mesh {
		if d.Class != ClassRenew {
			continue
		}
		if d.To != netip.AddrPortFrom(to, PortRenew) || d.Port != PortRenew {
			t.Errorf("renew-family datagram to %v from port %d, want %v port %d", d.To, d.Port, to, PortRenew)
		}
		out = append(out, decodeMesh(t, Ready{Mesh: []Datagram{d}})...)
	}
	return out
}

// A client renewing an address of a block a peer owns is forwarded to the
// owner with RENEWLEASE, and gets no answer yet.
func TestRoamForward(t *testing.T) {
	h := roamHarness(t)
	a := testPool(t).Addr(5, 2)
	r := h.client(time.Second, renewing(t, mac(1), xid(1), a), false)
	if len(r.Replies) != 0 {
		t.Errorf("roamed renewal answered before the owner: %+v", r.Replies)
	}
	fw := renewsOf(t, r, peerAddr)
	if len(fw) != 1 {
		t.Fatalf("%d datagrams to the owner, want 1 RENEWLEASE", len(fw))
	}
	var chaddr [16]byte
	copy(chaddr[:], mac(1))
	want := wire.Message{
		Header: wire.Header{Node: ourID, Swarm: testSwarm, Command: wire.CmdRenewLease},
		Renew:  wire.Renew{Addr: a.As4(), Xid: xid32(xid(1)), Chaddr: chaddr},
	}
	if !reflect.DeepEqual(fw[0], want) {
		t.Errorf("RENEWLEASE %+v, want %+v", fw[0], want)
	}
	if c := h.n.Counters(); c.RoamForwarded != 1 {
		t.Errorf("RoamForwarded %d, want 1", c.RoamForwarded)
	}
	// A RELEASE of a roamed client goes to the owner too, unanswered.
	rel := dhcpMsg(t, dhcpv4.MessageTypeRelease, mac(2), xid(2), dhcpv4.WithClientIP(net.IP(testPool(t).Addr(5, 3).AsSlice())))
	r = h.client(time.Second+10*time.Millisecond, rel, false)
	fw = renewsOf(t, r, peerAddr)
	if len(fw) != 1 || fw[0].Command != wire.CmdRelease || fw[0].Renew.Address(wire.OrderNetwork) != testPool(t).Addr(5, 3) {
		t.Errorf("RELEASE forwarded as %+v", fw)
	}
	if c := h.n.Counters(); c.RoamReleaseForwarded != 1 {
		t.Errorf("RoamReleaseForwarded %d, want 1", c.RoamReleaseForwarded)
	}
}

// The owner's answer becomes the client's DHCPACK or DHCPNAK; an answer
// that is not from the owner or not for the request is dropped.
func TestRoamAnswer(t *testing.T) {
	p := testPool(t)
	ours, cs := p.Addr(5, 2), p.Addr(7, 2)
	tests := []struct {
		name    string
		addr    netip.Addr // the client's address
		from    netip.Addr // where the answer comes from
		writer  wire.NodeID
		cmd     uint8
		order   wire.AddrOrder
		xid     dhcpv4.TransactionID
		answer  netip.Addr // in the answer; the client's when invalid
		want    dhcpv4.MessageType
		counter string
	}{
		{name: "LEASEACK from the owner", addr: ours, from: peerAddr, writer: higherID, cmd: wire.CmdLeaseAck,
			want: dhcpv4.MessageTypeAck, counter: "roam.ack"},
		{name: "LEASEACK from the owner's id at another address", addr: ours, from: ll("fe80::77"), writer: higherID, cmd: wire.CmdLeaseAck,
			want: dhcpv4.MessageTypeAck, counter: "roam.ack"},
		{name: "LEASEACK of a C node echoing our id", addr: cs, from: cNodeAddr, writer: ourID, cmd: wire.CmdLeaseAck,
			want: dhcpv4.MessageTypeAck, counter: "roam.ack"},
		{name: "LEASEACK of a C node in reversed order", addr: cs, from: cNodeAddr, writer: ourID, cmd: wire.CmdLeaseAck,
			order: wire.OrderReversed, want: dhcpv4.MessageTypeAck, counter: "roam.ack"},
		{name: "LEASENAK from the owner", addr: ours, from: peerAddr, writer: higherID, cmd: wire.CmdLeaseNak,
			want: dhcpv4.MessageTypeNak, counter: "roam.nak"},
		{name: "LEASENAK of a C node", addr: cs, from: cNodeAddr, writer: ourID, cmd: wire.CmdLeaseNak,
			want: dhcpv4.MessageTypeNak, counter: "roam.nak"},
		{name: "LEASEACK from another node", addr: ours, from: lowerAddr, writer: lowerID, cmd: wire.CmdLeaseAck,
			counter: "roam.drop.unexpected_answer"},
		{name: "LEASEACK echoing our id from another address", addr: ours, from: lowerAddr, writer: ourID, cmd: wire.CmdLeaseAck,
			counter: "roam.drop.unexpected_answer"},
		{name: "LEASEACK for another transaction", addr: ours, from: peerAddr, writer: higherID, cmd: wire.CmdLeaseAck,
			xid: xid(99), counter: "roam.drop.unexpected_answer"},
		{name: "LEASEACK for another address", addr: ours, from: peerAddr, writer: higherID, cmd: wire.CmdLeaseAck,
			answer: p.Addr(5, 4), counter: "roam.drop.unexpected_answer"},
		{name: "LEASEACK for an address outside the pool", addr: ours, from: peerAddr, writer: higherID, cmd: wire.CmdLeaseAck,
			answer: netip.MustParseAddr("192.168.1.1"), counter: "roam.drop.outside_pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := roamHarness(t)
			h.client(time.Second, renewing(t, mac(1), xid(1), tt.addr), false)
			x, a, order := xid(1), tt.addr, tt.order
			if tt.xid != (dhcpv4.TransactionID{}) {
				x = tt.xid
			}
			if tt.answer.IsValid() {
				a = tt.answer
			}
			if order == wire.OrderUnknown {
				order = wire.OrderNetwork
			}
			secs := uint32(120)
			if tt.cmd == wire.CmdLeaseNak {
				secs = 0
			}
			before := h.n.Counters()
			r := h.mesh(time.Second+5*time.Millisecond, tt.from, PortRenew, renewRecord(t, tt.writer, tt.cmd, a, order, xid32(x), secs, mac(1)))
			if d := delta(before, h.n.Counters()); d[tt.counter] != 1 {
				t.Errorf("counters changed by %v, want %s +1", d, tt.counter)
			}
			if len(r.Mesh) != 0 {
				t.Errorf("answer made datagrams: %+v", r.Mesh)
			}
			if tt.want == 0 {
				if len(r.Replies) != 0 || len(r.Hooks) != 0 {
					t.Errorf("dropped answer made %d replies, hooks %q", len(r.Replies), r.Hooks)
				}
				return
			}
			if len(r.Replies) != 1 {
				t.Fatalf("%d replies, want a %v", len(r.Replies), tt.want)
			}
			m := decodeReply(t, r.Replies[0])
			if m.MessageType() != tt.want || m.TransactionID != xid(1) || m.ClientHWAddr.String() != mac(1).String() {
				t.Fatalf("reply %v xid %v to %v, want %v xid %v to %v", m.MessageType(), m.TransactionID, m.ClientHWAddr, tt.want, xid(1), mac(1))
			}
			if tt.want == dhcpv4.MessageTypeNak {
				if len(r.Hooks) != 0 {
					t.Errorf("NAK ran hooks %q", r.Hooks)
				}
				return
			}
			if yiaddr(m) != tt.addr || m.IPAddressLeaseTime(0) != 120*time.Second {
				t.Errorf("ACK for %v for %v, want %v for the owner's 120s", yiaddr(m), m.IPAddressLeaseTime(0), tt.addr)
			}
			if dst := r.Replies[0].Dest; dst.IP != tt.addr || dst.Port != dhcpv4.ClientPort {
				t.Errorf("ACK to %v:%d, want unicast to the renewing client %v", dst.IP, dst.Port, tt.addr)
			}
			if want := [][]string{{"lease", tt.addr.String(), "02:AB:CD:EF:00:01"}}; !reflect.DeepEqual(r.Hooks, want) {
				t.Errorf("hooks %q, want %q", r.Hooks, want)
			}
			// Answered once: a repeated answer is unexpected.
			r = h.mesh(time.Second+6*time.Millisecond, tt.from, PortRenew, renewRecord(t, tt.writer, tt.cmd, a, order, xid32(x), secs, mac(1)))
			if len(r.Replies) != 0 || h.n.Counters().RoamDropUnexpectedAnswer != 1 {
				t.Errorf("a second answer: %d replies, unexpected %d", len(r.Replies), h.n.Counters().RoamDropUnexpectedAnswer)
			}
		})
	}
}

// An owner that does not answer gets a second try in the other byte order
// after 200 ms (a C node on a little-endian CPU reads the address
// reversed); 800 ms later the node gives up and the client gets silence.
func TestRoamNoAnswer(t *testing.T) {
	h := roamHarness(t)
	a := testPool(t).Addr(5, 2)
	t0 := time.Second
	if fw := renewsOf(t, h.client(t0, renewing(t, mac(1), xid(1), a), false), peerAddr); len(fw) != 1 || fw[0].Renew.Addr != a.As4() {
		t.Fatalf("first try %+v, want a RENEWLEASE in network order", fw)
	}
	if next := h.n.Next(); next > t0+retryAfter {
		t.Errorf("Next %v, want the retry by %v", next, t0+retryAfter)
	}
	var tries []wire.Message
	var at []time.Duration
	for now := t0 + time.Millisecond; now <= t0+2*time.Second; now += time.Millisecond {
		r := h.tick(now)
		if len(r.Replies) > 0 {
			t.Errorf("reply at %v without an answer", now)
		}
		for _, m := range renewsOf(t, r, peerAddr) {
			tries, at = append(tries, m), append(at, now)
		}
		if h.n.Counters().RoamDropNoAnswer == 1 && len(at) == 1 {
			at = append(at, now) // when it gave up
		}
	}
	if len(tries) != 1 {
		t.Fatalf("%d retries, want 1", len(tries))
	}
	if at[0] != t0+retryAfter {
		t.Errorf("retry at %v, want %v", at[0], t0+retryAfter)
	}
	rev := a.As4()
	rev[0], rev[1], rev[2], rev[3] = rev[3], rev[2], rev[1], rev[0]
	if m := tries[0]; m.Command != wire.CmdRenewLease || m.Renew.Addr != rev || m.Renew.Xid != xid32(xid(1)) {
		t.Errorf("retry %+v, want the RENEWLEASE with the address reversed (%v)", m, rev)
	}
	if len(at) != 2 || at[1] != t0+retryAfter+giveUpAfter {
		t.Errorf("gave up at %v, want %v", at[1:], t0+retryAfter+giveUpAfter)
	}
	if c := h.n.Counters(); c.RoamRetryOtherOrder != 1 || c.RoamDropNoAnswer != 1 {
		t.Errorf("RoamRetryOtherOrder %d, RoamDropNoAnswer %d; want 1, 1", c.RoamRetryOtherOrder, c.RoamDropNoAnswer)
	}
	// A late answer finds nothing pending.
	r := h.mesh(t0+3*time.Second, peerAddr, PortRenew, renewRecord(t, higherID, wire.CmdLeaseAck, a, wire.OrderNetwork, xid32(xid(1)), 120, mac(1)))
	if len(r.Replies) != 0 || h.n.Counters().RoamDropUnexpectedAnswer != 1 {
		t.Errorf("late answer: %d replies, unexpected %d; want 0, 1", len(r.Replies), h.n.Counters().RoamDropUnexpectedAnswer)
	}
}

// The order in which an owner answered the retry is remembered: the next
// forward to it uses that order from the start.
func TestRoamRemembersOrder(t *testing.T) {
	h := roamHarness(t)
	a1, a2 := testPool(t).Addr(7, 1), testPool(t).Addr(7, 2)
	h.client(time.Second, renewing(t, mac(1), xid(1), a1), false)
	h.run(time.Second + retryAfter) // the retry, reversed
	// The C node (little-endian) answers the reversed try in its order,
	// echoing our id.
	r := h.mesh(time.Second+retryAfter+time.Millisecond, cNodeAddr, PortRenew,
		renewRecord(t, ourID, wire.CmdLeaseAck, a1, wire.OrderReversed, xid32(xid(1)), 300, mac(1)))
	if len(r.Replies) != 1 || yiaddr(decodeReply(t, r.Replies[0])) != a1 {
		t.Fatalf("answer to the retry: %d replies, want the ACK for %v", len(r.Replies), a1)
	}
	fw := renewsOf(t, h.client(2*time.Second, renewing(t, mac(2), xid(2), a2), false), cNodeAddr)
	rev := a2.As4()
	rev[0], rev[1], rev[2], rev[3] = rev[3], rev[2], rev[1], rev[0]
	if len(fw) != 1 || fw[0].Renew.Addr != rev {
		t.Fatalf("next forward to the C node %+v, want the address reversed at once", fw)
	}
	// With the order known there is no try in the other order.
	h.runEach(5*time.Second, func(now time.Duration, r Ready) {
		if n := len(renewsOf(t, r, cNodeAddr)); n != 0 {
			t.Errorf("%d more tries at %v with the owner's order known", n, now)
		}
	})
	if c := h.n.Counters(); c.RoamRetryOtherOrder != 1 || c.RoamDropNoAnswer != 1 {
		t.Errorf("RoamRetryOtherOrder %d, RoamDropNoAnswer %d; want 1, 1", c.RoamRetryOtherOrder, c.RoamDropNoAnswer)
	}
}

// A client that repeats its request while the owner's answer is pending is
// not forwarded again; the owner's answer answers it once.
func TestRoamDuplicate(t *testing.T) {
	h := roamHarness(t)
	a := testPool(t).Addr(5, 2)
	h.client(time.Second, renewing(t, mac(1), xid(1), a), false)
	r := h.client(time.Second+50*time.Millisecond, renewing(t, mac(1), xid(1), a), false)
	if len(r.Mesh) != 0 || len(r.Replies) != 0 {
		t.Errorf("duplicate made %d datagrams, %d replies; want none", len(r.Mesh), len(r.Replies))
	}
	if c := h.n.Counters(); c.RoamDuplicate != 1 || c.RoamForwarded != 1 {
		t.Errorf("RoamDuplicate %d, RoamForwarded %d; want 1, 1", c.RoamDuplicate, c.RoamForwarded)
	}
	r = h.mesh(time.Second+60*time.Millisecond, peerAddr, PortRenew, renewRecord(t, higherID, wire.CmdLeaseAck, a, wire.OrderNetwork, xid32(xid(1)), 120, mac(1)))
	if len(r.Replies) != 1 {
		t.Errorf("%d replies to the duplicated request, want 1", len(r.Replies))
	}
	// Another transaction of the same client is a new request.
	h.client(2*time.Second, renewing(t, mac(1), xid(2), a), false)
	if c := h.n.Counters(); c.RoamForwarded != 2 || c.RoamDuplicate != 1 {
		t.Errorf("RoamForwarded %d, RoamDuplicate %d; want 2, 1", c.RoamForwarded, c.RoamDuplicate)
	}
}

// The owner's side: a RENEWLEASE for an address of our block is granted
// (LEASEACK) for its client and refused (LEASENAK) for another, answered to
// its sender in the sender's byte order with our id; for a block that is not
// ours, silence.
func TestRoamOwnerSide(t *testing.T) {
	p := testPool(t)
	free, held, other := p.Addr(3, 1), p.Addr(3, 2), p.Addr(9, 1)
	tests := []struct {
		name    string
		from    netip.Addr
		writer  wire.NodeID
		addr    netip.Addr
		order   wire.AddrOrder
		hw      net.HardwareAddr
		secs    uint32
		want    uint8 // LEASEACK, LEASENAK, or 0 for silence
		granted uint32
		counter string
	}{
		{name: "free address adopted", from: peerAddr, writer: higherID, addr: free, order: wire.OrderNetwork, hw: mac(5),
			want: wire.CmdLeaseAck, granted: 300, counter: "roam.owner.ack"},
		{name: "renewal of the holder", from: peerAddr, writer: higherID, addr: held, order: wire.OrderNetwork, hw: mac(1),
			want: wire.CmdLeaseAck, granted: 300, counter: "roam.owner.ack"},
		{name: "shorter lease asked", from: peerAddr, writer: higherID, addr: held, order: wire.OrderNetwork, hw: mac(1), secs: 60,
			want: wire.CmdLeaseAck, granted: 60, counter: "roam.owner.ack"},
		{name: "longer lease asked", from: peerAddr, writer: higherID, addr: held, order: wire.OrderNetwork, hw: mac(1), secs: 6000,
			want: wire.CmdLeaseAck, granted: 300, counter: "roam.owner.ack"},
		{name: "C node in reversed order", from: cNodeAddr, writer: cNodeID, addr: free, order: wire.OrderReversed, hw: mac(5),
			want: wire.CmdLeaseAck, granted: 300, counter: "roam.owner.ack"},
		{name: "address held by another client", from: peerAddr, writer: higherID, addr: held, order: wire.OrderNetwork, hw: mac(2),
			want: wire.CmdLeaseNak, counter: "roam.owner.nak"},
		{name: "block not ours", from: peerAddr, writer: higherID, addr: other, order: wire.OrderNetwork, hw: mac(5),
			counter: "roam.owner.silent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, own(3))
			// mac(1) holds held.
			h.client(time.Second, discover(t, mac(1), xid(1), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(held.AsSlice())))), true)
			if r := h.client(time.Second, selecting(t, mac(1), xid(1), held), true); len(r.Replies) != 1 {
				t.Fatal("setup: no lease")
			}
			if l := h.n.Leases().At(held); l == nil || l.State != lease.Assigned {
				t.Fatalf("setup: lease of %v is %+v", held, l)
			}
			before := h.n.Counters()
			req := renewRecord(t, tt.writer, wire.CmdRenewLease, tt.addr, tt.order, 0x1234, tt.secs, tt.hw)
			r := h.mesh(2*time.Second, tt.from, PortRenew, req)
			d := delta(before, h.n.Counters())
			if d[tt.counter] != 1 || d["roam.rx.renewlease"] != 1 {
				t.Errorf("counters changed by %v, want %s and roam.rx.renewlease +1", d, tt.counter)
			}
			ans := renewsOf(t, r, tt.from)
			if tt.want == 0 {
				if len(r.Mesh) != 0 || r.StateChanged {
					t.Errorf("silence wanted, got %+v", r)
				}
				return
			}
			if len(ans) != 1 || len(r.Mesh) != 1 {
				t.Fatalf("%d answers, want 1", len(r.Mesh))
			}
			want, _ := wire.Decode(req)
			want.Node, want.Command, want.Renew.LeaseSeconds = ourID, tt.want, tt.granted
			if !reflect.DeepEqual(ans[0], want) {
				t.Errorf("answer %+v, want the record echoed %+v", ans[0], want)
			}
			l := h.n.Leases().At(tt.addr)
			switch tt.want {
			case wire.CmdLeaseAck:
				if l == nil || l.State != lease.Assigned || l.HW.String() != tt.hw.String() || l.Expires != 2*time.Second+time.Duration(tt.granted)*time.Second {
					t.Errorf("lease after LEASEACK %+v, want assigned to %v for %ds", l, tt.hw, tt.granted)
				}
				if !r.StateChanged {
					t.Error("a granted renewal leaves StateChanged false")
				}
			case wire.CmdLeaseNak:
				if l == nil || l.HW.String() != mac(1).String() {
					t.Errorf("lease after LEASENAK %+v, want still mac(1)'s", l)
				}
			}
		})
	}
}

// A roamed client's RELEASE frees its lease at the owner, only for the
// client that holds it.
func TestRoamOwnerRelease(t *testing.T) {
	h := newHarness(t, own(3), func(c *Config) { c.Hooks = true })
	a := h.dora(time.Second, mac(1), xid(1))
	r := h.mesh(2*time.Second, peerAddr, PortRenew, renewRecord(t, higherID, wire.CmdRelease, a, wire.OrderNetwork, 7, 0, mac(2)))
	if l := h.n.Leases().At(a); l == nil || l.State != lease.Assigned || len(r.Hooks) != 0 {
		t.Errorf("another client's RELEASE freed %+v (hooks %q)", l, r.Hooks)
	}
	r = h.mesh(3*time.Second, peerAddr, PortRenew, renewRecord(t, higherID, wire.CmdRelease, a, wire.OrderNetwork, 7, 0, mac(1)))
	if l := h.n.Leases().At(a); l != nil && l.Holds() {
		t.Errorf("lease after the holder's RELEASE: %+v", l)
	}
	if want := [][]string{{"release", a.String(), "02:AB:CD:EF:00:01"}}; !reflect.DeepEqual(r.Hooks, want) || !r.StateChanged {
		t.Errorf("hooks %q, StateChanged %v; want %q, true", r.Hooks, r.StateChanged, want)
	}
	if len(r.Mesh) != 0 || h.n.Counters().RoamRxRelease != 2 {
		t.Errorf("RELEASE answered (%d datagrams) or miscounted (%d)", len(r.Mesh), h.n.Counters().RoamRxRelease)
	}
}

// Without DHCP (-S) a forwarded renewal is not answered.
func TestRoamOwnerWithoutDHCP(t *testing.T) {
	h := newHarness(t, own(3), func(c *Config) { c.DHCP = nil })
	r := h.mesh(time.Second, peerAddr, PortRenew, renewRecord(t, higherID, wire.CmdRenewLease, testPool(t).Addr(3, 1), wire.OrderNetwork, 1, 0, mac(1)))
	if !reflect.DeepEqual(r, Ready{}) {
		t.Errorf("a node without DHCP answered: %+v", r)
	}
}
