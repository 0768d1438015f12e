package sim

import (
	"net/netip"
	"testing"
	"time"

	"ddhcpd/src/claim"
)

// joinResult is what one join run measured.
type joinResult struct {
	converge     time.Duration // from the first start until every node owns enough
	msgsPerMin   float64       // per node, in steady state
	bytesPerMin  float64       // per node, in steady state
	sentDuring   uint64        // datagrams sent until convergence, all nodes
	deliveries   uint64        // copies handed to engines over the whole run
	spreadStarts time.Duration
}

// runJoin starts nodes spread over 10 s on a 10.0.0.0/16 pool with blocks of
// four, default claim timers without learning and 5 ms ± 1 ms latency, runs
// until every node has its two spare leases, then measures three minutes of
// steady state: twelve refresh periods, and at 1,000 nodes as long as a run
// may take in wall time (each minute is four million deliveries, most of
// the time spent in the engines' Step). It fails b if ownership is ever
// inconsistent.
func runJoin(b *testing.B, nodes int, seed uint64) joinResult {
	const (
		spare  = 2
		spread = 10 * time.Second
		steady = 3 * time.Minute
	)
	have := make([]int, nodes) // usable addresses owned, per node
	ready := 0
	var n *Network
	cfg := Config{
		Nodes:      nodes,
		Pool:       netip.MustParsePrefix("10.0.0.0/16"),
		SizeExp:    2,
		Claim:      claim.Config{SpareLeases: spare, LearningTime: 0},
		LatencyMin: 4 * time.Millisecond,
		LatencyMax: 6 * time.Millisecond,
		Seed:       seed,
		Observe: func(_ time.Duration, i int, ev claim.Event) {
			before := have[i] >= spare
			switch ev.Kind {
			case claim.EventOwned:
				have[i] += n.Pool().Usable(ev.Block)
			case claim.EventLost, claim.EventReleased:
				have[i] -= n.Pool().Usable(ev.Block)
			}
			if after := have[i] >= spare; after != before {
				if after {
					ready++
				} else {
					ready--
				}
			}
		},
	}
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	starts := newRand(derive(seed, 0xbe4c))
	for i := range nodes {
		n.At(time.Duration(starts.Int64N(int64(spread))), func() {
			if err := n.Start(i); err != nil {
				b.Fatal(err)
			}
		})
	}
	if !n.RunUntil(func() bool { return ready == nodes }, 10*time.Minute) {
		b.Fatalf("after %v only %d of %d nodes own enough blocks", n.Now(), ready, nodes)
	}
	res := joinResult{converge: n.Now(), sentDuring: n.Total().Sent, spreadStarts: spread}
	before := n.Total()
	n.RunFor(steady)
	after := n.Total()
	minutes := steady.Minutes() * float64(nodes)
	res.msgsPerMin = float64(after.Sent-before.Sent) / minutes
	res.bytesPerMin = float64(after.SentBytes-before.SentBytes) / minutes
	res.deliveries = after.Received

	if err := n.Check(); err != nil {
		b.Fatal(err)
	}
	if err := n.CheckSupply(); err != nil {
		b.Fatal(err)
	}
	if ov := n.Overlaps(); len(ov) > 0 {
		b.Fatalf("%d overlaps without loss, first %+v", len(ov), ov[0])
	}
	return res
}

func benchmarkJoin(b *testing.B, nodes int) {
	var res joinResult
	seed := uint64(1)
	for range b.N {
		res = runJoin(b, nodes, seed)
		seed++
	}
	b.ReportMetric(res.converge.Seconds(), "sim-s-to-converge")
	b.ReportMetric(res.msgsPerMin, "msgs/node/min")
	b.ReportMetric(res.bytesPerMin, "bytes/node/min")
	b.ReportMetric(float64(res.sentDuring)/float64(nodes), "join-msgs/node")
	b.ReportMetric(float64(res.deliveries), "deliveries")
}

// BenchmarkJoin1000: 1,000 nodes join within 10 s. ns/op is the wall time
// of one whole simulated run (join plus three minutes of steady state);
// sim-s-to-converge counts from the first start.
func BenchmarkJoin1000(b *testing.B) { benchmarkJoin(b, 1000) }

// BenchmarkJoin100 is the same with 100 nodes, for comparison.
func BenchmarkJoin100(b *testing.B) { benchmarkJoin(b, 100) }
