package nettest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one "go build"; a cold build of the daemon on a small
// machine takes well under a minute.
const buildTimeout = 5 * time.Minute

// builds caches the binaries built by BuildBinary for the life of the test
// process. It is package state on purpose: the point is to build each main
// package once per test binary, not once per test.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]buildResult
}

type buildResult struct {
	path string
	err  error
}

// BuildBinary builds the Go main package pkg (an import path such as
// "ddhcpd/src/cmd/ddhcpd", or a path relative to the test's directory) with
// CGO_ENABLED=0 and returns the path of the binary. Each package is built
// once per test process; later calls return the same path. A failed build
// fails the test, and later calls fail with the same error.
//
// The binaries live in a temporary directory that [Main] removes; test
// packages that call BuildBinary should use nettest.Main in their TestMain.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if r, ok := builds.bins[pkg]; ok {
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.path
	}
	r := build(pkg)
	if builds.bins == nil {
		builds.bins = make(map[string]buildResult)
	}
	builds.bins[pkg] = r
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// build runs "go build"; the caller holds builds.mu.
func build(pkg string) buildResult {
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "nettest-bin-")
		if err != nil {
			return buildResult{err: fmt.Errorf("nettest: build %s: %w", pkg, err)}
		}
		builds.dir = dir
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			gobin = filepath.Join(root, "bin", "go")
		} else {
			return buildResult{err: fmt.Errorf("nettest: build %s: no go command: %w", pkg, err)}
		}
	}
	out := filepath.Join(builds.dir, fmt.Sprintf("%s-%d", path.Base(filepath.ToSlash(pkg)), len(builds.bins)))
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return buildResult{err: fmt.Errorf("nettest: go build %s: %w\n%s", pkg, err, msg)}
	}
	return buildResult{path: out}
}

// Main runs the tests and then removes the binaries built by [BuildBinary].
// Use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { nettest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	os.Exit(code)
}
