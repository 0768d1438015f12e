package lease

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"ddhcpd/src/pool"
)

// pickLinear is Pick as it was before the blocks had bitmaps: a map lookup
// per address in probe order. Pick must choose exactly as it does.
func pickLinear(t *Table, c Client) (netip.Addr, bool) {
	h := fnv.New64a()
	h.Write([]byte(c.Key))
	sum := h.Sum64()
	size := t.pool.BlockSize()
	home := t.pool.Addr(uint32(sum%uint64(t.pool.NumBlocks())), int((sum>>32)%uint64(size)))
	if t.fresh(home, c) {
		return home, true
	}
	live := t.live // the blocks we serve, by index
	if len(live) == 0 {
		return netip.Addr{}, false
	}
	start, off := int(sum%uint64(len(live))), int((sum>>32)%uint64(size))
	var fallback netip.Addr
	for i := range live {
		idx := live[(start+i)%len(live)].idx
		for j := range size {
			a := t.pool.Addr(idx, (off+j)%size)
			if !t.AvailableFor(a, c) {
				continue
			}
			if l := t.byAddr[a]; l == nil || l.belongs(c) {
				return a, true
			}
			if !fallback.IsValid() {
				fallback = a
			}
		}
	}
	return fallback, fallback.IsValid()
}

// randClient is one of n clients; some send a client id, some share a
// hardware address with another client (a client id that changed).
func randClient(r *rand.Rand, n int) Client {
	i := r.IntN(n)
	hw := net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}
	if i%7 == 3 { // shares its hardware address with client i-1
		hw = net.HardwareAddr{2, 0, 0, 0, byte((i - 1) >> 8), byte(i - 1)}
	}
	var id []byte
	if i%3 == 0 {
		id = []byte{1, byte(i >> 8), byte(i)}
	}
	return Client{Key: KeyOf(id, hw), ID: id, HW: hw}
}

// churn applies n random operations of the DHCP server to the table.
func churn(r *rand.Rand, tab *Table, now *time.Duration, clients, n int) {
	p := tab.Pool()
	for range n {
		*now += time.Duration(r.IntN(2000)) * time.Millisecond
		c := randClient(r, clients)
		a := p.Addr(uint32(r.IntN(int(p.NumBlocks()))), r.IntN(p.BlockSize()))
		switch op := r.IntN(10); {
		case op < 3:
			if pick, ok := tab.Pick(c); ok {
				tab.Offer(*now, c, pick, 1, 12*time.Second)
			}
		case op < 6:
			if pick, ok := tab.Pick(c); ok {
				tab.Assign(*now, c, pick, time.Duration(1+r.IntN(60))*time.Second)
			}
		case op < 7:
			if tab.AvailableFor(a, c) {
				tab.Assign(*now, c, a, time.Minute)
			}
		case op < 8:
			if l := tab.Current(c); l != nil {
				if r.IntN(2) == 0 {
					tab.Release(*now, c, l.Addr)
				} else {
					tab.Decline(*now, c, l.Addr, time.Duration(1+r.IntN(30))*time.Second)
				}
			}
		case op < 9:
			tab.CancelOffer(c)
		default:
			tab.Reclaim(*now, 1+r.IntN(20))
		}
	}
}

func TestPickMatchesLinearProbe(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		exp      uint8
		reserved []string
		blocks   []uint32
		lost     []uint32
		hosts    int
		clients  int
		ops      int
	}{
		{"small blocks, crowded", "10.0.0.0/24", 3, []string{"10.0.0.9", "10.0.0.20-10.0.0.23"}, []uint32{1, 2, 5}, nil, 2, 40, 400},
		{"blocks of 64", "10.0.0.0/22", 6, []string{"10.0.1.0/26"}, []uint32{0, 1, 3, 4, 7}, []uint32{3}, 3, 300, 2000},
		{"blocks of 128, full", "10.0.0.0/23", 7, []string{"10.0.0.1"}, []uint32{0, 1, 2}, nil, 1, 500, 3000},
		{"one address per block", "10.0.0.0/28", 0, nil, []uint32{2, 3, 4, 9}, []uint32{4}, 1, 10, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []pool.Range
			for _, s := range tt.reserved {
				r, err := pool.ParseRange(s)
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			p, err := pool.New(netip.MustParsePrefix(tt.prefix), tt.exp, rs)
			if err != nil {
				t.Fatal(err)
			}
			for seed := range uint64(5) {
				r := rand.New(rand.NewPCG(seed, 1))
				tab := NewTable(p)
				tab.HoldReclaimed = 30 * time.Second
				for _, b := range tt.blocks {
					tab.AddBlock(b)
				}
				for i := range tt.hosts {
					c := randClient(r, tt.clients)
					tab.Reserve(c.Key, p.Addr(tt.blocks[i%len(tt.blocks)], r.IntN(p.BlockSize())))
				}
				now := time.Duration(0)
				for round := range 20 {
					churn(r, tab, &now, tt.clients, tt.ops/20)
					if round == 10 {
						for _, b := range tt.lost {
							tab.LoseBlock(b)
						}
					}
					for i := range tt.clients + 10 {
						c := randClient(r, tt.clients+10)
						got, gotOK := tab.Pick(c)
						want, wantOK := pickLinear(tab, c)
						if got != want || gotOK != wantOK {
							t.Fatalf("seed %d round %d query %d: Pick(%s) = %v %v, linear probe %v %v",
								seed, round, i, c.Key, got, gotOK, want, wantOK)
						}
					}
					checkIndexes(t, tab)
				}
			}
		})
	}
}

