package wire

import "net/netip"

// AddrOrder is the byte order in which a peer writes the client address of a
// renew record. C nodes convert it to host order twice, so on little-endian
// CPUs the four bytes arrive reversed; on big-endian CPUs, and from us, they
// arrive in network order.
type AddrOrder uint8

// Byte orders of the renew address.
const (
	OrderUnknown  AddrOrder = iota // not learned yet
	OrderNetwork                   // as we and big-endian C nodes send it
	OrderReversed                  // as little-endian C nodes send it
)

func (o AddrOrder) String() string {
	switch o {
	case OrderNetwork:
		return "network"
	case OrderReversed:
		return "reversed"
	}
	return "unknown"
}

// Other returns the opposite order; OrderUnknown stays unknown.
func (o AddrOrder) Other() AddrOrder {
	switch o {
	case OrderNetwork:
		return OrderReversed
	case OrderReversed:
		return OrderNetwork
	}
	return OrderUnknown
}

func reverse(b [4]byte) [4]byte { return [4]byte{b[3], b[2], b[1], b[0]} }

// Address reads the record's address in order o (network order when unknown).
func (r *Renew) Address(o AddrOrder) netip.Addr {
	if o == OrderReversed {
		return netip.AddrFrom4(reverse(r.Addr))
	}
	return netip.AddrFrom4(r.Addr)
}

// SetAddress writes a in order o (network order when unknown).
func (r *Renew) SetAddress(a netip.Addr, o AddrOrder) {
	b := a.As4()
	if o == OrderReversed {
		b = reverse(b)
	}
	r.Addr = b
}

// ResolveAddress interprets a received renew address against the pool. The
// sender's order is used when it is known (hint); otherwise network order is
// tried first and the byte-reversal second. It reports the address, the order
// that made it fall inside the pool, and false when neither does.
func (r *Renew) ResolveAddress(pool netip.Prefix, hint AddrOrder) (netip.Addr, AddrOrder, bool) {
	orders := [2]AddrOrder{OrderNetwork, OrderReversed}
	if hint == OrderReversed {
		orders = [2]AddrOrder{OrderReversed, OrderNetwork}
	}
	for _, o := range orders {
		if a := r.Address(o); pool.Contains(a) {
			return a, o, true
		}
	}
	return netip.Addr{}, OrderUnknown, false
}
