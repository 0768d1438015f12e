package luci

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browserTimeout bounds one run of the browser.
const browserTimeout = 90 * time.Second

var browser struct {
	once sync.Once
	path string
	err  error
}

// chromium returns Debian's chromium, installing the package when it is
// missing. The test needs it: a machine without it fails the test rather
// than skipping the page.
func chromium(t testing.TB) string {
	t.Helper()
	browser.once.Do(func() {
		if p, err := exec.LookPath("chromium"); err == nil {
			browser.path = p
			return
		}
		if os.Geteuid() != 0 {
			browser.err = fmt.Errorf("chromium is not installed and installing it needs root: run the tests as root or apt-get install chromium")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-dejavu-core"}} {
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				browser.err = fmt.Errorf("apt-get %v: %v\n%s", args, err, out)
				return
			}
		}
		browser.path, browser.err = exec.LookPath("chromium")
	})
	if browser.err != nil {
		t.Fatalf("chromium is needed for the LuCI page test: %v", browser.err)
	}
	return browser.path
}

// runBrowser runs headless chromium with a new profile and the flags that
// keep it off the network (this machine refuses connections elsewhere),
// plus extra, and returns its standard output.
func runBrowser(t testing.TB, bin string, extra ...string) []byte {
	t.Helper()
	home := t.TempDir()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + filepath.Join(home, "profile"),
	}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)
	// The browser starts helper processes: kill them all on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("chromium %v: %v (after %v)\nstderr:\n%s", extra, err, time.Since(start).Round(time.Millisecond), tail(stderr.Bytes(), 4096))
	}
	t.Logf("chromium %v: %v", extra, time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return append([]byte("..."), b[len(b)-n:]...)
	}
	return b
}
