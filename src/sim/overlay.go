package sim

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// OverlayNet simulates overlay nodes (package overlay) on a routed mesh: a
// graph whose links join one interface of each end, so a HELLO multicast on
// an interface reaches only the nodes linked to it, and a unicast reaches
// only a neighbour on that interface. Every datagram goes through the wire
// codec. Each copy has its own latency, loss and duplication, drawn from the
// sender's stream of the run's seed; nodes crash and restart, and links go
// down and up (partitions and merges), at the current virtual time or at a
// time scheduled with At. Like Network, a run is reproduced exactly by its
// configuration and seed, and nothing here reads the clock or the global
// random source.
type OverlayNet struct {
	cfg   OverlayConfig
	swarm wire.Swarm
	nodes []*onode
	links []olink
	ports [][][]int // node -> interface -> link indexes
	q     oqueue
	now   time.Duration
	seq   uint64

	anomalies []string
	nAnomaly  int
	traffic   OverlayTraffic
}

// OverlayLink joins interface IfA of node A and interface IfB of node B.
type OverlayLink struct {
	A, B     int
	IfA, IfB int
}

// OverlayConfig describes an overlay run.
type OverlayConfig struct {
	Nodes int
	Links []OverlayLink

	// Overlay is the template of every node's configuration; the simulator
	// sets Node, Swarm, Interfaces and Epoch (from the virtual time, so it
	// grows across restarts).
	Overlay overlay.Config

	LatencyMin, LatencyMax time.Duration
	Loss, Dup              float64
	Seed                   uint64

	// Observe, when set, is called for every overlay event.
	Observe func(at time.Duration, node int, ev overlay.Event)
	// Trace, when set, receives one line per datagram and fault.
	Trace func(line string)
}

// OverlayTraffic counts datagrams by overlay type.
type OverlayTraffic struct {
	Sent, Bytes [wire.ExtDissolve + 1]uint64
	Delivered   uint64
	Lost        uint64 // copies lost on the link
	Dropped     uint64 // copies for a node that was down, restarted, or whose link went down
	NoLink      uint64 // unicasts to an address no up link leads to
	Largest     int    // the largest datagram sent, in bytes
	Oversize    uint64 // datagrams over wire.MaxDatagram, dropped by the sender (an anomaly)
}

// Total is the number of datagrams and bytes sent, all types.
func (t OverlayTraffic) Total() (msgs, bytes uint64) {
	for i := range t.Sent {
		msgs += t.Sent[i]
		bytes += t.Bytes[i]
	}
	return msgs, bytes
}

type onode struct {
	id     wire.NodeID
	ifaces []string
	up     bool
	life   int
	node   *overlay.Node
	link   *rand.Rand // latency, loss and duplication of what the node sends
	tick   *oevent
}

type olink struct {
	OverlayLink
	up bool
}

// Random streams of the overlay simulator, apart from the claim ones.
const (
	streamOverlayID = iota + 101
	streamOverlayLink
	streamOverlayNode
)

