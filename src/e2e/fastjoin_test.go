package e2e

import (
	"fmt"
	"testing"
	"time"

	"ddhcpd/src/control"
)

// TestFastJoin: a router joining a running mesh learns the claim table
// through SYNC within a few seconds (not a whole block timeout), takes no
// block another router owns, and serves its first client soon after.
// The time from start to the first lease is the figure docs/benchmarks.md
// reports (C ddhcpd: 82 s, 21.7 s with -L).
func TestFastJoin(t *testing.T) {
	m := newMeshLab(t, []string{"r1", "r2", "r3", "r4"}, "-s", "4")
	for _, name := range []string{"r1", "r2", "r3"} {
		m.start(name, "-L")
	}
	for _, name := range []string{"r1", "r2", "r3"} {
		r := m.routers[name]
		eventually(t, 15*time.Second, name+" owns a block", func() error {
			if len(r.owns(t)) == 0 {
				return fmt.Errorf("none")
			}
			return nil
		})
	}
	// Let the refresh that answered our start-up claims pass, so what r4
	// learns comes from its SYNC.
	time.Sleep(time.Second)
	m.client("k", "r4")
	start := time.Now()
	r4 := m.start("r4") // default learning: the block timeout (60 s) at most, fast join on
	var learnt time.Duration
	eventually(t, 30*time.Second, "r4 ends learning", func() error {
		var st control.Status
		if err := control.Call(r4.sock, "status", nil, &st); err != nil || st.Learning {
			return fmt.Errorf("learning (%v)", err)
		}
		learnt = time.Since(start)
		return nil
	})
	for _, name := range []string{"r1", "r2", "r3"} {
		m.knows(r4, m.routers[name])
	}
	var first time.Duration
	eventually(t, 20*time.Second, "r4 serves its first client", func() error {
		r := m.probeRun("k", "-timeout", "1s", "dora")
		if r.Type != "ACK" {
			return fmt.Errorf("%+v", r)
		}
		first = time.Since(start)
		return nil
	})
	for _, b := range r4.owns(t) {
		for _, name := range []string{"r1", "r2", "r3"} {
			for _, o := range m.routers[name].owns(t) {
				if o == b {
					t.Fatalf("r4 took block %d owned by %s", b, name)
				}
			}
		}
	}
	st := r4.stats(t)
	if st["tx.sync"] < 1 || st["rx.updateclaim"] < 3 {
		t.Errorf("no SYNC sent or not answered: %v", st)
	}
	// About 2.5 s normally; without fast join learning lasts the block
	// timeout (60 s). The margin is for a loaded machine.
	if learnt > 20*time.Second {
		t.Errorf("learning took %v; fast join should end it within seconds", learnt)
	}
	t.Logf("fast join: learning ended %v after start, first lease %v after start", learnt.Round(10*time.Millisecond), first.Round(10*time.Millisecond))
}
