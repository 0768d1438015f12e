package e2e

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRoamedRenewal measures, in namespaces, the round trip a roamed
// client sees: its REQUEST to router r2, forwarded to the owner r1 with
// RENEWLEASE, LEASEACK back, DHCPACK to the client. 500 renewals per run,
// timed inside the client from send to answer; p50/p99 in microseconds
// (C ddhcpd: 2.2 ms for one).
func BenchmarkRoamedRenewal(b *testing.B) {
	for range b.N {
		m := newMeshLab(b, []string{"r1", "r2"}, "-L", "-inquire-interval", "400ms")
		r1 := m.start("r1")
		eventually(b, 10*time.Second, "r1 owns a block", func() error {
			if len(r1.owns(b)) == 0 {
				return fmt.Errorf("none")
			}
			return nil
		})
		r2 := m.start("r2")
		m.knows(r2, r1)
		m.client("k", "r1")
		a := m.probeRun("k", "dora")
		if a.Type != "ACK" {
			b.Fatalf("%+v", a)
		}
		m.move("k", "r2")
		r := m.probeRun("k", "-addr", a.Yiaddr, "-server", "10.0.0.1", "renew-loop", "500")
		if r.Type != "ACK" || r.Timing["n"] < 450 {
			b.Fatalf("%+v", r)
		}
		if st := r2.stats(b); st["roam.ack"] < 450 {
			b.Fatalf("renewals were not forwarded: %v", st)
		}
		b.ReportMetric(r.Timing["p50"], "p50-µs")
		b.ReportMetric(r.Timing["p99"], "p99-µs")
		b.ReportMetric(r.Timing["n"], "renewals")
	}
}
