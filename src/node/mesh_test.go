package node

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/claim"
	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// Every mesh datagram is checked once, where it comes in: each refusal is
// counted in its own counter, and nothing else happens.
func TestMeshDatagramChecks(t *testing.T) {
	a := testPool(t).Addr(3, 2)
	hw := mac(1)
	foreign := func(s wire.Swarm) []byte {
		return encode(t, wire.Message{Header: wire.Header{Node: higherID, Swarm: s, Command: wire.CmdUpdateClaim},
			Claims: []wire.Claim{{Block: 3, Lifetime: 60}}})
	}
	otherPrefix, otherLen, otherSize := testSwarm, testSwarm, testSwarm
	otherPrefix.Prefix = netip.MustParseAddr("10.117.224.0")
	otherLen.PrefixLen = 23
	otherSize.BlockSize = 16
	patch := func(b []byte, i int, v byte) []byte { b[i] = v; return b }
	overlayOn := func(c *Config) { c.Overlay = &overlay.Config{Interfaces: []string{"mesh0"}} }

	tests := []struct {
		name string
		mods []func(*Config)
		in   MeshDatagram
		want map[string]int64 // besides mesh.rx
	}{
		{name: "truncated",
			in:   MeshDatagram{Port: PortClaim, Truncated: true, Data: updateClaim(t, higherID, 3)},
			want: map[string]int64{"drop.truncated": 1}},
		{name: "global source",
			in:   MeshDatagram{Src: netip.MustParseAddrPort("[2001:db8::2]:1234"), Port: PortClaim, Data: updateClaim(t, higherID, 3)},
			want: map[string]int64{"drop.not_link_local": 1}},
		{name: "ipv4 source",
			in:   MeshDatagram{Src: netip.MustParseAddrPort("10.0.0.2:1234"), Port: PortClaim, Data: updateClaim(t, higherID, 3)},
			want: map[string]int64{"drop.not_link_local": 1}},
		{name: "shorter than the header",
			in:   MeshDatagram{Port: PortClaim, Data: updateClaim(t, higherID, 3)[:wire.HeaderLen-1]},
			want: map[string]int64{"drop.short": 1}},
		{name: "empty",
			in:   MeshDatagram{Port: PortRenew},
			want: map[string]int64{"drop.short": 1}},
		{name: "unknown command",
			in:   MeshDatagram{Port: PortClaim, Data: patch(inquire(t, higherID, 3), 14, 3)},
			want: map[string]int64{"drop.unknown_command": 1}},
		{name: "UPDATECLAIM count does not match its length",
			in:   MeshDatagram{Port: PortClaim, Data: patch(updateClaim(t, higherID, 3), 15, 2)},
			want: map[string]int64{"drop.bad_length": 1}},
		{name: "INQUIRE one byte too long",
			in:   MeshDatagram{Port: PortClaim, Data: append(inquire(t, higherID, 3), 0)},
			want: map[string]int64{"drop.bad_length": 1}},
		{name: "RENEWLEASE one byte short",
			in:   MeshDatagram{Port: PortRenew, Data: renewRecord(t, higherID, wire.CmdRenewLease, a, wire.OrderNetwork, 1, 0, hw)[:wire.RenewLen-1]},
			want: map[string]int64{"drop.bad_length": 1}},
		{name: "INQUIRE to the renew port",
			in:   MeshDatagram{Port: PortRenew, Data: inquire(t, higherID, 3)},
			want: map[string]int64{"drop.wrong_port": 1}},
		{name: "UPDATECLAIM to the renew port",
			in:   MeshDatagram{Port: PortRenew, Data: updateClaim(t, higherID, 3)},
			want: map[string]int64{"drop.wrong_port": 1}},
		{name: "RENEWLEASE to the claim port",
			in:   MeshDatagram{Port: PortClaim, Data: renewRecord(t, higherID, wire.CmdRenewLease, a, wire.OrderNetwork, 1, 0, hw)},
			want: map[string]int64{"drop.wrong_port": 1}},
		{name: "LEASEACK to the claim port",
			in:   MeshDatagram{Port: PortClaim, Data: renewRecord(t, higherID, wire.CmdLeaseAck, a, wire.OrderNetwork, 1, 0, hw)},
			want: map[string]int64{"drop.wrong_port": 1}},
		{name: "UPDATECLAIM to another port",
			in:   MeshDatagram{Port: 5000, Data: updateClaim(t, higherID, 3)},
			want: map[string]int64{"drop.wrong_port": 1}},
		{name: "foreign prefix",
			in:   MeshDatagram{Port: PortClaim, Data: foreign(otherPrefix)},
			want: map[string]int64{"drop.foreign_swarm": 1}},
		{name: "foreign prefix length",
			in:   MeshDatagram{Port: PortClaim, Data: foreign(otherLen)},
			want: map[string]int64{"drop.foreign_swarm": 1}},
		{name: "foreign block size",
			in:   MeshDatagram{Port: PortClaim, Data: foreign(otherSize)},
			want: map[string]int64{"drop.foreign_swarm": 1}},
		{name: "RENEWLEASE of a foreign swarm",
			in: MeshDatagram{Port: PortRenew, Data: encode(t, wire.Message{
				Header: wire.Header{Node: higherID, Swarm: otherSize, Command: wire.CmdRenewLease}})},
			want: map[string]int64{"drop.foreign_swarm": 1}},
		{name: "SYNC of a foreign swarm",
			in:   MeshDatagram{Port: PortExt, Data: syncMsg(t, higherID, otherPrefix)},
			want: map[string]int64{"drop.foreign_swarm": 1}},
		{name: "UPDATECLAIM with our id",
			in:   MeshDatagram{Port: PortClaim, Data: updateClaim(t, ourID, 3)},
			want: map[string]int64{"drop.own_id": 1}},
		{name: "INQUIRE with our id",
			in:   MeshDatagram{Port: PortClaim, Data: inquire(t, ourID, 3)},
			want: map[string]int64{"drop.own_id": 1}},
		{name: "SYNC with our id",
			in:   MeshDatagram{Port: PortExt, Data: syncMsg(t, ourID, testSwarm)},
			want: map[string]int64{"drop.own_id": 1}},
		{name: "RENEWLEASE with our id",
			in:   MeshDatagram{Port: PortRenew, Data: renewRecord(t, ourID, wire.CmdRenewLease, a, wire.OrderNetwork, 1, 0, hw)},
			want: map[string]int64{"drop.own_id": 1}},
		{name: "RELEASE with our id",
			in:   MeshDatagram{Port: PortRenew, Data: renewRecord(t, ourID, wire.CmdRelease, a, wire.OrderNetwork, 1, 0, hw)},
			want: map[string]int64{"drop.own_id": 1}},
		// C nodes echo our record, our id included: an answer with our
		// id is admitted (and, with nothing pending, is unexpected).
		{name: "LEASEACK echoing our id",
			in:   MeshDatagram{Port: PortRenew, Data: renewRecord(t, ourID, wire.CmdLeaseAck, a, wire.OrderNetwork, 1, 300, hw)},
			want: map[string]int64{"roam.drop.unexpected_answer": 1}},
		{name: "LEASENAK echoing our id",
			in:   MeshDatagram{Port: PortRenew, Data: renewRecord(t, ourID, wire.CmdLeaseNak, a, wire.OrderNetwork, 1, 0, hw)},
			want: map[string]int64{"roam.drop.unexpected_answer": 1}},
		{name: "own id relayed with the overlay", mods: []func(*Config){overlayOn},
			in:   MeshDatagram{Port: PortClaim, Relayed: true, Data: updateClaim(t, ourID, 3)},
			want: map[string]int64{"overlay.own_echo": 1}},
		{name: "own SYNC relayed with the overlay", mods: []func(*Config){overlayOn},
			in:   MeshDatagram{Port: PortExt, Relayed: true, Data: syncMsg(t, ourID, testSwarm)},
			want: map[string]int64{"overlay.own_echo": 1}},
		{name: "own id not relayed with the overlay", mods: []func(*Config){overlayOn},
			in:   MeshDatagram{Port: PortClaim, Data: updateClaim(t, ourID, 3)},
			want: map[string]int64{"drop.own_id": 1}},
		{name: "own id relayed without the overlay",
			in:   MeshDatagram{Port: PortClaim, Relayed: true, Data: updateClaim(t, ourID, 3)},
			want: map[string]int64{"drop.own_id": 1}},
		{name: "extension of another version",
			in:   MeshDatagram{Port: PortExt, Data: patch(syncMsg(t, higherID, testSwarm), 0, 2)},
			want: map[string]int64{"drop.ext_malformed": 1}},
		{name: "extension shorter than its header",
			in:   MeshDatagram{Port: PortExt, Data: syncMsg(t, higherID, testSwarm)[:wire.ExtHeaderLen-1]},
			want: map[string]int64{"drop.ext_malformed": 1}},
		{name: "extension of an unknown type",
			in:   MeshDatagram{Port: PortExt, Data: patch(syncMsg(t, higherID, testSwarm), 1, 200)},
			want: map[string]int64{"drop.ext_unknown_type": 1}},
		{name: "overlay message without the overlay",
			in:   MeshDatagram{Port: PortExt, Data: patch(syncMsg(t, higherID, testSwarm), 1, wire.ExtHello)},
			want: map[string]int64{"drop.overlay_off": 1}},
		{name: "ROUTE without the overlay",
			in:   MeshDatagram{Port: PortExt, Data: patch(syncMsg(t, higherID, testSwarm), 1, wire.ExtRoute)},
			want: map[string]int64{"drop.overlay_off": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A node owning block 3, with nothing due at 1s.
			h := newHarness(t, append([]func(*Config){own(3)}, tt.mods...)...)
			now := 500 * time.Millisecond
			h.tick(now)
			if h.n.Next() <= now {
				t.Fatalf("the node has timers due at %v", h.n.Next())
			}
			before := h.n.Counters()
			blocksBefore := h.n.Engine().Blocks()
			in := tt.in
			if !in.Src.IsValid() {
				in.Src = netip.AddrPortFrom(peerAddr, in.Port)
			}
			in.Iface = "mesh0"
			if r := h.step(now, in); !reflect.DeepEqual(r, Ready{}) {
				t.Errorf("made ready: %+v", r)
			}
			want := map[string]int64{"mesh.rx": 1}
			for k, v := range tt.want {
				want[k] = v
			}
			if got := delta(before, h.n.Counters()); !reflect.DeepEqual(got, want) {
				t.Errorf("counters changed by %v, want %v", got, want)
			}
			if got := h.n.Engine().Blocks(); !reflect.DeepEqual(got, blocksBefore) {
				t.Errorf("block table changed: %+v, was %+v", got, blocksBefore)
			}
		})
	}
}

