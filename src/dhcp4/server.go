// Package dhcp4 decides what to do with a DHCPv4 request, after Kea's
// processing flow (the numbered items of the reference checklist are cited
// as "Kea n"). It is pure: a parsed request and the monotonic time go in; a
// reply, a forward to the block's owner, or a drop with its reason come out.
// Sockets, claiming and the clock live elsewhere.
package dhcp4

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
	"ddhcpd/src/pool"
)

// Defaults.
const (
	DefaultLeaseTime = 300 * time.Second // the C ddhcpd's
	DefaultOfferHold = 12 * time.Second  // the C ddhcpd's offer time
	DefaultProbation = time.Hour         // Kea's 24 h is too long for small mesh pools
)

// Config holds the DHCP service settings.
type Config struct {
	ServerID  netip.Addr   // option 54 and source address of replies
	Subnet    netip.Prefix // the clients' subnet: default mask and broadcast; default the pool
	LeaseTime time.Duration
	OfferHold time.Duration
	Probation time.Duration
	Options   []Option // configured options
	// AdmitRate limits the first DISCOVERs of clients without a lease, per
	// second (burst: twice that); 0 turns admission control and the
	// reserve off.
	AdmitRate float64
	// Reserve is how many free addresses are kept for clients that are
	// known or repeat their DISCOVER: first-time clients (a random-MAC
	// flood) cannot take them.
	Reserve int
}

// Option is a configured DHCP option. Always options are sent even when the
// client does not ask for them (Kea's always-send).
type Option struct {
	Code   uint8
	Data   []byte
	Always bool
}

// Kind says where a block is served from.
type Kind uint8

// Block locations.
const (
	Unowned Kind = iota // free, inquired, or being claimed: nobody known serves it
	Ours                // we own it
	Peer                // another node owns it
)

// Location is who serves a block.
type Location struct {
	Kind     Kind
	Node     [8]byte    // owner's node id for Peer
	NodeAddr netip.Addr // owner's link-local address for Peer
}

// Blocks is the view of block ownership the server reads (the claim
// engine, through the node). What the server wants done with blocks comes
// out in its Decision, never as a call back.
type Blocks interface {
	Locate(block uint32) Location
}

// Request is a received DHCP message with what the socket knows of it.
type Request struct {
	Msg       *dhcpv4.DHCPv4
	Iface     string
	SrcIP     netip.Addr
	SrcMAC    net.HardwareAddr
	Broadcast bool // sent to the broadcast address (REBINDING rather than RENEWING)
}

// Action is what to do with a request.
type Action uint8

// Actions.
const (
	Drop    Action = iota // send nothing
	Reply                 // send Decision.Reply to Decision.Dest
	Forward               // ask the block's owner (Decision.Forward) and answer when it does
)

// Dest is where a reply goes.
type Dest struct {
	IP     netip.Addr
	Port   uint16
	MAC    net.HardwareAddr // nil for broadcast
	Routed bool             // to a relay: route through the kernel
}

// ForwardKind says what is forwarded.
type ForwardKind uint8

// Forward kinds.
const (
	ForwardRenew   ForwardKind = iota + 1 // RENEWLEASE: answer with ACK or NAK when the owner does
	ForwardRelease                        // RELEASE: tell the owner, answer nothing
)

// Forwarding asks the owner of Addr's block about a client.
type Forwarding struct {
	Kind     ForwardKind
	Addr     netip.Addr
	Node     [8]byte
	NodeAddr netip.Addr
}

// EventKind names hook events.
type EventKind string

// Events for the hook and the log.
const (
	EventLease   EventKind = "lease"
	EventRelease EventKind = "release"
	EventDecline EventKind = "decline"
)

// Event is a lease change for the hook.
type Event struct {
	Kind     EventKind
	Addr     netip.Addr
	HW       net.HardwareAddr
	Hostname string
}

