package node

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/claim"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// The test mesh: a pool of 10.116.224.0/24 in 32 blocks of 8 addresses, a
// node in the middle of the id space, peers above and below it and a C node
// (id zero), all on the link-local segment of mesh0.
var (
	testPrefix = netip.MustParsePrefix("10.116.224.0/24")
	serverID   = netip.MustParseAddr("10.116.0.1") // outside the pool
	testSwarm  = wire.Swarm{Prefix: testPrefix.Addr(), PrefixLen: 24, BlockSize: 8}

	ourID    = wire.NodeID{0x80, 0, 0, 0, 0, 0, 0, 1}
	higherID = wire.NodeID{0x90, 0, 0, 0, 0, 0, 0, 2}
	lowerID  = wire.NodeID{0x10, 0, 0, 0, 0, 0, 0, 3}
	cNodeID  = wire.NodeID{} // C nodes send id zero

	peerAddr   = ll("fe80::2")
	lowerAddr  = ll("fe80::3")
	cNodeAddr  = ll("fe80::c")
	winnerAddr = ll("fe80::9")
)

// ll is a link-local address on mesh0.
func ll(s string) netip.Addr { return netip.MustParseAddr(s).WithZone("mesh0") }

func testPool(t *testing.T) *pool.Pool {
	t.Helper()
	p, err := pool.New(testPrefix, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testConfig is a node that claims only on demand (no spare leases), ends
// learning at its first tick, runs DHCP and no fast join.
func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		Node:  ourID,
		Pool:  testPool(t),
		Claim: claim.Config{SpareLeases: 0, LearningTime: 0},
		DHCP:  &dhcp4.Config{ServerID: serverID},
	}
}

// harness drives one node with explicit virtual times.
type harness struct {
	t   *testing.T
	n   *Node
	now time.Duration
}

// newHarness makes a node at time 0 and hands over what its first tick
// produced, so a test starts from a quiet node.
func newHarness(t *testing.T, mods ...func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(t)
	for _, m := range mods {
		m(&cfg)
	}
	n, err := New(cfg, rand.New(rand.NewPCG(1, 2)), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, n: n}
	h.tick(0)
	return h
}

func (h *harness) at(now time.Duration) {
	h.t.Helper()
	if now < h.now {
		h.t.Fatalf("time goes back from %v to %v", h.now, now)
	}
	h.now = now
}

// step steps the node at now and returns what it made ready.
func (h *harness) step(now time.Duration, in Input) Ready {
	h.t.Helper()
	h.at(now)
	h.n.Step(now, in)
	return h.n.Ready()
}

// tick ticks the node at now and returns what it made ready.
func (h *harness) tick(now time.Duration) Ready {
	h.t.Helper()
	h.at(now)
	h.n.Tick(now)
	return h.n.Ready()
}

// run ticks the node at every Next up to and including until, as a driver
// does, and returns everything it made ready, in order.
func (h *harness) run(until time.Duration) []Ready {
	h.t.Helper()
	var out []Ready
	h.runEach(until, func(_ time.Duration, r Ready) { out = append(out, r) })
	return out
}

// runEach is run calling fn with every Ready that is not empty and its
// time.
func (h *harness) runEach(until time.Duration, fn func(now time.Duration, r Ready)) {
	h.t.Helper()
	for i := 0; ; i++ {
		if i > 100000 {
			h.t.Fatalf("Next does not advance: %v", h.n.Next())
		}
		next := max(h.n.Next(), h.now)
		if next > until {
			break
		}
		if r := h.tick(next); !reflect.DeepEqual(r, Ready{}) {
			fn(next, r)
		}
	}
	h.at(until)
}

// mesh steps a datagram from src (link-local on mesh0) arriving on port.
func (h *harness) mesh(now time.Duration, src netip.Addr, port uint16, data []byte) Ready {
	h.t.Helper()
	return h.step(now, MeshDatagram{Src: netip.AddrPortFrom(src, port), Iface: "mesh0", Port: port, Data: data})
}

// client steps a DHCP message from a client on client0.
func (h *harness) client(now time.Duration, m *dhcpv4.DHCPv4, broadcast bool) Ready {
	h.t.Helper()
	src := netip.IPv4Unspecified()
	if a, ok := netip.AddrFromSlice(m.ClientIPAddr.To4()); ok && !a.IsUnspecified() {
		src = a
	}
	return h.step(now, ClientPacket{Iface: "client0", SrcIP: src, SrcMAC: m.ClientHWAddr, Broadcast: broadcast, Payload: m.ToBytes()})
}

