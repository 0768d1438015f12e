// Package netio holds the daemon's sockets.
//
// The mesh side ([Mesh]) carries the inter-node protocol: UDP over IPv6
// link-local addresses on one or more mesh interfaces (typically bat0), with
// multicast to ff02::1234 on port 1234 for claim traffic, link-local unicast
// on port 1235 for forwarded renewals, and port 1236 for our own extensions.
//
// Every socket is bound to its interface with SO_BINDTODEVICE, so each mesh
// interface has its own set of sockets on the same port numbers and a packet
// is always sent out of, and attributed to, the right interface. Interfaces
// come and go on a router (bat0 is often created after the daemon starts), so
// a Mesh watches them over netlink and opens, closes and re-opens their
// sockets as they become usable or unusable; callers only see packets stop
// and sends fail with [ErrIfaceDown] while an interface is unusable.
//
// netio always works in the network namespace of its own process.
package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"ddhcpd/src/nolog"
)

// Ports of the inter-node protocol.
const (
	McastPort   = 1234 // multicast claim traffic: INQUIRE, UPDATECLAIM
	UnicastPort = 1235 // link-local unicast: RENEWLEASE, LEASEACK, LEASENAK, RELEASE
	ExtPort     = 1236 // our extensions, multicast and unicast
)

// Group is the multicast group of the protocol, ff02::1234. It is for
// callers to read; netio itself does not read this variable, so changing it
// changes nothing.
var Group = groupAddr()

func groupAddr() netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 14: 0x12, 15: 0x34})
}

// Defaults for MeshConfig.
const (
	DefaultQueueLen = 1024
	DefaultRecheck  = 3 * time.Second
)

// Errors.
var (
	// ErrIfaceDown means the interface is missing, down, has no usable
	// link-local address yet, or its sockets are being re-opened.
	ErrIfaceDown = errors.New("mesh interface not usable")
	// ErrClosed is returned by sends after Close.
	ErrClosed = errors.New("mesh closed")
)

// Packet is one datagram received on a mesh interface.
type Packet struct {
	Data      []byte         // payload; owned by the receiver
	Src       netip.AddrPort // sender, with zone = Iface
	Dst       netip.Addr     // destination address (Group for multicast); zero if unknown
	Iface     string         // mesh interface it arrived on
	Port      uint16         // local port it arrived on
	HopLimit  int            // hop limit of the received packet; -1 if unknown
	Truncated bool           // the datagram was longer than the receive buffer and was cut
}

// MeshConfig configures OpenMesh.
type MeshConfig struct {
	// Interfaces are the mesh interfaces, e.g. ["bat0"]. They need not
	// exist yet.
	Interfaces []string
	// Ports are the local ports to open on every interface; default
	// McastPort, UnicastPort and ExtPort. Every port except UnicastPort
	// joins the multicast group.
	Ports []uint16
	// Logger receives interface state changes and errors; nil discards.
	Logger *slog.Logger
	// QueueLen is the capacity of the Packets channel; default
	// DefaultQueueLen. When it is full, packets are dropped and counted.
	QueueLen int
	// Recheck is the interval of the periodic interface check that backs
	// up the netlink notifications; default DefaultRecheck.
	Recheck time.Duration

	// pollOnly turns the netlink notifications off, so tests can check
	// that the periodic check alone keeps the interfaces right.
	pollOnly bool
}

// IfaceStatus describes one mesh interface.
type IfaceStatus struct {
	Name      string
	Index     int        // interface index; 0 if the interface does not exist
	Up        bool       // administratively up and with carrier
	LinkLocal netip.Addr // usable link-local address, zero if none
	Open      bool       // sockets are open and the group is joined
	Err       error      // last error opening the sockets, if they are not open
}

// IfaceEvent reports that the sockets of an interface were opened or closed.
type IfaceEvent struct {
	Iface     string
	Open      bool       // true: sockets opened; false: closed
	Index     int        // interface index the sockets are (were) bound to
	LinkLocal netip.Addr // link-local address the interface has (had)
	Reason    string     // why they were closed; empty when opened
}

