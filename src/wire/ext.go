package wire

import (
	"errors"
	"fmt"
	"net/netip"
)

// Our extensions travel on UDP port 1236, which C nodes never open, so they
// cannot disturb them. Each starts with its own version byte and a type, then
// the sender's node id and the swarm, like the C header:
//
//	version (1) | type (1) | node id (8) | pool prefix (4) | prefix length (1) | block size (1) | payload
const (
	ExtVersion   = 1
	ExtHeaderLen = 16
)

// MaxDatagram is the largest extension datagram (UDP payload) we send or
// accept. IPv6 guarantees an MTU of 1280 bytes on every link; less the IPv6
// header (40) and the UDP header (8), 1232 bytes of payload cross any link
// without fragmentation, which many mesh links (and firewalls) handle badly
// or not at all, and fit the daemon's receive buffer with room to spare.
// Every overlay message is designed to stay below it at any mesh size; the
// encoders refuse to produce more.
const MaxDatagram = 1280 - 40 - 8

// Extension message types.
const (
	ExtSync = 1 // a starting node asks everybody to re-announce their claims
)

// Errors of DecodeExt.
var (
	ErrExtVersion = errors.New("unknown extension version")
	ErrTooLong    = errors.New("longer than MaxDatagram")
)

// Ext is an extension message.
type Ext struct {
	Version uint8
	Type    uint8
	Node    NodeID
	Swarm   Swarm
	Payload []byte
}

// DecodeExt parses an extension datagram. The payload aliases b.
func DecodeExt(b []byte) (Ext, error) {
	var e Ext
	if len(b) < ExtHeaderLen {
		return e, fmt.Errorf("wire: extension of %d bytes: %w", len(b), ErrShort)
	}
	if len(b) > MaxDatagram {
		return e, fmt.Errorf("wire: extension of %d bytes: %w", len(b), ErrTooLong)
	}
	e.Version, e.Type = b[0], b[1]
	if e.Version != ExtVersion {
		return e, fmt.Errorf("wire: extension version %d: %w", e.Version, ErrExtVersion)
	}
	copy(e.Node[:], b[2:10])
	e.Swarm = Swarm{Prefix: netip.AddrFrom4([4]byte(b[10:14])), PrefixLen: b[14], BlockSize: b[15]}
	e.Payload = b[ExtHeaderLen:]
	return e, nil
}

// Encode returns the datagram for e (version ExtVersion). It refuses one
// longer than MaxDatagram.
func (e *Ext) Encode() ([]byte, error) {
	if !e.Swarm.Prefix.Is4() {
		return nil, fmt.Errorf("wire: pool prefix %v is not IPv4", e.Swarm.Prefix)
	}
	if n := ExtHeaderLen + len(e.Payload); n > MaxDatagram {
		return nil, fmt.Errorf("wire: extension type %d of %d bytes: %w", e.Type, n, ErrTooLong)
	}
	b := make([]byte, 0, ExtHeaderLen+len(e.Payload))
	b = append(b, ExtVersion, e.Type)
	b = append(b, e.Node[:]...)
	p := e.Swarm.Prefix.As4()
	b = append(b, p[:]...)
	b = append(b, e.Swarm.PrefixLen, e.Swarm.BlockSize)
	return append(b, e.Payload...), nil
}
