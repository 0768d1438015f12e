package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Ports of DHCPv4 (RFC 2131 §4.1).
const (
	DHCPServerPort = 67
	DHCPClientPort = 68
)

// DefaultTTL is the IPv4 time to live of the datagrams the client side sends.
const DefaultTTL = 64

// Sizes and codes of the headers the client side reads and writes.
const (
	etherHeaderLen = 14
	etherMinFrame  = 60 // minimum Ethernet frame without the FCS
	etherTypeIPv4  = 0x0800
	ipv4HeaderLen  = 20 // without options
	udpHeaderLen   = 8
	protoUDP       = 17

	// ipv4FlagMF and ipv4FragOff are the "more fragments" flag and the
	// fragment offset in the flags/fragment-offset word.
	ipv4FlagMF  = 0x2000
	ipv4FragOff = 0x1fff

	// MaxUDPPayload is the largest UDP payload an IPv4 datagram can carry.
	MaxUDPPayload = 0xffff - ipv4HeaderLen - udpHeaderLen
)

var (
	// ErrMalformedFrame is wrapped by the errors of ParseFrame for frames
	// that are not a well-formed Ethernet/IPv4/UDP frame.
	ErrMalformedFrame = errors.New("malformed frame")
	// ErrFragment is returned by ParseFrame for an IPv4 fragment. The
	// client side does not reassemble: DHCP messages fit in one datagram.
	ErrFragment = errors.New("IPv4 fragment")
)

// broadcastMAC is the Ethernet broadcast address.
func broadcastMAC() net.HardwareAddr {
	return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

// UDPFrame is one UDP datagram in an IPv4 packet in an Ethernet frame, the
// unit the client side sends and receives.
type UDPFrame struct {
	DstMAC, SrcMAC net.HardwareAddr // Ethernet addresses, 6 bytes each
	Src, Dst       netip.AddrPort   // IPv4 addresses and UDP ports
	TTL            uint8            // time to live; 0 means DefaultTTL when building
	ID             uint16           // IPv4 identification
	Payload        []byte           // UDP payload
}

// ParseFrame parses an Ethernet frame carrying an IPv4/UDP datagram. It
// checks the IPv4 version, header length, total length (bytes after it, such
// as Ethernet padding, are ignored), header checksum and protocol, the UDP
// length and, unless it is zero (not computed by the sender), the UDP
// checksum. IP options are skipped. Fragments are refused with ErrFragment,
// any other fault with an error wrapping ErrMalformedFrame.
//
// The MAC addresses and the payload of the result alias b.
func ParseFrame(b []byte) (UDPFrame, error) {
	return parseFrame(b, true)
}

// parseFrame is ParseFrame; checkUDP false skips the UDP checksum, for frames
// whose checksum the kernel reports as not filled in yet (sent from this host
// with checksum offload) or as already verified.
func parseFrame(b []byte, checkUDP bool) (UDPFrame, error) {
	var f UDPFrame
	if len(b) < etherHeaderLen {
		return f, malformed("%d bytes, shorter than an Ethernet header", len(b))
	}
	if et := binary.BigEndian.Uint16(b[12:14]); et != etherTypeIPv4 {
		return f, malformed("EtherType %#04x is not IPv4", et)
	}
	ip := b[etherHeaderLen:]
	if len(ip) < ipv4HeaderLen {
		return f, malformed("%d bytes after the Ethernet header, shorter than an IPv4 header", len(ip))
	}
	if v := ip[0] >> 4; v != 4 {
		return f, malformed("IP version %d", v)
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < ipv4HeaderLen {
		return f, malformed("IPv4 header length %d", ihl)
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	switch {
	case total > len(ip):
		return f, malformed("IPv4 total length %d, but only %d bytes follow the Ethernet header", total, len(ip))
	case total < ihl+udpHeaderLen:
		return f, malformed("IPv4 total length %d is too short for a %d-byte header and UDP", total, ihl)
	}
	ip = ip[:total]
	if checksumFold(checksumAdd(0, ip[:ihl])) != 0 {
		return f, malformed("bad IPv4 header checksum %#04x", binary.BigEndian.Uint16(ip[10:12]))
	}
	if frag := binary.BigEndian.Uint16(ip[6:8]); frag&(ipv4FlagMF|ipv4FragOff) != 0 {
		return f, ErrFragment
	}
	if ip[9] != protoUDP {
		return f, malformed("IP protocol %d is not UDP", ip[9])
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))

	udp := ip[ihl:]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpHeaderLen || ulen > len(udp) {
		return f, malformed("bad UDP length %d for an IPv4 payload of %d bytes", ulen, len(udp))
	}
	udp = udp[:ulen]
	if sum := binary.BigEndian.Uint16(udp[6:8]); checkUDP && sum != 0 {
		if checksumFold(checksumAdd(pseudoHeaderSum(src, dst, ulen), udp)) != 0 {
			return f, malformed("bad UDP checksum %#04x", sum)
		}
	}

	f.DstMAC = net.HardwareAddr(b[0:6:6])
	f.SrcMAC = net.HardwareAddr(b[6:12:12])
	f.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:2]))
	f.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:4]))
	f.TTL = ip[8]
	f.ID = binary.BigEndian.Uint16(ip[4:6])
	f.Payload = udp[udpHeaderLen:ulen:ulen]
	return f, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedFrame, fmt.Sprintf(format, args...))
}

