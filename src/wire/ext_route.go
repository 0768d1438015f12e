package wire

import (
	"errors"
	"fmt"
)

// ExtRoute carries a forwarded renewal (RENEWLEASE, LEASEACK, LEASENAK,
// RELEASE: a whole C message) along the overlay tree to a node that is not
// a neighbour of its sender (SPEC §5). The extension header names the node
// that wrote the inner message; relays pass it on unchanged but for the hop
// count:
//
//	target (8) | hops (1) | inner message
//
// The inner message is checked by Decode like one received on port 1235,
// and must name the same node and swarm as the extension header.
const ExtRoute = 12

// MaxRouteHops bounds how often a routed message is passed on, so one that
// meets a loop while the tree changes dies instead of circling.
const MaxRouteHops = 64

// Route is a routed renewal.
type Route struct {
	Node   NodeID // the node that wrote Inner; replies go back to it
	Swarm  Swarm
	Target NodeID
	Hops   uint8
	Inner  Message
}

const routeFixedLen = 9

// Errors of ParseRoute besides those of Decode.
var (
	ErrZeroNode    = errors.New("writer or target is node id zero")
	ErrRouteWriter = errors.New("inner message of another node or swarm")
)

// ParseRoute reads the payload of an ExtRoute extension.
func ParseRoute(e Ext) (Route, error) {
	r := Route{Node: e.Node, Swarm: e.Swarm}
	if e.Type != ExtRoute {
		return r, fmt.Errorf("wire: extension type %d is not ROUTE", e.Type)
	}
	if len(e.Payload) < routeFixedLen+HeaderLen {
		return r, fmt.Errorf("wire: ROUTE of %d bytes: %w", ExtHeaderLen+len(e.Payload), ErrShort)
	}
	copy(r.Target[:], e.Payload[:8])
	r.Hops = e.Payload[8]
	if r.Node.IsZero() || r.Target.IsZero() {
		// Only our nodes route, and their ids are never zero; a zero
		// writer would pass for a C node's answer.
		return r, fmt.Errorf("wire: ROUTE: %w", ErrZeroNode)
	}
	m, err := Decode(e.Payload[routeFixedLen:])
	if err != nil {
		return r, fmt.Errorf("wire: ROUTE: %w", err)
	}
	if m.Command < CmdRenewLease || m.Command > CmdRelease {
		return r, fmt.Errorf("wire: ROUTE carries command %d: %w", m.Command, ErrCommand)
	}
	if m.Node != r.Node || !m.Swarm.Matches(Header{Swarm: r.Swarm}) {
		// The writer named in the extension header answers for the
		// inner message.
		return r, fmt.Errorf("wire: ROUTE: %w", ErrRouteWriter)
	}
	r.Inner = m
	return r, nil
}

// Encode returns the datagram for r.
func (r *Route) Encode() ([]byte, error) {
	inner, err := r.Inner.Encode()
	if err != nil {
		return nil, err
	}
	e := Ext{Type: ExtRoute, Node: r.Node, Swarm: r.Swarm}
	e.Payload = make([]byte, 0, routeFixedLen+len(inner))
	e.Payload = append(e.Payload, r.Target[:]...)
	e.Payload = append(e.Payload, r.Hops)
	e.Payload = append(e.Payload, inner...)
	return e.Encode()
}