// NewOverlay builds an overlay network whose nodes are all down and whose
// links are all up.
func NewOverlay(cfg OverlayConfig) (*OverlayNet, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("sim: %d nodes", cfg.Nodes)
	}
	if cfg.LatencyMin < 0 || cfg.LatencyMax < cfg.LatencyMin {
		return nil, fmt.Errorf("sim: latency range [%v, %v]", cfg.LatencyMin, cfg.LatencyMax)
	}
	if !(cfg.Loss >= 0 && cfg.Loss <= 1 && cfg.Dup >= 0 && cfg.Dup <= 1) {
		return nil, fmt.Errorf("sim: loss %v or duplication %v", cfg.Loss, cfg.Dup)
	}
	o := &OverlayNet{
		cfg:   cfg,
		swarm: wire.Swarm{Prefix: netip.MustParseAddr("10.0.0.0"), PrefixLen: 16, BlockSize: 4},
		ports: make([][][]int, cfg.Nodes),
	}
	ids := make(map[wire.NodeID]bool, cfg.Nodes)
	nifs := make([]int, cfg.Nodes)
	for _, l := range cfg.Links {
		if l.A < 0 || l.B < 0 || l.A >= cfg.Nodes || l.B >= cfg.Nodes || l.A == l.B || l.IfA < 0 || l.IfB < 0 {
			return nil, fmt.Errorf("sim: bad link %+v", l)
		}
		nifs[l.A] = max(nifs[l.A], l.IfA+1)
		nifs[l.B] = max(nifs[l.B], l.IfB+1)
	}
	for i := range cfg.Nodes {
		r := newRand(derive(cfg.Seed, streamOverlayID, uint64(i)))
		var id wire.NodeID
		for id.IsZero() || ids[id] {
			binary.BigEndian.PutUint64(id[:], r.Uint64())
		}
		ids[id] = true
		nd := &onode{id: id, link: newRand(derive(cfg.Seed, streamOverlayLink, uint64(i)))}
		for k := range max(nifs[i], 1) {
			nd.ifaces = append(nd.ifaces, fmt.Sprintf("mesh%d", k))
		}
		o.nodes = append(o.nodes, nd)
		o.ports[i] = make([][]int, len(nd.ifaces))
	}
	for k, l := range cfg.Links {
		o.links = append(o.links, olink{OverlayLink: l, up: true})
		o.ports[l.A][l.IfA] = append(o.ports[l.A][l.IfA], k)
		o.ports[l.B][l.IfB] = append(o.ports[l.B][l.IfB], k)
	}
	return o, nil
}

// overlayAddr is node i's link-local address on interface k, without zone.
func overlayAddr(i, k int) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	binary.BigEndian.PutUint32(b[8:], uint32(i+1))
	binary.BigEndian.PutUint32(b[12:], uint32(k+1))
	return netip.AddrFrom16(b)
}

// Now is the virtual time.
func (o *OverlayNet) Now() time.Duration { return o.now }

// N is the number of nodes.
func (o *OverlayNet) N() int { return len(o.nodes) }

// ID is node i's id; it stays the same across restarts.
func (o *OverlayNet) ID(i int) wire.NodeID { return o.nodes[i].id }

// NodeOf returns the index of the node with the given id.
func (o *OverlayNet) NodeOf(id wire.NodeID) (int, bool) {
	i := slices.IndexFunc(o.nodes, func(nd *onode) bool { return nd.id == id })
	return i, i >= 0
}

// Up reports whether node i is running.
func (o *OverlayNet) Up(i int) bool { return o.nodes[i].up }

// Node is node i's overlay state machine, nil while it is down. Call
// methods that change it through Act.
func (o *OverlayNet) Node(i int) *overlay.Node {
	if !o.nodes[i].up {
		return nil
	}
	return o.nodes[i].node
}

// Links returns the links with their state.
func (o *OverlayNet) Links() []OverlayLink { return slices.Clone(o.cfg.Links) }

// LinkUp reports whether link k is up.
func (o *OverlayNet) LinkUp(k int) bool { return o.links[k].up }

// Traffic returns the datagram counters.
func (o *OverlayNet) Traffic() OverlayTraffic { return o.traffic }

// Start boots node i with a fresh overlay node.
func (o *OverlayNet) Start(i int) error {
	nd := o.nodes[i]
	if nd.up {
		return fmt.Errorf("sim: node %d is already up", i)
	}
	c := o.cfg.Overlay
	c.Node, c.Swarm, c.Interfaces = nd.id, o.swarm, nd.ifaces
	c.Epoch = uint32(o.now/time.Millisecond) + 1
	nd.life++
	node, err := overlay.New(c, newRand(derive(o.cfg.Seed, streamOverlayNode, uint64(i), uint64(nd.life))), o.now)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", i, err)
	}
	nd.node, nd.up = node, true
	nd.tick = &oevent{kind: evTick, node: i, index: -1}
	o.push(nd.tick, max(node.Next(), o.now))
	o.tracef("n%d start id %v", i, nd.id)
	return nil
}