// Decision is the outcome of Handle.
type Decision struct {
	Action  Action
	Reason  string // why it was dropped, or what was answered; for counters
	Reply   *dhcpv4.DHCPv4
	Dest    Dest
	Forward Forwarding
	Events  []Event

	// Demand asks for more blocks at once: a client got nothing, or the
	// last free address of a block went out.
	Demand bool
	// Want names a block to claim with priority (a host reservation or
	// an orphaned client's address); valid when HasWant.
	Want    uint32
	HasWant bool
}

// Drop reasons (also counter names).
const (
	DropNotRequest  = "not_a_request"
	DropNoType      = "no_message_type"
	DropBadType     = "unexpected_message_type"
	DropNoClient    = "no_client_identity"
	DropNotForUs    = "server_id_not_ours"
	DropDiscover54  = "discover_with_server_id"
	DropNothing     = "nothing_to_offer"
	DropNotOurRange = "not_our_range"
	DropUnowned     = "block_not_served"
	DropBadRequest  = "malformed_request"
	DropInform      = "inform_without_address"
	DropUnknown     = "unknown_lease"
)

// Server is the DHCP decision maker of one node.
type Server struct {
	cfg    Config
	leases *lease.Table
	pool   *pool.Pool
	blocks Blocks
	admit  *Admission
	opts   *optionTable // of cfg.Options and cfg.Subnet
}

// New makes a server. The server id is required.
func New(cfg Config, t *lease.Table, b Blocks) (*Server, error) {
	if !cfg.ServerID.Is4() {
		return nil, errors.New("dhcp4: server identifier must be an IPv4 address")
	}
	if cfg.LeaseTime == 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.OfferHold == 0 {
		cfg.OfferHold = DefaultOfferHold
	}
	if cfg.Probation == 0 {
		cfg.Probation = DefaultProbation
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = t.Pool().Prefix()
	}
	if cfg.LeaseTime < 10*time.Second || cfg.LeaseTime > 0xffffffff*time.Second {
		return nil, fmt.Errorf("dhcp4: lease time %v out of range", cfg.LeaseTime)
	}
	s := &Server{cfg: cfg, leases: t, pool: t.Pool(), blocks: b, opts: newOptionTable(cfg.Options, cfg.Subnet)}
	if cfg.AdmitRate > 0 {
		s.admit = NewAdmission()
		s.admit.Rate, s.admit.Burst, s.admit.tokens = cfg.AdmitRate, 2*cfg.AdmitRate, 2*cfg.AdmitRate
	}
	return s, nil
}

// Config returns the settings in force.
func (s *Server) Config() Config { return s.cfg }

// SetOptions replaces the configured options (at run time, from the loop).
func (s *Server) SetOptions(opts []Option) {
	s.cfg.Options = slices.Clone(opts)
	s.opts = newOptionTable(s.cfg.Options, s.cfg.Subnet)
}

// SetLeaseTime changes the lease time for new grants.
func (s *Server) SetLeaseTime(d time.Duration) { s.cfg.LeaseTime = d }

func drop(reason string) Decision { return Decision{Action: Drop, Reason: reason} }

// Handle decides what to do with one request (Kea 7, 9).
func (s *Server) Handle(now time.Duration, r Request) Decision {
	m := r.Msg
	if m == nil || m.OpCode != dhcpv4.OpcodeBootRequest {
		return drop(DropNotRequest)
	}
	mt := m.MessageType()
	if mt == dhcpv4.MessageTypeNone {
		return drop(DropNoType)
	}
	c, ok := clientOf(m)
	if !ok { // Kea 11: neither chaddr nor client id
		return drop(DropNoClient)
	}
	sid := m.ServerIdentifier()
	if mt == dhcpv4.MessageTypeDiscover && sid != nil { // Kea 11
		return drop(DropDiscover54)
	}
	if sid != nil && !sid.Equal(net.IP(s.cfg.ServerID.AsSlice())) { // Kea 10
		if mt == dhcpv4.MessageTypeRequest {
			// The client chose another server's offer: ours is
			// declined (RFC 2131 §3.1.4, Kea 27).
			s.leases.CancelOffer(c)
		}
		return drop(DropNotForUs)
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return s.discover(now, r, c)
	case dhcpv4.MessageTypeRequest:
		return s.request(now, r, c)
	case dhcpv4.MessageTypeRelease:
		return s.release(now, r, c)
	case dhcpv4.MessageTypeDecline:
		return s.decline(now, r, c)
	case dhcpv4.MessageTypeInform:
		return s.inform(r)
	}
	return drop(DropBadType)
}

