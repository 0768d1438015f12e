package claim_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/wire"
)

// ownSixteen makes an engine on 10.0.0.0/(32-exp) with block size 1 that owns
// 16 blocks and tracks `others` blocks claimed by another node.
func ownSixteen(t testing.TB, exp int, others int) *node {
	p := testPool(t, fmt.Sprintf("10.0.0.0/%d", 32-exp), 0)
	cfg := baseConfig(id(9), p)
	cfg.SpareLeases = 16
	e, err := claim.New(cfg, p, newRand(1), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{e: e}
	var cl []wire.Claim
	for i := range others {
		cl = append(cl, wire.Claim{Block: uint32(i*7+3) % p.NumBlocks(), Lifetime: 3600})
	}
	for _, c := range wire.ChunkClaims(cl) {
		m := claimMsg(c...)
		m.Node, m.Swarm = id(200), cfg.Swarm
		e.Step(0, addrOf(id(200)), &m)
	}
	e.EndLearning(0)
	for now := time.Duration(0); now <= 4*time.Second; now += 500 * time.Millisecond {
		e.Tick(now, nil)
		e.Outbox()
		e.Events()
	}
	n.now = 4 * time.Second
	if got := len(e.Owned()); got != 16 {
		t.Fatalf("2^%d pool: owned %d blocks, want 16", exp, got)
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// C bug 38: 104 bytes for every block of the pool (109 MB for 2^20 blocks).
// The engine's memory must not depend on the pool size.
func TestMemoryIndependentOfPoolSize(t *testing.T) {
	before := heapInUse()
	n := ownSixteen(t, 22, 0) // 4,194,304 blocks
	grown := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(n)
	if grown > 256<<10 {
		t.Errorf("engine on a 2^22-block pool with 16 owned blocks uses %d bytes (C: %d)", grown, 104<<22)
	}
}

// C bug 37: housekeeping scanned every block of the pool. Ticks on a
// 2^22-block pool must cost about what they cost on a 2^10-block pool with the
// same tracked blocks. The margin is wide (a pool-proportional tick would be
// about 4096 times slower), so this is not a speed test.
func TestTickWorkIndependentOfPoolSize(t *testing.T) {
	cost := func(exp int) time.Duration {
		n := ownSixteen(t, exp, 500)
		start := time.Now()
		for i := range 20000 {
			n.e.Tick(n.now+time.Duration(i)*time.Microsecond, nil)
			n.e.Outbox()
		}
		return time.Since(start)
	}
	small, large := cost(10), cost(22)
	if large > 50*small+50*time.Millisecond {
		t.Errorf("20000 ticks: %v on 2^22 blocks vs %v on 2^10", large, small)
	}
}

// BenchmarkEngineMemory reports heap bytes of an engine owning 16 blocks, for
// pools of 2^10, 2^16 and 2^22 blocks (docs/benchmarks.md).
func BenchmarkEngineMemory(b *testing.B) {
	for _, exp := range []int{10, 16, 22} {
		b.Run(fmt.Sprintf("blocks=2^%d", exp), func(b *testing.B) {
			var grown int64
			for range b.N {
				before := heapInUse()
				n := ownSixteen(b, exp, 0)
				grown = int64(heapInUse()) - int64(before)
				runtime.KeepAlive(n)
			}
			b.ReportMetric(float64(grown), "heap-bytes")
			b.ReportMetric(float64(104)*float64(int64(1)<<exp), "C-heap-bytes")
		})
	}
}

// BenchmarkTick measures one housekeeping tick with 16 owned and 500 tracked
// blocks, on pools of different sizes.
func BenchmarkTick(b *testing.B) {
	for _, exp := range []int{10, 16, 22} {
		b.Run(fmt.Sprintf("blocks=2^%d", exp), func(b *testing.B) {
			n := ownSixteen(b, exp, 500)
			b.ResetTimer()
			for i := range b.N {
				n.e.Tick(n.now+time.Duration(i)*time.Microsecond, nil)
				n.e.Outbox()
			}
		})
	}
}
