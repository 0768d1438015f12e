package daemon

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ddhcpd/src/lease"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// leaseFileDaemon is optionDaemon with a lease file in a fresh directory.
func leaseFileDaemon(t *testing.T, path string) (*Daemon, *logBuffer) {
	t.Helper()
	d, _ := optionDaemon(t)
	var logs logBuffer
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	d.cfg.LeaseFile = path
	for b := range uint32(4) {
		d.node.Leases().AddBlock(b)
	}
	d.startLeaseFile()
	t.Cleanup(d.stopLeaseFile)
	return d, &logs
}

// waitLeaseFile waits until the writer took every job.
func waitLeaseFile(t *testing.T, lf *leaseFile) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(lf.jobs) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("lease file writer stuck")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the job taken is being written
}

// TestLeaseFileFollowsTable: written at start, then at most every
// leaseFileEvery after a change, always at shutdown, atomically, and what
// it holds is the table's assigned leases with expiry times in wall time.
func TestLeaseFileFollowsTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ddhcpd.leases")
	d, logs := leaseFileDaemon(t, path)
	lf := d.leaseFile

	// At start: an empty file replaces whatever was there.
	if due, ok := d.leaseFileDue(); !ok || due > d.clock.now() {
		t.Fatalf("not due at start: %v %v", due, ok)
	}
	d.saveLeaseFile(false)
	waitLeaseFile(t, lf)
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Fatalf("at start: %q %v", b, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v", st.Mode(), err)
	}

	r := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		leaseOp(r, d.node.Leases(), d.clock.now())
	}
	d.leaseFileChanged()
	// Within leaseFileEvery of the last write: not yet.
	d.saveLeaseFile(false)
	if due, ok := d.leaseFileDue(); !ok || due != lf.last+leaseFileEvery {
		t.Errorf("due %v %v, want the interval after the last write", due, ok)
	}
	waitLeaseFile(t, lf)
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("written within the interval:\n%s", b)
	}
	// Once the interval has passed (the loop's timer wakes at due).
	lf.last -= leaseFileEvery
	d.saveLeaseFile(false)
	waitLeaseFile(t, lf)
	checkLeaseFile(t, d, path)
	if _, ok := d.leaseFileDue(); ok {
		t.Errorf("still due after the write")
	}

	// At shutdown whatever the interval.
	for range 20 {
		leaseOp(r, d.node.Leases(), d.clock.now())
	}
	d.leaseFileChanged()
	d.saveLeaseFile(true)
	d.stopLeaseFile()
	checkLeaseFile(t, d, path)

	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left beside the lease file: %v", entries)
	}
	if logs.String() != "" {
		t.Errorf("logged: %s", logs)
	}
}

// checkLeaseFile compares the file with the table: every assigned lease,
// as LuCI's reader (rpcd-mod-luci) splits the lines, the expiry the wall
// time of the lease's end.
func checkLeaseFile(t *testing.T, d *Daemon, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) == 0 {
		lines = nil
	}
	now, wall := d.clock.now(), time.Now()
	var want []lease.Lease
	for _, l := range d.node.Leases().Leases() {
		if l.State == lease.Assigned && l.Expires > now {
			want = append(want, l)
		}
	}
	if len(want) == 0 {
		t.Fatal("test premise: no assigned leases")
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, %d assigned leases:\n%s", len(lines), len(want), b)
	}
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("line %q: %d fields", line, len(f))
		}
		l := want[i]
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("line %q: expiry: %v", line, err)
		}
		if end := wall.Add(l.Expires - now).Unix(); exp < end-2 || exp > end+1 {
			t.Errorf("line %q: expiry %d, want about %d", line, exp, end)
		}
		if f[1] != l.HW.String() || f[2] != l.Addr.String() || f[3] != l.Hostname || f[4] != "*" {
			t.Errorf("line %q, lease %+v", line, l)
		}
	}
}

// TestLeaseFileClockStep: a step of the wall clock rewrites the file, even
// when the table did not change.
func TestLeaseFileClockStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddhcpd.leases")
	d, _ := leaseFileDaemon(t, path)
	lf := d.leaseFile
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	c := lease.Client{Key: lease.KeyOf(nil, hw), HW: hw, Hostname: "host"}
	a, _ := d.node.Leases().Pick(c)
	d.node.Leases().Assign(d.clock.now(), c, a, time.Hour)
	d.saveLeaseFile(false)
	waitLeaseFile(t, lf)
	before, _ := os.ReadFile(path)

	// Nothing changed: not written again, wherever the interval is.
	lf.last -= leaseFileEvery
	d.saveLeaseFile(false)
	if _, ok := d.leaseFileDue(); ok {
		t.Errorf("due without a change")
	}
	// The wall clock was a day behind at the last write (a router before
	// NTP): the file is rendered again, with the wall clock as it is now.
	lastWrite := lf.last
	lf.base = lf.base.Add(-24 * time.Hour)
	d.saveLeaseFile(false)
	if lf.last == lastWrite || time.Since(lf.base.Add(d.clock.now())).Abs() > time.Second {
		t.Errorf("clock step: last write %v (before %v), base %v", lf.last, lastWrite, lf.base)
	}
	waitLeaseFile(t, lf)
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Errorf("after a clock step:\n%s\nwant:\n%s", after, before)
	}
}

// TestLeaseFileErrors: a file that cannot be written is logged once, with
// the path, and once more when it can be written again.
func TestLeaseFileErrors(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "notadir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "ddhcpd.leases")
	d, logs := leaseFileDaemon(t, path)
	lf := d.leaseFile
	r := rand.New(rand.NewPCG(5, 6))
	for range 3 {
		leaseOp(r, d.node.Leases(), d.clock.now())
		d.leaseFileChanged()
		lf.last -= leaseFileEvery
		d.saveLeaseFile(false)
		waitLeaseFile(t, lf)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), path) {
		t.Errorf("want one error naming %s:\n%s", path, logs)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	leaseOp(r, d.node.Leases(), d.clock.now())
	d.leaseFileChanged()
	d.saveLeaseFile(true)
	d.stopLeaseFile()
	if _, err := os.Stat(path); err != nil || !strings.Contains(logs.String(), "lease file written again") {
		t.Errorf("after the fix: %v\n%s", err, logs)
	}
}

// TestNoLeaseFile: without -leasefile nothing is written or scheduled.
func TestNoLeaseFile(t *testing.T) {
	d, _ := optionDaemon(t)
	d.startLeaseFile()
	d.leaseFileChanged()
	d.saveLeaseFile(true)
	d.stopLeaseFile()
	if _, ok := d.leaseFileDue(); ok || d.leaseFile != nil {
		t.Errorf("a lease file without -leasefile")
	}
}
