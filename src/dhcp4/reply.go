package dhcp4

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// reply builds an OFFER or ACK for yiaddr (zero for INFORM) with the options
// of Kea 15-19 and 43-48, and works out its destination (Kea 49-53).
func (s *Server) reply(r Request, mt dhcpv4.MessageType, yiaddr netip.Addr, leaseTime time.Duration) Decision {
	m := r.Msg
	rep := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        m.HWType,
		HopCount:      m.HopCount,
		TransactionID: m.TransactionID,
		Flags:         m.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: m.GatewayIPAddr,
		ClientHWAddr:  m.ClientHWAddr,
		Options:       dhcpv4.Options{},
	}
	if rep.GatewayIPAddr == nil {
		rep.GatewayIPAddr = net.IPv4zero
	}
	// Kea 15: ciaddr is copied into ACKs to REQUEST and INFORM.
	if mt == dhcpv4.MessageTypeAck && m.ClientIPAddr != nil {
		rep.ClientIPAddr = m.ClientIPAddr
	}
	if yiaddr.IsValid() {
		rep.YourIPAddr = net.IP(yiaddr.AsSlice())
	}
	o := rep.Options
	o.Update(dhcpv4.OptMessageType(mt))
	s.addOptions(o, m, yiaddr.IsValid())
	if yiaddr.IsValid() { // Kea 17: 51, 1, T1 < T2 < lease
		o.Update(dhcpv4.OptIPAddressLeaseTime(leaseTime))
		o.Update(dhcpv4.OptGeneric(dhcpv4.OptionRenewTimeValue, seconds(leaseTime/2)))
		o.Update(dhcpv4.OptGeneric(dhcpv4.OptionRebindingTimeValue, seconds(leaseTime*7/8)))
	}
	o.Update(dhcpv4.OptServerIdentifier(net.IP(s.cfg.ServerID.AsSlice()))) // Kea 48
	if id := m.Options.Get(dhcpv4.OptionClientIdentifier); len(id) > 0 {   // Kea 16, RFC 6842
		o.Update(dhcpv4.OptGeneric(dhcpv4.OptionClientIdentifier, id))
	}
	if ri := m.Options.Get(dhcpv4.OptionRelayAgentInformation); len(ri) > 0 {
		o.Update(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, ri))
	}
	return Decision{Action: Reply, Reply: rep, Dest: s.dest(r, rep, yiaddr)}
}

// bootpHeader is the length of the BOOTP header with the magic cookie.
const bootpHeader = 240

func seconds(d time.Duration) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(d/time.Second))
}

// addOptions adds the configured options the client asked for (55) or that
// are always sent, and the basic ones whenever configured (Kea 44, 46).
func (s *Server) addOptions(o dhcpv4.Options, m *dhcpv4.DHCPv4, withLease bool) {
	t := s.opts
	want := t.always
	for _, c := range m.ParameterRequestList() {
		want[c.Code()] = true
	}
	for _, basic := range []uint8{1, 3, 6, 15, 28} {
		want[basic] = true
	}
	if !withLease {
		want[1] = false // INFORM: the client has its address and mask
	}
	// Set by the server itself, never from configuration.
	for _, own := range []uint8{53, 54, 50, 51, 58, 59, 61, 82} {
		want[own] = false
	}
	for code, w := range want {
		if w && t.has[code] {
			o.Update(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(code), t.data[code]))
		}
	}
}

// optionTable is what addOptions needs of the configuration, worked out
// once per configuration rather than for every reply.
type optionTable struct {
	data   [256][]byte
	has    [256]bool
	always [256]bool
}

// newOptionTable indexes the configured options by code (the last of a
// code wins) and adds the defaults derived from the clients' subnet unless
// configured.
func newOptionTable(opts []Option, subnet netip.Prefix) *optionTable {
	t := new(optionTable)
	for _, opt := range opts {
		t.data[opt.Code], t.has[opt.Code] = opt.Data, true
		if opt.Always {
			t.always[opt.Code] = true
		}
	}
	if !t.has[1] {
		t.data[1], t.has[1] = net.CIDRMask(subnet.Bits(), 32), true
	}
	if !t.has[28] {
		t.data[28], t.has[28] = lastAddr(subnet).AsSlice(), true
	}
	return t
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := binary.BigEndian.Uint32(a[:]) | host
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
}

// dest is where a reply goes (RFC 2131 §4.1, Kea 49-52).
func (s *Server) dest(r Request, rep *dhcpv4.DHCPv4, yiaddr netip.Addr) Dest {
	m := r.Msg
	if gi, ok := ip4(m.GatewayIPAddr); ok {
		return Dest{IP: gi, Port: dhcpv4.ServerPort, Routed: true}
	}
	if ci, ok := ip4(m.ClientIPAddr); ok {
		return Dest{IP: ci, Port: dhcpv4.ClientPort, MAC: srcMAC(r)}
	}
	if m.IsBroadcast() || !yiaddr.IsValid() || srcMAC(r) == nil {
		return Dest{IP: broadcast(), Port: dhcpv4.ClientPort}
	}
	return Dest{IP: yiaddr, Port: dhcpv4.ClientPort, MAC: srcMAC(r)}
}

// Encode serializes a reply: message type (53) first, relay information (82)
// last, everything else by code (Kea 19), options longer than 255 bytes
// split (RFC 3396), END, and padding to the 300-byte BOOTP minimum.
func Encode(d *dhcpv4.DHCPv4) []byte {
	b := make([]byte, bootpHeader, 576)
	// The fixed header as DHCPv4.ToBytes writes it, without its buffers.
	b[0], b[1], b[2], b[3] = byte(d.OpCode), byte(d.HWType), byte(len(d.ClientHWAddr)), d.HopCount
	copy(b[4:8], d.TransactionID[:])
	binary.BigEndian.PutUint16(b[8:], d.NumSeconds)
	binary.BigEndian.PutUint16(b[10:], d.Flags)
	for i, ip := range []net.IP{d.ClientIPAddr, d.YourIPAddr, d.ServerIPAddr, d.GatewayIPAddr} {
		copy(b[12+4*i:16+4*i], ip.To4()) // nil: zeros
	}
	copy(b[28:44], d.ClientHWAddr)
	copy(b[44:44+63], d.ServerHostName)
	copy(b[108:108+127], d.BootFileName)
	copy(b[236:240], []byte{99, 130, 83, 99}) // the magic cookie
	codes := make([]int, 0, len(d.Options)+2)
	for c := range d.Options {
		if c != 0 && c != 255 && c != 53 && c != 82 {
			codes = append(codes, int(c))
		}
	}
	slices.Sort(codes)
	if _, ok := d.Options[53]; ok {
		codes = slices.Insert(codes, 0, 53)
	}
	if _, ok := d.Options[82]; ok {
		codes = append(codes, 82)
	}
	for _, c := range codes {
		data := d.Options[uint8(c)]
		for {
			n := min(len(data), 255)
			b = append(b, uint8(c), uint8(n))
			b = append(b, data[:n]...)
			data = data[n:]
			if len(data) == 0 {
				break
			}
		}
	}
	b = append(b, 255)
	for len(b) < 300 {
		b = append(b, 0)
	}
	return b
}