// checkIndexes compares the bitmaps and the hardware address index with
// the records.
func checkIndexes(t *testing.T, tab *Table) {
	t.Helper()
	for idx, b := range tab.blocks {
		for i := range tab.pool.BlockSize() {
			a := tab.pool.Addr(idx, i)
			l := tab.byAddr[a]
			if b.rec.has(i) != (l != nil) || b.held.has(i) != (l != nil && l.Holds()) || b.reserved.has(i) != tab.pool.Reserved(a) {
				t.Fatalf("block %d address %v: bitmaps rec %v held %v reserved %v, record %+v",
					idx, a, b.rec.has(i), b.held.has(i), b.reserved.has(i), l)
			}
		}
	}
	n := 0
	for k, head := range tab.byHW {
		for l := head; l != nil; l = l.hwNext {
			n++
			if string(l.HW) != k || tab.byClient[l.Client] != l {
				t.Fatalf("hardware index: %+v under %x", l, k)
			}
		}
	}
	want := 0
	for _, l := range tab.byClient {
		if len(l.HW) > 0 {
			want++
		}
	}
	if n != want {
		t.Fatalf("hardware index holds %d records, %d bound ones have a hardware address", n, want)
	}
}

func TestBitmap(t *testing.T) {
	tests := []struct {
		set        []int
		from, want int
	}{
		{nil, 0, -1},
		{[]int{0}, 0, 0},
		{[]int{0}, 1, -1},
		{[]int{5, 70}, 6, 70},
		{[]int{63, 64}, 63, 63},
		{[]int{63, 64}, 64, 64},
		{[]int{127}, 0, 127},
		{[]int{3, 127}, 128, -1},
	}
	for _, tt := range tests {
		var m bitmap
		for _, i := range tt.set {
			m.set(i, true)
		}
		if got := m.next(tt.from); got != tt.want {
			t.Errorf("bits %v: next(%d) = %d, want %d", tt.set, tt.from, got, tt.want)
		}
		if m.count() != len(tt.set) {
			t.Errorf("bits %v: count %d", tt.set, m.count())
		}
	}
	if m := firstBits(70); m.count() != 70 || !m.has(69) || m.has(70) {
		t.Errorf("firstBits(70) = %x", m)
	}
}

// A client that dropped or changed its client identifier finds its record
// through its hardware address (Kea's matching rule).
func TestCurrentByHardwareAddress(t *testing.T) {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	withID := Client{Key: KeyOf([]byte{1, 9}, hw), ID: []byte{1, 9}, HW: hw}
	otherID := Client{Key: KeyOf([]byte{1, 8}, hw), ID: []byte{1, 8}, HW: hw}
	noID := Client{Key: KeyOf(nil, hw), HW: hw}
	stranger := client(7)
	tests := []struct {
		name   string
		holder Client
		asker  Client
		found  bool
	}{
		{"same key", withID, withID, true},
		{"id dropped", withID, noID, true},
		{"id added", noID, withID, true},
		{"another id", withID, otherID, false},
		{"another client", noID, stranger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := testTable(t)
			tab.Assign(0, tt.holder, addr("10.0.0.10"), time.Minute)
			tab.Assign(0, stranger.withHW(net.HardwareAddr{2, 0, 0, 0, 0, 8}), addr("10.0.0.11"), time.Minute)
			l := tab.Current(tt.asker)
			if (l != nil && l.Addr == addr("10.0.0.10")) != tt.found {
				t.Errorf("Current = %+v, want found %v", l, tt.found)
			}
			checkIndexes(t, tab)
			// The record moves to another address, the old one forgets
			// the client: the index follows.
			tab.Assign(0, tt.holder, addr("10.0.0.12"), time.Minute)
			if l := tab.Current(tt.asker); (l != nil && l.Addr == addr("10.0.0.12")) != tt.found {
				t.Errorf("after the move: Current = %+v, want found %v", l, tt.found)
			}
			checkIndexes(t, tab)
			tab.Decline(0, tt.holder, addr("10.0.0.12"), time.Minute)
			if l := tab.Current(tt.holder); l != nil {
				t.Errorf("after DECLINE: Current = %+v", l)
			}
			checkIndexes(t, tab)
		})
	}
}

func (c Client) withHW(hw net.HardwareAddr) Client { c.HW = hw; return c }

