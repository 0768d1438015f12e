// Package packaging tests what ddhcpd ships to OpenWrt routers: the procd
// init script (run under busybox ash and dash against stand-ins for
// /etc/rc.common, /lib/functions.sh and procd), the .ipk files that
// scripts/ipk.sh builds (archive layout, modes, control fields, the static
// binaries inside them and their maintainer scripts) and the OpenWrt feed
// Makefile. It has tests only.
package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository's top directory (this package is src/packaging).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

// shell is a /bin/sh to run scripts with: OpenWrt's (busybox ash) and
// Debian's (dash).
type shell struct {
	name string
	argv []string
}

// shells returns the shells present on this machine; scripts/deps-pkg.sh
// installs both. A missing one is reported and skipped.
func shells(t *testing.T) []shell {
	t.Helper()
	var out []shell
	if p, err := exec.LookPath("busybox"); err == nil {
		out = append(out, shell{"ash", []string{p, "sh"}})
	} else {
		t.Logf("busybox not found: not testing under OpenWrt's shell (scripts/deps-pkg.sh installs it)")
	}
	if p, err := exec.LookPath("dash"); err == nil {
		out = append(out, shell{"dash", []string{p}})
	} else {
		t.Logf("dash not found")
	}
	if len(out) == 0 {
		t.Skip("neither busybox nor dash is installed")
	}
	return out
}

// result is what a command did.
type result struct {
	stdout, stderr string
	err            error
}

// run runs argv in dir with env added to the environment, bounded by timeout.
func run(t *testing.T, timeout time.Duration, dir string, env []string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after %s", strings.Join(argv, " "), timeout)
	}
	return result{stdout.String(), stderr.String(), err}
}

// writeFile writes a file, creating its directory.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// readLines returns a file's lines; a missing file has none.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
