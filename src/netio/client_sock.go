package netio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const (
	// clientSnapLen is the most the socket filter passes of a frame, and
	// the size of the receive buffer: any IPv4 datagram fits, so a frame is
	// never cut without notice.
	clientSnapLen = 1 << 16
	// clientRcvBuf is the socket receive buffer asked for, so that a burst
	// of requests (many clients at once after a power cut) is not lost
	// while the reader is busy. The kernel caps it at net.core.rmem_max.
	clientRcvBuf = 1 << 20
	// clientSendTimeout bounds a send on a full socket buffer, so a wedged
	// interface cannot block the caller (the daemon's event loop).
	clientSendTimeout = 200 * time.Millisecond
)

// clientFilter returns the socket filter of the packet sockets: IPv4, UDP,
// not a later fragment (only the first carries the UDP header), destination
// port 67. The IPv4 header length comes from the IHL field, so datagrams with
// IP options are judged by their real UDP header.
func clientFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv4, SkipTrue: 8},
		/* 2 */ bpf.LoadAbsolute{Off: etherHeaderLen + 9, Size: 1}, // protocol
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoUDP, SkipTrue: 6},
		/* 4 */ bpf.LoadAbsolute{Off: etherHeaderLen + 6, Size: 2}, // flags, fragment offset
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: ipv4FragOff, SkipTrue: 4},
		/* 6 */ bpf.LoadMemShift{Off: etherHeaderLen}, // X = 4*(IHL)
		/* 7 */ bpf.LoadIndirect{Off: etherHeaderLen + 2, Size: 2}, // UDP destination port
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: DHCPServerPort, SkipTrue: 1},
		/* 9 */ bpf.RetConstant{Val: clientSnapLen},
		/* 10 */ bpf.RetConstant{Val: 0},
	})
}

// clientSock holds the sockets of one client interface.
type clientSock struct {
	ifname string
	index  int
	mac    net.HardwareAddr // the interface's MAC address when the sockets were opened
	pc     *packet.Conn
	rc     syscall.RawConn // of pc, to read the packet type and auxiliary data with each frame
	raw    *net.IPConn     // raw IPv4 socket for routed sends; it never receives
	quiet  net.PacketConn  // UDP port 67 that receives nothing; nil if another server holds the port
	closed chan struct{}   // closed by close, so the reader stops retrying
}

// openClientSock opens the sockets of a client interface.
func openClientSock(ifname string, index int, mac net.HardwareAddr, filter []bpf.RawInstruction) (*clientSock, error) {
	ifi := &net.Interface{Index: index, Name: ifname, HardwareAddr: mac}
	// Bound to ETH_P_IP, not ETH_P_ALL: such a socket sees only frames the
	// interface receives, never the ones this host sends. The filter is in
	// place before the socket is bound, so nothing else is ever queued.
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	s := &clientSock{ifname: ifname, index: index, mac: slices.Clone(mac), pc: pc, closed: make(chan struct{})}
	if err := s.setup(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *clientSock) setup() error {
	rc, err := s.pc.SyscallConn()
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	s.rc = rc
	var serr error
	err = rc.Control(func(fd uintptr) {
		// The auxiliary data tells whether the UDP checksum has been
		// filled in yet and whether the frame had a VLAN tag.
		if err := unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			serr = fmt.Errorf("PACKET_AUXDATA: %w", err)
			return
		}
		// Best effort: the default buffer still works, only smaller.
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, clientRcvBuf)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}

	// IPPROTO_RAW implies IP_HDRINCL and receives nothing.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			// Routed replies leave through the interface the request
			// came in on, using the routes through it.
			serr = unix.BindToDevice(int(fd), s.ifname)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("SO_BINDTODEVICE: %w", serr)
		}
		return nil
	}}
	c, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip4:%d", unix.IPPROTO_RAW), "0.0.0.0")
	if err != nil {
		return fmt.Errorf("raw IPv4 socket: %w", err)
	}
	raw, ok := c.(*net.IPConn)
	if !ok {
		c.Close()
		return fmt.Errorf("raw IPv4 socket: unexpected connection type %T", c)
	}
	s.raw = raw
	s.quiet = openQuietPort(s.ifname)
	return nil
}

// openQuietPort binds UDP port 67 on the interface with a filter that drops
// every datagram. It receives nothing (the packet socket does), but with it
// the kernel no longer answers unicast renewals to the server address with
// ICMP port unreachable, as it does when no socket has the port. Best
// effort: another DHCP server may hold port 67 on all interfaces.
func openQuietPort(ifname string) net.PacketConn {
	dropAll := []unix.SockFilter{{Code: 0x06, K: 0}} // ret #0
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
			if serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.BindToDevice(int(fd), ifname)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", DHCPServerPort))
	if err != nil {
		return nil
	}
	return c
}

func (s *clientSock) close() {
	select {
	case <-s.closed:
		return
	default:
	}
	close(s.closed)
	s.pc.Close()
	if s.raw != nil {
		s.raw.Close()
	}
	if s.quiet != nil {
		s.quiet.Close()
	}
}

// sendDirect writes f as a complete Ethernet frame on the interface.
func (s *clientSock) sendDirect(f UDPFrame) error {
	frame, err := AppendFrame(make([]byte, 0, etherMinFrame+ipv4HeaderLen+udpHeaderLen+len(f.Payload)), f)
	if err != nil {
		return err
	}
	if err := s.pc.SetWriteDeadline(time.Now().Add(clientSendTimeout)); err != nil {
		return err
	}
	_, err = s.pc.WriteTo(frame, &packet.Addr{HardwareAddr: f.DstMAC})
	return err
}