// A datagram that passes the checks reaches the engine: the counterpart of
// the drops above.
func TestMeshDatagramAccepted(t *testing.T) {
	h := newHarness(t)
	before := h.n.Counters()
	h.mesh(time.Second, peerAddr, PortClaim, updateClaim(t, higherID, 5, 6))
	h.mesh(time.Second, lowerAddr, PortClaim, inquire(t, lowerID, 9))
	want := map[string]int64{"mesh.rx": 2, "rx.updateclaim": 1, "rx.inquire": 1}
	if got := delta(before, h.n.Counters()); !reflect.DeepEqual(got, want) {
		t.Errorf("counters changed by %v, want %v", got, want)
	}
	for _, tt := range []struct {
		block uint32
		want  claim.BlockInfo
	}{
		{5, claim.BlockInfo{Index: 5, State: claim.Claimed, Owner: higherID, OwnerAddr: peerAddr, Timeout: 61 * time.Second}},
		{6, claim.BlockInfo{Index: 6, State: claim.Claimed, Owner: higherID, OwnerAddr: peerAddr, Timeout: 61 * time.Second}},
		{9, claim.BlockInfo{Index: 9, State: claim.Tentative, Timeout: 16 * time.Second}},
	} {
		if got := h.n.Engine().Block(tt.block); got != tt.want {
			t.Errorf("block %d: %+v, want %+v", tt.block, got, tt.want)
		}
	}
}