// clientOf returns the client's identity: option 61 when present, else
// chaddr (Kea 42).
func clientOf(m *dhcpv4.DHCPv4) (lease.Client, bool) {
	id := m.Options.Get(dhcpv4.OptionClientIdentifier)
	hw := m.ClientHWAddr
	if len(id) == 0 && (len(hw) == 0 || allZero(hw)) {
		return lease.Client{}, false
	}
	return lease.Client{Key: lease.KeyOf(id, hw), ID: id, HW: hw, Hostname: m.HostName()}, true
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

func ip4(ip net.IP) (netip.Addr, bool) {
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, a.Is4() && !a.IsUnspecified()
}

// blockOf locates the block of a pool address.
func (s *Server) blockOf(a netip.Addr) (uint32, Location, bool) {
	idx, ok := s.pool.Block(a)
	if !ok {
		return 0, Location{}, false
	}
	return idx, s.blocks.Locate(idx), true
}

// serves reports whether a lies in a block we own and serve.
func (s *Server) serves(a netip.Addr) bool {
	idx, loc, ok := s.blockOf(a)
	return ok && loc.Kind == Ours && s.leases.Serving(idx)
}

// discover picks an address to offer (Kea 14, 34): the host reservation, else
// the client's existing lease, else the requested address, else the
// allocator. With nothing to offer it stays silent and asks for blocks.
func (s *Server) discover(now time.Duration, r Request, c lease.Client) Decision {
	_, reserved := s.leases.Reservation(c.Key)
	firstTime := false
	if s.admit != nil && s.leases.Current(c) == nil && !reserved {
		why, repeat := s.admit.Admit(now, c.Key)
		if why != "" {
			return drop(why)
		}
		firstTime = !repeat
	}
	var pick netip.Addr
	var want uint32
	hasWant := false
	if a, ok := s.leases.Reservation(c.Key); ok {
		if s.serves(a) && s.leases.AvailableFor(a, c) {
			pick = a
		} else if idx, loc, ok := s.blockOf(a); ok && loc.Kind == Unowned {
			want, hasWant = idx, true
		}
	}
	wanting := func(d Decision) Decision {
		d.Want, d.HasWant = want, hasWant
		return d
	}
	if !pick.IsValid() {
		if l := s.leases.Current(c); l != nil && s.serves(l.Addr) && s.leases.AvailableFor(l.Addr, c) {
			pick = l.Addr
		}
	}
	if !pick.IsValid() {
		if a, ok := ip4(r.Msg.RequestedIPAddress()); ok && s.serves(a) && s.leases.AvailableFor(a, c) {
			pick = a
		}
	}
	if !pick.IsValid() {
		if firstTime && s.cfg.Reserve > 0 && s.leases.FreeTotal() <= s.cfg.Reserve {
			d := drop(DropReserve)
			d.Demand = true
			return wanting(d)
		}
		var ok bool
		if pick, ok = s.leases.Pick(c); !ok {
			d := drop(DropNothing)
			d.Demand = true
			return wanting(d)
		}
	}
	l := s.leases.Offer(now, c, pick, xidOf(r.Msg), s.cfg.OfferHold)
	d := s.reply(r, dhcpv4.MessageTypeOffer, pick, s.remaining(now, l))
	d.Reason = "offer"
	// Keep ahead of the next client.
	d.Demand = s.leases.Free(mustBlock(s.pool, pick)) == 0
	return wanting(d)
}

func mustBlock(p *pool.Pool, a netip.Addr) uint32 {
	idx, _ := p.Block(a)
	return idx
}

func xidOf(m *dhcpv4.DHCPv4) uint32 {
	x := m.TransactionID
	return uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])
}

