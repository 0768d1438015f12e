package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

const (
	// readBufSize is the receive buffer per datagram. The largest protocol
	// message (an INQUIRE of 255 blocks) has 1036 bytes.
	readBufSize = 2048
	// readBatch is how many datagrams one recvmmsg call may return.
	readBatch = 8
	// sendTimeout bounds a send on a full socket buffer, so a wedged
	// interface cannot block the caller (the daemon's event loop).
	sendTimeout = 200 * time.Millisecond
	// cmFlags are the control messages read with every datagram.
	cmFlags = ipv6.FlagHopLimit | ipv6.FlagDst | ipv6.FlagInterface
)

// meshSock is one UDP socket bound to one port on one interface.
type meshSock struct {
	ifname string
	port   uint16
	conn   *net.UDPConn
	pc     *ipv6.PacketConn
	closed chan struct{} // closed by close, so the reader stops retrying
}

// openSock opens [::]:port bound to the interface, joins the group if join is
// set and sets the multicast options: out of this interface, hop limit 1, no
// loopback of our own packets.
func openSock(ifname string, index int, port uint16, join bool) (*meshSock, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// SO_REUSEADDR lets another socket that sets it too (a
			// debugging listener, a test) share the port.
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				serr = fmt.Errorf("SO_REUSEADDR: %w", err)
				return
			}
			// Bound to the device before bind(2): then the same port can
			// be bound once per interface, and a socket only receives
			// what arrives on its own interface.
			if err := unix.BindToDevice(int(fd), ifname); err != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE: %w", err)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), "udp6", net.JoinHostPort("::", strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	conn, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("unexpected connection type %T", c)
	}
	s := &meshSock{ifname: ifname, port: port, conn: conn, pc: ipv6.NewPacketConn(conn), closed: make(chan struct{})}
	if err := s.setup(index, join); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *meshSock) setup(index int, join bool) error {
	ifi := &net.Interface{Index: index, Name: s.ifname}
	if join {
		if err := s.pc.JoinGroup(ifi, &net.UDPAddr{IP: groupAddr().AsSlice()}); err != nil {
			return fmt.Errorf("join %s: %w", groupAddr(), err)
		}
	}
	if err := s.pc.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("set multicast interface: %w", err)
	}
	if err := s.pc.SetMulticastHopLimit(1); err != nil {
		return fmt.Errorf("set multicast hop limit: %w", err)
	}
	if err := s.pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("set multicast loopback: %w", err)
	}
	if err := s.pc.SetControlMessage(cmFlags, true); err != nil {
		return fmt.Errorf("enable control messages: %w", err)
	}
	return nil
}

func (s *meshSock) close() {
	select {
	case <-s.closed:
		return
	default:
	}
	close(s.closed)
	s.conn.Close()
}

// send writes one datagram. dst carries no zone: the socket is bound to its
// interface, which the kernel uses as the outgoing interface.
func (s *meshSock) send(data []byte, dst netip.AddrPort) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return err
	}
	_, err := s.conn.WriteToUDPAddrPort(data, dst)
	return err
}

// sendError wraps a send error; errors that mean the interface went away
// under us also wrap ErrIfaceDown, so callers can treat them alike.
func sendError(ifname string, port uint16, err error) error {
	switch {
	case errors.Is(err, net.ErrClosed),
		errors.Is(err, unix.ENETDOWN),
		errors.Is(err, unix.ENODEV),
		errors.Is(err, unix.ENXIO),
		errors.Is(err, unix.EADDRNOTAVAIL),
		errors.Is(err, unix.ENETUNREACH):
		return fmt.Errorf("netio: send on %s from port %d: %w: %w", ifname, port, ErrIfaceDown, err)
	}
	return fmt.Errorf("netio: send on %s from port %d: %w", ifname, port, err)
}

// read is the reader goroutine of one socket. It returns when the socket is
// closed.
func (m *Mesh) read(s *meshSock) {
	defer m.readers.Done()
	msgs := make([]ipv6.Message, readBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, readBufSize)}
		msgs[i].OOB = ipv6.NewControlMessage(cmFlags)
	}
	for {
		n, err := s.pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.readErrors.Add(1)
			m.log.Debug("mesh read error", "iface", s.ifname, "port", s.port, "err", err)
			// Do not spin on a persistent error.
			select {
			case <-s.closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		for i := range msgs[:n] {
			m.deliver(s, &msgs[i])
		}
	}
}

// deliver turns one received message into a Packet and queues it, or drops
// it if the queue is full.
func (m *Mesh) deliver(s *meshSock, msg *ipv6.Message) {
	n := min(max(msg.N, 0), readBufSize)
	p := Packet{
		Data:      append([]byte(nil), msg.Buffers[0][:n]...),
		Iface:     s.ifname,
		Port:      s.port,
		HopLimit:  -1,
		Truncated: msg.Flags&unix.MSG_TRUNC != 0,
	}
	if ua, ok := msg.Addr.(*net.UDPAddr); ok {
		if a, ok := netip.AddrFromSlice(ua.IP); ok {
			a = a.Unmap()
			if a.Is6() {
				// The socket is bound to the interface, so this is the
				// zone; no need to trust the index-to-name cache.
				a = a.WithZone(s.ifname)
			}
			p.Src = netip.AddrPortFrom(a, uint16(ua.Port))
		}
	}
	if msg.NN > 0 && msg.NN <= len(msg.OOB) {
		var cm ipv6.ControlMessage
		if cm.Parse(msg.OOB[:msg.NN]) == nil {
			p.HopLimit = cm.HopLimit
			if d, ok := netip.AddrFromSlice(cm.Dst); ok {
				p.Dst = d.Unmap()
			}
		}
	}
	if m.isOwn(s.ifname, p.Src.Addr()) {
		m.ownDropped.Add(1)
		return
	}
	if p.Truncated {
		m.truncated.Add(1)
	}
	select {
	case m.packets <- p:
		m.received.Add(1)
	default:
		m.dropped.Add(1)
	}
}

// isOwn reports whether addr is a link-local address of the interface the
// packet arrived on: our own packet reflected back (multicast loopback is
// off, so only a loop on the link does that). Link-local addresses are
// unique only per link, so an address of another of our interfaces is not
// taken as ours: a peer may use it legitimately, and the daemon recognises
// its own messages by node id anyway.
func (m *Mesh) isOwn(ifname string, addr netip.Addr) bool {
	return slices.Contains((*m.own.Load())[ifname], addr.WithZone(""))
}