// syncs returns the SYNCs of rs, checking their form: multicast on the
// extension port on every mesh interface.
func syncs(t *testing.T, rs ...Ready) []Datagram {
	t.Helper()
	var out []Datagram
	for _, r := range rs {
		for _, d := range r.Mesh {
			if d.Class != ClassSync {
				continue
			}
			e, err := wire.DecodeExt(d.Data)
			if err != nil || e.Type != wire.ExtSync || e.Node != ourID || e.Swarm != testSwarm {
				t.Fatalf("SYNC %x: %+v, %v", d.Data, e, err)
			}
			if d.Port != PortExt || d.To.IsValid() || d.Iface != "" {
				t.Errorf("SYNC to port %d, %v, interface %q; want multicast on port %d on every interface", d.Port, d.To, d.Iface, PortExt)
			}
			out = append(out, d)
		}
	}
	return out
}

// syncTimes runs the node until until and returns when it sent SYNCs.
func syncTimes(t *testing.T, h *harness, until time.Duration) []time.Duration {
	t.Helper()
	var at []time.Duration
	for i := 0; ; i++ {
		next := max(h.n.Next(), h.now)
		if next > until || i > 10000 {
			break
		}
		for range syncs(t, h.tick(next)) {
			at = append(at, h.now)
		}
	}
	h.at(until)
	return at
}