// Stats are counters of a Mesh.
type Stats struct {
	Received   uint64 // datagrams queued on the Packets channel
	Dropped    uint64 // datagrams dropped because the Packets channel was full
	Own        uint64 // datagrams from our own address on the same interface, dropped
	Truncated  uint64 // datagrams longer than the receive buffer (still queued)
	ReadErrors uint64 // socket read errors other than closing
	Opens      uint64 // times an interface's sockets were opened
}

// Mesh is the set of sockets on the mesh interfaces. Its methods are safe for
// concurrent use.
type Mesh struct {
	log     *slog.Logger
	ports   []uint16
	packets chan Packet
	events  chan IfaceEvent

	mu     sync.Mutex
	closed bool
	ifaces []*iface // in configuration order; the slice is never changed

	// own holds the link-local addresses of each interface, so the
	// readers can drop our own packets without taking mu.
	own atomic.Pointer[map[string][]netip.Addr]

	received, dropped, ownDropped, truncated, readErrors, opens atomic.Uint64

	cancel  context.CancelFunc
	done    chan struct{} // closed when everything has stopped
	readers sync.WaitGroup
}

// OpenMesh starts serving the mesh interfaces of cfg. Interfaces that are
// missing, down or without a usable link-local address are not an error:
// their sockets are opened as soon as they become usable. OpenMesh fails only
// for an invalid configuration. The sockets of interfaces that are usable
// already are open when it returns. The Mesh stops when ctx is done or Close
// is called.
func OpenMesh(ctx context.Context, cfg MeshConfig) (*Mesh, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Mesh{
		log:   cfg.Logger,
		ports: slices.Clone(cfg.Ports),
		done:  make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.New(nolog.Handler)
	}
	if len(m.ports) == 0 {
		m.ports = []uint16{McastPort, UnicastPort, ExtPort}
	}
	qlen := cfg.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	m.packets = make(chan Packet, qlen)
	m.events = make(chan IfaceEvent, 4*len(cfg.Interfaces)+16)
	for _, name := range cfg.Interfaces {
		m.ifaces = append(m.ifaces, &iface{linkIface: linkIface[meshSocks]{name: name}})
	}
	m.own.Store(&map[string][]netip.Addr{})

	ctx, m.cancel = context.WithCancel(ctx)
	w := &linkWatcher[meshSocks, *iface]{
		kind:    "mesh",
		log:     m.log,
		recheck: cfg.Recheck,
		poll:    cfg.pollOnly,
		mu:      &m.mu,
		ifaces:  m.ifaces,
		user:    m,
	}
	w.start(ctx, func() { m.shutdown(w) })
	return m, nil
}

func (c *MeshConfig) validate() error {
	if err := checkIfaceNames("mesh", c.Interfaces); err != nil {
		return err
	}
	for i, p := range c.Ports {
		if p == 0 {
			return errors.New("netio: mesh port 0 is not valid")
		}
		if slices.Contains(c.Ports[:i], p) {
			return fmt.Errorf("netio: mesh port %d listed twice", p)
		}
	}
	return nil
}

// Packets returns the channel of received datagrams from all interfaces and
// ports. It is closed after the Mesh has stopped.
func (m *Mesh) Packets() <-chan Packet { return m.packets }

// Events returns a channel of interface open/close notifications, for
// logging. Reading it is optional: events that do not fit are dropped. It is
// closed after the Mesh has stopped.
func (m *Mesh) Events() <-chan IfaceEvent { return m.events }

// Drops returns the number of received datagrams dropped because the Packets
// channel was full.
func (m *Mesh) Drops() uint64 { return m.dropped.Load() }

// Stats returns the counters.
func (m *Mesh) Stats() Stats {
	return Stats{
		Received:   m.received.Load(),
		Dropped:    m.dropped.Load(),
		Own:        m.ownDropped.Load(),
		Truncated:  m.truncated.Load(),
		ReadErrors: m.readErrors.Load(),
		Opens:      m.opens.Load(),
	}
}

// Interfaces returns the state of every mesh interface, in configuration
// order.
func (m *Mesh) Interfaces() []IfaceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := make([]IfaceStatus, 0, len(m.ifaces))
	for _, ifc := range m.ifaces {
		s := IfaceStatus{
			Name:      ifc.name,
			Index:     ifc.index,
			Up:        ifc.up,
			LinkLocal: ifc.probedLL,
			Open:      ifc.open,
		}
		if !s.Open {
			s.Err = ifc.openErr
		}
		st = append(st, s)
	}
	return st
}

