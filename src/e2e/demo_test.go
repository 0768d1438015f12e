package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/nettest"
)

// TestDemo runs `make demo`'s script for a short while: every router must
// own blocks and every client must get an address from its router.
func TestDemo(t *testing.T) {
	nettest.RequireRoot(t)
	bin := nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd")
	dir := t.TempDir()
	// The script wants bin/ddhcpd and bin/ddhcpctl side by side.
	if out, err := exec.Command("cp", bin, filepath.Join(dir, "ddhcpd")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("ln", "-s", "ddhcpd", filepath.Join(dir, "ddhcpctl")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	cmd := exec.Command("../../scripts/demo.sh", dir)
	cmd.Env = append(cmd.Environ(), "DEMO_SECONDS=16", "DEMO_ROAM_AT=9", "DEMO_KILL_AT=1000")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	// The walk names r1-c1's address at r1. In the last report every
	// router owns blocks, every client has an address, and r1-c1 is at r2
	// with the address it had at r1.
	walk := regexp.MustCompile(`>>> r1-c1 \((10\.0\.0\.\d+)\) walks`).FindStringSubmatch(text)
	last := text[strings.LastIndex(text, "\n["):]
	for _, r := range []string{"r1", "r2", "r3"} {
		re := regexp.MustCompile(`(?m)^  ` + r + `\s+node [0-9a-f]{16}\s+owns: 10\.0\.0\.\d+/30.*clients:( r\d-c\d=10\.0\.0\.\d+)+$`)
		if !re.MatchString(last) {
			t.Errorf("%s: no blocks or a client without an address in the last report:\n%s", r, last)
		}
	}
	now := regexp.MustCompile(`(?m)^  r2 .*r1-c1=(10\.0\.0\.\d+)`).FindStringSubmatch(last)
	if walk == nil || now == nil || walk[1] != now[1] {
		t.Errorf("r1-c1 did not keep its address at r2: at the walk %v, at the end %v\n%s", walk, now, text)
	}
	if !strings.Contains(text, "roamed renewal acknowledged by the owner") {
		t.Errorf("no roamed renewal in the demo output:\n%s", text)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); regexp.MustCompile(`(?m)^ddd\d+-`).Match(out) {
		t.Errorf("demo left namespaces behind:\n%s", out)
	}
}
