// Package pool describes the shared IPv4 range: how it splits into blocks and
// which addresses are reserved (never leased).
//
// Nothing here allocates per block or per address: reserved addresses are kept
// as a short sorted list of ranges, so a /10 pool with block size 1 costs the
// same as a /24.
package pool

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// MaxSizeExp is the largest block size exponent: the wire carries the block
// size (2^exp) in one byte.
const MaxSizeExp = 7

// Range is an inclusive range of IPv4 addresses.
type Range struct{ First, Last netip.Addr }

// ParseRange accepts "A", "A-B" or "A/LEN".
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if err1 != nil || err2 != nil || !a.Is4() || !b.Is4() || b.Less(a) {
			return Range{}, fmt.Errorf("range %q: want A-B with IPv4 addresses A <= B", s)
		}
		return Range{a, b}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return Range{}, fmt.Errorf("range %q: not an IPv4 prefix", s)
		}
		p = p.Masked()
		return Range{p.Addr(), lastAddr(p)}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return Range{}, fmt.Errorf("address %q: not an IPv4 address", s)
	}
	return Range{a, a}, nil
}

func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// span is a range as offsets into the pool.
type span struct{ lo, hi uint32 }

// Pool is the immutable geometry of a pool.
type Pool struct {
	prefix  netip.Prefix
	base    uint32
	sizeExp uint8
	blocks  uint32
	spans   []span // sorted, merged, non-adjacent
}

// New makes a pool. The prefix is masked; the pool's own network and broadcast
// addresses are always reserved, besides the given ranges (parts of a range
// outside the pool are ignored).
func New(prefix netip.Prefix, sizeExp uint8, reserved []Range) (*Pool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("pool %v: not an IPv4 prefix", prefix)
	}
	if sizeExp > MaxSizeExp {
		return nil, fmt.Errorf("block size 2^%d: at most 2^%d (128 addresses) fits the wire format", sizeExp, MaxSizeExp)
	}
	prefix = prefix.Masked()
	hostBits := 32 - prefix.Bits()
	if hostBits < int(sizeExp) {
		return nil, fmt.Errorf("pool %v holds %d addresses, fewer than one block of %d", prefix, uint64(1)<<hostBits, 1<<sizeExp)
	}
	if prefix.Bits() < 8 {
		return nil, fmt.Errorf("pool %v: prefix length must be at least 8", prefix)
	}
	p := &Pool{
		prefix:  prefix,
		base:    u32(prefix.Addr()),
		sizeExp: sizeExp,
		blocks:  uint32(1) << (hostBits - int(sizeExp)),
	}
	size := uint32(1)<<hostBits - 1 // last offset
	spans := []span{{0, 0}, {size, size}}
	for _, r := range reserved {
		lo, hi := u32(r.First), u32(r.Last)
		if hi < p.base || lo > p.base+size {
			continue
		}
		lo = max(lo, p.base) - p.base
		hi = min(hi, p.base+size) - p.base
		spans = append(spans, span{lo, hi})
	}
	p.spans = merge(spans)
	return p, nil
}

func merge(s []span) []span {
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && uint64(x.lo) <= uint64(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return slices.Clip(out)
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func lastAddr(p netip.Prefix) netip.Addr {
	return addr(u32(p.Addr()) | (uint32(1)<<(32-p.Bits()) - 1))
}

// Prefix is the masked pool prefix.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// SizeExp is the block size exponent.
func (p *Pool) SizeExp() uint8 { return p.sizeExp }

// BlockSize is the number of addresses in a block.
func (p *Pool) BlockSize() int { return 1 << p.sizeExp }

// NumBlocks is the number of blocks in the pool.
func (p *Pool) NumBlocks() uint32 { return p.blocks }

// Contains reports whether a lies in the pool.
func (p *Pool) Contains(a netip.Addr) bool { return p.prefix.Contains(a) }

// Block returns the block a lies in.
func (p *Pool) Block(a netip.Addr) (uint32, bool) {
	if !p.prefix.Contains(a) {
		return 0, false
	}
	return (u32(a) - p.base) >> p.sizeExp, true
}

// Addr returns address i (0 <= i < BlockSize) of block b.
func (p *Pool) Addr(b uint32, i int) netip.Addr {
	return addr(p.base + b<<p.sizeExp + uint32(i))
}

// Index returns the position of a inside its block.
func (p *Pool) Index(a netip.Addr) int {
	return int((u32(a) - p.base) & (uint32(1)<<p.sizeExp - 1))
}

// Reserved reports whether a must never be leased. Addresses outside the
// pool are reported reserved too.
func (p *Pool) Reserved(a netip.Addr) bool {
	if !p.prefix.Contains(a) {
		return true
	}
	off := u32(a) - p.base
	i := p.spanAt(off)
	return i < len(p.spans) && p.spans[i].lo <= off
}

// spanAt returns the first span whose end is at or after off.
func (p *Pool) spanAt(off uint32) int {
	return sort.Search(len(p.spans), func(i int) bool { return p.spans[i].hi >= off })
}

// Usable returns how many addresses of block b may be leased.
func (p *Pool) Usable(b uint32) int {
	lo := b << p.sizeExp
	hi := lo + uint32(1)<<p.sizeExp - 1
	n := int(hi - lo + 1)
	for i := p.spanAt(lo); i < len(p.spans) && p.spans[i].lo <= hi; i++ {
		n -= int(min(hi, p.spans[i].hi) - max(lo, p.spans[i].lo) + 1)
	}
	return n
}

// Blocked reports whether every address of block b is reserved, so the block
// is never claimed.
func (p *Pool) Blocked(b uint32) bool { return p.Usable(b) == 0 }

// SkipBlocked returns the first block at or after b that is not blocked, or
// NumBlocks if there is none. It jumps over reserved ranges in one step.
func (p *Pool) SkipBlocked(b uint32) uint32 {
	for b < p.blocks {
		lo := b << p.sizeExp
		i := p.spanAt(lo)
		if i == len(p.spans) || p.spans[i].lo > lo || p.spans[i].hi < lo+uint32(1)<<p.sizeExp-1 {
			return b
		}
		// Block b lies inside span i; the block holding the address after
		// the span is not fully reserved (spans are merged).
		next := uint64(p.spans[i].hi) + 1
		if next>>p.sizeExp >= uint64(p.blocks) {
			return p.blocks
		}
		b = uint32(next >> p.sizeExp)
	}
	return p.blocks
}

// ReservedRanges lists the reserved ranges inside the pool.
func (p *Pool) ReservedRanges() []Range {
	out := make([]Range, len(p.spans))
	for i, s := range p.spans {
		out[i] = Range{addr(p.base + s.lo), addr(p.base + s.hi)}
	}
	return out
}