// Fast join: no SYNC while no mesh link is up; the first link sends one at
// once and a second a second later, and no more.
func TestFastJoinSync(t *testing.T) {
	fastJoin := func(c *Config) { c.Claim.SyncQuiet = 2 * time.Second; c.Claim.LearningTime = time.Minute }
	h := newHarness(t, fastJoin)
	if got := syncTimes(t, h, 5*time.Second); len(got) != 0 {
		t.Fatalf("SYNCs at %v with no mesh link up", got)
	}
	if !h.n.Engine().Learning() {
		t.Fatal("learning ended without a SYNC or the learning time")
	}
	r := h.step(5*time.Second, LinkChange{Iface: "mesh0", Up: true})
	if n := len(syncs(t, r)); n != 1 {
		t.Fatalf("link up: %d SYNCs, want 1 at once", n)
	}
	if next := h.n.Next(); next > 6*time.Second {
		t.Errorf("Next %v after the first SYNC, want by 6s", next)
	}
	if got := syncTimes(t, h, 20*time.Second); !reflect.DeepEqual(got, []time.Duration{6 * time.Second}) {
		t.Errorf("SYNCs after the first at %v, want one at 6s", got)
	}
	if c := h.n.Counters(); c.TxSync != 2 {
		t.Errorf("TxSync %d, want 2", c.TxSync)
	}
	// Nobody answered: learning ended once the table was quiet for the
	// sync-quiet time after a SYNC, long before the learning time.
	if h.n.Engine().Learning() {
		t.Error("still learning 15s after the SYNCs")
	}

	// Without fast join (C-compatible learning) no SYNC is sent.
	h = newHarness(t)
	h.step(time.Second, LinkChange{Iface: "mesh0", Up: true})
	if got := syncTimes(t, h, 10*time.Second); len(got) != 0 {
		t.Errorf("SYNCs at %v with fast join off", got)
	}
}

// A link that goes down before the second SYNC holds it back until a link
// is up again, which sends it at once.
func TestFastJoinLinkDown(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Claim.SyncQuiet = 2 * time.Second; c.Claim.LearningTime = time.Minute })
	if n := len(syncs(t, h.step(time.Second, LinkChange{Iface: "mesh0", Up: true}))); n != 1 {
		t.Fatalf("%d SYNCs at link up, want 1", n)
	}
	h.step(1500*time.Millisecond, LinkChange{Iface: "mesh0", Up: false})
	if got := syncTimes(t, h, 4*time.Second); len(got) != 0 {
		t.Fatalf("SYNCs at %v with the link down", got)
	}
	if n := len(syncs(t, h.step(4*time.Second, LinkChange{Iface: "mesh1", Up: true}))); n != 1 {
		t.Fatalf("%d SYNCs when another link came up, want 1", n)
	}
	if got := syncTimes(t, h, 10*time.Second); len(got) != 0 {
		t.Errorf("SYNCs at %v after the second", got)
	}
	if c := h.n.Counters(); c.TxSync != 2 {
		t.Errorf("TxSync %d, want 2", c.TxSync)
	}
}

