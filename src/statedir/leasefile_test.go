package statedir

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ddhcpd/src/lease"
)

func TestDnsmasqLeases(t *testing.T) {
	now := 100 * time.Second
	base := time.Unix(1700000000, 0)
	hw := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0xab, b} }
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	ls := []lease.Lease{
		{Addr: a("10.0.0.17"), HW: hw(1), Hostname: "laptop", State: lease.Assigned, Expires: now + 300*time.Second},
		{Addr: a("10.0.0.18"), HW: hw(2), ClientID: []byte{1, 2, 0, 0, 0, 0xab, 2}, Hostname: "two words", State: lease.Assigned, Expires: now + 59500*time.Millisecond},
		{Addr: a("10.0.0.19"), HW: hw(3), State: lease.Offered, Expires: now + 10*time.Second},
		{Addr: a("10.0.0.20"), HW: hw(4), State: lease.Assigned, Expires: now}, // run out, not reclaimed yet
		{Addr: a("10.0.0.21"), HW: hw(5), State: lease.Released, Expires: now + time.Hour},
		{Addr: a("10.0.0.22"), State: lease.Declined, Expires: now + time.Hour},
		{Addr: a("10.0.0.23"), HW: hw(6), Hostname: "", State: lease.Assigned, Expires: now + time.Hour},
	}
	got := string(DNSMasqLeases(ls, now, base))
	want := "1700000400 02:00:00:00:ab:01 10.0.0.17 laptop *\n" +
		"1700000159 02:00:00:00:ab:02 10.0.0.18 * 01:02:00:00:00:ab:02\n" +
		"1700003700 02:00:00:00:ab:06 10.0.0.23 * *\n"
	if got != want {
		t.Errorf("lease file:\n%s\nwant:\n%s", got, want)
	}
	if got := DNSMasqLeases(nil, now, base); len(got) != 0 {
		t.Errorf("no leases: %q", got)
	}
}

// WriteShared leaves a file everyone may read, in a directory it makes.
func TestWriteShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "leases")
	for _, content := range []string{"one\n", "two\n"} {
		if err := WriteShared(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", fi.Mode(), err)
	}
	if es, _ := os.ReadDir(filepath.Dir(path)); len(es) != 1 {
		t.Errorf("temporary files left: %v", es)
	}
}
