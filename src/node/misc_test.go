package node

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/lease"
	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// When the parked DISCOVERs take the last free address of the new block,
// more is claimed in the same Ready, and the node is not due again at once.
func TestParkedReplayClaimsMore(t *testing.T) {
	h := newHarness(t)
	for i := range 8 {
		h.client(time.Second, discover(t, mac(byte(i)), xid(byte(i))), true)
	}
	var owned Ready
	var at, next time.Duration
	h.runEach(4*time.Second, func(now time.Duration, r Ready) {
		if len(ourBlocks(r.Claims)) > 0 && len(r.Replies) > 0 {
			owned, at, next = r, now, h.n.Next()
		}
	})
	if len(owned.Replies) != 8 {
		t.Fatalf("%d OFFERs when the block became ours, want the 8 parked", len(owned.Replies))
	}
	if next <= at {
		t.Errorf("Next %v right after the tick at %v", next, at)
	}
	if h.n.Leases().FreeTotal() == 0 {
		inq := ofCommand(decodeMesh(t, owned), wire.CmdInquire)
		if len(inq) == 0 {
			t.Error("the block is full and no INQUIRE for another went out with the OFFERs")
		}
	}
}

// An expired lease is reclaimed when its time is up, and the state file is
// out of date.
func TestLeaseReclaimed(t *testing.T) {
	h := newHarness(t, own(3))
	h.step(0, SetLeaseTime{LeaseTime: 10 * time.Second})
	a := h.dora(time.Second, mac(1), xid(1))
	if next := h.n.Next(); next > 11*time.Second {
		t.Errorf("Next %v, want the lease's end by 11s", next)
	}
	if r := h.tick(11*time.Second - time.Nanosecond); h.n.Counters().LeaseReclaimed != 0 || r.StateChanged {
		t.Error("lease reclaimed before its end")
	}
	r := h.tick(11 * time.Second)
	if h.n.Counters().LeaseReclaimed != 1 || !r.StateChanged {
		t.Errorf("LeaseReclaimed %d, StateChanged %v at the lease's end; want 1, true", h.n.Counters().LeaseReclaimed, r.StateChanged)
	}
	if l := h.n.Leases().At(a); l != nil && l.Holds() {
		t.Errorf("lease after its end: %+v", l)
	}
}

// What the driver could not send is counted by class.
func TestSendFailed(t *testing.T) {
	tests := []struct {
		class Class
		want  string
	}{
		{ClassClaim, "tx.error"},
		{ClassSync, "tx.error"},
		{ClassOverlay, "overlay.tx_error"},
		{ClassRenew, "roam.tx_error"},
		{ClassRoute, "overlay.route.tx_error"},
	}
	for _, tt := range tests {
		h := newHarness(t)
		before := h.n.Counters()
		h.n.SendFailed(Datagram{Class: tt.class})
		if got, want := delta(before, h.n.Counters()), map[string]int64{tt.want: 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("class %d: counters changed by %v, want %v", tt.class, got, want)
		}
	}
	h := newHarness(t)
	h.n.ReplyFailed()
	if h.n.Counters().DHCPTxError != 1 {
		t.Errorf("DHCPTxError %d, want 1", h.n.Counters().DHCPTxError)
	}
}

// Counters hands out a copy; ResetCounters zeroes them.
func TestCounters(t *testing.T) {
	h := newHarness(t)
	h.client(time.Second, discover(t, mac(1), xid(1)), true)
	c := h.n.Counters()
	c.DHCPDrop["nothing_to_offer"] = 99
	c.DHCPRx = 99
	if got := h.n.Counters(); got.DHCPDrop["nothing_to_offer"] != 1 || got.DHCPRx != 1 {
		t.Errorf("changing a copy changed the node's counters: %+v", got.DHCPDrop)
	}
	c = h.n.Counters()
	m := c.Map()
	for _, name := range []string{"dhcp.rx", "dhcp.rx.DISCOVER", "dhcp.drop.nothing_to_offer", "tx.inquire"} {
		if m[name] != 1 {
			t.Errorf("Map()[%q] = %d, want 1 (all: %v)", name, m[name], m)
		}
	}
	h.n.ResetCounters()
	if c := h.n.Counters(); len(c.Map()) != 0 {
		t.Errorf("counters after ResetCounters: %v", c.Map())
	}
}

