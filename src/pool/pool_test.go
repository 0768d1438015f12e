package pool

import (
	"net/netip"
	"testing"
)

func mustPool(t *testing.T, prefix string, exp uint8, reserved ...string) *Pool {
	t.Helper()
	var rs []Range
	for _, s := range reserved {
		r, err := ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	p, err := New(netip.MustParsePrefix(prefix), exp, rs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGeometry(t *testing.T) {
	tests := []struct {
		prefix string
		exp    uint8
		blocks uint32
	}{
		{"10.0.0.0/24", 5, 8},
		{"10.116.224.0/20", 2, 1024},
		{"10.0.0.0/10", 0, 1 << 22},
		{"10.0.0.7/29", 3, 1}, // host bits are masked
		{"10.0.0.0/8", 7, 1 << 17},
	}
	for _, tt := range tests {
		p := mustPool(t, tt.prefix, tt.exp)
		if p.NumBlocks() != tt.blocks {
			t.Errorf("%s b=%d: %d blocks, want %d", tt.prefix, tt.exp, p.NumBlocks(), tt.blocks)
		}
	}
	p := mustPool(t, "10.0.128.0/24", 5)
	if b, ok := p.Block(netip.MustParseAddr("10.0.128.192")); !ok || b != 6 {
		t.Errorf("Block(.192) = %d %v", b, ok)
	}
	if a := p.Addr(6, 3); a.String() != "10.0.128.195" {
		t.Errorf("Addr(6,3) = %v", a)
	}
	if i := p.Index(netip.MustParseAddr("10.0.128.195")); i != 3 {
		t.Errorf("Index = %d", i)
	}
	if _, ok := p.Block(netip.MustParseAddr("10.0.129.0")); ok {
		t.Error("address outside the pool has a block")
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		prefix string
		exp    uint8
	}{
		{"10.0.0.0/30", 3},   // smaller than one block (C: 0 blocks, keeps running)
		{"10.0.0.0/24", 8},   // C: block size 0, SIGFPE
		{"10.0.0.0/7", 0},    // C: prefix length < 8 refused
		{"2001:db8::/64", 0}, // not IPv4
	}
	for _, tt := range tests {
		if _, err := New(netip.MustParsePrefix(tt.prefix), tt.exp, nil); err == nil {
			t.Errorf("%s b=%d accepted", tt.prefix, tt.exp)
		}
	}
}

// C bug 15: nothing reserved, the pool's network address was leased.
func TestReserved(t *testing.T) {
	p := mustPool(t, "10.0.128.0/24", 2, "10.0.128.4-10.0.128.11", "10.0.128.20", "10.0.128.64/30", "192.168.0.0/16")
	tests := []struct {
		block   uint32
		usable  int
		blocked bool
	}{
		{0, 3, false}, // network address .0
		{1, 0, true},  // .4-.7
		{2, 0, true},  // .8-.11
		{3, 4, false},
		{5, 3, false},  // .20
		{16, 0, true},  // .64/30
		{63, 3, false}, // broadcast .255
	}
	for _, tt := range tests {
		if u := p.Usable(tt.block); u != tt.usable {
			t.Errorf("Usable(%d) = %d, want %d", tt.block, u, tt.usable)
		}
		if b := p.Blocked(tt.block); b != tt.blocked {
			t.Errorf("Blocked(%d) = %v", tt.block, b)
		}
	}
	for _, a := range []string{"10.0.128.0", "10.0.128.255", "10.0.128.20", "10.0.128.66", "10.0.129.1"} {
		if !p.Reserved(netip.MustParseAddr(a)) {
			t.Errorf("%s not reserved", a)
		}
	}
	for _, a := range []string{"10.0.128.1", "10.0.128.12", "10.0.128.254"} {
		if p.Reserved(netip.MustParseAddr(a)) {
			t.Errorf("%s reserved", a)
		}
	}
	if got := p.SkipBlocked(1); got != 3 {
		t.Errorf("SkipBlocked(1) = %d, want 3", got)
	}
	if got := p.SkipBlocked(16); got != 17 {
		t.Errorf("SkipBlocked(16) = %d, want 17", got)
	}
	if got := p.SkipBlocked(0); got != 0 {
		t.Errorf("SkipBlocked(0) = %d", got)
	}
}

func TestSkipBlockedLargeRange(t *testing.T) {
	// A /10 with block size 1 and a quarter of it reserved: one jump.
	p := mustPool(t, "10.0.0.0/10", 0, "10.0.0.0-10.15.255.255")
	if got := p.SkipBlocked(5); got != 1<<20 {
		t.Errorf("SkipBlocked = %d, want %d", got, 1<<20)
	}
	all := mustPool(t, "10.0.0.0/30", 0, "10.0.0.1-10.0.0.2")
	if got := all.SkipBlocked(0); got != all.NumBlocks() {
		t.Errorf("fully reserved pool: SkipBlocked = %d", got)
	}
}

func TestParseRange(t *testing.T) {
	for _, bad := range []string{"", "x", "10.0.0.5-10.0.0.1", "::1", "10.0.0.0/40", "10.0.0.1-"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) accepted", bad)
		}
	}
	r, err := ParseRange(" 10.0.0.1 - 10.0.0.9 ")
	if err != nil || r.String() != "10.0.0.1-10.0.0.9" {
		t.Errorf("got %v %v", r, err)
	}
}
