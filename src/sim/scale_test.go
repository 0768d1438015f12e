package sim

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/claim"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/node"
	"ddhcpd/src/overlay"
)

// scaleClient is a DHCP client of the scale runs: it asks its router until
// it holds an address, then renews at T1 by unicast, as udhcpc does.
type scaleClient struct {
	router  int
	hw      net.HardwareAddr
	xid     uint32
	addr    netip.Addr // bound address; invalid until bound
	server  netip.Addr
	boundAt time.Duration
	asked   time.Duration // last DISCOVER or REQUEST
}

// scaleRun is a mesh of routers with DHCP, each serving a few clients.
type scaleRun struct {
	n       *Network
	clients []*scaleClient
	byHW    map[string]*scaleClient
	bound   int
	naks    int
}

const (
	scaleLease = 10 * time.Minute
	scaleRetry = 2 * time.Second
)

// newScaleRun builds nodes routers with perRouter clients each; every
// router has its own server identifier outside the pool.
func newScaleRun(b *testing.B, cfg Config, perRouter int) *scaleRun {
	s := &scaleRun{byHW: map[string]*scaleClient{}}
	cfg.NodeConfig = func(i int, c *node.Config) {
		c.DHCP = &dhcp4.Config{
			ServerID:  netip.AddrFrom4([4]byte{172, 31, byte(i >> 8), byte(i)}),
			LeaseTime: scaleLease,
			Reserve:   2,
		}
	}
	cfg.OnReady = s.onReady
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s.n = n
	for i := range cfg.Nodes {
		for k := range perRouter {
			cl := &scaleClient{router: i, hw: net.HardwareAddr{2, 0, byte(i >> 8), byte(i), byte(k), 1}, xid: uint32(i<<8 | k)}
			s.clients = append(s.clients, cl)
			s.byHW[string(cl.hw)] = cl
		}
	}
	return s
}

// startClients makes every client ask from at on, and again every
// scaleRetry while it holds nothing, and renew at T1 once bound.
func (s *scaleRun) startClients(at time.Duration) {
	for _, cl := range s.clients {
		s.n.At(at, func() { s.tick(cl) })
	}
}

func (s *scaleRun) tick(cl *scaleClient) {
	now := s.n.Now()
	switch {
	case !cl.addr.IsValid():
		cl.xid++
		s.send(cl, dhcpv4.MessageTypeDiscover, netip.Addr{})
		s.n.At(now+scaleRetry, func() { s.tick(cl) })
	case now >= cl.boundAt+scaleLease/2:
		cl.xid++
		s.send(cl, dhcpv4.MessageTypeRequest, cl.addr)
		s.n.At(now+scaleRetry, func() { s.tick(cl) })
	default:
		s.n.At(cl.boundAt+scaleLease/2, func() { s.tick(cl) })
	}
}

func (s *scaleRun) send(cl *scaleClient, mt dhcpv4.MessageType, ciaddr netip.Addr, opts ...dhcpv4.Modifier) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(cl.hw), dhcpv4.WithMessageType(mt),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{byte(cl.xid >> 24), byte(cl.xid >> 16), byte(cl.xid >> 8), byte(cl.xid)}),
	}
	bcast := !ciaddr.IsValid()
	if !bcast {
		mods = append(mods, dhcpv4.WithClientIP(ciaddr.AsSlice()))
	}
	m, err := dhcpv4.New(append(mods, opts...)...)
	if err != nil {
		panic(err)
	}
	src := netip.IPv4Unspecified()
	if !bcast {
		src = ciaddr
	}
	cl.asked = s.n.Now()
	s.n.Client(cl.router, node.ClientPacket{Iface: "client0", SrcIP: src, SrcMAC: cl.hw, Broadcast: bcast, Payload: m.ToBytes()})
}

