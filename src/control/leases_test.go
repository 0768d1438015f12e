package control

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/lease"
	"ddhcpd/src/pool"
)

func TestValidHostname(t *testing.T) {
	for name, want := range map[string]bool{
		"laptop":                         true,
		"Laptop-2":                       true,
		"my_phone":                       true,
		"host.example.org":               true,
		"a":                              true,
		"9":                              true,
		"":                               false,
		"two words":                      false,
		"tab\there":                      false,
		"-dash":                          false,
		"dash-":                          false,
		"_x":                             false,
		"a..b":                           false,
		".a":                             false,
		"a.":                             false,
		"a.-b":                           false,
		"ümlaut":                         false,
		"star*":                          false,
		strings.Repeat("a", 63):          true,
		strings.Repeat("a", 64):          false,
		strings.Repeat("a.", 126) + "a":  true,  // 253 bytes
		strings.Repeat("a.", 126) + "ab": false, // 254
	} {
		if got := ValidHostname(name); got != want {
			t.Errorf("ValidHostname(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestLeaseRowsStatic: a lease on the address reserved for its client (by
// MAC, also when the client sends a client id) is marked static; others not.
func TestLeaseRowsStatic(t *testing.T) {
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/24"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	tab := lease.NewTable(p)
	tab.AddBlock(1)
	hw := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tab.Reserve(lease.KeyOf(nil, hw(1)), a("10.0.0.17"))
	tab.Reserve(lease.KeyOf([]byte{1, 2, 0, 0, 0, 0, 2}, nil), a("10.0.0.18"))

	c1 := lease.Client{Key: lease.KeyOf(nil, hw(1)), HW: hw(1)}
	id2 := []byte{1, 2, 0, 0, 0, 0, 2}
	c2 := lease.Client{Key: lease.KeyOf(id2, hw(2)), ID: id2, HW: hw(2)}
	id3 := []byte{1, 9}
	c3 := lease.Client{Key: lease.KeyOf(id3, hw(3)), ID: id3, HW: hw(3)}
	tab.Assign(0, c1, a("10.0.0.17"), time.Minute)
	tab.Assign(0, c2, a("10.0.0.18"), time.Minute)
	tab.Assign(0, c3, a("10.0.0.19"), time.Minute)
	got := map[string]bool{}
	for _, r := range LeaseRows(tab, 0) {
		got[r.Addr] = r.Static
	}
	want := map[string]bool{"10.0.0.17": true, "10.0.0.18": true, "10.0.0.19": false}
	for addr, s := range want {
		if got[addr] != s {
			t.Errorf("%s: static %v, want %v (rows %v)", addr, got[addr], s, got)
		}
	}

	// A client id whose MAC is the reserved one.
	tab2 := lease.NewTable(p)
	tab2.AddBlock(1)
	tab2.Reserve(lease.KeyOf(nil, hw(4)), a("10.0.0.20"))
	id4 := []byte{1, 2, 0, 0, 0, 0, 4}
	tab2.Assign(0, lease.Client{Key: lease.KeyOf(id4, hw(4)), ID: id4, HW: hw(4)}, a("10.0.0.20"), time.Minute)
	if rows := LeaseRows(tab2, 0); len(rows) != 1 || !rows[0].Static {
		t.Errorf("client id with the reserved MAC: %+v", rows)
	}
}