// A state file saved a moment ago gives the blocks back at once with their
// leases; an older one has its blocks claimed first, through inquiries.
func TestRestore(t *testing.T) {
	p := testPool(t)
	a := p.Addr(3, 4)
	saved := &Saved{From: "test", Age: 10 * time.Second, Blocks: []uint32{3},
		Leases: []lease.Lease{{Addr: a, Client: lease.KeyOf(nil, mac(1)), HW: mac(1), State: lease.Assigned, Expires: 100 * time.Second, Granted: 300 * time.Second}}}
	h := newHarness(t, func(c *Config) { c.Saved = saved })
	if got := h.n.Engine().Block(3).State; got != claim.Ours {
		t.Errorf("block 3 is %v after a fresh restore, want ours", got)
	}
	if l := h.n.Leases().At(a); l == nil || l.State != lease.Assigned || l.HW.String() != mac(1).String() {
		t.Errorf("restored lease %+v", l)
	}
	if h.n.Counters().StateRestored != 1 {
		t.Errorf("StateRestored %d, want 1", h.n.Counters().StateRestored)
	}
	// The restored client renews at its own node.
	r := h.client(time.Second, renewing(t, mac(1), xid(1), a), false)
	if len(r.Replies) != 1 || yiaddr(decodeReply(t, r.Replies[0])) != a {
		t.Errorf("renewal of a restored lease: %d replies", len(r.Replies))
	}

	old := *saved
	old.Age = 2 * time.Minute
	h = newHarness(t, func(c *Config) { c.Saved = &old })
	if got := h.n.Engine().Block(3).State; got != claim.Claiming {
		t.Errorf("block 3 is %v after an old restore, want claiming", got)
	}
	evs := claimEvents(h.run(4 * time.Second)...)
	if got := ourBlocks(evs); !reflect.DeepEqual(got, []uint32{3}) {
		t.Errorf("blocks owned after an old restore: %v, want [3]", got)
	}
}

// Act runs an engine call and settles: what it made is ready at once.
func TestAct(t *testing.T) {
	h := newHarness(t)
	h.n.Act(time.Second, func(e *claim.Engine) { e.Want(time.Second, 9) })
	inq := ofCommand(decodeMesh(t, h.n.Ready()), wire.CmdInquire)
	if len(inq) != 1 || !reflect.DeepEqual(inq[0].Inquiries, []uint32{9}) {
		t.Errorf("INQUIREs after Act(Want 9): %+v", inq)
	}
	if h.n.ID() != ourID || h.n.Pool() == nil || h.n.Overlay() != nil {
		t.Error("accessors")
	}
}

// Round trips of answered forwards are kept.
func TestRoamRTT(t *testing.T) {
	h := roamHarness(t)
	a := testPool(t).Addr(5, 2)
	if _, _, n := h.n.RoamRTT(); n != 0 {
		t.Fatalf("%d samples before any forward", n)
	}
	h.client(time.Second, renewing(t, mac(1), xid(1), a), false)
	h.mesh(time.Second+7*time.Millisecond, peerAddr, PortRenew, renewRecord(t, higherID, wire.CmdLeaseAck, a, wire.OrderNetwork, xid32(xid(1)), 120, mac(1)))
	if p50, p99, n := h.n.RoamRTT(); n != 1 || p50 != 7*time.Millisecond || p99 != 7*time.Millisecond {
		t.Errorf("RoamRTT %v %v %d, want 7ms 7ms 1", p50, p99, n)
	}
}

