package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests run the daemon as a child process: the test binary itself,
// which runs run() instead of the tests when DDHCPD_TEST_MAIN is 1. The
// daemon runs without DHCP (-S) on a mesh interface that does not exist:
// it waits for the interface, logs, and serves its control socket.
func TestMain(m *testing.M) {
	if os.Getenv("DDHCPD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// daemonArgs are the flags of a daemon that needs nothing from the host.
func daemonArgs(dir string, more ...string) []string {
	return append([]string{"-S", "-i", "ddhcpdtest0", "-L", "-C", filepath.Join(dir, "ctl"), "-state", filepath.Join(dir, "state")}, more...)
}

// daemonCmd is the test binary run as the daemon with args.
func daemonCmd(t *testing.T, args []string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "DDHCPD_TEST_MAIN=1"), env...)
	return cmd
}

// stop ends a daemon this test started, by its pid, and waits for it.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Errorf("daemon %d did not stop on SIGTERM", cmd.Process.Pid)
		<-done
	}
}

// TestSyslog: with -syslog=SOCKET every line goes to the socket as a
// datagram with its own priority, facility daemon; nothing to stderr.
func TestSyslog(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// An unknown option in the file: a warning.
	uci := filepath.Join(dir, "ddhcpd.uci")
	os.WriteFile(uci, []byte("config ddhcpd 'settings'\n\toption frobnicate '1'\n"), 0o600)
	var stderr bytes.Buffer
	cmd := daemonCmd(t, daemonArgs(dir, "-uci", uci, "-syslog="+sock, "-v", "-v"))
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop(t, cmd)

	want := map[string]string{
		`level=WARN msg=configuration warning=`: "<28>",
		`level=INFO msg="ddhcpd started"`:       "<30>",
	}
	prefix := fmt.Sprintf(" ddhcpd[%d]: ", cmd.Process.Pid)
	b := make([]byte, 4096)
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(want) > 0 {
		n, err := srv.Read(b)
		if err != nil {
			t.Fatalf("still waiting for %q: %v", want, err)
		}
		d := string(b[:n])
		pri, rest, _ := strings.Cut(d, ">")
		_, line, ok := strings.Cut(rest, prefix)
		if !ok || len(rest) < 16 || rest[15] != ' ' {
			t.Errorf("datagram %q: not <PRI>Mmm dd hh:mm:ss ddhcpd[PID]: LINE", d)
			continue
		}
		if strings.HasPrefix(line, "time=") {
			t.Errorf("line with its own time: %q", d)
		}
		for w, p := range want {
			if strings.HasPrefix(line, w) {
				if pri+">" != p {
					t.Errorf("%q: priority %s>, want %s", d, pri, p)
				}
				delete(want, w)
			}
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %q", stderr.String())
	}
}

// TestJournal: when stderr is the stream systemd names in JOURNAL_STREAM,
// each line starts with <N>; when it is not, lines are plain.
func TestJournal(t *testing.T) {
	for _, journal := range []bool{true, false} {
		t.Run(fmt.Sprint(journal), func(t *testing.T) {
			dir := t.TempDir()
			out, err := os.Create(filepath.Join(dir, "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			fi, _ := out.Stat()
			st := fi.Sys().(*syscall.Stat_t)
			stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
			if !journal {
				stream = fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)
			}
			cmd := daemonCmd(t, daemonArgs(dir, "-v", "-v"), "JOURNAL_STREAM="+stream)
			cmd.Stderr = out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var text string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				b, _ := os.ReadFile(out.Name())
				if text = string(b); strings.Contains(text, "ddhcpd started") {
					break
				}
			}
			stop(t, cmd)
			lines := strings.Split(strings.TrimSpace(text), "\n")
			found := false
			for _, l := range lines {
				if strings.Contains(l, `msg="ddhcpd started"`) {
					found = true
					want := `<6>level=INFO msg="ddhcpd started"`
					if !journal {
						want = "time="
					}
					if !strings.HasPrefix(l, want) {
						t.Errorf("line %q, want it to start with %q", l, want)
					}
				}
			}
			if !found {
				t.Errorf("no start line in %q", text)
			}
		})
	}
}
