package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// syslogListener is a unixgram socket standing in for /dev/log.
func syslogListener(t *testing.T, dir string) (*net.UnixConn, string) {
	t.Helper()
	sock := filepath.Join(dir, "log")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, sock
}

// waitLine reads datagrams until one from pid contains want.
func waitLine(t *testing.T, srv *net.UnixConn, pid int, want string) string {
	t.Helper()
	b := make([]byte, 4096)
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	tag := fmt.Sprintf(" ddhcpd[%d]: ", pid)
	for {
		n, err := srv.Read(b)
		if err != nil {
			t.Fatalf("no %q from pid %d: %v", want, pid, err)
		}
		if d := string(b[:n]); strings.Contains(d, tag) && strings.Contains(d, want) {
			return d
		}
	}
}

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// TestDaemonize: -d returns at once and leaves the daemon running detached,
// as the C ddhcpd's daemon(0, 0): its own session without a controlling
// terminal, stdio on /dev/null; the pid file names it and it logs to
// syslog. SIGTERM stops it and the pid file goes away.
func TestDaemonize(t *testing.T) {
	dir := t.TempDir()
	srv, sock := syslogListener(t, dir)
	pidFile := filepath.Join(dir, "ddhcpd.pid")
	var stdout, stderr bytes.Buffer
	cmd := daemonCmd(t, daemonArgs(dir, "-d", "-pid-file", pidFile, "-syslog="+sock, "-vv"))
	// Pipes, not files: if the daemon kept them, Wait would not return.
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ddhcpd -d: %v\n%s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(10 * time.Second):
		stop(t, cmd)
		t.Fatalf("ddhcpd -d did not return")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid file when -d returned: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid == cmd.Process.Pid {
		t.Fatalf("pid file %q (the command was %d)", b, cmd.Process.Pid)
	}
	defer func() {
		// Stop the daemon this test started, by its pid.
		syscall.Kill(pid, syscall.SIGTERM)
	}()
	waitLine(t, srv, pid, `level=INFO msg="ddhcpd started"`)

	st := procStat(t, pid)
	// state, ppid, pgrp, session, tty_nr
	if len(st) < 5 || st[3] != strconv.Itoa(pid) || st[4] != "0" {
		t.Errorf("daemon %d: session %v, tty %v; want its own session (%d) and no terminal", pid, st[3], st[4], pid)
	}
	for fd := range 3 {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err != nil || l != os.DevNull {
			t.Errorf("fd %d -> %q %v, want /dev/null", fd, l, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ctl")); err != nil {
		t.Errorf("control socket: %v", err)
	}
	if stdout.Len()+stderr.Len() > 0 {
		t.Errorf("output: %q %q", stdout.String(), stderr.String())
	}

	syscall.Kill(pid, syscall.SIGTERM)
	waitLine(t, srv, pid, "ddhcpd stopping")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st := procStat(t, pid); st == nil || st[0] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d still running after SIGTERM", pid)
		}
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

// TestForeground: -D wins over an earlier -d (the C rule: the last one);
// the process itself is the daemon and writes its own pid file.
func TestForeground(t *testing.T) {
	for _, flags := range [][]string{{"-d", "-D"}, {"-Ld", "-D"}, {}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			dir := t.TempDir()
			srv, sock := syslogListener(t, dir)
			pidFile := filepath.Join(dir, "ddhcpd.pid")
			cmd := daemonCmd(t, daemonArgs(dir, append(flags, "-pid-file", pidFile, "-syslog="+sock, "-vv")...))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitLine(t, srv, cmd.Process.Pid, `msg="ddhcpd started"`)
			if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
				t.Errorf("pid file %q, want %d", b, cmd.Process.Pid)
			}
			stop(t, cmd)
			if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
				t.Errorf("pid file left behind: %v", err)
			}
		})
	}
}

// TestDaemonizeBadConfig: -d checks the configuration before it detaches:
// the error is on the terminal and the exit status is 2, as without -d.
func TestDaemonizeBadConfig(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "ddhcpd.pid")
	var stderr bytes.Buffer
	cmd := daemonCmd(t, daemonArgs(dir, "-d", "-pid-file", pidFile, "-b", "9"))
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), `-b "9"`) {
		t.Errorf("exit %v, stderr %q", err, stderr.String())
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file written: %v", err)
	}
}
