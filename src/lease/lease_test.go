package lease

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"ddhcpd/src/pool"
)

func testTable(t *testing.T) *Table {
	t.Helper()
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/24"), 3, nil) // blocks of 8
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(p)
	tab.AddBlock(1) // 10.0.0.8-15
	return tab
}

func client(b byte) Client {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, b}
	return Client{Key: KeyOf(nil, hw), HW: hw}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestKeyOf(t *testing.T) {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	if KeyOf(nil, hw) == KeyOf([]byte{1, 2, 0, 0, 0, 0, 1}, hw) {
		t.Error("client id and chaddr keys collide")
	}
	if KeyOf([]byte{1}, hw) != KeyOf([]byte{1}, net.HardwareAddr{9, 9, 9, 9, 9, 9}) {
		t.Error("client id must decide, not chaddr")
	}
}

// Free and Active are what the claim engine sees (claim.Usage).
func TestUsageCounts(t *testing.T) {
	tab := testTable(t)
	if tab.Free(1) != 8 || tab.Active(1) || tab.Free(2) != 0 {
		t.Fatalf("empty: free %d active %v", tab.Free(1), tab.Active(1))
	}
	tab.Offer(0, client(1), addr("10.0.0.8"), 1, 12*time.Second)
	tab.Assign(0, client(2), addr("10.0.0.9"), time.Minute)
	if tab.Free(1) != 6 || !tab.Active(1) {
		t.Fatalf("after offer+assign: free %d", tab.Free(1))
	}
	tab.Decline(0, client(2), addr("10.0.0.9"), time.Hour)
	tab.Reserve(client(3).Key, addr("10.0.0.10"))
	if tab.Free(1) != 5 {
		t.Fatalf("declined and host-reserved addresses must not count as free: %d", tab.Free(1))
	}
	tab.LoseBlock(1)
	if tab.Free(1) != 0 || tab.Serving(1) || !tab.Known(1) {
		t.Error("a lost block must offer nothing")
	}
	tab.AddBlock(1)
	if tab.Free(1) != 5 {
		t.Errorf("regained block: free %d", tab.Free(1))
	}
}

// Kea 37-39: expiry, bounded reclamation, affinity.
func TestReclaim(t *testing.T) {
	tab := testTable(t)
	for i := range 8 {
		tab.Assign(0, client(byte(i)), tab.Pool().Addr(1, i), time.Minute)
	}
	if tab.Free(1) != 0 {
		t.Fatal("full block shows free addresses")
	}
	// Expired leases hold their address until reclaimed, in batches.
	if got := tab.Reclaim(time.Minute, 3); len(got) != 3 || tab.Free(1) != 3 {
		t.Fatalf("first batch: %d reclaimed, free %d", len(got), tab.Free(1))
	}
	if got := tab.Reclaim(time.Minute, 100); len(got) != 5 || tab.Free(1) != 8 {
		t.Fatalf("second batch: %d reclaimed, free %d", len(got), tab.Free(1))
	}
	// Reclaimed records stay for affinity: the client gets its address back.
	c := client(4)
	if a, ok := tab.Pick(c); !ok || a != tab.Pool().Addr(1, 4) {
		t.Errorf("returning client picked %v, had %v", a, tab.Pool().Addr(1, 4))
	}
	// A new client prefers addresses nobody may come back for.
	tab.Reclaim(time.Minute+tab.HoldReclaimed, 100)
	if tab.Len() != 0 {
		t.Errorf("%d records after the hold", tab.Len())
	}
}

func TestOneRecordPerClient(t *testing.T) {
	tab := testTable(t)
	c := client(1)
	tab.Assign(0, c, addr("10.0.0.8"), time.Minute)
	tab.Assign(0, c, addr("10.0.0.9"), time.Minute)
	if l := tab.At(addr("10.0.0.8")); l == nil || l.Holds() || l.Client == c.Key {
		t.Errorf("old record %+v", l)
	}
	if l := tab.Current(c); l == nil || l.Addr != addr("10.0.0.9") {
		t.Errorf("current %+v", l)
	}
	// Another client taking the old address's affinity record.
	tab.Assign(0, client(2), addr("10.0.0.8"), time.Minute)
	if l := tab.Current(client(2)); l == nil || l.Addr != addr("10.0.0.8") {
		t.Errorf("client 2: %+v", l)
	}
}

func TestAvailableFor(t *testing.T) {
	tab := testTable(t)
	tab.Assign(0, client(1), addr("10.0.0.8"), time.Minute)
	tab.Reserve(client(3).Key, addr("10.0.0.10"))
	tests := []struct {
		a    string
		c    byte
		want bool
	}{
		{"10.0.0.8", 1, true},   // its own
		{"10.0.0.8", 2, false},  // held by another
		{"10.0.0.9", 2, true},   // free
		{"10.0.0.10", 2, false}, // reserved for 3
		{"10.0.0.10", 3, true},
		{"10.0.0.0", 2, false},  // network address, and not our block
		{"10.0.0.20", 2, false}, // not our block
	}
	for _, tt := range tests {
		if got := tab.AvailableFor(addr(tt.a), client(tt.c)); got != tt.want {
			t.Errorf("AvailableFor(%s, %d) = %v", tt.a, tt.c, got)
		}
	}
}

func TestDropBlock(t *testing.T) {
	tab := testTable(t)
	tab.Assign(0, client(1), addr("10.0.0.8"), time.Minute)
	tab.DropBlock(1)
	if tab.Len() != 0 || tab.Current(client(1)) != nil || tab.Known(1) {
		t.Error("records survived DropBlock")
	}
	if _, ok := tab.NextExpiry(); ok {
		t.Error("timers survived DropBlock")
	}
}

func TestInsert(t *testing.T) {
	tab := testTable(t)
	l := Lease{Addr: addr("10.0.0.9"), State: Assigned, Client: client(1).Key, HW: client(1).HW, Expires: time.Minute}
	if !tab.Insert(l) || tab.Free(1) != 7 || tab.Current(client(1)) == nil {
		t.Fatalf("insert: free %d", tab.Free(1))
	}
	for _, bad := range []Lease{
		l, // address present
		{Addr: addr("10.0.0.10"), State: Assigned, Client: client(1).Key, Expires: time.Minute}, // client present
		{Addr: addr("10.0.0.0"), State: Assigned, Expires: time.Minute},                         // reserved
		{Addr: addr("10.0.1.1"), State: Assigned, Expires: time.Minute},                         // outside
		{Addr: addr("10.0.0.11"), State: 0, Expires: time.Minute},                               // no state
	} {
		if tab.Insert(bad) {
			t.Errorf("inserted %+v", bad)
		}
	}
	// Records of a block that is not ours yet count once it is.
	tab.Insert(Lease{Addr: addr("10.0.0.17"), State: Assigned, Client: client(2).Key, Expires: time.Minute})
	tab.AddBlock(2)
	if tab.Free(2) != 7 {
		t.Errorf("restored record in a later block: free %d", tab.Free(2))
	}
}