// StartAll boots every node that is down.
func (o *OverlayNet) StartAll() error {
	var errs []error
	for i, nd := range o.nodes {
		if !nd.up {
			errs = append(errs, o.Start(i))
		}
	}
	return errors.Join(errs...)
}

// Crash stops node i at once; copies on their way to it are lost.
func (o *OverlayNet) Crash(i int) {
	nd := o.nodes[i]
	if !nd.up {
		return
	}
	o.unqueue(nd.tick)
	nd.up, nd.node, nd.tick = false, nil, nil
	o.tracef("n%d crash", i)
}

// Restart crashes node i if it is up and starts it again.
func (o *OverlayNet) Restart(i int) error {
	o.Crash(i)
	return o.Start(i)
}

// SetLink brings link k down or up. A link that goes down also loses the
// copies on their way over it.
func (o *OverlayNet) SetLink(k int, up bool) {
	if o.links[k].up == up {
		return
	}
	o.links[k].up = up
	l := o.links[k]
	state := "down"
	if up {
		state = "up"
	}
	o.tracef("link %d n%d-n%d %s", k, l.A, l.B, state)
}

// Partition takes down every link between a node of set and a node outside
// it, and returns their indexes (for Heal).
func (o *OverlayNet) Partition(set []int) []int {
	in := make([]bool, len(o.nodes))
	for _, i := range set {
		in[i] = true
	}
	var cut []int
	for k, l := range o.links {
		if l.up && in[l.A] != in[l.B] {
			o.SetLink(k, false)
			cut = append(cut, k)
		}
	}
	return cut
}

// Heal brings the given links up again.
func (o *OverlayNet) Heal(links []int) {
	for _, k := range links {
		o.SetLink(k, true)
	}
}

// At schedules fn at time t, or now if t has passed.
func (o *OverlayNet) At(t time.Duration, fn func()) {
	o.push(&oevent{kind: evAction, fn: fn, index: -1}, max(t, o.now))
}

// Act calls fn with node i's overlay node at the current time, then sends
// what it queued. It reports false if the node is down.
func (o *OverlayNet) Act(i int, fn func(n *overlay.Node, now time.Duration)) bool {
	nd := o.nodes[i]
	if !nd.up {
		return false
	}
	fn(nd.node, o.now)
	o.settle(i, false)
	return true
}

// RunFor runs every event due in the next d and leaves the clock at now+d.
func (o *OverlayNet) RunFor(d time.Duration) {
	end := o.now + d
	for len(o.q) > 0 && o.q[0].at <= end {
		o.step()
	}
	o.now = end
}

// RunUntil runs in slices of poll until cond holds, for at most limit. It
// reports whether cond held; cond is checked between slices only, since it
// may cost as much as the whole network.
func (o *OverlayNet) RunUntil(cond func() bool, poll, limit time.Duration) bool {
	end := o.now + limit
	for {
		if cond() {
			return true
		}
		if o.now >= end {
			return false
		}
		o.RunFor(min(poll, end-o.now))
	}
}

func (o *OverlayNet) step() {
	e := o.q[0]
	o.now = e.at
	if e.kind != evTick {
		// A node's tick stays queued; settle moves it.
		heap.Pop(&o.q)
	}
	switch e.kind {
	case evTick:
		nd := o.nodes[e.node]
		nd.node.Tick(o.now)
		o.settle(e.node, true)
	case evCast:
		o.deliver(e)
	case evAction:
		e.fn()
	}
}

// settle sends what node i queued, reports its events and moves its tick.
func (o *OverlayNet) settle(i int, ticked bool) {
	nd := o.nodes[i]
	for _, out := range nd.node.Outbox() {
		o.send(i, out)
	}
	for _, ev := range nd.node.Events() {
		if o.cfg.Trace != nil {
			o.tracef("n%d %v root %v old %v epoch %d size %d", i, ev.Kind, ev.Root, ev.OldRoot, ev.Epoch, ev.Size)
		}
		if o.cfg.Observe != nil {
			o.cfg.Observe(o.now, i, ev)
		}
	}
	next := nd.node.Next()
	if next <= o.now {
		if ticked {
			o.anomaly("node %d: Next() = %v right after Tick(%v)", i, next, o.now)
			next = o.now + time.Millisecond
		} else {
			next = o.now
		}
	}
	o.move(nd.tick, next)
}