// AppendFrame appends f as an Ethernet frame with an IPv4 header without
// options and a UDP header, both with their checksums, and returns the
// extended buffer. Frames shorter than the Ethernet minimum are padded with
// zeros, since not every driver pads what a packet socket sends. On error b
// is returned unchanged.
func AppendFrame(b []byte, f UDPFrame) ([]byte, error) {
	if len(f.DstMAC) != 6 || len(f.SrcMAC) != 6 {
		return b, fmt.Errorf("netio: build frame: MAC addresses %v and %v are not Ethernet addresses", f.DstMAC, f.SrcMAC)
	}
	if err := f.checkIPv4UDP(); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, f.DstMAC...)
	b = append(b, f.SrcMAC...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = f.appendIPv4UDP(b)
	for len(b)-start < etherMinFrame {
		b = append(b, 0)
	}
	return b, nil
}

// AppendIPv4UDP appends f's IPv4 header (without options) and UDP header,
// both with their checksums, and its payload; the MAC addresses are not used.
// This is what a raw IPv4 socket with IP_HDRINCL sends. On error b is
// returned unchanged.
func AppendIPv4UDP(b []byte, f UDPFrame) ([]byte, error) {
	if err := f.checkIPv4UDP(); err != nil {
		return b, err
	}
	return f.appendIPv4UDP(b), nil
}

func (f *UDPFrame) checkIPv4UDP() error {
	src, dst := f.Src.Addr(), f.Dst.Addr()
	if !src.Is4() || !dst.Is4() {
		return fmt.Errorf("netio: build frame from %s to %s: not IPv4 addresses", f.Src, f.Dst)
	}
	if len(f.Payload) > MaxUDPPayload {
		return fmt.Errorf("netio: build frame: payload of %d bytes is larger than %d", len(f.Payload), MaxUDPPayload)
	}
	return nil
}

func (f *UDPFrame) appendIPv4UDP(b []byte) []byte {
	src, dst := f.Src.Addr().As4(), f.Dst.Addr().As4()
	ttl := f.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	ulen := udpHeaderLen + len(f.Payload)
	total := ipv4HeaderLen + ulen

	ipStart := len(b)
	b = append(b, 4<<4|ipv4HeaderLen/4, 0) // version, IHL; TOS 0
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = binary.BigEndian.AppendUint16(b, f.ID)
	b = append(b, 0, 0, ttl, protoUDP, 0, 0) // no flags or offset; checksum below
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[ipStart+10:], checksumFold(checksumAdd(0, b[ipStart:])))

	udpStart := len(b)
	b = binary.BigEndian.AppendUint16(b, f.Src.Port())
	b = binary.BigEndian.AppendUint16(b, f.Dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(ulen))
	b = append(b, 0, 0) // checksum below
	b = append(b, f.Payload...)
	sum := checksumFold(checksumAdd(pseudoHeaderSum(f.Src.Addr(), f.Dst.Addr(), ulen), b[udpStart:]))
	if sum == 0 {
		// Zero means "no checksum" in UDP over IPv4; its ones'
		// complement twin says the same sum (RFC 768).
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(b[udpStart+6:], sum)
	return b
}

// checksumAdd adds b as big-endian 16-bit words (a trailing odd byte padded
// with zero) to the running sum of the Internet checksum (RFC 1071). A uint64
// cannot overflow for any datagram size.
func checksumAdd(sum uint64, b []byte) uint64 {
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// checksumFold folds the carries into 16 bits and returns the ones'
// complement: the checksum to send, or zero when verifying a correct one.
func checksumFold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// pseudoHeaderSum is the sum of the IPv4 pseudo-header of a UDP datagram of
// length ulen (RFC 768).
func pseudoHeaderSum(src, dst netip.Addr, ulen int) uint64 {
	s, d := src.As4(), dst.As4()
	sum := checksumAdd(0, s[:])
	sum = checksumAdd(sum, d[:])
	return sum + protoUDP + uint64(ulen)
}