// onReady hands a router's replies to its clients.
func (s *scaleRun) onReady(i int, rd node.Ready) {
	for _, r := range rd.Replies {
		m, err := dhcpv4.FromBytes(r.Data)
		if err != nil {
			panic(fmt.Sprintf("router %d sent an unreadable reply: %v", i, err))
		}
		cl := s.byHW[string(m.ClientHWAddr)]
		if cl == nil || cl.router != i {
			continue
		}
		yiaddr, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
		switch m.MessageType() {
		case dhcpv4.MessageTypeOffer:
			if !cl.addr.IsValid() {
				sid, _ := netip.AddrFromSlice(m.ServerIdentifier().To4())
				cl.server = sid
				s.n.At(s.n.Now()+time.Millisecond, func() {
					s.send(cl, dhcpv4.MessageTypeRequest, netip.Addr{},
						dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(yiaddr.AsSlice())),
						dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid.AsSlice())))
				})
			}
		case dhcpv4.MessageTypeAck:
			if !cl.addr.IsValid() {
				s.bound++
			}
			cl.addr, cl.boundAt = yiaddr, s.n.Now()
		case dhcpv4.MessageTypeNak:
			s.naks++
			if cl.addr.IsValid() {
				s.bound--
			}
			cl.addr = netip.Addr{}
		}
	}
}

// duplicates lists addresses held by two clients at once.
func (s *scaleRun) duplicates() []string {
	holder := map[netip.Addr]*scaleClient{}
	var out []string
	for _, cl := range s.clients {
		if !cl.addr.IsValid() {
			continue
		}
		if o := holder[cl.addr]; o != nil {
			out = append(out, fmt.Sprintf("%v held by %v and %v", cl.addr, o.hw, cl.hw))
		}
		holder[cl.addr] = cl
	}
	return out
}

// blocksOwnedTwice lists blocks that two live nodes own.
func (s *scaleRun) blocksOwnedTwice() []uint32 {
	seen := map[uint32]bool{}
	var twice []uint32
	for i := range s.n.N() {
		if e := s.n.Engine(i); e != nil {
			for _, b := range e.Owned() {
				if seen[b] {
					twice = append(twice, b)
				}
				seen[b] = true
			}
		}
	}
	slices.Sort(twice)
	return twice
}

// scaleResult is what one scale run measured.
type scaleResult struct {
	converge       time.Duration // first start until every client holds an address
	spread         time.Duration // over which the routers started
	msgs, bytes    float64       // per node per minute, steady state
	maxDatagram    int
	tooBig, noLink uint64
	overflow       uint64
	joinMsgs       float64 // per node, until every client held an address
	naks           int
}

// runScale starts the routers spread over spread, starts the clients once
// the routers run, waits until every client holds an address, measures
// steady, and checks the invariants after the run: no address held by two
// clients and, once quiet, no block owned twice.
func runScale(b *testing.B, s *scaleRun, spread, steady time.Duration, seed uint64) scaleResult {
	n := s.n
	starts := newRand(derive(seed, 0x5ca1e))
	for i := range n.N() {
		n.At(time.Duration(starts.Int64N(int64(spread))), func() {
			if err := n.Start(i); err != nil {
				b.Fatal(err)
			}
		})
	}
	s.startClients(spread)
	limit := spread + 20*time.Minute
	if !n.RunUntilEvery(func() bool { return s.bound == len(s.clients) }, time.Second, limit) {
		b.Fatalf("after %v only %d of %d clients hold an address", n.Now(), s.bound, len(s.clients))
	}
	res := scaleResult{converge: n.Now(), spread: spread, joinMsgs: float64(n.Total().Sent) / float64(n.N())}
	before := n.Total()
	n.RunFor(steady)
	after := n.Total()
	perMin := steady.Minutes() * float64(n.N())
	res.msgs = float64(after.Sent-before.Sent) / perMin
	res.bytes = float64(after.SentBytes-before.SentBytes) / perMin
	res.maxDatagram, res.tooBig, res.noLink, res.naks = after.MaxSent, after.TooBig, after.NoLink, s.naks
	res.overflow = after.Overflow
	if d := s.duplicates(); len(d) > 0 {
		b.Fatalf("%d addresses held by two clients, first: %s", len(d), d[0])
	}
	// Quiet: no loss for two block timeouts, then every block has one owner.
	if err := n.SetLoss(0); err != nil {
		b.Fatal(err)
	}
	n.RunFor(2 * n.Engine(0).Config().BlockTimeout)
	if twice := s.blocksOwnedTwice(); len(twice) > 0 {
		b.Fatalf("blocks owned twice after quiet: %v", twice)
	}
	if d := s.duplicates(); len(d) > 0 {
		b.Fatalf("%d addresses held by two clients after quiet, first: %s", len(d), d[0])
	}
	return res
}