// A SYNC from a starting node makes us re-announce our blocks within the
// jitter, long before their periodic refresh.
func TestSyncReannounces(t *testing.T) {
	h := newHarness(t, own(3, 4))
	// Nothing announces the blocks again before the refresh (15s)...
	for _, r := range h.run(2 * time.Second) {
		if ms := decodeMesh(t, r); len(ms) > 0 {
			t.Fatalf("%d messages before any SYNC: %+v", len(ms), ms)
		}
	}
	r := h.mesh(2*time.Second, peerAddr, PortExt, syncMsg(t, higherID, testSwarm))
	if h.n.Counters().RxSync != 1 {
		t.Errorf("RxSync %d, want 1", h.n.Counters().RxSync)
	}
	// ...but a SYNC does, within its jitter (500 ms).
	rs := append([]Ready{r}, h.run(2500*time.Millisecond)...)
	claims := ofCommand(decodeMesh(t, rs...), wire.CmdUpdateClaim)
	if len(claims) != 1 {
		t.Fatalf("%d UPDATECLAIMs within 500 ms of the SYNC, want 1", len(claims))
	}
	want := []wire.Claim{{Block: 3, Lifetime: 60}, {Block: 4, Lifetime: 60}}
	if m := claims[0]; m.Node != ourID || !reflect.DeepEqual(m.Claims, want) {
		t.Errorf("UPDATECLAIM %+v, want blocks 3 and 4 from us", m)
	}
	for _, r := range rs {
		for _, d := range r.Mesh {
			if d.Port != PortClaim || d.To.IsValid() || d.Class != ClassClaim {
				t.Errorf("UPDATECLAIM sent as %+v, want multicast on port %d", d, PortClaim)
			}
		}
	}
}

// An INQUIRE for one of our blocks is answered at once with our claim.
func TestInquiryForOurBlockAnswered(t *testing.T) {
	h := newHarness(t, own(3))
	claims := ofCommand(decodeMesh(t, h.mesh(time.Second, lowerAddr, PortClaim, inquire(t, higherID, 3))), wire.CmdUpdateClaim)
	if len(claims) != 1 || !reflect.DeepEqual(claims[0].Claims, []wire.Claim{{Block: 3, Lifetime: 60}}) {
		t.Errorf("answer to an INQUIRE for our block: %+v, want our claim of block 3", claims)
	}
}

