package sim

import (
	"fmt"
	"testing"
	"time"

	"ddhcpd/src/overlay"
	"ddhcpd/src/wire"
)

// buildTree starts every node of a sparse mesh (average degree 4) at once
// and runs until all agree on one tree: the cheap test first, then the full
// CheckConverged. It returns the net and the virtual build time.
func buildTree(b *testing.B, n int, loss float64, seed uint64) (*Network, time.Duration, int) {
	walks := 0
	o, err := newOverlay(overlayConfig{
		Nodes: n, Links: SparseGraph(newRand(seed), n, 4), Overlay: overlay.Config{T: overlayT},
		LatencyMin: time.Millisecond, LatencyMax: overlayLatMax, Loss: loss, Seed: seed,
		Observe: func(_ time.Duration, _ int, ev overlay.Event) {
			if ev.Kind == overlay.EventWalkStarted {
				walks++
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := o.StartAll(); err != nil {
		b.Fatal(err)
	}
	quick := func() bool {
		var root wire.NodeID
		var epoch uint32
		for i := range n {
			t := o.Tree(i).Tree()
			if !t.Valid || t.Size != n || t.State != overlay.Idle || i > 0 && (t.Root != root || t.Epoch != epoch) {
				return false
			}
			root, epoch = t.Root, t.Epoch
		}
		return o.CheckConverged() == nil
	}
	if !o.RunUntilEvery(quick, 500*time.Millisecond, 30*time.Minute) {
		b.Fatalf("%d nodes: no tree after 30 minutes: %v", n, o.CheckConverged())
	}
	return o, o.Now(), walks
}

// BenchmarkOverlayBuild measures the tree build on a sparse mesh (average
// degree 4, latency 1-100 ms, T = 200 ms), all nodes started at once, in
// virtual time, with and without 5 % loss: seconds until every node agrees,
// walks started (all local minima start one; the lowest wins), datagrams and
// bytes per node until then, the tree's depth and the largest datagram.
func BenchmarkOverlayBuild(b *testing.B) {
	for _, n := range []int{10, 50, 100, 200, 500, 1000} {
		for _, loss := range []float64{0, 0.05} {
			b.Run(fmt.Sprintf("nodes=%d/loss=%g", n, loss), func(b *testing.B) {
				var o *Network
				var d time.Duration
				var walks int
				for i := range b.N {
					o, d, walks = buildTree(b, n, loss, uint64(i+1))
				}
				msgs, bytes := o.Traffic().Overlay()
				depth := 0
				for i := range n {
					depth = max(depth, o.Tree(i).Tree().Depth)
				}
				b.ReportMetric(d.Seconds(), "build-s")
				b.ReportMetric(float64(walks), "walks")
				b.ReportMetric(float64(msgs)/float64(n), "msgs/node")
				b.ReportMetric(float64(bytes)/float64(n), "bytes/node")
				b.ReportMetric(float64(depth), "depth")
				b.ReportMetric(float64(o.Total().MaxSent), "max-B")
			})
		}
	}
}

// BenchmarkClaimRelay compares the claim traffic of a routed mesh (sparse,
// average degree 4) per node and minute, each node originating one
// UPDATECLAIM of one block (23 bytes) every 15 s:
//
//   - overlay: as the daemon does it, the writer multicasts its claim to
//     its neighbours and every node passes the copy its Flooder picks
//     along the tree, unicast, the C datagram unchanged (to port 1234 of
//     the tree neighbour); plus the overlay's own HELLOs measured over a
//     quiet minute;
//   - flood-unicast: every node passes each new message to all its
//     neighbours but the one it came from (Dedup), unicast;
//   - flood-multicast: every node multicasts each new message once per
//     interface; counted as datagrams sent and copies received.
func BenchmarkClaimRelay(b *testing.B) {
	const (
		perMinute = 4  // one UPDATECLAIM every 15 s
		claimLen  = 23 // header + one claim
	)
	for _, n := range []int{50, 200, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var o *Network
			for i := range b.N {
				o, _, _ = buildTree(b, n, 0, uint64(i+1))
			}
			// The overlay's own traffic over a quiet minute.
			m0, b0 := o.Traffic().Overlay()
			o.RunFor(time.Minute)
			m1, b1 := o.Traffic().Overlay()
			helloMsgs, helloBytes := float64(m1-m0)/float64(n), float64(b1-b0)/float64(n)

			// One round of every node's claim, along the tree and flooded.
			treeSends, treeRx, floodSends, castRx := 0, 0, 0, 0
			adj := make([][]int, n)
			for _, l := range o.cfg.Links {
				adj[l.A] = append(adj[l.A], l.B)
				adj[l.B] = append(adj[l.B], l.A)
			}
			fl := make([]*overlay.Flooder, n)
			for src := range n {
				got, sends, rcvd := relayOnce(o, src, []byte{byte(src), byte(src >> 8)}, fl)
				for i, k := range got {
					if i != src && k != 1 {
						b.Fatalf("claim of n%d acted on by n%d %d times", src, i, k)
					}
				}
				treeSends += 1 + sends // the writer's multicast, the relays
				treeRx += rcvd
				// Flooding: the source sends to all neighbours, every
				// other node to all but the one it heard it from.
				floodSends += len(adj[src])
				for i := range n {
					if i != src {
						floodSends += len(adj[i]) - 1
					}
					castRx += len(adj[i])
				}
			}
			per := func(total int) float64 { return float64(total*perMinute) / float64(n) }
			b.ReportMetric(per(treeSends)+helloMsgs, "overlay-msgs/node/min")
			b.ReportMetric(per(treeSends)*claimLen+helloBytes, "overlay-B/node/min")
			b.ReportMetric(per(treeSends), "claim-sent/node/min")
			b.ReportMetric(per(treeRx), "claim-rcvd/node/min")
			b.ReportMetric(helloMsgs, "hello-msgs/node/min")
			b.ReportMetric(per(floodSends), "floodU-msgs/node/min")
			b.ReportMetric(per(floodSends)*claimLen, "floodU-B/node/min")
			b.ReportMetric(per(n*n), "floodM-sent/node/min")
			b.ReportMetric(per(castRx), "floodM-rcvd/node/min")
		})
	}
}
