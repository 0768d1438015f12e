package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/control"
)

// TestStarvation: 5,000 DISCOVERs from random MACs in 10 s. The router stays
// within its block cap, a client with a lease keeps renewing, a new client
// that retries still gets an address, and the daemon's memory stays bounded.
func TestStarvation(t *testing.T) {
	// 10.0.0.0/16 in blocks of 16: the automatic cap is 16 blocks (256
	// addresses) of 4,096.
	l := newDHCPLab(t, 2, "-N", "10.0.0.0/16", "-b", "4")
	l.start()
	known := l.run(1, "-mac", "02:00:00:00:1a:01", "dora")
	if known.Type != "ACK" {
		t.Fatalf("%+v", known)
	}
	flood := l.clients[0].Start(l.probe, "-i", "eth0", "flood", "5000", "10s")
	start := time.Now()

	// A new client retrying once a second, like udhcpc -T 1.
	udhcpcLog := filepath.Join(l.dir, "new.log")
	script := filepath.Join(l.dir, "new.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $ip\" >> "+udhcpcLog+"\n"), 0o755)
	time.Sleep(2 * time.Second)
	newClient := l.clients[1].Start("udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "15", "-T", "1", "-s", script)
	for time.Since(start) < 9*time.Second {
		// A renewing client retransmits; on a loaded machine one
		// datagram of thousands may be late.
		var r probeResult
		for range 3 {
			r = l.run(1, "-mac", "02:00:00:00:1a:01", "-addr", known.Yiaddr, "-server", labServerID, "-state", "renew", "request")
			if r.Type != "none" {
				break
			}
		}
		if r.Type != "ACK" || r.Yiaddr != known.Yiaddr {
			t.Errorf("known client's renewal during the flood at %v: %+v", time.Since(start).Round(time.Second), r)
		}
		time.Sleep(time.Second)
	}
	if err := newClient.Wait(); err != nil {
		t.Errorf("new client got no lease during the flood: %v\n%s", err, newClient.Stderr())
	}
	if b, _ := os.ReadFile(udhcpcLog); !strings.Contains(string(b), "bound 10.0.") {
		t.Errorf("new client: %q", b)
	}
	if err := flood.Wait(); err != nil {
		t.Fatalf("flood: %v %s", err, flood.Stderr())
	}
	took := time.Since(start)

	var st control.Status
	if err := control.Call(l.sock, "status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Owned > 16 {
		t.Errorf("owns %d blocks after the flood, cap 16", st.Owned)
	}
	stats := l.stats()
	if stats["dhcp.drop.rate_limited"] < 4000 {
		t.Errorf("flood not rate limited: %v", stats)
	}
	hwm, rss := procMem(t, l.proc.Pid())
	if hwm > 40<<10 {
		t.Errorf("peak RSS %d kB during the flood", hwm)
	}
	t.Logf("flood of 5000 DISCOVERs in %v: owned %d blocks (cap 16), rate-limited %d, offers %d, peak RSS %d kB, RSS %d kB",
		took.Round(100*time.Millisecond), st.Owned, stats["dhcp.drop.rate_limited"], stats["dhcp.tx.OFFER"], hwm, rss)
}

// procMem reads VmHWM and VmRSS (kB) of a process.
func procMem(t testing.TB, pid int) (hwm, rss int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss
}
