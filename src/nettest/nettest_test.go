package nettest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"ddhcpd/src/nettest"
)

func TestMain(m *testing.M) { nettest.Main(m) }

// netnsList returns the output of "ip netns list".
func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

// processGone reports whether pid no longer exists (it has been reaped).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestBridgeUDP joins two namespaces through a bridge in a third one and
// sends UDP between their link-local addresses, with a binary built by
// BuildBinary.
func TestBridgeUDP(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	tool := nettest.BuildBinary(t, "./testdata/udptool")
	if again := nettest.BuildBinary(t, "./testdata/udptool"); again != tool {
		t.Errorf("second BuildBinary = %s, want cached %s", again, tool)
	}

	lab := nettest.New(t)
	a, b, sw := lab.NS("a"), lab.NS("b"), lab.NS("sw")
	lab.Bridge(sw, "br0")
	lab.Veth(a, "a0", sw, "pa")
	lab.Veth(b, "b0", sw, "pb")
	sw.SetMaster("pa", "br0")
	sw.SetMaster("pb", "br0")

	if list := netnsList(t); !strings.Contains(list, a.Name) || !strings.Contains(list, sw.Name) {
		t.Fatalf("ip netns list does not show the lab's namespaces:\n%s", list)
	}
	if !strings.HasPrefix(a.Name, lab.Prefix()) {
		t.Errorf("namespace %s lacks the lab prefix %s", a.Name, lab.Prefix())
	}

	llA := a.WaitLinkLocal("a0", 5*time.Second)
	llB := b.WaitLinkLocal("b0", 5*time.Second)
	if !llA.IsLinkLocalUnicast() || !llB.IsLinkLocalUnicast() || llA == llB {
		t.Fatalf("link-local addresses %v and %v", llA, llB)
	}

	echo := b.Start(tool, "echo", "4000")
	if !echo.WaitOutput("READY", 5*time.Second) {
		t.Fatalf("echo server did not start: %s", echo.Stderr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dst := fmt.Sprintf("[%s%%a0]:4000", llB)
	out, err := a.Run(ctx, tool, "send", dst, "hello")
	if err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
	if want := "REPLY hello from " + dst; strings.TrimSpace(string(out)) != want {
		t.Errorf("send printed %q, want %q", out, want)
	}
	wantGot := fmt.Sprintf("GOT [%s%%b0]:", llA)
	if line, ok := echo.WaitLine(time.Second, func(l string) bool { return strings.HasPrefix(l, wantGot) }); !ok {
		t.Errorf("echo server output %q lacks %q", echo.Output(), wantGot)
	} else if !strings.HasSuffix(line, " hello") {
		t.Errorf("echo server printed %q", line)
	}

	// Taking b0 down cuts the path; the client times out.
	b.SetDown("b0")
	if _, err := a.Run(ctx, tool, "send", dst, "again"); err == nil {
		t.Errorf("send with b0 down succeeded")
	}

	if err := echo.Stop(); err == nil {
		t.Errorf("echo server exited cleanly after SIGTERM, want a signal exit")
	}
	if !echo.Exited() || !processGone(echo.Pid()) {
		t.Errorf("echo server still running after Stop")
	}
}

// TestCleanup checks that a Lab removes its namespaces and kills its
// processes when its test ends.
func TestCleanup(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	var prefix string
	var pid int
	t.Run("lab", func(t *testing.T) {
		lab := nettest.New(t)
		prefix = lab.Prefix()
		x, y := lab.NS("x"), lab.NS("y")
		lab.Veth(x, "x0", y, "y0")
		lab.Bridge(x, "brx")
		x.SetMaster("x0", "brx")
		x.AddAddr("brx", "fd00::1/64")
		p := y.Start("sleep", "60")
		pid = p.Pid()
	})
	if list := netnsList(t); strings.Contains(list, prefix) {
		t.Errorf("namespaces with prefix %s left behind:\n%s", prefix, list)
	}
	if !processGone(pid) {
		t.Errorf("process %d still exists after cleanup", pid)
	}
}

// TestCleanupOnFailure runs a test that fails (or panics) while its Lab holds
// namespaces and a process, and checks that nothing is left afterwards.
func TestCleanupOnFailure(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	for _, mode := range []string{"fatal", "panic"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFailingLab$", "-test.count=1")
			cmd.Env = append(os.Environ(), "NETTEST_FAIL_MODE="+mode)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("failing helper test passed:\n%s", out)
			}
			var prefix string
			var pid int
			for _, line := range strings.Split(string(out), "\n") {
				if _, rest, ok := strings.Cut(line, "LAB "); ok {
					fmt.Sscanf(rest, "%s %d", &prefix, &pid)
				}
			}
			if prefix == "" || pid == 0 {
				t.Fatalf("helper did not report its lab:\n%s", out)
			}
			if list := netnsList(t); strings.Contains(list, prefix) {
				t.Errorf("namespaces with prefix %s left behind:\n%s", prefix, list)
			}
			if !processGone(pid) {
				t.Errorf("process %d still exists", pid)
			}
		})
	}
}

// TestHelperFailingLab is run by TestCleanupOnFailure in a child process; it
// does nothing in a normal test run.
func TestHelperFailingLab(t *testing.T) {
	mode := os.Getenv("NETTEST_FAIL_MODE")
	if mode == "" {
		return
	}
	lab := nettest.New(t)
	a, b := lab.NS("a"), lab.NS("b")
	lab.Veth(a, "a0", b, "b0")
	p := b.Start("sleep", "60")
	fmt.Printf("LAB %s %d\n", lab.Prefix(), p.Pid())
	switch mode {
	case "panic":
		panic("deliberate panic")
	default:
		t.Fatal("deliberate failure")
	}
}