func (o *OverlayNet) send(i int, out overlay.Out) {
	nd := o.nodes[i]
	data, err := out.Msg.Encode()
	if err != nil {
		o.anomaly("node %d: cannot encode %s: %v", i, wire.OverlayTypeName(out.Msg.Type), err)
		return
	}
	o.traffic.Sent[out.Msg.Type]++
	o.traffic.Bytes[out.Msg.Type] += uint64(len(data))
	o.traffic.Largest = max(o.traffic.Largest, len(data))
	if len(data) > wire.MaxDatagram {
		// A real link would fragment or truncate it; the daemon's netio
		// drops what does not fit its buffer.
		o.traffic.Oversize++
		o.anomaly("node %d: %s of %d bytes, over %d", i, wire.OverlayTypeName(out.Msg.Type), len(data), wire.MaxDatagram)
		return
	}
	if out.Multicast {
		k := slices.Index(nd.ifaces, out.Iface)
		if k < 0 {
			o.anomaly("node %d: multicast on unknown interface %q", i, out.Iface)
			return
		}
		for _, li := range o.ports[i][k] {
			if o.links[li].up {
				o.transmit(i, k, li, data, &out.Msg)
			}
		}
		return
	}
	k := slices.Index(nd.ifaces, out.To.Addr.Zone())
	if k < 0 {
		o.anomaly("node %d: unicast to %v: unknown interface", i, out.To.Addr)
		return
	}
	dst := out.To.Addr.WithZone("")
	for _, li := range o.ports[i][k] {
		l := o.links[li]
		j, kj := l.B, l.IfB
		if l.A != i || l.IfA != k {
			j, kj = l.A, l.IfA
		}
		if l.up && overlayAddr(j, kj) == dst {
			if o.nodes[j].id != out.To.ID {
				o.anomaly("node %d: unicast for %v to the address of node %d", i, out.To.ID, j)
			}
			o.transmit(i, k, li, data, &out.Msg)
			return
		}
	}
	o.traffic.NoLink++
	if o.cfg.Trace != nil {
		o.tracef("n%d nolink %v %s", i, out.To.Addr, describeOverlay(&out.Msg))
	}
}

// transmit puts copies of a datagram from node i's interface k on link li.
func (o *OverlayNet) transmit(i, k, li int, data []byte, m *wire.Overlay) {
	from := o.nodes[i]
	l := o.links[li]
	j, kj := l.B, l.IfB
	if l.A != i || l.IfA != k {
		j, kj = l.A, l.IfA
	}
	to := o.nodes[j]
	life := to.life
	if !to.up {
		life++
	}
	if o.cfg.Trace != nil {
		o.tracef("n%d send n%d %s", i, j, describeOverlay(m))
	}
	copies := 1
	if o.cfg.Dup > 0 && from.link.Float64() < o.cfg.Dup {
		copies = 2
	}
	for range copies {
		if o.cfg.Loss > 0 && from.link.Float64() < o.cfg.Loss {
			o.traffic.Lost++
			continue
		}
		lat := o.cfg.LatencyMin
		if o.cfg.LatencyMax > o.cfg.LatencyMin {
			lat += time.Duration(from.link.Int64N(int64(o.cfg.LatencyMax-o.cfg.LatencyMin) + 1))
		}
		o.push(&oevent{
			kind: evCast, node: j, index: -1, data: data, link: li, life: life, sender: i,
			from: overlayAddr(i, k).WithZone(to.ifaces[kj]),
		}, o.now+lat)
	}
}

