package daemon

import (
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"ddhcpd/src/lease"
	"ddhcpd/src/statedir"
)

// The state writer gets only the changed leases from the loop, merges jobs
// it has not started on, and writes the last state at shutdown: whatever
// the timing, the files hold exactly the lease table.
func TestStateFileFollowsTable(t *testing.T) {
	tests := []struct {
		name    string
		rounds  int
		ops     int  // lease operations per round
		persist bool // also the persistent copy
		wait    bool // let the writer finish each job (no merging)
	}{
		{"every job written", 10, 20, false, true},
		{"jobs merged", 50, 10, true, false},
		{"many changes at once", 3, 500, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := optionDaemon(t)
			dir := t.TempDir()
			d.cfg.StateDir, d.cfg.StateInterval, d.cfg.PersistEvery = dir, 0, 0
			if tt.persist {
				d.cfg.Persist = filepath.Join(dir, "persist.json")
			}
			d.state = newStateWriter(d.cfg)
			d.state.start(func(path string, err error) {
				if err != nil {
					t.Errorf("%s: %v", path, err)
				}
			})
			for b := range uint32(4) {
				d.node.Leases().AddBlock(b)
			}
			r := rand.New(rand.NewPCG(7, 8))
			for range tt.rounds {
				for range tt.ops {
					leaseOp(r, d.node.Leases(), d.clock.now())
				}
				d.state.dirty = true
				d.saveState(false)
				if tt.wait {
					waitWriter(t, &d.state)
				}
			}
			leaseOp(r, d.node.Leases(), d.clock.now())
			d.state.dirty = true
			d.saveState(true)
			want := statedir.Records(d.clock.now(), d.node.Leases().Leases())
			files := []string{filepath.Join(dir, StateFile)}
			if tt.persist {
				files = append(files, d.cfg.Persist)
			}
			for _, f := range files {
				st, err := statedir.LoadState(f)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Leases) != len(want) {
					t.Fatalf("%s: %d leases, the table has %d", f, len(st.Leases), len(want))
				}
				for i, got := range st.Leases {
					w := want[i]
					// The remaining time was taken a moment earlier.
					if math.Abs(got.Remaining-w.Remaining) > 0.5 {
						t.Errorf("%s: %s remaining %v, want %v", f, got.Addr, got.Remaining, w.Remaining)
					}
					got.Remaining, w.Remaining = 0, 0
					if got != w {
						t.Errorf("%s: lease %d is %+v, want %+v", f, i, got, w)
					}
				}
			}
		})
	}
}

// leaseOp is one random change of a lease table of 4 blocks.
func leaseOp(r *rand.Rand, tab *lease.Table, now time.Duration) {
	i := r.IntN(60)
	hw := net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}
	c := lease.Client{Key: lease.KeyOf(nil, hw), HW: hw, Hostname: "host"}
	switch r.IntN(5) {
	case 0:
		if a, ok := tab.Pick(c); ok {
			tab.Offer(now, c, a, 1, time.Minute)
		}
	case 1, 2:
		if a, ok := tab.Pick(c); ok {
			tab.Assign(now, c, a, time.Hour)
		}
	case 3:
		if l := tab.Current(c); l != nil {
			tab.Release(now, c, l.Addr)
		}
	default:
		tab.CancelOffer(c)
	}
}

// waitWriter waits until the writer has taken every job.
func waitWriter(t *testing.T, s *stateWriter) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.w.Pending() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("state writer stuck")
		}
		time.Sleep(time.Millisecond)
	}
}