// With the overlay, an owner heard only through relays is reached along the
// tree; with no tree there is no route: counted, tried once more after a
// second, then given up.
func TestRoamRoutedNoRoute(t *testing.T) {
	h := roamHarness(t, func(c *Config) { c.Overlay = &overlay.Config{Interfaces: []string{"mesh0"}} })
	h.step(200*time.Millisecond, MeshDatagram{Src: netip.AddrPortFrom(lowerAddr, PortClaim), Iface: "mesh0", Port: PortClaim,
		Relayed: true, Data: updateClaim(t, lowerID, 9)})
	if got := h.n.Engine().Block(9); got.State != claim.Claimed || got.Owner != lowerID || got.OwnerAddr.IsValid() {
		t.Fatalf("block 9 after a relayed claim: %+v, want claimed by %v with no address", got, lowerID)
	}
	a := testPool(t).Addr(9, 1)
	r := h.client(time.Second, renewing(t, mac(1), xid(1), a), false)
	if len(r.Replies) != 0 {
		t.Errorf("routed renewal answered: %+v", r.Replies)
	}
	if c := h.n.Counters(); c.RoamForwarded != 1 || c.OverlayRouteNoRoute != 1 || c.RoamTxError != 1 {
		t.Errorf("forwarded %d, no route %d, tx error %d; want 1 each", c.RoamForwarded, c.OverlayRouteNoRoute, c.RoamTxError)
	}
	h.run(time.Second + routedRetryAfter - time.Millisecond)
	if c := h.n.Counters(); c.RoamRetryRouted != 0 {
		t.Errorf("routed retry before %v", routedRetryAfter)
	}
	h.run(time.Second + routedRetryAfter)
	if c := h.n.Counters(); c.RoamRetryRouted != 1 || c.RoamRetryOtherOrder != 0 {
		t.Errorf("RoamRetryRouted %d, RoamRetryOtherOrder %d at %v; want 1, 0", c.RoamRetryRouted, c.RoamRetryOtherOrder, routedRetryAfter)
	}
	h.run(time.Second + routedRetryAfter + routedGiveUpAfter)
	if c := h.n.Counters(); c.RoamDropNoAnswer != 1 {
		t.Errorf("RoamDropNoAnswer %d, want 1", c.RoamDropNoAnswer)
	}
}

// ROUTE messages: for us, handled as a renewal; for another node without a
// route, counted; too many hops or malformed, dropped.
func TestRoute(t *testing.T) {
	overlayOn := func(c *Config) { c.Overlay = &overlay.Config{Interfaces: []string{"mesh0"}} }
	inner := func(cmd uint8) wire.Message {
		m, err := wire.Decode(renewRecord(t, higherID, cmd, testPool(t).Addr(3, 1), wire.OrderNetwork, 5, 0, mac(1)))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	route := func(target wire.NodeID, hops uint8) []byte {
		r := wire.Route{Node: higherID, Swarm: testSwarm, Target: target, Hops: hops, Inner: inner(wire.CmdRenewLease)}
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want map[string]int64
	}{
		{"for us", route(ourID, 0), map[string]int64{"overlay.route.rx": 1, "roam.rx.renewlease": 1, "roam.owner.ack": 1,
			"overlay.route.no_route": 1, "roam.tx_error": 1}},
		{"for another node", route(lowerID, 0), map[string]int64{"overlay.route.no_route": 1}},
		{"too many hops", route(lowerID, wire.MaxRouteHops), map[string]int64{"drop.route_hops": 1}},
		{"malformed", route(ourID, 0)[:wire.ExtHeaderLen+12], map[string]int64{"drop.route_malformed": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, own(3), overlayOn)
			before := h.n.Counters()
			h.mesh(0, peerAddr, PortExt, tt.data)
			want := map[string]int64{"mesh.rx": 1}
			for k, v := range tt.want {
				want[k] = v
			}
			if got := delta(before, h.n.Counters()); !reflect.DeepEqual(got, want) {
				t.Errorf("counters changed by %v, want %v", got, want)
			}
		})
	}
}
