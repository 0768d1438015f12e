package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"

	"ddhcpd/src/nolog"
)

// Errors of the client side.
var (
	// ErrClientIfaceDown means the client interface is missing, down,
	// without carrier or not Ethernet, or its sockets are being re-opened.
	ErrClientIfaceDown = errors.New("client interface not usable")
	// ErrClientsClosed is returned by sends after Close.
	ErrClientsClosed = errors.New("client sockets closed")
)

// ClientPacket is one DHCP datagram received on a client interface.
type ClientPacket struct {
	Payload          []byte // UDP payload (the BOOTP/DHCP message); owned by the receiver
	Iface            string // client interface it arrived on
	SrcMAC, DstMAC   net.HardwareAddr
	SrcIP, DstIP     netip.Addr
	SrcPort, DstPort uint16
	// Broadcast is set if the datagram was sent to 255.255.255.255 or to
	// the Ethernet broadcast address.
	Broadcast bool
}

// ClientConfig configures OpenClients.
type ClientConfig struct {
	// Interfaces are the client interfaces, e.g. ["br-client"]. They need
	// not exist yet. Name a bridge itself, not one of its ports: frames
	// received on a bridge port are handed to the bridge.
	Interfaces []string
	// Logger receives interface state changes and errors; nil discards.
	Logger *slog.Logger
	// QueueLen is the capacity of the Packets channel; default
	// DefaultQueueLen. When it is full, datagrams are dropped and counted.
	QueueLen int
	// Recheck is the interval of the periodic interface check that backs
	// up the netlink notifications; default DefaultRecheck.
	Recheck time.Duration

	// pollOnly turns the netlink notifications off, so tests can check
	// that the periodic check alone keeps the interfaces right.
	pollOnly bool
}

// Dest is where a reply goes.
type Dest struct {
	Iface string     // client interface the request arrived on
	IP    netip.Addr // destination address; 255.255.255.255 for broadcast
	Port  uint16     // DHCPClientPort for clients, DHCPServerPort for a relay agent
	// MAC is the destination of a direct reply; nil means the Ethernet
	// broadcast address.
	MAC net.HardwareAddr
	// Routed sends through the kernel's routing instead of directly on
	// the link: for replies to a relay agent (giaddr), which is usually
	// not on the link. The kernel picks the next hop among the routes
	// through Iface (or takes IP as on-link if there is none) and
	// resolves its MAC address; MAC is not used.
	Routed bool
}

// ClientIfaceStatus describes one client interface.
type ClientIfaceStatus struct {
	Name  string
	Index int              // interface index; 0 if the interface does not exist
	Up    bool             // administratively up and with carrier
	MAC   net.HardwareAddr // nil if the interface does not exist
	Addr  netip.Addr       // first IPv4 address; zero if none
	Open  bool             // sockets are open
	// Err says why the sockets are not open: the interface is not usable
	// (wrapping ErrClientIfaceDown) or opening them failed. Nil when open.
	Err error
}

// ClientStats are counters of a Clients.
type ClientStats struct {
	Frames     uint64 // frames that passed the socket filter (IPv4/UDP to port 67)
	Received   uint64 // datagrams queued on the Packets channel
	Dropped    uint64 // datagrams dropped because the Packets channel was full
	Malformed  uint64 // frames that are not well-formed IPv4/UDP, or were cut
	Ignored    uint64 // well-formed frames not for us: own, other hosts', looped back, VLAN-tagged, fragments
	SendErrors uint64 // failed Send calls
	ReadErrors uint64 // socket read errors other than closing
	Opens      uint64 // times an interface's sockets were opened
}

// Clients is the set of sockets that serve DHCPv4 on the client interfaces
// (typically br-client). Its methods are safe for concurrent use.
//
// It does not bind UDP port 67: the daemon must coexist with other DHCP
// servers on other interfaces of the same router, and it must be able to
// answer a client that has no address yet by unicast to its MAC address
// without ARP (RFC 2131 §4.1), which a UDP socket cannot do. Instead every
// client interface has an AF_PACKET socket whose BPF filter passes only
// IPv4/UDP datagrams to port 67, and direct replies are complete Ethernet
// frames built here. Replies to relay agents go through a raw IPv4 socket,
// so that the kernel routes them and resolves the next hop.
//
// Since no socket holds port 67, the kernel answers a datagram unicast to
// one of its addresses on port 67 (a renewal, a relayed request) with an
// ICMP port unreachable, besides handing it to the packet socket. DHCP
// clients and relays send from unconnected sockets and do not see it.
type Clients struct {
	log     *slog.Logger
	filter  []bpf.RawInstruction // socket filter of every packet socket
	packets chan ClientPacket

	mu     sync.Mutex
	closed bool
	ifaces []*clientIface // in configuration order; the slice is never changed

	// ipID numbers the IPv4 datagrams we send; their identification
	// should differ while they may be in flight (RFC 6864).
	ipID atomic.Uint32

	frames, received, dropped, malformedFrames, ignored, sendErrors, readErrors, opens atomic.Uint64

	cancel  context.CancelFunc
	done    chan struct{} // closed when everything has stopped
	readers sync.WaitGroup
}