// remaining is the lease time to announce: a full lease for a new grant, what
// is left of a live lease otherwise (an offer never extends a lease).
func (s *Server) remaining(now time.Duration, l *lease.Lease) time.Duration {
	if l.State == lease.Assigned && !l.Expired(now) {
		return max(l.Expires-now, time.Second)
	}
	return s.cfg.LeaseTime
}

// request handles DHCPREQUEST in its four client states (Kea 22-26, 30-32).
func (s *Server) request(now time.Duration, r Request, c lease.Client) Decision {
	m := r.Msg
	sid := m.ServerIdentifier() != nil
	req, hasReq := ip4(m.RequestedIPAddress())
	ciaddr, hasCi := ip4(m.ClientIPAddr)
	var a netip.Addr
	switch {
	case sid: // SELECTING
		a = req
		if !hasReq {
			a = ciaddr
		}
	case hasReq && !hasCi: // INIT-REBOOT
		a = req
	case hasCi: // RENEWING (unicast) or REBINDING (broadcast)
		a = ciaddr
	default:
		return drop(DropBadRequest)
	}
	if !a.IsValid() {
		return drop(DropBadRequest)
	}
	idx, loc, inPool := s.blockOf(a)
	if !inPool {
		return drop(DropNotOurRange) // Kea 26: not our range, silence, never a NAK
	}
	switch loc.Kind {
	case Peer:
		// Another node owns the block (a roamed client, or a block we
		// lost): its owner decides.
		return Decision{Action: Forward, Reason: "forward_renew",
			Forward: Forwarding{Kind: ForwardRenew, Addr: a, Node: loc.Node, NodeAddr: loc.NodeAddr}}
	}
	// Kea 25 NAKs an INIT-REBOOT of a known client for another address
	// than its lease. In a mesh the client may hold that address from
	// another node (the block's previous owner): RFC 2131 §4.3.2 asks for
	// a NAK only when the address is on the wrong network, so an
	// available address is granted below and the stale lease freed.
	if loc.Kind == Unowned || !s.leases.Serving(idx) {
		// Nobody known serves it: perhaps its owner is not heard yet, or
		// it vanished. A NAK could take a working address from the
		// client; instead claim the orphaned block, so the client's next
		// try is adopted (SPEC §4, issue: orphaned blocks).
		d := drop(DropUnowned)
		d.Want, d.HasWant = idx, loc.Kind == Unowned
		return d
	}
	l := s.leases.At(a)
	if s.pool.Reserved(a) || !s.leases.AvailableFor(a, c) {
		return s.nak(r, "nak_address_taken") // Kea 30
	}
	if rsv, ok := s.leases.Reservation(c.Key); ok && rsv != a && s.serves(rsv) && s.leases.AvailableFor(rsv, c) {
		// Kea 30: back to DISCOVER to get the reserved address.
		return s.nak(r, "nak_reserved_elsewhere")
	}
	adopted := l == nil || !l.Holds()
	l = s.leases.Assign(now, c, a, s.cfg.LeaseTime)
	d := s.reply(r, dhcpv4.MessageTypeAck, a, s.cfg.LeaseTime)
	d.Reason = "ack"
	if adopted && !sid {
		d.Reason = "ack_adopted" // a lease we had no record of, e.g. from a vanished owner
	}
	d.Events = []Event{{Kind: EventLease, Addr: a, HW: c.HW, Hostname: l.Hostname}}
	return d
}

