// Package wire encodes and decodes the inter-node messages of ddhcpd.
//
// The format is the one spoken by the C ddhcpd (a 16-byte header followed by
// a command-specific payload, all big-endian), so a mesh can mix both
// implementations. Decoding is strict: a datagram whose length does not match
// its command and count exactly is rejected with an error that names the
// reason, so the caller can count drops per reason.
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
)

// Commands carried in the header's command byte.
const (
	CmdUpdateClaim = 1  // multicast: blocks the sender owns, with their lifetime
	CmdInquire     = 2  // multicast: blocks the sender wants to claim
	CmdRenewLease  = 16 // unicast: a roamed client renews an address of the receiver's block
	CmdLeaseAck    = 17 // unicast: the owner grants the renewal
	CmdLeaseNak    = 18 // unicast: the owner refuses the renewal
	CmdRelease     = 19 // unicast: a roamed client released an address of the receiver's block
)

// Sizes of the fixed parts of the format.
const (
	HeaderLen     = 16
	claimEntryLen = 7
	inquiryLen    = 4
	RenewLen      = HeaderLen + 28 // every message of the renew family is exactly this long

	// MaxClaimsPerMessage is how many UPDATECLAIM entries one datagram carries
	// at most; the C node uses the same limit.
	MaxClaimsPerMessage = 32
	// MaxInquiriesPerMessage is bounded by the one-byte count field.
	MaxInquiriesPerMessage = 255
)

// Errors returned by Decode. Each is a distinct drop reason.
var (
	ErrShort   = errors.New("shorter than the header")
	ErrCommand = errors.New("unknown command")
	ErrLength  = errors.New("length does not match command and count")
	ErrCount   = errors.New("count out of range")
)

// NodeID identifies a node. The bytes are opaque on the wire; ids are
// compared as big-endian unsigned integers, and the higher id wins every tie.
type NodeID [8]byte

// Compare returns -1, 0 or +1 as a is lower than, equal to or higher than b.
func (a NodeID) Compare(b NodeID) int { return bytes.Compare(a[:], b[:]) }

// IsZero reports whether the id is all zero, as every C node sends it.
func (a NodeID) IsZero() bool { return a == NodeID{} }

func (a NodeID) String() string { return hex.EncodeToString(a[:]) }

// ParseNodeID parses 16 hexadecimal digits.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("node id %q: want 16 hexadecimal digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// Swarm is the part of the header that names the pool; packets from another
// swarm are dropped.
type Swarm struct {
	Prefix    netip.Addr // IPv4 pool address as configured (the C node does not mask it)
	PrefixLen uint8
	BlockSize uint8 // addresses per block, not the exponent
}

// Header is the 16-byte header every message starts with.
type Header struct {
	Node    NodeID
	Swarm   Swarm
	Command uint8
	Count   uint8 // number of entries for UPDATECLAIM and INQUIRE; 0 for the renew family
}

// Claim is one UPDATECLAIM entry.
type Claim struct {
	Block    uint32
	Lifetime uint16 // seconds; 0 announces that the block is released
	Reserved uint8  // sent as 0 and ignored, kept so re-encoding is exact
}

// Renew is the record of the renew family (RENEWLEASE, LEASEACK, LEASENAK,
// RELEASE). Addr holds the address bytes exactly as they were on the wire:
// C nodes write them in host order, so use AddrOrder to interpret them.
type Renew struct {
	Addr         [4]byte
	Xid          uint32
	LeaseSeconds uint32
	Chaddr       [16]byte
}

// Message is a decoded datagram. Claims is set for UPDATECLAIM, Inquiries for
// INQUIRE and Renew for the renew family.
type Message struct {
	Header
	Claims    []Claim
	Inquiries []uint32
	Renew     Renew
}

