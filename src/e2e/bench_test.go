package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"ddhcpd/src/nettest"
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

// BenchmarkSoak: two routers serve 500 clients (250 each) that renew every
// 30 s, for SOAK (default 10m). It reports, every 30 s, each router's RSS
// and goroutines, and at the end the renewals sent and lost (there must be
// none lost). make bench runs it; it is not part of make test.
func BenchmarkSoak(b *testing.B) {
	d := 10 * time.Minute
	if s := os.Getenv("SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		m := newMeshLab(b, []string{"r1", "r2"}, "-L", "-lease-time", "60s", "-N", "10.0.0.0/22", "-b", "5",
			"-reserve", "10.0.0.0/29", "-max-blocks", "16", "-state-interval", "1s")
		routers := []*labRouter{m.start("r1"), m.start("r2")}
		for _, r := range routers {
			eventually(b, 15*time.Second, r.name+" owns blocks", func() error {
				if len(r.owns(b)) == 0 {
					return fmt.Errorf("none")
				}
				return nil
			})
		}
		var loads []*nettest.Proc
		for i, r := range routers {
			c := m.client(fmt.Sprintf("k%d", i), r.name)
			c.ns.IP("link", "set", "eth0", "promisc", "on")
			loads = append(loads, c.ns.Start(m.probe, "-i", "eth0", "-server", "10.0.0.1", "load", "250", d.String(), "30s"))
		}
		start := time.Now()
		b.Logf("%8s %12s %12s %12s %12s", "t", "r1 RSS kB", "r1 gorout.", "r2 RSS kB", "r2 gorout.")
		var firstRSS, lastRSS [2]int
		for time.Since(start) < d {
			time.Sleep(30 * time.Second)
			var row [4]uint64
			for i, r := range routers {
				_, rss := procMem(b, r.proc.Pid())
				row[2*i] = uint64(rss)
				row[2*i+1] = r.stats(b)["go.goroutines"]
				if firstRSS[i] == 0 && time.Since(start) > time.Minute {
					firstRSS[i] = rss
				}
				lastRSS[i] = rss
			}
			b.Logf("%8s %12d %12d %12d %12d", time.Since(start).Round(time.Second), row[0], row[1], row[2], row[3])
		}
		var sent, lost, leased float64
		for _, l := range loads {
			if err := l.Wait(); err != nil {
				b.Fatalf("load: %v %s", err, l.Stderr())
			}
			var r probeResult
			if err := json.Unmarshal(l.Output(), &r); err != nil {
				b.Fatalf("load output %q: %v", l.Output(), err)
			}
			b.Logf("load: %v", r.Timing)
			sent += r.Timing["renew_sent"]
			lost += r.Timing["renew_lost"] + r.Timing["renew_nak"] + r.Timing["renew_other_address"]
			leased += r.Timing["leased"]
		}
		if leased != 500 || lost != 0 {
			b.Errorf("%v clients leased, %v of %v renewals lost", leased, lost, sent)
		}
		b.ReportMetric(sent, "renewals")
		b.ReportMetric(lost, "lost")
		for i := range routers {
			b.ReportMetric(float64(lastRSS[i]), fmt.Sprintf("r%d-RSS-kB", i+1))
			if firstRSS[i] > 0 && lastRSS[i] > firstRSS[i]*3/2 {
				b.Errorf("r%d RSS grew from %d to %d kB", i+1, firstRSS[i], lastRSS[i])
			}
		}
	}
}