// release frees the lease named by ciaddr (Kea 57).
func (s *Server) release(now time.Duration, r Request, c lease.Client) Decision {
	a, ok := ip4(r.Msg.ClientIPAddr)
	if !ok {
		return drop(DropBadRequest)
	}
	_, loc, inPool := s.blockOf(a)
	if !inPool {
		return drop(DropNotOurRange)
	}
	if loc.Kind == Peer {
		return Decision{Action: Forward, Reason: "forward_release",
			Forward: Forwarding{Kind: ForwardRelease, Addr: a, Node: loc.Node, NodeAddr: loc.NodeAddr}}
	}
	if !s.leases.Release(now, c, a) {
		return drop(DropUnknown)
	}
	return Decision{Action: Drop, Reason: "released", Events: []Event{{Kind: EventRelease, Addr: a, HW: c.HW}}}
}

// decline puts option 50's address on probation (Kea 56).
func (s *Server) decline(now time.Duration, r Request, c lease.Client) Decision {
	a, ok := ip4(r.Msg.RequestedIPAddress())
	if !ok {
		return drop(DropBadRequest)
	}
	if !s.serves(a) {
		return drop(DropNotOurRange)
	}
	if !s.leases.Decline(now, c, a, s.cfg.Probation) {
		return drop(DropUnknown)
	}
	return Decision{Action: Drop, Reason: "declined", Events: []Event{{Kind: EventDecline, Addr: a, HW: c.HW}}}
}

// inform answers with options only (Kea 12, 53, 55).
func (s *Server) inform(r Request) Decision {
	m := r.Msg
	ci, hasCi := ip4(m.ClientIPAddr)
	gi, hasGi := ip4(m.GatewayIPAddr)
	if !hasCi && !hasGi && (!r.SrcIP.IsValid() || r.SrcIP.IsUnspecified()) {
		return drop(DropInform)
	}
	d := s.reply(r, dhcpv4.MessageTypeAck, netip.Addr{}, 0)
	d.Reason = "inform"
	switch {
	case hasCi:
		d.Dest = Dest{IP: ci, Port: dhcpv4.ClientPort, MAC: srcMAC(r)}
		d.Reply.GatewayIPAddr = net.IPv4zero
		d.Reply.HopCount = 0
		d.Reply.Options.Del(dhcpv4.OptionRelayAgentInformation)
	case hasGi:
		d.Reply.SetBroadcast()
		d.Dest = Dest{IP: gi, Port: dhcpv4.ServerPort, Routed: true}
	default:
		d.Dest = Dest{IP: r.SrcIP, Port: dhcpv4.ClientPort, MAC: srcMAC(r)}
	}
	return d
}

func srcMAC(r Request) net.HardwareAddr {
	if len(r.SrcMAC) == 6 {
		return r.SrcMAC
	}
	if len(r.Msg.ClientHWAddr) == 6 {
		return r.Msg.ClientHWAddr
	}
	return nil
}

func (s *Server) nak(r Request, reason string) Decision {
	m := r.Msg
	reply := &dhcpv4.DHCPv4{
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
	reply.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
	reply.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(s.cfg.ServerID.AsSlice()))) // C bug 13: NAK without 54
	if id := m.Options.Get(dhcpv4.OptionClientIdentifier); len(id) > 0 {
		reply.Options.Update(dhcpv4.OptGeneric(dhcpv4.OptionClientIdentifier, id))
	}
	d := Decision{Action: Reply, Reason: reason, Reply: reply}
	if gi, ok := ip4(m.GatewayIPAddr); ok { // Kea 49
		reply.SetBroadcast()
		d.Dest = Dest{IP: gi, Port: dhcpv4.ServerPort, Routed: true}
	} else { // RFC 2131 §4.1: NAKs are broadcast when not relayed
		d.Dest = Dest{IP: broadcast(), Port: dhcpv4.ClientPort}
	}
	return d
}

// broadcast is 255.255.255.255.
func broadcast() netip.Addr { return netip.AddrFrom4([4]byte{255, 255, 255, 255}) }