// Close closes all sockets and waits until every goroutine of the Mesh has
// stopped. It is safe to call more than once.
func (m *Mesh) Close() error {
	m.cancel()
	<-m.done
	return nil
}

// Multicast sends data to [ff02::1234]:port on every usable interface, from
// the socket bound to port. Unusable interfaces are skipped; if none is
// usable, the error wraps ErrIfaceDown.
func (m *Mesh) Multicast(port uint16, data []byte) error {
	targets, err := m.targets("", port)
	if err != nil {
		return fmt.Errorf("netio: multicast to port %d: %w", port, err)
	}
	var errs []error
	for _, t := range targets {
		if err := t.sock.send(data, netip.AddrPortFrom(groupAddr(), port)); err != nil {
			errs = append(errs, sendError(t.name, port, err))
		}
	}
	return errors.Join(errs...)
}

// MulticastOn sends data to [ff02::1234]:port on one interface, from the
// socket bound to port.
func (m *Mesh) MulticastOn(ifname string, port uint16, data []byte) error {
	targets, err := m.targets(ifname, port)
	if err != nil {
		return fmt.Errorf("netio: multicast on %s to port %d: %w", ifname, port, err)
	}
	t := targets[0]
	if err := t.sock.send(data, netip.AddrPortFrom(groupAddr(), port)); err != nil {
		return sendError(t.name, port, err)
	}
	return nil
}

// Unicast sends data from the socket bound to srcPort to dst, which must be
// an IPv6 link-local address whose zone names one of the mesh interfaces
// (by name or index).
func (m *Mesh) Unicast(srcPort uint16, dst netip.AddrPort, data []byte) error {
	addr := dst.Addr()
	if !addr.Is6() || addr.Is4In6() || !addr.IsLinkLocalUnicast() {
		return fmt.Errorf("netio: unicast to %s: not an IPv6 link-local address", dst)
	}
	if addr.Zone() == "" {
		return fmt.Errorf("netio: unicast to %s: no zone (interface)", dst)
	}
	if dst.Port() == 0 {
		return fmt.Errorf("netio: unicast to %s: port 0", dst)
	}
	ifname := m.zoneIface(addr.Zone())
	targets, err := m.targets(ifname, srcPort)
	if err != nil {
		return fmt.Errorf("netio: unicast to %s from port %d: %w", dst, srcPort, err)
	}
	t := targets[0]
	// The socket is bound to the interface, so the address goes without
	// zone: a zone name would be resolved through the net package's
	// interface cache, which can be stale right after an interface is
	// re-created.
	if err := t.sock.send(data, netip.AddrPortFrom(addr.WithZone(""), dst.Port())); err != nil {
		return sendError(t.name, srcPort, err)
	}
	return nil
}

type target struct {
	name string
	sock *meshSock
}

// targets returns the sockets for port on the interface ifname, or on every
// usable interface if ifname is empty.
func (m *Mesh) targets(ifname string, port uint16) ([]target, error) {
	if !slices.Contains(m.ports, port) {
		return nil, fmt.Errorf("port %d is not open", port)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var ts []target
	found := false
	for _, ifc := range m.ifaces {
		if ifname != "" && ifc.name != ifname {
			continue
		}
		found = true
		if s := ifc.socks[port]; s != nil {
			ts = append(ts, target{ifc.name, s})
		}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("%s is not a mesh interface", ifname)
	case len(ts) == 0 && ifname != "":
		return nil, fmt.Errorf("%s: %w", ifname, ErrIfaceDown)
	case len(ts) == 0:
		return nil, ErrIfaceDown
	}
	return ts, nil
}

// zoneIface maps a zone to a mesh interface name. The zone is normally the
// name; a numeric zone is accepted if it is the index of an open interface.
func (m *Mesh) zoneIface(zone string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ifc := range m.ifaces {
		if ifc.name == zone {
			return zone
		}
	}
	for _, ifc := range m.ifaces {
		if ifc.open && fmt.Sprint(ifc.openIndex) == zone {
			return ifc.name
		}
	}
	return zone
}

// event queues an interface event unless the channel is full.
func (m *Mesh) event(ev IfaceEvent) {
	select {
	case m.events <- ev:
	default:
	}
}
