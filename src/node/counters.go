package node

import (
	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/dhcp4"
	"ddhcpd/src/wire"
)

// Counters are what one node counted since it started (or since the last
// ResetCounters). Each field has one name in the control socket's "stats",
// given by Each; the per-type tables name their entries by message type.
type Counters struct {
	// Mesh datagrams.
	MeshRx, DropNotLinkLocal, DropShort, DropUnknownCommand, DropBadLength uint64
	DropTruncated, DropForeignSwarm, DropOwnID, DropWrongPort              uint64
	DropExtMalformed, DropExtUnknownType, DropOverlayOff                   uint64
	RxInquire, RxUpdateClaim, RxSync                                       uint64
	TxInquire, TxUpdateClaim, TxSync, TxError                              uint64

	// Leases and state.
	LeaseReclaimed, StateRestored uint64

	// DHCP.
	DHCPRx, DHCPRxOther, DHCPRxUnicast, DHCPDropMalformed uint64
	DHCPRxType, DHCPTxType                                [dhcpv4.MessageTypeInform + 1]uint64
	DHCPDrop                                              map[string]uint64 // by dhcp4's drop reasons
	DHCPEvent                                             map[dhcp4.EventKind]uint64
	DHCPTxError, DHCPParkedAnswered                       uint64
	DHCPWantClaiming, DHCPWantRefused                     uint64

	// Roaming.
	RoamForwarded, RoamReleaseForwarded, RoamDuplicate, RoamDropTableFull uint64
	RoamTxError, RoamRetryRouted, RoamRetryOtherOrder, RoamDropNoAnswer   uint64
	RoamDropOutsidePool, RoamRxRelease, RoamRxRenewLease                  uint64
	RoamOwnerSilent, RoamOwnerAck, RoamOwnerNak                           uint64
	RoamDropUnexpectedAnswer, RoamAck, RoamNak, RoamHandover              uint64

	// Overlay.
	OverlayRx, OverlayTx                                    [wire.ExtRoute]uint64 // by overlay message type
	OverlayTxError, OverlayRootChanged, OverlayOwnEcho      uint64
	OverlayRelayed, OverlayDuplicate                        uint64
	OverlayRouteTx, OverlayRouteRx, OverlayRouteNoRoute     uint64
	OverlayRouteTxError                                     uint64
	DropOverlayMalformed, DropOverlayInterface              uint64
	DropOverlayTableFull, DropRouteMalformed, DropRouteHops uint64
}