// Handover: a higher id claiming one of our blocks takes it; every live
// lease of the block is offered to the new owner with its time left, and
// the clients' renewals go to it from then on.
func TestHandover(t *testing.T) {
	h := newHarness(t, own(3), func(c *Config) { c.Hooks = true })
	a1 := h.dora(time.Second, mac(1), xid(1))
	a2 := h.dora(time.Second, mac(2), xid(2))
	a3 := h.dora(time.Second, mac(3), xid(3))
	// One released lease is not handed over.
	rel := dhcpMsg(t, dhcpv4.MessageTypeRelease, mac(3), xid(3), dhcpv4.WithClientIP(net.IP(a3.AsSlice())))
	h.client(2*time.Second, rel, false)

	r := h.mesh(11*time.Second, winnerAddr, PortClaim, updateClaim(t, higherID, 3))
	wantEv := []claim.Event{{Kind: claim.EventLost, Block: 3, Peer: higherID, PeerAddr: winnerAddr}}
	if !reflect.DeepEqual(r.Claims, wantEv) {
		t.Errorf("claim events %+v, want %+v", r.Claims, wantEv)
	}
	if !r.StateChanged {
		t.Error("losing a block does not change the state")
	}
	if want := [][]string{{"blocklost", "3", higherID.String()}}; !reflect.DeepEqual(r.Hooks, want) {
		t.Errorf("hooks %q, want %q", r.Hooks, want)
	}
	if got := h.n.Engine().Block(3); got.State != claim.Claimed || got.Owner != higherID {
		t.Errorf("block 3 is %v of %v, want claimed by %v", got.State, got.Owner, higherID)
	}
	renews := map[netip.Addr]wire.Renew{}
	for _, d := range r.Mesh {
		m, err := wire.Decode(d.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Command != wire.CmdRenewLease {
			t.Errorf("sent command %d, want only RENEWLEASEs", m.Command)
			continue
		}
		if d.To != netip.AddrPortFrom(winnerAddr, PortRenew) || d.Port != PortRenew || d.Class != ClassRenew {
			t.Errorf("RENEWLEASE sent as %+v, want unicast to %v port %d", d, winnerAddr, PortRenew)
		}
		if m.Node != ourID || m.Swarm != testSwarm {
			t.Errorf("RENEWLEASE header %+v", m.Header)
		}
		renews[m.Renew.Address(wire.OrderNetwork)] = m.Renew
	}
	if len(renews) != 2 || h.n.Counters().RoamHandover != 2 {
		t.Fatalf("handed over %v (counted %d), want %v and %v", renews, h.n.Counters().RoamHandover, a1, a2)
	}
	for a, hw := range map[netip.Addr][6]byte{a1: [6]byte(mac(1)), a2: [6]byte(mac(2))} {
		rn, ok := renews[a]
		if !ok {
			t.Errorf("lease of %v not handed over", a)
			continue
		}
		if [6]byte(rn.Chaddr[:6]) != hw {
			t.Errorf("lease of %v handed over for %x, want %x", a, rn.Chaddr[:6], hw)
		}
		// Granted at 1s for 300s: 290s are left at 11s.
		if rn.LeaseSeconds != 290 {
			t.Errorf("lease of %v handed over with %ds, want 290", a, rn.LeaseSeconds)
		}
	}

	// Nothing new is given out from the lost block: a new client gets
	// nothing (and the engine claims another block).
	r = h.client(12*time.Second, discover(t, mac(9), xid(9)), true)
	if len(r.Replies) != 0 {
		t.Errorf("new client offered %v from a lost block", yiaddr(decodeReply(t, r.Replies[0])))
	}
	// A client of the lost block renews: the new owner decides.
	r = h.client(13*time.Second, renewing(t, mac(1), xid(11), a1), false)
	var fw []Datagram
	for _, d := range r.Mesh {
		if d.Class == ClassRenew {
			fw = append(fw, d)
		}
	}
	if len(r.Replies) != 0 || len(fw) != 1 || fw[0].To != netip.AddrPortFrom(winnerAddr, PortRenew) {
		t.Fatalf("renewal after the handover: %d replies, %+v; want a RENEWLEASE to the new owner", len(r.Replies), fw)
	}
	if m := decodeMesh(t, Ready{Mesh: fw})[0]; m.Command != wire.CmdRenewLease || m.Renew.Address(wire.OrderNetwork) != a1 {
		t.Errorf("renewal after the handover forwarded as %+v", m)
	}
}

// A lower id claiming one of our blocks is answered at once with our claim;
// the block and its leases stay ours.
func TestDefendAgainstLowerID(t *testing.T) {
	h := newHarness(t, own(3))
	a := h.dora(time.Second, mac(1), xid(1))
	r := h.mesh(2*time.Second, lowerAddr, PortClaim, updateClaim(t, lowerID, 3))
	claims := ofCommand(decodeMesh(t, r), wire.CmdUpdateClaim)
	if len(claims) != 1 || !reflect.DeepEqual(claims[0].Claims, []wire.Claim{{Block: 3, Lifetime: 60}}) {
		t.Errorf("answer to a lower id's claim: %+v, want our claim of block 3", claims)
	}
	if len(ofCommand(decodeMesh(t, r), wire.CmdRenewLease)) != 0 || h.n.Counters().RoamHandover != 0 {
		t.Error("leases handed over to a lower id")
	}
	wantEv := []claim.Event{{Kind: claim.EventDefended, Block: 3, Peer: lowerID, PeerAddr: lowerAddr}}
	if !reflect.DeepEqual(r.Claims, wantEv) {
		t.Errorf("claim events %+v, want %+v", r.Claims, wantEv)
	}
	if got := h.n.Engine().Block(3).State; got != claim.Ours {
		t.Errorf("block 3 is %v, want ours", got)
	}
	if l := h.n.Leases().At(a); l == nil || !l.Holds() {
		t.Errorf("lease of %v gone: %+v", a, l)
	}
}