// OpenClients starts serving the client interfaces of cfg. Interfaces that
// are missing, down or without carrier are not an error: their sockets are
// opened as soon as they become usable, and closed and opened again when an
// interface goes down and up or is re-created. An interface needs no IPv4
// address. OpenClients fails only for an invalid configuration. The sockets
// of interfaces that are usable already are open when it returns. The
// Clients stops when ctx is done or Close is called.
func OpenClients(ctx context.Context, cfg ClientConfig) (*Clients, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	filter, err := clientFilter()
	if err != nil {
		return nil, fmt.Errorf("netio: assemble the client socket filter: %w", err)
	}
	c := &Clients{
		log:    cfg.Logger,
		filter: filter,
		done:   make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.New(nolog.Handler)
	}
	qlen := cfg.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	c.packets = make(chan ClientPacket, qlen)
	for _, name := range cfg.Interfaces {
		c.ifaces = append(c.ifaces, &clientIface{linkIface: linkIface[*clientSock]{name: name}})
	}

	ctx, c.cancel = context.WithCancel(ctx)
	w := &linkWatcher[*clientSock, *clientIface]{
		kind:    "client",
		log:     c.log,
		recheck: cfg.Recheck,
		poll:    cfg.pollOnly,
		mu:      &c.mu,
		ifaces:  c.ifaces,
		user:    c,
	}
	w.start(ctx, func() { c.shutdown(w) })
	return c, nil
}

func (cfg *ClientConfig) validate() error {
	return checkIfaceNames("client", cfg.Interfaces)
}

// Packets returns the channel of DHCP datagrams received on all client
// interfaces. It is closed after the Clients has stopped.
func (c *Clients) Packets() <-chan ClientPacket { return c.packets }

// Stats returns the counters.
func (c *Clients) Stats() ClientStats {
	return ClientStats{
		Frames:     c.frames.Load(),
		Received:   c.received.Load(),
		Dropped:    c.dropped.Load(),
		Malformed:  c.malformedFrames.Load(),
		Ignored:    c.ignored.Load(),
		SendErrors: c.sendErrors.Load(),
		ReadErrors: c.readErrors.Load(),
		Opens:      c.opens.Load(),
	}
}

// Interfaces returns the state of every client interface, in configuration
// order.
func (c *Clients) Interfaces() []ClientIfaceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := make([]ClientIfaceStatus, 0, len(c.ifaces))
	for _, ifc := range c.ifaces {
		s := ClientIfaceStatus{
			Name:  ifc.name,
			Index: ifc.index,
			Up:    ifc.up,
			MAC:   slices.Clone(ifc.mac),
			Addr:  ifc.addr,
			Open:  ifc.open,
		}
		switch {
		case s.Open:
		case ifc.why != "":
			s.Err = fmt.Errorf("%w: %s", ErrClientIfaceDown, ifc.why)
		default:
			s.Err = ifc.openErr
		}
		st = append(st, s)
	}
	return st
}

// IfaceAddr returns the first IPv4 address of a client interface, the
// default server identifier of the DHCP service on it. It reports false if
// the interface is not a client interface, does not exist or has no IPv4
// address.
func (c *Clients) IfaceAddr(iface string) (netip.Addr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ifc := range c.ifaces {
		if ifc.name == iface {
			return ifc.addr, ifc.addr.IsValid()
		}
	}
	return netip.Addr{}, false
}

// Close closes all sockets and waits until every goroutine of the Clients
// has stopped. It is safe to call more than once.
func (c *Clients) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Send sends payload, a DHCP message, from src (our server identifier) port
// DHCPServerPort to d. A direct send (d.Routed false) goes out of d.Iface as
// a complete Ethernet frame, from the interface's MAC address to d.MAC or
// the broadcast address; the interface needs no IPv4 address for it. A
// routed send goes through the kernel's routing out of d.Iface. If the
// interface is not usable the error wraps ErrClientIfaceDown.
func (c *Clients) Send(d Dest, src netip.Addr, payload []byte) error {
	err := c.send(d, src, payload)
	if err != nil {
		c.sendErrors.Add(1)
	}
	return err
}

func (c *Clients) send(d Dest, src netip.Addr, payload []byte) error {
	dst := netip.AddrPortFrom(d.IP.Unmap(), d.Port)
	src = src.Unmap()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("netio: send to %s on %s: %s", dst, d.Iface, fmt.Sprintf(format, args...))
	}
	switch {
	case !dst.Addr().Is4() || dst.Addr().IsUnspecified():
		return fail("destination is not an IPv4 address")
	case d.Port == 0:
		return fail("port 0")
	case !src.Is4() || src.IsUnspecified() || src.IsMulticast() || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fail("source %s is not an IPv4 unicast address", src)
	case d.Routed && (dst.Addr().IsMulticast() || dst.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return fail("a routed destination must be unicast")
	case !d.Routed && d.MAC != nil && len(d.MAC) != 6:
		return fail("MAC address %v is not an Ethernet address", d.MAC)
	case len(payload) > MaxUDPPayload:
		return fail("payload of %d bytes is too long", len(payload))
	}
	s, err := c.sockOf(d.Iface)
	if err != nil {
		return fmt.Errorf("netio: send to %s on %s: %w", dst, d.Iface, err)
	}
	f := UDPFrame{
		SrcMAC:  s.mac,
		DstMAC:  d.MAC,
		Src:     netip.AddrPortFrom(src, DHCPServerPort),
		Dst:     dst,
		ID:      uint16(c.ipID.Add(1)),
		Payload: payload,
	}
	if d.Routed {
		err = s.sendRouted(f)
	} else {
		if f.DstMAC == nil {
			f.DstMAC = broadcastMAC()
		}
		err = s.sendDirect(f)
	}
	if err != nil {
		return clientSendError(d, dst, err)
	}
	return nil
}

// sockOf returns the open sockets of a client interface.
func (c *Clients) sockOf(ifname string) (*clientSock, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientsClosed
	}
	for _, ifc := range c.ifaces {
		if ifc.name != ifname {
			continue
		}
		if !ifc.open {
			return nil, ErrClientIfaceDown
		}
		return ifc.socks, nil
	}
	return nil, fmt.Errorf("%q is not a client interface", ifname)
}