// Decode parses one datagram. It never panics; on error the message is
// unusable and the error wraps one of ErrShort, ErrCommand, ErrLength.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) < HeaderLen {
		return m, fmt.Errorf("wire: %d bytes: %w", len(b), ErrShort)
	}
	copy(m.Node[:], b[0:8])
	m.Swarm.Prefix = netip.AddrFrom4([4]byte(b[8:12]))
	m.Swarm.PrefixLen = b[12]
	m.Swarm.BlockSize = b[13]
	m.Command = b[14]
	m.Count = b[15]
	p := b[HeaderLen:]
	switch m.Command {
	case CmdUpdateClaim:
		if len(p) != claimEntryLen*int(m.Count) {
			return m, fmt.Errorf("wire: UPDATECLAIM with count %d in %d bytes: %w", m.Count, len(b), ErrLength)
		}
		m.Claims = make([]Claim, m.Count)
		for i := range m.Claims {
			e := p[i*claimEntryLen:]
			m.Claims[i] = Claim{
				Block:    binary.BigEndian.Uint32(e),
				Lifetime: binary.BigEndian.Uint16(e[4:]),
				Reserved: e[6],
			}
		}
	case CmdInquire:
		if len(p) != inquiryLen*int(m.Count) {
			return m, fmt.Errorf("wire: INQUIRE with count %d in %d bytes: %w", m.Count, len(b), ErrLength)
		}
		m.Inquiries = make([]uint32, m.Count)
		for i := range m.Inquiries {
			m.Inquiries[i] = binary.BigEndian.Uint32(p[i*inquiryLen:])
		}
	case CmdRenewLease, CmdLeaseAck, CmdLeaseNak, CmdRelease:
		if len(b) != RenewLen {
			return m, fmt.Errorf("wire: renew command %d in %d bytes: %w", m.Command, len(b), ErrLength)
		}
		copy(m.Renew.Addr[:], p[0:4])
		m.Renew.Xid = binary.BigEndian.Uint32(p[4:])
		m.Renew.LeaseSeconds = binary.BigEndian.Uint32(p[8:])
		copy(m.Renew.Chaddr[:], p[12:28])
	default:
		return m, fmt.Errorf("wire: command %d: %w", m.Command, ErrCommand)
	}
	return m, nil
}

// Append encodes m and appends it to b. The count field is taken from the
// payload for UPDATECLAIM and INQUIRE, and kept as set for the renew family
// (C nodes send 0 there).
func (m *Message) Append(b []byte) ([]byte, error) {
	switch m.Command {
	case CmdUpdateClaim:
		if len(m.Claims) > MaxClaimsPerMessage {
			return b, fmt.Errorf("wire: %d claims in one message (max %d): %w", len(m.Claims), MaxClaimsPerMessage, ErrCount)
		}
	case CmdInquire:
		if len(m.Inquiries) > MaxInquiriesPerMessage {
			return b, fmt.Errorf("wire: %d inquiries in one message (max %d): %w", len(m.Inquiries), MaxInquiriesPerMessage, ErrCount)
		}
	case CmdRenewLease, CmdLeaseAck, CmdLeaseNak, CmdRelease:
	default:
		return b, fmt.Errorf("wire: encode command %d: %w", m.Command, ErrCommand)
	}
	if !m.Swarm.Prefix.Is4() {
		return b, fmt.Errorf("wire: pool prefix %v is not IPv4", m.Swarm.Prefix)
	}
	b = append(b, m.Node[:]...)
	pfx := m.Swarm.Prefix.As4()
	b = append(b, pfx[:]...)
	b = append(b, m.Swarm.PrefixLen, m.Swarm.BlockSize, m.Command)
	switch m.Command {
	case CmdUpdateClaim:
		b = append(b, uint8(len(m.Claims)))
		for _, c := range m.Claims {
			b = binary.BigEndian.AppendUint32(b, c.Block)
			b = binary.BigEndian.AppendUint16(b, c.Lifetime)
			b = append(b, c.Reserved)
		}
	case CmdInquire:
		b = append(b, uint8(len(m.Inquiries)))
		for _, i := range m.Inquiries {
			b = binary.BigEndian.AppendUint32(b, i)
		}
	default:
		b = append(b, m.Count)
		b = append(b, m.Renew.Addr[:]...)
		b = binary.BigEndian.AppendUint32(b, m.Renew.Xid)
		b = binary.BigEndian.AppendUint32(b, m.Renew.LeaseSeconds)
		b = append(b, m.Renew.Chaddr[:]...)
	}
	return b, nil
}

// Encode returns the datagram for m.
func (m *Message) Encode() ([]byte, error) { return m.Append(nil) }

// Matches reports whether a header belongs to swarm s: same prefix, prefix
// length and block size. This is the C node's filter.
func (s Swarm) Matches(h Header) bool {
	return h.Swarm == s
}

// ChunkClaims splits claims into UPDATECLAIM-sized groups.
func ChunkClaims(claims []Claim) [][]Claim {
	return chunk(claims, MaxClaimsPerMessage)
}

// ChunkInquiries splits block indexes into INQUIRE-sized groups.
func ChunkInquiries(blocks []uint32) [][]uint32 {
	return chunk(blocks, MaxInquiriesPerMessage)
}

func chunk[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}
