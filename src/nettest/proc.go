package nettest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// Proc is a long-running process inside a namespace, started with
// [NS.Start]. Its standard output and standard error are kept in memory.
type Proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *notifyBuffer
	stderr *notifyBuffer

	done chan struct{} // closed when the process has exited and been reaped
	err  error         // result of Wait, valid once done is closed
}

// Start starts a process inside the namespace. It is killed at the end of
// the test if it is still running. The process runs in its own process group
// and gets SIGKILL if the test process dies, so it never outlives the test.
func (n *NS) Start(name string, args ...string) *Proc {
	n.lab.t.Helper()
	return n.StartEnv(nil, name, args...)
}

// StartEnv is [NS.Start] with extra environment variables ("KEY=value") added
// to the environment of the test process.
func (n *NS) StartEnv(env []string, name string, args ...string) *Proc {
	t := n.lab.t
	t.Helper()
	argv := append([]string{"netns", "exec", n.Name, name}, args...)
	// "ip netns exec" execs the command in place, so the pid we get is the
	// pid of the command itself and signals reach it directly.
	cmd := exec.Command("ip", argv...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	// A grandchild holding the output pipes open must not hang Wait.
	cmd.WaitDelay = 2 * time.Second
	p := &Proc{
		name:   n.Short + "/" + name,
		cmd:    cmd,
		stdout: newNotifyBuffer(),
		stderr: newNotifyBuffer(),
		done:   make(chan struct{}),
	}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("nettest: start %s: %v", p.name, err)
	}
	p.stdin = stdin

	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		t.Fatalf("nettest: start %s after cleanup", p.name)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nettest: start %s: %v", p.name, err)
	}
	l.procs = append(l.procs, p)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process group, so that children of the process
// are reached too. It is a no-op once the process has been reaped, which
// keeps it from hitting a recycled pid.
func (p *Proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM, then SIGKILL if the process has not exited within 5 s,
// and returns the error of Wait.
func (p *Proc) Stop() error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.Kill()
	}
	return p.err
}

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Output returns a copy of what the process wrote to standard output so far.
func (p *Proc) Output() []byte { return p.stdout.Bytes() }

// Stderr returns a copy of what the process wrote to standard error so far.
func (p *Proc) Stderr() []byte { return p.stderr.Bytes() }

// Lines returns the complete lines written to standard output so far.
func (p *Proc) Lines() []string { return completeLines(p.stdout.Bytes()) }

// SendLine writes line and a newline to the standard input of the process.
func (p *Proc) SendLine(line string) error {
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		return fmt.Errorf("nettest: write to %s: %w", p.name, err)
	}
	return nil
}

// CloseStdin closes the standard input of the process.
func (p *Proc) CloseStdin() error { return p.stdin.Close() }

// WaitLine waits until the process has written a complete line to standard
// output for which match returns true, and returns it. Lines written before
// the call count too. It returns false on timeout or when the process exits
// without writing such a line.
func (p *Proc) WaitLine(timeout time.Duration, match func(line string) bool) (string, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		data, changed := p.stdout.snapshot()
		for _, line := range completeLines(data) {
			if match(line) {
				return line, true
			}
		}
		select {
		case <-changed:
		case <-p.done:
			// The output is complete once Wait has returned; look once more.
			for _, line := range completeLines(p.stdout.Bytes()) {
				if match(line) {
					return line, true
				}
			}
			return "", false
		case <-timer.C:
			return "", false
		}
	}
}

// WaitOutput waits for a line of standard output containing substr.
func (p *Proc) WaitOutput(substr string, timeout time.Duration) bool {
	_, ok := p.WaitLine(timeout, func(line string) bool { return strings.Contains(line, substr) })
	return ok
}

// logOutput logs the tail of the output of the process, for failed tests.
func (p *Proc) logOutput(t testing.TB) {
	const max = 16 << 10
	tail := func(b []byte) []byte {
		if len(b) > max {
			return append([]byte("...\n"), b[len(b)-max:]...)
		}
		return b
	}
	state := "running"
	if p.Exited() {
		state = fmt.Sprint(p.err)
		if p.cmd.ProcessState != nil {
			state = p.cmd.ProcessState.String()
		}
	}
	t.Logf("nettest: process %s (%s)\n--- stdout:\n%s\n--- stderr:\n%s",
		p.name, state, tail(p.stdout.Bytes()), tail(p.stderr.Bytes()))
}

func completeLines(b []byte) []string {
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(string(b[:i]), "\n")
}

// notifyBuffer is a bytes.Buffer safe for concurrent use that lets readers
// wait for the next write.
type notifyBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newNotifyBuffer() *notifyBuffer {
	return &notifyBuffer{changed: make(chan struct{})}
}

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return n, err
}

func (b *notifyBuffer) Bytes() []byte {
	data, _ := b.snapshot()
	return data
}

// snapshot returns a copy of the contents and a channel closed on the next
// write.
func (b *notifyBuffer) snapshot() ([]byte, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes()), b.changed
}
