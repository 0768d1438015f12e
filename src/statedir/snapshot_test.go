package statedir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"ddhcpd/src/lease"
)

// randLease is a record with every field exercised: host names that need
// escaping or are not UTF-8, client ids, hardware addresses of several
// lengths, times before and after now.
func randLease(r *rand.Rand, a netip.Addr) lease.Lease {
	names := []string{"", "laptop", `quo"te`, `back\slash`, "<script>&", "ümlaut", "\xff\xfebad", "tab\there", "nul\x00", "line\u2028sep"}
	l := lease.Lease{
		Addr:     a,
		State:    lease.State(1 + r.IntN(5)),
		Hostname: names[r.IntN(len(names))],
		Expires:  time.Duration(r.Int64N(int64(2*time.Hour))) - time.Hour/2,
	}
	if r.IntN(4) > 0 {
		l.HW = make(net.HardwareAddr, []int{6, 6, 8, 16, 20}[r.IntN(5)])
		for i := range l.HW {
			l.HW[i] = byte(r.IntN(256))
		}
	}
	if r.IntN(3) == 0 {
		l.ClientID = []byte{1, byte(r.IntN(256)), byte(r.IntN(256))}
	}
	if len(l.HW) > 0 || len(l.ClientID) > 0 {
		l.Client = lease.KeyOf(l.ClientID, l.HW)
	}
	if r.IntN(3) > 0 {
		l.Granted = time.Duration(r.Int64N(int64(24 * time.Hour)))
	}
	return l
}

// content is what Save writes.
func content(t *testing.T, s *Snapshot, st State, now time.Duration) []byte {
	t.Helper()
	saved, err := json.Marshal(st.SavedAt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	s.write(w, st, saved, now)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decoded reads a state file's content as LoadState does.
func decoded(t *testing.T, b []byte) State {
	t.Helper()
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return st
}

// The snapshot's file reads back as the one SaveState writes for the same
// table, whatever the sequence of changes that led to it.
func TestSnapshotMatchesSaveState(t *testing.T) {
	tests := []struct {
		name       string
		blocks     []uint32
		lost       []uint32
		rounds     int
		perRound   int
		removeEach int // remove every n-th address of a round; 0: none
		fullAt     int // round with a full report; -1: only the first
	}{
		{"empty", nil, nil, 1, 0, 0, -1},
		{"no blocks, some leases", []uint32{}, nil, 1, 5, 0, -1},
		{"changes and removals", []uint32{1, 2}, []uint32{2}, 8, 40, 3, -1},
		{"full report midway", []uint32{7}, nil, 6, 30, 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			table := map[netip.Addr]lease.Lease{}
			var snap Snapshot
			snap.Apply(nil, nil, true)
			now := time.Minute
			for round := range tt.rounds {
				// As lease.Table.Changes reports: the touched
				// addresses, as records if they have one now, else
				// as removed.
				touched := map[netip.Addr]bool{}
				for i := range tt.perRound {
					a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(2)), byte(r.IntN(256))})
					touched[a] = true
					if tt.removeEach > 0 && i%tt.removeEach == 0 {
						delete(table, a)
					} else {
						table[a] = randLease(r, a)
					}
				}
				var changed []lease.Lease
				var removed []netip.Addr
				for a := range touched {
					if l, ok := table[a]; ok {
						changed = append(changed, l)
					} else {
						removed = append(removed, a)
					}
				}
				full := round == tt.fullAt
				if full {
					changed, removed = changed[:0], nil
					for _, l := range table {
						changed = append(changed, l)
					}
				}
				snap.Apply(changed, removed, full)
				now += time.Duration(r.IntN(5000)) * time.Millisecond
				var ls []lease.Lease
				for _, l := range table {
					ls = append(ls, l)
				}
				slices.SortFunc(ls, func(a, b lease.Lease) int { return a.Addr.Compare(b.Addr) })
				st := State{SavedAt: time.Date(2026, 11, 22, 6, 0, round, 123456789, time.UTC), Node: "0102030405060708",
					Pool: "10.0.0.0/23", SizeExp: 7, Blocks: tt.blocks, Lost: tt.lost}
				got := content(t, &snap, st, now)
				st.Leases = Records(now, ls)
				st.Version = StateVersion
				want, err := json.Marshal(st)
				if err != nil {
					t.Fatal(err)
				}
				g, w := decoded(t, got), decoded(t, want)
				if len(g.Leases) == 0 && len(w.Leases) == 0 {
					g.Leases, w.Leases = nil, nil // [] and null read the same
				}
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("round %d:\n got %s\nwant %s", round, got, want)
				}
				if snap.Len() != len(table) {
					t.Fatalf("round %d: %d records, table has %d", round, snap.Len(), len(table))
				}
			}
		})
	}
}

// What the snapshot writes, LoadState and Leases bring back.
func TestSnapshotLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	l := lease.Lease{Addr: netip.MustParseAddr("10.0.0.9"), State: lease.Assigned, Client: lease.KeyOf(nil, hw), HW: hw,
		Hostname: "laptop", Expires: 100 * time.Second, Granted: 300 * time.Second}
	var snap Snapshot
	snap.Apply([]lease.Lease{l}, nil, true)
	if err := snap.Save(path, State{SavedAt: time.Now(), Pool: "10.0.0.0/24", SizeExp: 3, Blocks: []uint32{1}}, 40*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	st, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	back, bad := Leases(0, 0, st.Leases)
	if bad != 0 || len(back) != 1 || fmt.Sprint(back[0]) != fmt.Sprint(lease.Lease{Addr: l.Addr, State: l.State, Client: l.Client,
		HW: l.HW, Hostname: l.Hostname, Expires: 60 * time.Second, Granted: l.Granted}) {
		t.Errorf("back %+v, %d bad", back, bad)
	}
	if err := snap.Save(path, State{SavedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, 0); err == nil {
		t.Error("a save time JSON cannot hold encoded")
	}
}

// BenchmarkStateWrite is the cost of one state file content for 10 000
// leases of which 1 % changed since the last write: the snapshot, and the
// whole-table conversion and encoding it replaced.
func BenchmarkStateWrite(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	var ls []lease.Lease
	for i := range 10000 {
		l := randLease(r, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		l.Hostname = "host" + fmt.Sprint(i)
		ls = append(ls, l)
	}
	st := State{SavedAt: time.Now(), Node: "0102030405060708", Pool: "10.0.0.0/16", SizeExp: 7, Blocks: []uint32{1, 2, 3}}
	b.Run("snapshot", func(b *testing.B) {
		var snap Snapshot
		snap.Apply(ls, nil, true)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			changed := ls[(i*100)%len(ls):][:100]
			snap.Apply(changed, nil, false)
			w := bufio.NewWriterSize(io.Discard, 64<<10)
			snap.write(w, st, []byte(`"2026-11-22T06:00:00Z"`), time.Minute)
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records+json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			s := st
			s.Leases = Records(time.Minute, ls)
			if _, err := json.Marshal(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