// Changes reports, after a first full round, exactly the records that
// changed and those that went, so applying them to a copy keeps the copy
// equal to the table.
func TestChanges(t *testing.T) {
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/24"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ops   int
		every int // Changes after this many operations
	}{
		{"often", 2000, 3},
		{"rarely", 2000, 400},
		{"overflow", 20000, 20000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			tab := NewTable(p)
			tab.HoldReclaimed = 20 * time.Second
			for b := range uint32(4) {
				tab.AddBlock(b)
			}
			now := time.Duration(0)
			churn(r, tab, &now, 30, 50)
			mirror := map[netip.Addr]Lease{}
			apply := func() (full bool) {
				changed, removed, full := tab.Changes()
				if full {
					clear(mirror)
				}
				for _, a := range removed {
					delete(mirror, a)
				}
				for _, l := range changed {
					mirror[l.Addr] = l
				}
				return full
			}
			if !apply() {
				t.Fatal("first Changes not full")
			}
			for done := 0; done < tt.ops; done += tt.every {
				churn(r, tab, &now, 30, tt.every)
				full := apply()
				if full != (tt.name == "overflow") {
					t.Fatalf("full = %v", full)
				}
				want := tab.Leases()
				got := make([]Lease, 0, len(mirror))
				for _, l := range mirror {
					got = append(got, l)
				}
				slices.SortFunc(got, func(a, b Lease) int { return a.Addr.Compare(b.Addr) })
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("after %d operations the copy differs:\n got %v\nwant %v", done, got, want)
				}
			}
			if changed, removed, _ := tab.Changes(); len(changed)+len(removed) != 0 {
				t.Errorf("nothing happened, yet %d changed, %d removed", len(changed), len(removed))
			}
		})
	}
}

// BenchmarkPick is the address choice for a new client in a table of 510
// blocks of 128 (scripts/bench-dhcp.sh's pool), filled to a share with
// leases or with affinity records (released and reclaimed addresses that
// a new client takes only when nothing else is left); "linear" is the
// probe Pick replaced, for comparison.
func BenchmarkPick(b *testing.B) {
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/16"), 7, []pool.Range{
		{First: netip.MustParseAddr("10.0.255.0"), Last: netip.MustParseAddr("10.0.255.255")}})
	if err != nil {
		b.Fatal(err)
	}
	for _, fill := range []struct {
		name     string
		share    float64
		affinity bool
	}{
		{"empty", 0, false},
		{"half", 0.5, false},
		{"90%", 0.9, false},
		{"affinity-99%", 0.99, true},
	} {
		tab := NewTable(p)
		for i := range uint32(510) {
			tab.AddBlock(i)
		}
		r := rand.New(rand.NewPCG(1, 1))
		for i := range int(fill.share * 65279) {
			c := Client{Key: ClientKey(fmt.Sprint("fill", i)), HW: net.HardwareAddr{2, 1, 0, byte(i >> 16), byte(i >> 8), byte(i)}}
			a, ok := tab.Pick(c)
			if !ok {
				b.Fatal("pool full")
			}
			tab.Assign(0, c, a, time.Hour)
			if fill.affinity {
				tab.Release(0, c, a)
			}
		}
		for _, impl := range []struct {
			name string
			pick func(*Table, Client) (netip.Addr, bool)
		}{{"bitmap", (*Table).Pick}, {"linear", pickLinear}} {
			b.Run(fill.name+"/"+impl.name, func(b *testing.B) {
				for i := range b.N {
					c := Client{Key: ClientKey(fmt.Sprint("new", r.Uint64())), HW: net.HardwareAddr{2, 2, 0, byte(i >> 16), byte(i >> 8), byte(i)}}
					if _, ok := impl.pick(tab, c); !ok {
						b.Fatal("nothing picked")
					}
				}
			})
		}
	}
}

// BenchmarkChanges is what the event loop pays per state file write: the
// report of 10 000 changed records out of 40 000.
func BenchmarkChanges(b *testing.B) {
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/16"), 7, nil)
	if err != nil {
		b.Fatal(err)
	}
	tab := NewTable(p)
	for i := range uint32(510) {
		tab.AddBlock(i)
	}
	var cs []Client
	for i := range 40000 {
		c := Client{Key: ClientKey(fmt.Sprint("c", i)), HW: net.HardwareAddr{2, 1, 0, byte(i >> 16), byte(i >> 8), byte(i)}}
		a, _ := tab.Pick(c)
		tab.Assign(0, c, a, time.Hour)
		cs = append(cs, c)
	}
	tab.Changes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for _, c := range cs[(i%4)*10000:][:10000] {
			l := tab.Current(c)
			tab.Assign(time.Duration(i), c, l.Addr, time.Hour)
		}
		b.StartTimer()
		if changed, _, _ := tab.Changes(); len(changed) != 10000 {
			b.Fatalf("%d changed", len(changed))
		}
	}
}
