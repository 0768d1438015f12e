package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLeaseFile: with -leasefile the daemon keeps a dnsmasq-format lease
// file (what LuCI's "Active DHCP Leases" reads): empty at start, a line per
// assigned lease a few seconds after the ACK, gone after the RELEASE.
func TestLeaseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddhcpd.leases")
	if err := os.WriteFile(path, []byte("1 02:00:00:00:00:99 10.0.0.99 stale *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newDHCPLab(t, 1, "-leasefile", path, "-lease-time", "300s")
	l.start()
	eventually(t, 10*time.Second, "the stale lease file replaced", func() error {
		if b, _ := os.ReadFile(path); len(b) != 0 {
			return fmt.Errorf("lease file %q", b)
		}
		return nil
	})

	r := l.run(0, "-mac", "02:00:00:00:0e:01", "-cid", "01020000000e01", "dora")
	if r.Type != "ACK" {
		t.Fatalf("%+v", r)
	}
	acked := time.Now()
	line := strings.TrimSpace(waitFile(t, path, " 02:00:00:00:0e:01 "+r.Yiaddr+" * 01:02:00:00:00:0e:01\n", 10*time.Second))
	f := strings.Fields(line)
	exp, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || len(f) != 5 || strings.Contains(line, "\n") {
		t.Fatalf("lease file %q", line)
	}
	if end := acked.Add(300 * time.Second).Unix(); exp < end-3 || exp > end+1 {
		t.Errorf("expiry %d, want about %d (the ACK plus the lease time)", exp, end)
	}

	l.run(0, "-mac", "02:00:00:00:0e:01", "-cid", "01020000000e01", "-addr", r.Yiaddr, "-server", labServerID, "release")
	eventually(t, 10*time.Second, "the released lease leaves the file", func() error {
		if b, _ := os.ReadFile(path); len(b) != 0 {
			return fmt.Errorf("lease file %q", b)
		}
		return nil
	})
}