// encode encodes a mesh message with the real codec.
func encode(t *testing.T, m wire.Message) []byte {
	t.Helper()
	if m.Swarm == (wire.Swarm{}) {
		m.Swarm = testSwarm
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func updateClaim(t *testing.T, id wire.NodeID, blocks ...uint32) []byte {
	t.Helper()
	m := wire.Message{Header: wire.Header{Node: id, Command: wire.CmdUpdateClaim}}
	for _, b := range blocks {
		m.Claims = append(m.Claims, wire.Claim{Block: b, Lifetime: 60})
	}
	return encode(t, m)
}

func inquire(t *testing.T, id wire.NodeID, blocks ...uint32) []byte {
	t.Helper()
	return encode(t, wire.Message{Header: wire.Header{Node: id, Command: wire.CmdInquire}, Inquiries: blocks})
}

func renewRecord(t *testing.T, id wire.NodeID, cmd uint8, a netip.Addr, o wire.AddrOrder, xid, secs uint32, hw net.HardwareAddr) []byte {
	t.Helper()
	m := wire.Message{Header: wire.Header{Node: id, Command: cmd}}
	m.Renew.SetAddress(a, o)
	m.Renew.Xid, m.Renew.LeaseSeconds = xid, secs
	copy(m.Renew.Chaddr[:], hw)
	return encode(t, m)
}

func syncMsg(t *testing.T, id wire.NodeID, s wire.Swarm) []byte {
	t.Helper()
	e := wire.Ext{Type: wire.ExtSync, Node: id, Swarm: s}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mac is a client MAC with hex letters, to see the hook's upper case.
func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0xab, 0xcd, 0xef, 0x00, last} }

func xid(n byte) dhcpv4.TransactionID { return dhcpv4.TransactionID{0xde, 0xad, 0, n} }

func xid32(x dhcpv4.TransactionID) uint32 {
	return uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])
}

// dhcpMsg builds a client message with the real codec.
func dhcpMsg(t *testing.T, mt dhcpv4.MessageType, hw net.HardwareAddr, x dhcpv4.TransactionID, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt), dhcpv4.WithTransactionID(x),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func discover(t *testing.T, hw net.HardwareAddr, x dhcpv4.TransactionID, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	return dhcpMsg(t, dhcpv4.MessageTypeDiscover, hw, x, mods...)
}

// renewing is a REQUEST in the RENEWING state: ciaddr set, no option 50/54.
func renewing(t *testing.T, hw net.HardwareAddr, x dhcpv4.TransactionID, a netip.Addr) *dhcpv4.DHCPv4 {
	t.Helper()
	return dhcpMsg(t, dhcpv4.MessageTypeRequest, hw, x, dhcpv4.WithClientIP(net.IP(a.AsSlice())))
}

// selecting is a REQUEST in the SELECTING state for a, answering our offer.
func selecting(t *testing.T, hw net.HardwareAddr, x dhcpv4.TransactionID, a netip.Addr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	return dhcpMsg(t, dhcpv4.MessageTypeRequest, hw, x, append([]dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(serverID.AsSlice()))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(a.AsSlice()))),
	}, mods...)...)
}

// decodeReply decodes a DHCP reply of Ready.
func decodeReply(t *testing.T, r Reply) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.FromBytes(r.Data)
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if m.MessageType() != dhcpv4.MessageType(r.Type) {
		t.Fatalf("reply is a %v, Type says %v", m.MessageType(), dhcpv4.MessageType(r.Type))
	}
	return m
}

func yiaddr(m *dhcpv4.DHCPv4) netip.Addr {
	a, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
	return a
}