func (o *OverlayNet) deliver(e *oevent) {
	to := o.nodes[e.node]
	if !to.up || to.life != e.life || !o.links[e.link].up {
		o.traffic.Dropped++
		return
	}
	m, err := wire.DecodeOverlay(e.data)
	if err != nil {
		o.anomaly("node %d: cannot decode a datagram of node %d: %v", e.node, e.sender, err)
		return
	}
	o.traffic.Delivered++
	if o.cfg.Trace != nil {
		o.tracef("n%d recv n%d %s", e.node, e.sender, describeOverlay(&m))
	}
	if err := to.node.Step(o.now, e.from, &m); err != nil {
		o.anomaly("node %d: Step refused %s from node %d: %v", e.node, describeOverlay(&m), e.sender, err)
	}
	o.settle(e.node, false)
}

func (o *OverlayNet) anomaly(format string, args ...any) {
	o.nAnomaly++
	if len(o.anomalies) < maxAnomalies {
		o.anomalies = append(o.anomalies, fmt.Sprintf("at %v: ", o.now)+fmt.Sprintf(format, args...))
	}
	o.tracef("ANOMALY "+format, args...)
}

func (o *OverlayNet) tracef(format string, args ...any) {
	if o.cfg.Trace != nil {
		o.cfg.Trace(fmt.Sprintf("%12s ", o.now) + fmt.Sprintf(format, args...))
	}
}

// describeOverlay is a short human form of an overlay message.
func describeOverlay(m *wire.Overlay) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v/%d #%d", wire.OverlayTypeName(m.Type), shortID(m.Origin), m.Epoch, m.Seq)
	switch m.Type {
	case wire.ExtHello:
		h := &m.Hello
		fmt.Fprintf(&b, " tree=%v walk=%d:%v/%d nbs=%d", h.HasTree, h.WalkState, shortID(h.WalkOrigin), h.WalkEpoch, len(h.Neighbours))
	case wire.ExtForward:
		fmt.Fprintf(&b, " path=%d", len(m.Path))
	case wire.ExtReturn:
		fmt.Fprintf(&b, " size=%d part=%d/%d", m.Sub.Size, m.Part, m.Parts)
	case wire.ExtFinished:
		fmt.Fprintf(&b, " depth=%d size=%d", m.Tree.Depth, m.Tree.Size)
	case wire.ExtAck:
		fmt.Fprintf(&b, " of %s part %d", wire.OverlayTypeName(m.Ref), m.Part)
	case wire.ExtRefuse:
		fmt.Fprintf(&b, " %s reason=%d better=%v/%d", wire.OverlayTypeName(m.Ref), m.Reason, shortID(m.Better), m.BetterEpoch)
	case wire.ExtAbort:
		fmt.Fprintf(&b, " better=%v/%d", shortID(m.Better), m.BetterEpoch)
	}
	return b.String()
}

func shortID(id wire.NodeID) string {
	if id.IsZero() {
		return "-"
	}
	return id.String()[:6]
}

// oevent is an entry of the overlay simulator's queue.
type oevent struct {
	at     time.Duration
	seq    uint64
	index  int
	kind   eventKind
	node   int // tick: the node; cast: the receiver
	fn     func()
	data   []byte
	from   netip.Addr // the sender's address as the receiver sees it
	sender int
	link   int
	life   int
}

type oqueue []*oevent

func (q oqueue) Len() int { return len(q) }
func (q oqueue) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(q[i].at, q[j].at), cmp.Compare(q[i].seq, q[j].seq)) < 0
}
func (q oqueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *oqueue) Push(x any) {
	e := x.(*oevent)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *oqueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}

func (o *OverlayNet) push(e *oevent, at time.Duration) {
	e.at, e.seq = at, o.seq
	o.seq++
	heap.Push(&o.q, e)
}

func (o *OverlayNet) move(e *oevent, at time.Duration) {
	if e.at == at {
		return
	}
	e.at, e.seq = at, o.seq
	o.seq++
	heap.Fix(&o.q, e.index)
}

func (o *OverlayNet) unqueue(e *oevent) {
	if e != nil && e.index >= 0 {
		heap.Remove(&o.q, e.index)
	}
}
