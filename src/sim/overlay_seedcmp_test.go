package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/overlay"
)

// TestOverlaySeedConditions reruns the conditions under which the seed
// (github.com/gleber/dstree) was measured in reference/spanning-tree-seed.md
// §5: random trees of 6-41 nodes, 1-99 ms per message, T = 200 ms, no loss,
// 20 runs per size, without and with nodes killed before the start. There
// the seed failed 13/20 runs at 6 nodes, 14/20 at 11 and 20/20 at 21, 31
// and 41 (11/20 at 6 with killed nodes). A run passes here when every
// component of live nodes converges within overlayBound and stays so.
func TestOverlaySeedConditions(t *testing.T) {
	var table strings.Builder
	table.WriteString("seed conditions (trees, 1-99 ms, T 200 ms, no loss), passed runs of 20:")
	for _, killed := range []bool{false, true} {
		for _, n := range []int{6, 11, 21, 31, 41} {
			pass := 0
			for run := range 20 {
				seed := uint64(1000*n + run)
				if killed {
					seed += 500
				}
				r := newRand(seed)
				o, err := newOverlay(overlayConfig{
					Nodes: n, Links: TreeGraph(r, n), Overlay: overlay.Config{T: overlayT},
					LatencyMin: time.Millisecond, LatencyMax: 99 * time.Millisecond, Seed: seed,
				})
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if !killed || r.IntN(5) > 0 {
						_ = o.Start(i)
					}
				}
				bound := overlayBound(n, overlay.Config{T: overlayT})
				if o.RunUntilEvery(func() bool { return o.CheckConverged() == nil }, 250*time.Millisecond, bound) {
					before := o.snapshot()
					o.RunFor(overlayStable)
					if o.CheckConverged() == nil && fmt.Sprint(before) == fmt.Sprint(o.snapshot()) {
						pass++
						continue
					}
				}
				t.Errorf("%d nodes, killed %v, seed %d: %v", n, killed, seed, o.CheckConverged())
			}
			note := ""
			if killed {
				note = ", 20 % killed before the start"
			}
			fmt.Fprintf(&table, "\n\t%2d nodes%s: %2d/20 passed", n, note, pass)
		}
	}
	t.Log(table.String())
}