// decodeMesh decodes the claim or renew-family datagrams of rs.
func decodeMesh(t *testing.T, rs ...Ready) []wire.Message {
	t.Helper()
	var out []wire.Message
	for _, r := range rs {
		for _, d := range r.Mesh {
			if d.Port == PortExt {
				continue
			}
			m, err := wire.Decode(d.Data)
			if err != nil {
				t.Fatalf("datagram to port %d does not decode: %v", d.Port, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// ofCommand keeps the messages with command cmd.
func ofCommand(ms []wire.Message, cmd uint8) []wire.Message {
	return slices.DeleteFunc(slices.Clone(ms), func(m wire.Message) bool { return m.Command != cmd })
}

func replies(rs ...Ready) []Reply {
	var out []Reply
	for _, r := range rs {
		out = append(out, r.Replies...)
	}
	return out
}

func claimEvents(rs ...Ready) []claim.Event {
	var out []claim.Event
	for _, r := range rs {
		out = append(out, r.Claims...)
	}
	return out
}

// delta is what changed between two snapshots of the counters, by name.
func delta(before, after Counters) map[string]int64 {
	b, a := before.Map(), after.Map()
	out := map[string]int64{}
	for k, v := range a {
		if v != b[k] {
			out[k] = int64(v) - int64(b[k])
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out[k] = -int64(v)
		}
	}
	return out
}

// own makes block idx ours at once, as a state file saved a moment ago
// does.
func own(blocks ...uint32) func(*Config) {
	return func(c *Config) { c.Saved = &Saved{From: "test", Blocks: blocks} }
}

// dora gets hw a lease from the node through DISCOVER, OFFER, REQUEST,
// ACK and returns its address.
func (h *harness) dora(now time.Duration, hw net.HardwareAddr, x dhcpv4.TransactionID, mods ...dhcpv4.Modifier) netip.Addr {
	h.t.Helper()
	r := h.client(now, discover(h.t, hw, x, mods...), true)
	if len(r.Replies) != 1 {
		h.t.Fatalf("DISCOVER from %v: %d replies", hw, len(r.Replies))
	}
	offer := decodeReply(h.t, r.Replies[0])
	if offer.MessageType() != dhcpv4.MessageTypeOffer {
		h.t.Fatalf("DISCOVER from %v answered with %v", hw, offer.MessageType())
	}
	a := yiaddr(offer)
	r = h.client(now, selecting(h.t, hw, x, a, mods...), true)
	if len(r.Replies) != 1 {
		h.t.Fatalf("REQUEST from %v: %d replies", hw, len(r.Replies))
	}
	if ack := decodeReply(h.t, r.Replies[0]); ack.MessageType() != dhcpv4.MessageTypeAck || yiaddr(ack) != a {
		h.t.Fatalf("REQUEST from %v for %v: %v for %v", hw, a, ack.MessageType(), yiaddr(ack))
	}
	return a
}

func TestNewNeedsPool(t *testing.T) {
	if _, err := New(Config{Node: ourID}, rand.New(rand.NewPCG(1, 2)), 0); err == nil {
		t.Fatal("New without a pool: no error")
	}
	cfg := testConfig(t)
	cfg.DHCP = &dhcp4.Config{} // no server id
	if _, err := New(cfg, rand.New(rand.NewPCG(1, 2)), 0); err == nil {
		t.Fatal("New with a DHCP server without server id: no error")
	}
}

// Ready hands over everything once: afterwards HasReady is false and a
// second Ready is empty.
func TestReadyHandsOverAndEmpties(t *testing.T) {
	h := newHarness(t, own(3))
	h.n.Step(time.Second, ClientPacket{Iface: "client0", SrcIP: netip.IPv4Unspecified(), SrcMAC: mac(1), Broadcast: true,
		Payload: discover(t, mac(1), xid(1)).ToBytes()})
	h.now = time.Second
	if !h.n.HasReady() {
		t.Fatal("HasReady false after a DISCOVER that was offered an address")
	}
	r := h.n.Ready()
	if len(r.Replies) != 1 || r.Replies[0].Type != uint8(dhcpv4.MessageTypeOffer) {
		t.Fatalf("Ready: %d replies, want the OFFER", len(r.Replies))
	}
	if rep := r.Replies[0]; rep.Iface != "client0" || rep.ServerID != serverID {
		t.Errorf("OFFER goes out on %q from %v, want client0 from %v", rep.Iface, rep.ServerID, serverID)
	}
	if h.n.HasReady() {
		t.Error("HasReady true after Ready")
	}
	if again := h.n.Ready(); !reflect.DeepEqual(again, Ready{}) {
		t.Errorf("second Ready is not empty: %+v", again)
	}
	// The lease makes the state file out of date, once.
	a := yiaddr(decodeReply(t, r.Replies[0]))
	h.n.Step(time.Second, ClientPacket{Iface: "client0", SrcIP: netip.IPv4Unspecified(), SrcMAC: mac(1), Broadcast: true,
		Payload: selecting(t, mac(1), xid(1), a).ToBytes()})
	if !h.n.HasReady() {
		t.Fatal("HasReady false after a REQUEST that was ACKed")
	}
	if r := h.n.Ready(); !r.StateChanged || len(r.Replies) != 1 {
		t.Errorf("ACK: StateChanged %v, %d replies; want true, 1", r.StateChanged, len(r.Replies))
	}
	if h.n.HasReady() || h.n.Ready().StateChanged {
		t.Error("StateChanged survives Ready")
	}
}

// The hook's arguments are in Ready only when the driver runs a hook; a
// lease event names the MAC in upper case, as the C ddhcpd's hook does.
func TestHookArguments(t *testing.T) {
	tests := []struct {
		name  string
		hooks bool
		mods  []dhcpv4.Modifier
		want  [][]string // the hook runs of a DORA, blockowned and endlearning aside
	}{
		{name: "no hook", hooks: false},
		{name: "lease", hooks: true, want: [][]string{{"lease", "ADDR", "02:AB:CD:EF:00:01"}}},
		{name: "lease with hostname", hooks: true, mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptHostName("laptop"))},
			want: [][]string{{"lease", "ADDR", "02:AB:CD:EF:00:01", "laptop"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Hooks = tt.hooks
			n, err := New(cfg, rand.New(rand.NewPCG(1, 2)), 0)
			if err != nil {
				t.Fatal(err)
			}
			h := &harness{t: t, n: n}
			var all []Ready
			all = append(all, h.tick(0))
			// A DISCOVER without a block claims one; the parked
			// DISCOVER is offered an address once it is ours.
			all = append(all, h.client(time.Second, discover(t, mac(1), xid(1), tt.mods...), true))
			all = append(all, h.run(5*time.Second)...)
			offers := replies(all...)
			if len(offers) != 1 {
				t.Fatalf("%d replies to the parked DISCOVER, want 1 OFFER", len(offers))
			}
			a := yiaddr(decodeReply(t, offers[0]))
			r := h.client(5*time.Second, selecting(t, mac(1), xid(1), a, tt.mods...), true)
			if len(r.Replies) != 1 || r.Replies[0].Type != uint8(dhcpv4.MessageTypeAck) {
				t.Fatalf("REQUEST for %v not ACKed", a)
			}
			all = append(all, r)
			var hooks, other [][]string
			for _, r := range all {
				for _, args := range r.Hooks {
					switch args[0] {
					case "blockowned", "endlearning":
						other = append(other, args)
					default:
						hooks = append(hooks, args)
					}
				}
			}
			for _, w := range tt.want {
				for i := range w {
					if w[i] == "ADDR" {
						w[i] = a.String()
					}
				}
			}
			if !reflect.DeepEqual(hooks, tt.want) {
				t.Errorf("lease hooks %q, want %q", hooks, tt.want)
			}
			if !tt.hooks && len(other) > 0 {
				t.Errorf("hooks off but Ready carries %q", other)
			}
			if tt.hooks {
				owned := ourBlocks(claimEvents(all...))
				want := [][]string{{"endlearning"}, {"blockowned", itoa(owned[0]), testPool(t).Addr(owned[0], 0).String()}}
				if !reflect.DeepEqual(other, want) {
					t.Errorf("engine hooks %q, want %q", other, want)
				}
			}
		})
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// ourBlocks lists the blocks the events say became ours.
func ourBlocks(evs []claim.Event) []uint32 {
	var out []uint32
	for _, ev := range evs {
		if ev.Kind == claim.EventOwned {
			out = append(out, ev.Block)
		}
	}
	return out
}

// SetOptions and SetLeaseTime change what the DHCP server answers.
func TestSetOptionsAndLeaseTime(t *testing.T) {
	h := newHarness(t, own(3))
	ntp := dhcp4.Option{Code: 42, Data: []byte{10, 116, 0, 5}, Always: true}
	opts := []dhcp4.Option{ntp}
	if r := h.step(time.Second, SetOptions{Options: opts}); !reflect.DeepEqual(r, Ready{}) {
		t.Errorf("SetOptions made something ready: %+v", r)
	}
	opts[0].Code = 99 // the server keeps its own copy
	if got := h.n.DHCP().Config().Options; !reflect.DeepEqual(got, []dhcp4.Option{ntp}) {
		t.Errorf("options in force %+v, want %+v", got, []dhcp4.Option{ntp})
	}
	h.step(time.Second, SetLeaseTime{LeaseTime: 10 * time.Minute})
	if got := h.n.DHCP().Config().LeaseTime; got != 10*time.Minute {
		t.Errorf("lease time in force %v, want 10m", got)
	}

	r := h.client(2*time.Second, discover(t, mac(1), xid(1)), true)
	if len(r.Replies) != 1 {
		t.Fatal("DISCOVER not offered an address")
	}
	offer := decodeReply(t, r.Replies[0])
	if got := offer.Options.Get(dhcpv4.GenericOptionCode(42)); !reflect.DeepEqual(got, ntp.Data) {
		t.Errorf("OFFER option 42 = %v, want %v", got, ntp.Data)
	}
	if got := offer.IPAddressLeaseTime(0); got != 10*time.Minute {
		t.Errorf("OFFER lease time %v, want 10m", got)
	}
	r = h.client(2*time.Second, selecting(t, mac(1), xid(1), yiaddr(offer)), true)
	if len(r.Replies) != 1 {
		t.Fatal("REQUEST not answered")
	}
	if got := decodeReply(t, r.Replies[0]).IPAddressLeaseTime(0); got != 10*time.Minute {
		t.Errorf("ACK lease time %v, want 10m", got)
	}
	if l := h.n.Leases().At(yiaddr(offer)); l == nil || l.Expires != 2*time.Second+10*time.Minute {
		t.Errorf("lease %+v, want one ending at 10m2s", l)
	}

	// Without DHCP (-S) both are ignored, and nothing breaks.
	h = newHarness(t, func(c *Config) { c.DHCP = nil })
	h.step(time.Second, SetOptions{Options: opts})
	h.step(time.Second, SetLeaseTime{LeaseTime: time.Minute})
	if h.n.DHCP() != nil || h.n.HasReady() {
		t.Error("a node without DHCP has a server or something ready")
	}
	r = h.client(time.Second, discover(t, mac(1), xid(1)), true)
	if !reflect.DeepEqual(r, Ready{}) || h.n.Counters().DHCPRx != 0 {
		t.Errorf("a node without DHCP handled a client packet: %+v", r)
	}
}

// Malformed client packets are counted and dropped.
func TestClientPacketChecks(t *testing.T) {
	h := newHarness(t, own(3))
	before := h.n.Counters()
	r := h.step(time.Second, ClientPacket{Iface: "client0", SrcMAC: mac(1), Broadcast: true, Payload: []byte{1, 2, 3}})
	if !reflect.DeepEqual(r, Ready{}) {
		t.Errorf("a malformed client packet made something ready: %+v", r)
	}
	if d := delta(before, h.n.Counters()); !reflect.DeepEqual(d, map[string]int64{"dhcp.rx": 1, "dhcp.drop.malformed": 1}) {
		t.Errorf("counters changed by %v", d)
	}
	// A unicast DISCOVER counts as unicast and by type.
	h.client(2*time.Second, discover(t, mac(2), xid(2)), false)
	c := h.n.Counters()
	if c.DHCPRxUnicast != 1 || c.DHCPRxType[dhcpv4.MessageTypeDiscover] != 1 || c.DHCPTxType[dhcpv4.MessageTypeOffer] != 1 {
		t.Errorf("unicast %d, DISCOVERs %d, OFFERs %d; want 1 each", c.DHCPRxUnicast, c.DHCPRxType[dhcpv4.MessageTypeDiscover], c.DHCPTxType[dhcpv4.MessageTypeOffer])
	}
}

// Two nodes made with the same seed and stepped with the same inputs decide
// the same, output for output: nothing in Ready may depend on the order of a
// map's iteration. The script parks several clients, forwards several
// renewals whose timers fall due together, answers some, hands leases over
// and replays SYNCs.
func TestDeterminism(t *testing.T) {
	first, firstC := scriptedRun(t)
	if len(first) < 10 {
		t.Fatalf("the script made only %d Readys", len(first))
	}
	// The script does what it says.
	for name, min := range map[string]uint64{
		"dhcp.parked_answered": 4, "roam.forwarded": 6, "roam.duplicate": 1, "roam.ack": 2,
		"roam.retry_other_order": 4, "roam.drop.no_answer": 4, "roam.handover": 4, "rx.sync": 1,
	} {
		if got := firstC.Map()[name]; got < min {
			t.Errorf("the script counted %s %d times, want at least %d", name, got, min)
		}
	}
	for i := range 5 {
		got, c := scriptedRun(t)
		if !reflect.DeepEqual(got, first) {
			for j := range min(len(got), len(first)) {
				if !reflect.DeepEqual(got[j], first[j]) {
					t.Fatalf("run %d: Ready %d differs:\n%+v\nwant\n%+v", i+2, j, got[j], first[j])
				}
			}
			t.Fatalf("run %d: %d Readys, first run %d", i+2, len(got), len(first))
		}
		if !reflect.DeepEqual(c, firstC) {
			t.Fatalf("run %d: counters differ", i+2)
		}
	}
}

func scriptedRun(t *testing.T) ([]Ready, Counters) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Hooks = true
	cfg.Claim.SyncQuiet = 2 * time.Second
	n, err := New(cfg, rand.New(rand.NewPCG(7, 9)), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, n: n}
	var out []Ready
	keep := func(r ...Ready) { out = append(out, r...) }

	keep(h.step(0, LinkChange{Iface: "mesh0", Up: true}))
	// Peers own blocks 5 and 6, a C node block 7.
	keep(h.mesh(100*time.Millisecond, peerAddr, PortClaim, updateClaim(t, higherID, 5)))
	keep(h.mesh(100*time.Millisecond, lowerAddr, PortClaim, updateClaim(t, lowerID, 6)))
	keep(h.mesh(100*time.Millisecond, cNodeAddr, PortClaim, updateClaim(t, cNodeID, 7)))
	keep(h.run(3 * time.Second)...)

	// Four new clients: parked until a block is ours.
	for i := range 4 {
		keep(h.client(3*time.Second+time.Duration(i)*10*time.Millisecond, discover(t, mac(byte(10+i)), xid(byte(10+i))), true))
	}
	// Six roamed clients renew at once: six forwards whose timers fall
	// due in the same ticks.
	p := testPool(t)
	at := 3100 * time.Millisecond
	for i := range 6 {
		a := p.Addr(uint32(5+i%3), 1+i)
		keep(h.client(at, renewing(t, mac(byte(20+i)), xid(byte(20+i)), a), false))
	}
	// A client repeats its request while it is pending.
	keep(h.client(3120*time.Millisecond, renewing(t, mac(21), xid(21), p.Addr(6, 2)), false))
	// One owner answers one of them; the C node answers one in its order.
	keep(h.mesh(3150*time.Millisecond, peerAddr, PortRenew,
		renewRecord(t, higherID, wire.CmdLeaseAck, p.Addr(5, 1), wire.OrderNetwork, xid32(xid(20)), 120, mac(20))))
	keep(h.run(3350 * time.Millisecond)...)
	keep(h.mesh(3360*time.Millisecond, cNodeAddr, PortRenew,
		renewRecord(t, ourID, wire.CmdLeaseAck, p.Addr(7, 3), wire.OrderReversed, xid32(xid(22)), 120, mac(22))))
	keep(h.run(8 * time.Second)...)

	// The parked clients take their offers; then a higher id takes every
	// block we own, and we hand the leases over.
	for _, r := range out {
		for _, rep := range r.Replies {
			m := decodeReply(t, rep)
			if m.MessageType() == dhcpv4.MessageTypeOffer {
				keep(h.client(8*time.Second, selecting(t, m.ClientHWAddr, m.TransactionID, yiaddr(m)), true))
			}
		}
	}
	keep(h.mesh(9*time.Second, winnerAddr, PortClaim, updateClaim(t, higherID, h.n.Engine().Owned()...)))
	keep(h.mesh(9*time.Second, peerAddr, PortExt, syncMsg(t, higherID, testSwarm)))
	// The lost clients renew: forwarded to the winner.
	for _, l := range h.n.Leases().Leases() {
		keep(h.client(9500*time.Millisecond, renewing(t, l.HW, xid(byte(40+l.HW[5])), l.Addr), false))
	}
	keep(h.run(20 * time.Second)...)
	return out, h.n.Counters()
}
