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
	cmd.Env = append(cmd.Environ(), "DEMO_SECONDS=14", "DEMO_KILL_AT=1000")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	// The last report: three routers, each owning blocks, two clients each.
	text := string(out)
	last := text[strings.LastIndex(text, "\n["):]
	for _, r := range []string{"r1", "r2", "r3"} {
		re := regexp.MustCompile(`(?m)^  ` + r + `\s+node [0-9a-f]{16}\s+owns: 10\.0\.0\.\d+/30.* clients: c1=10\.0\.0\.\d+ c2=10\.0\.0\.\d+$`)
		if !re.MatchString(last) {
			t.Errorf("%s: no blocks or clients without addresses in the last report:\n%s", r, last)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "ddd") {
		t.Errorf("demo left namespaces behind:\n%s", out)
	}
}
