package dhcp4

import (
	"bytes"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
)

// Verdict is the owner's answer to a renewal forwarded by another node.
type Verdict uint8

// Verdicts.
const (
	Silent Verdict = iota // not ours to answer: say nothing
	Grant                 // LEASEACK
	Refuse                // LEASENAK
)

// OwnerRenew decides, as the owner of addr's block, a renewal that another
// node forwarded for the client with hardware address hw (the roamed
// client's renewal, or a lease handed over with its block). want is the
// lease time the requester asks for (0: ours). A lease we hold for that
// client is renewed; an address we have no live record of is adopted; an
// address held by another client is refused. Unlike the C ddhcpd (bug 6),
// the chaddr is checked and the lease is recorded as assigned.
func (s *Server) OwnerRenew(now time.Duration, a netip.Addr, hw net.HardwareAddr, want time.Duration) (Verdict, time.Duration, []Event) {
	if !s.serves(a) {
		return Silent, 0, nil
	}
	if s.pool.Reserved(a) {
		return Refuse, 0, nil
	}
	c := lease.Client{Key: lease.KeyOf(nil, hw), HW: hw}
	if l := s.leases.At(a); l != nil && l.Holds() {
		if !bytes.Equal(l.HW, hw) {
			return Refuse, 0, nil
		}
		// Keep the identity the client had here (it may use a client id).
		c = lease.Client{Key: l.Client, ID: l.ClientID, HW: hw, Hostname: l.Hostname}
	}
	if k, ok := s.leases.ReservedFor(a); ok && k != c.Key {
		return Refuse, 0, nil
	}
	// A client renewing a while we still hold another lease for it has
	// moved on (its RELEASE may have been lost): Assign frees the old one,
	// as a renewal on our own link does. One lease per client.
	d := s.cfg.LeaseTime
	if want > 0 && want < d {
		d = want
	}
	l := s.leases.Assign(now, c, a, d)
	return Grant, d, []Event{{Kind: EventLease, Addr: a, HW: hw, Hostname: l.Hostname}}
}

// OwnerRelease frees, as the owner, a lease a roamed client released at
// another node. It reports whether there was such a lease.
func (s *Server) OwnerRelease(now time.Duration, a netip.Addr, hw net.HardwareAddr) bool {
	l := s.leases.At(a)
	if l == nil || !bytes.Equal(l.HW, hw) {
		return false
	}
	return s.leases.Release(now, lease.Client{Key: l.Client, ID: l.ClientID, HW: hw}, a)
}

// Roamed builds the answer to a client whose request was forwarded to the
// block's owner: an ACK for a with the lease time the owner granted, or a NAK.
func (s *Server) Roamed(r Request, a netip.Addr, granted bool, leaseTime time.Duration) Decision {
	if !granted {
		return s.nak(r, "nak_from_owner")
	}
	if leaseTime <= 0 {
		leaseTime = s.cfg.LeaseTime
	}
	d := s.reply(r, dhcpv4.MessageTypeAck, a, leaseTime)
	d.Reason = "ack_roamed"
	c, _ := clientOf(r.Msg)
	d.Events = []Event{{Kind: EventLease, Addr: a, HW: c.HW, Hostname: c.Hostname}}
	return d
}