// sendRouted writes f as an IPv4 packet on the raw socket; the kernel
// routes it and puts the link-layer header in front.
func (s *clientSock) sendRouted(f UDPFrame) error {
	pkt, err := AppendIPv4UDP(nil, f)
	if err != nil {
		return err
	}
	if err := s.raw.SetWriteDeadline(time.Now().Add(clientSendTimeout)); err != nil {
		return err
	}
	_, err = s.raw.WriteToIP(pkt, &net.IPAddr{IP: f.Dst.Addr().AsSlice()})
	return err
}

// clientSendError wraps a send error; errors that mean the interface went
// away under us also wrap ErrClientIfaceDown, so callers can treat them
// alike.
func clientSendError(d Dest, dst netip.AddrPort, err error) error {
	how := "direct"
	if d.Routed {
		how = "routed"
	}
	switch {
	case errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrClosed),
		errors.Is(err, unix.EBADF),
		errors.Is(err, unix.ENETDOWN),
		errors.Is(err, unix.ENODEV),
		errors.Is(err, unix.ENXIO):
		return fmt.Errorf("netio: %s send to %s on %s: %w: %w", how, dst, d.Iface, ErrClientIfaceDown, err)
	}
	return fmt.Errorf("netio: %s send to %s on %s: %w", how, dst, d.Iface, err)
}

// read is the reader goroutine of one interface. It returns when the
// sockets are closed.
func (c *Clients) read(s *clientSock) {
	defer c.readers.Done()
	buf := make([]byte, clientSnapLen)
	oob := make([]byte, 128) // room for the auxiliary data (20 bytes) and its header
	for {
		var n, oobn, flags int
		var from unix.Sockaddr
		var rerr error
		err := s.rc.Read(func(fd uintptr) bool {
			// MSG_TRUNC: n is the frame's real length, even if it did
			// not fit.
			n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			// ENETDOWN is reported once when the interface goes
			// down; the watcher closes the sockets then.
			if !errors.Is(err, unix.ENETDOWN) {
				c.readErrors.Add(1)
			}
			c.log.Debug("client read error", "iface", s.ifname, "err", err)
			// Do not spin on a persistent error.
			select {
			case <-s.closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		c.handle(s, buf[:min(max(n, 0), len(buf))], flags&unix.MSG_TRUNC != 0, from, oob[:min(max(oobn, 0), len(oob))])
	}
}

// handle checks one received frame and queues its datagram, or counts why
// not.
func (c *Clients) handle(s *clientSock, frame []byte, cut bool, from unix.Sockaddr, oob []byte) {
	c.frames.Add(1)
	if sa, ok := from.(*unix.SockaddrLinklayer); ok {
		switch sa.Pkttype {
		case unix.PACKET_OUTGOING, unix.PACKET_LOOPBACK, unix.PACKET_OTHERHOST:
			// Sent by this host, or unicast to another host's MAC
			// address and seen only because the interface is
			// promiscuous (a client renewing with another server).
			c.ignored.Add(1)
			return
		}
	}
	status := clientAuxStatus(oob)
	if status&unix.TP_STATUS_VLAN_VALID != 0 {
		// The tag was taken off by the driver: the frame belongs to a
		// VLAN on top of this interface, not to this interface.
		c.ignored.Add(1)
		return
	}
	if cut {
		c.malformedFrames.Add(1)
		c.log.Debug("client frame too long", "iface", s.ifname, "len", len(frame))
		return
	}
	// A frame sent from this host (another namespace over a veth pair,
	// a bridge) with checksum offload carries only the pseudo-header sum
	// in its UDP checksum; the kernel says so, and verifies it if the
	// hardware did not.
	checkUDP := status&(unix.TP_STATUS_CSUMNOTREADY|unix.TP_STATUS_CSUM_VALID) == 0
	f, err := parseFrame(frame, checkUDP)
	switch {
	case errors.Is(err, ErrFragment):
		c.ignored.Add(1)
		return
	case err != nil:
		c.malformedFrames.Add(1)
		c.log.Debug("client frame dropped", "iface", s.ifname, "err", err)
		return
	case f.Dst.Port() != DHCPServerPort, bytes.Equal(f.SrcMAC, s.mac):
		// The filter passes port 67 only; our own frames come back
		// only if the link loops.
		c.ignored.Add(1)
		return
	}
	p := ClientPacket{
		Payload:   slices.Clone(f.Payload),
		Iface:     s.ifname,
		SrcMAC:    slices.Clone(f.SrcMAC),
		DstMAC:    slices.Clone(f.DstMAC),
		SrcIP:     f.Src.Addr(),
		DstIP:     f.Dst.Addr(),
		SrcPort:   f.Src.Port(),
		DstPort:   f.Dst.Port(),
		Broadcast: f.Dst.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || bytes.Equal(f.DstMAC, broadcastMAC()),
	}
	select {
	case c.packets <- p:
		c.received.Add(1)
	default:
		c.dropped.Add(1)
	}
}

// clientAuxStatus returns tp_status of the PACKET_AUXDATA control message,
// or 0 if there is none.
func clientAuxStatus(oob []byte) uint32 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
			// struct tpacket_auxdata begins with tp_status, in host
			// byte order.
			return binary.NativeEndian.Uint32(m.Data)
		}
	}
	return 0
}