func reportScale(b *testing.B, res scaleResult) {
	b.ReportMetric(res.converge.Seconds(), "sim-s-to-all-leased")
	b.ReportMetric((res.converge - res.spread).Seconds(), "sim-s-after-last-start")
	b.ReportMetric(res.joinMsgs, "join-msgs/node")
	b.ReportMetric(res.msgs, "msgs/node/min")
	b.ReportMetric(res.bytes, "bytes/node/min")
	b.ReportMetric(float64(res.maxDatagram), "max-datagram-bytes")
	b.ReportMetric(float64(res.tooBig), "over-mtu")
	b.ReportMetric(float64(res.naks), "naks")
	b.ReportMetric(float64(res.overflow), "rx-overflow")
}

// scaleSizes are the mesh sizes of the scale benchmarks; SCALE_NODES=1000
// (make bench) is the headline, the default keeps a plain -bench run short.
func scaleSizes() []int { return envSizes("SCALE_NODES", []int{100}) }

// BenchmarkScaleLayer2 is a batman-adv mesh: every router hears every
// multicast (latency 1-20 ms, 1 % loss), each serves two clients, routers
// start within a minute. ns/op is the wall time of one whole simulated run.
func BenchmarkScaleLayer2(b *testing.B) {
	for _, nodes := range scaleSizes() {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var res scaleResult
			for i := 0; i < b.N; i++ {
				s := newScaleRun(b, Config{
					Nodes: nodes, Pool: netip.MustParsePrefix("10.0.0.0/16"), SizeExp: 4,
					Claim:      claim.Config{SpareLeases: 4},
					LatencyMin: time.Millisecond, LatencyMax: 20 * time.Millisecond, Loss: 0.01,
					Seed: uint64(i + 1),
				}, 2)
				res = runScale(b, s, time.Minute, 3*time.Minute, uint64(i+1))
			}
			reportScale(b, res)
		})
	}
}

// BenchmarkScaleRouted is a routed mesh with the overlay: a random geometric
// graph (about 6 neighbours each), latency 1-100 ms, 5 % loss, two clients
// per router, routers start within a minute.
func BenchmarkScaleRouted(b *testing.B) {
	for _, nodes := range scaleSizes() {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var res scaleResult
			for i := 0; i < b.N; i++ {
				seed := uint64(i + 1)
				s := newScaleRun(b, Config{
					Nodes: nodes, Pool: netip.MustParsePrefix("10.0.0.0/16"), SizeExp: 4,
					Claim:      claim.Config{SpareLeases: 4},
					Overlay:    &overlay.Config{},
					Links:      GeometricGraph(newRand(seed), nodes, 6),
					LatencyMin: time.Millisecond, LatencyMax: 100 * time.Millisecond, Loss: 0.05,
					Seed: seed,
				}, 2)
				res = runScale(b, s, time.Minute, 3*time.Minute, seed)
			}
			reportScale(b, res)
		})
	}
}

// envSizes reads a comma-separated list of sizes from the environment.
func envSizes(name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 2 {
			panic(fmt.Sprintf("%s=%q: want sizes of 2 nodes or more", name, v))
		}
		out = append(out, k)
	}
	return out
}