// counterNames names every scalar counter, in the order "stats" lists them.
var counterNames = []struct {
	name  string
	field func(*Counters) *uint64
}{
	{"mesh.rx", func(c *Counters) *uint64 { return &c.MeshRx }},
	{"drop.not_link_local", func(c *Counters) *uint64 { return &c.DropNotLinkLocal }},
	{"drop.short", func(c *Counters) *uint64 { return &c.DropShort }},
	{"drop.unknown_command", func(c *Counters) *uint64 { return &c.DropUnknownCommand }},
	{"drop.bad_length", func(c *Counters) *uint64 { return &c.DropBadLength }},
	{"drop.truncated", func(c *Counters) *uint64 { return &c.DropTruncated }},
	{"drop.foreign_swarm", func(c *Counters) *uint64 { return &c.DropForeignSwarm }},
	{"drop.own_id", func(c *Counters) *uint64 { return &c.DropOwnID }},
	{"drop.wrong_port", func(c *Counters) *uint64 { return &c.DropWrongPort }},
	{"drop.ext_malformed", func(c *Counters) *uint64 { return &c.DropExtMalformed }},
	{"drop.ext_unknown_type", func(c *Counters) *uint64 { return &c.DropExtUnknownType }},
	{"drop.overlay_off", func(c *Counters) *uint64 { return &c.DropOverlayOff }},
	{"rx.inquire", func(c *Counters) *uint64 { return &c.RxInquire }},
	{"rx.updateclaim", func(c *Counters) *uint64 { return &c.RxUpdateClaim }},
	{"rx.sync", func(c *Counters) *uint64 { return &c.RxSync }},
	{"tx.inquire", func(c *Counters) *uint64 { return &c.TxInquire }},
	{"tx.updateclaim", func(c *Counters) *uint64 { return &c.TxUpdateClaim }},
	{"tx.sync", func(c *Counters) *uint64 { return &c.TxSync }},
	{"tx.error", func(c *Counters) *uint64 { return &c.TxError }},
	{"lease.reclaimed", func(c *Counters) *uint64 { return &c.LeaseReclaimed }},
	{"state.restored", func(c *Counters) *uint64 { return &c.StateRestored }},
	{"dhcp.rx", func(c *Counters) *uint64 { return &c.DHCPRx }},
	{"dhcp.rx.other", func(c *Counters) *uint64 { return &c.DHCPRxOther }},
	{"dhcp.rx.unicast", func(c *Counters) *uint64 { return &c.DHCPRxUnicast }},
	{"dhcp.drop.malformed", func(c *Counters) *uint64 { return &c.DHCPDropMalformed }},
	{"dhcp.tx.error", func(c *Counters) *uint64 { return &c.DHCPTxError }},
	{"dhcp.parked_answered", func(c *Counters) *uint64 { return &c.DHCPParkedAnswered }},
	{"dhcp.want_claiming", func(c *Counters) *uint64 { return &c.DHCPWantClaiming }},
	{"dhcp.want_refused", func(c *Counters) *uint64 { return &c.DHCPWantRefused }},
	{"roam.forwarded", func(c *Counters) *uint64 { return &c.RoamForwarded }},
	{"roam.release_forwarded", func(c *Counters) *uint64 { return &c.RoamReleaseForwarded }},
	{"roam.duplicate", func(c *Counters) *uint64 { return &c.RoamDuplicate }},
	{"roam.drop.table_full", func(c *Counters) *uint64 { return &c.RoamDropTableFull }},
	{"roam.tx_error", func(c *Counters) *uint64 { return &c.RoamTxError }},
	{"roam.retry_routed", func(c *Counters) *uint64 { return &c.RoamRetryRouted }},
	{"roam.retry_other_order", func(c *Counters) *uint64 { return &c.RoamRetryOtherOrder }},
	{"roam.drop.no_answer", func(c *Counters) *uint64 { return &c.RoamDropNoAnswer }},
	{"roam.drop.outside_pool", func(c *Counters) *uint64 { return &c.RoamDropOutsidePool }},
	{"roam.rx.release", func(c *Counters) *uint64 { return &c.RoamRxRelease }},
	{"roam.rx.renewlease", func(c *Counters) *uint64 { return &c.RoamRxRenewLease }},
	{"roam.owner.silent", func(c *Counters) *uint64 { return &c.RoamOwnerSilent }},
	{"roam.owner.ack", func(c *Counters) *uint64 { return &c.RoamOwnerAck }},
	{"roam.owner.nak", func(c *Counters) *uint64 { return &c.RoamOwnerNak }},
	{"roam.drop.unexpected_answer", func(c *Counters) *uint64 { return &c.RoamDropUnexpectedAnswer }},
	{"roam.ack", func(c *Counters) *uint64 { return &c.RoamAck }},
	{"roam.nak", func(c *Counters) *uint64 { return &c.RoamNak }},
	{"roam.handover", func(c *Counters) *uint64 { return &c.RoamHandover }},
	{"overlay.tx_error", func(c *Counters) *uint64 { return &c.OverlayTxError }},
	{"overlay.root_changed", func(c *Counters) *uint64 { return &c.OverlayRootChanged }},
	{"overlay.own_echo", func(c *Counters) *uint64 { return &c.OverlayOwnEcho }},
	{"overlay.relayed", func(c *Counters) *uint64 { return &c.OverlayRelayed }},
	{"overlay.duplicate", func(c *Counters) *uint64 { return &c.OverlayDuplicate }},
	{"overlay.route.tx", func(c *Counters) *uint64 { return &c.OverlayRouteTx }},
	{"overlay.route.rx", func(c *Counters) *uint64 { return &c.OverlayRouteRx }},
	{"overlay.route.no_route", func(c *Counters) *uint64 { return &c.OverlayRouteNoRoute }},
	{"overlay.route.tx_error", func(c *Counters) *uint64 { return &c.OverlayRouteTxError }},
	{"drop.overlay_malformed", func(c *Counters) *uint64 { return &c.DropOverlayMalformed }},
	{"drop.overlay_interface", func(c *Counters) *uint64 { return &c.DropOverlayInterface }},
	{"drop.overlay_table_full", func(c *Counters) *uint64 { return &c.DropOverlayTableFull }},
	{"drop.route_malformed", func(c *Counters) *uint64 { return &c.DropRouteMalformed }},
	{"drop.route_hops", func(c *Counters) *uint64 { return &c.DropRouteHops }},
}

// Each calls fn with the name and value of every counter that is not zero,
// scalar counters first, then the per-type and per-reason tables.
func (c *Counters) Each(fn func(name string, v uint64)) {
	for _, cn := range counterNames {
		if v := *cn.field(c); v != 0 {
			fn(cn.name, v)
		}
	}
	for t, v := range c.DHCPRxType {
		if v != 0 {
			fn("dhcp.rx."+dhcpv4.MessageType(t).String(), v)
		}
	}
	for t, v := range c.DHCPTxType {
		if v != 0 {
			fn("dhcp.tx."+dhcpv4.MessageType(t).String(), v)
		}
	}
	for reason, v := range c.DHCPDrop {
		fn("dhcp.drop."+reason, v)
	}
	for kind, v := range c.DHCPEvent {
		fn("dhcp.event."+string(kind), v)
	}
	for t, v := range c.OverlayRx {
		if v != 0 {
			fn("overlay.rx."+wire.OverlayTypeName(uint8(t)), v)
		}
	}
	for t, v := range c.OverlayTx {
		if v != 0 {
			fn("overlay.tx."+wire.OverlayTypeName(uint8(t)), v)
		}
	}
}

// Map returns the counters by name.
func (c *Counters) Map() map[string]uint64 {
	out := make(map[string]uint64, len(counterNames))
	c.Each(func(name string, v uint64) { out[name] = v })
	return out
}

// clone copies c, tables included.
func (c *Counters) clone() Counters {
	out := *c
	out.DHCPDrop = make(map[string]uint64, len(c.DHCPDrop))
	for k, v := range c.DHCPDrop {
		out.DHCPDrop[k] = v
	}
	out.DHCPEvent = make(map[dhcp4.EventKind]uint64, len(c.DHCPEvent))
	for k, v := range c.DHCPEvent {
		out.DHCPEvent[k] = v
	}
	return out
}

func newCounters() Counters {
	return Counters{DHCPDrop: map[string]uint64{}, DHCPEvent: map[dhcp4.EventKind]uint64{}}
}
