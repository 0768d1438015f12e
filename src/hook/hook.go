// Package hook runs the user's hook program (ddhcpd -H PATH) on daemon
// events: PATH EVENT ARGS..., for example "PATH lease 10.0.0.5
// 02:00:00:00:00:01 laptop".
//
// The program is executed with an argument vector, never through a shell
// command line, so addresses and client-chosen host names arrive verbatim.
// (A script that is not executable, or has no "#!" line, is run as
// /bin/sh -e -- PATH ARGS..., as the C ddhcpd runs every hook; the
// arguments are still passed as they are.)
//
// Run never blocks its caller, the daemon's loop: events wait in a bounded
// queue and are dropped, and counted, when it is full. A few hooks run at
// once, each in its own process group, which is killed when the hook
// overstays its timeout. Output is logged line by line at debug level,
// bounded; failures are logged at warn level.
package hook

import (
	"bytes"
	"errors"
	"log/slog"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ddhcpd/src/nolog"
)

// Defaults of Config.
const (
	DefaultMaxRunning  = 4
	DefaultQueueSize   = 64
	DefaultTimeout     = 10 * time.Second
	DefaultCloseWait   = 2 * time.Second
	DefaultOutputLines = 20  // per stream and hook
	maxLineLen         = 512 // bytes of one output line that are logged
)

// Config configures a Runner. Zero values mean the defaults.
type Config struct {
	Path        string        // the hook program
	Logger      *slog.Logger  // output at debug, failures at warn; nil: discard
	MaxRunning  int           // hooks running at once
	QueueSize   int           // events waiting to run; more are dropped
	Timeout     time.Duration // a hook running longer is killed, with its process group
	CloseWait   time.Duration // how long Close lets running hooks finish
	OutputLines int           // lines of stdout and of stderr logged per hook
}

// Stats are a Runner's counters since it started.
type Stats struct {
	Started  uint64 // processes started
	Failed   uint64 // could not start, exited non-zero, died of a signal or killed by Close
	TimedOut uint64 // killed at the timeout (not counted in Failed)
	Dropped  uint64 // events never run: queue full, or queued or sent at Close
}

// Runner runs the hook. A nil *Runner does nothing, so a daemon without a
// hook may call it regardless.
type Runner struct {
	cfg   Config
	log   *slog.Logger
	queue chan []string
	stop  chan struct{} // closed by Close: take no more events
	kill  chan struct{} // closed by Close after CloseWait: kill what runs
	wg    sync.WaitGroup
	once  sync.Once

	closed   atomic.Bool
	dropping atomic.Bool // the last event was dropped: warn once per episode

	started, failed, timedOut, dropped atomic.Uint64
}

// New starts a Runner for the program at cfg.Path.
func New(cfg Config) (*Runner, error) {
	if cfg.Path == "" {
		return nil, errors.New("hook: no program given")
	}
	if cfg.MaxRunning <= 0 {
		cfg.MaxRunning = DefaultMaxRunning
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CloseWait <= 0 {
		cfg.CloseWait = DefaultCloseWait
	}
	if cfg.OutputLines <= 0 {
		cfg.OutputLines = DefaultOutputLines
	}
	r := &Runner{
		cfg:   cfg,
		log:   cfg.Logger,
		queue: make(chan []string, cfg.QueueSize),
		stop:  make(chan struct{}),
		kill:  make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(nolog.Handler)
	}
	for range cfg.MaxRunning {
		r.wg.Add(1)
		go r.worker()
	}
	return r, nil
}

// Run queues one run of the hook with args (the event and its arguments)
// and returns at once. When the queue is full the event is dropped.
func (r *Runner) Run(args ...string) {
	if r == nil {
		return
	}
	if r.closed.Load() {
		r.dropped.Add(1)
		return
	}
	select {
	case r.queue <- append([]string(nil), args...):
		r.dropping.Store(false)
	default:
		r.dropped.Add(1)
		if !r.dropping.Swap(true) {
			r.log.Warn("hook queue full, dropping events", "queue", cap(r.queue), "args", args)
		}
	}
}

// Stats returns the counters.
func (r *Runner) Stats() Stats {
	if r == nil {
		return Stats{}
	}
	return Stats{
		Started:  r.started.Load(),
		Failed:   r.failed.Load(),
		TimedOut: r.timedOut.Load(),
		Dropped:  r.dropped.Load(),
	}
}

// Close stops running hooks: queued events are dropped, running hooks get
// CloseWait to finish and are then killed. Close returns when no hook runs.
func (r *Runner) Close() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		r.closed.Store(true)
		close(r.stop)
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(r.cfg.CloseWait):
			close(r.kill)
			<-done
		}
		for {
			select {
			case <-r.queue:
				r.dropped.Add(1)
			default:
				return
			}
		}
	})
}

func (r *Runner) worker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case args := <-r.queue:
			select {
			case <-r.stop:
				r.dropped.Add(1)
				return
			default:
			}
			r.run(args)
		}
	}
}

// run runs one hook to its end, its timeout or Close.
func (r *Runner) run(args []string) {
	event := ""
	if len(args) > 0 {
		event = args[0]
	}
	log := r.log.With("hook", r.cfg.Path, "event", event)
	stdout := &lineLogger{log: log, stream: "stdout", max: r.cfg.OutputLines}
	stderr := &lineLogger{log: log, stream: "stderr", max: r.cfg.OutputLines}
	cmd := r.command(nil, args, stdout, stderr)
	err := cmd.Start()
	if errors.Is(err, syscall.ENOEXEC) || errors.Is(err, syscall.EACCES) {
		// A script without "#!" or without the execute bit: run it
		// the way the C ddhcpd runs every hook.
		cmd = r.command([]string{"/bin/sh", "-e", "--"}, args, stdout, stderr)
		err = cmd.Start()
	}
	if err != nil {
		r.failed.Add(1)
		log.Warn("hook failed to start", "err", err)
		return
	}
	r.started.Add(1)
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(r.cfg.Timeout)
	defer timer.Stop()
	var why string
	select {
	case err = <-done:
	case <-timer.C:
		why = "timeout"
	case <-r.kill:
		why = "close"
	}
	if why != "" {
		// The negative pid names the hook's process group: its children
		// go too.
		syscall.Kill(-pid, syscall.SIGKILL)
		err = <-done
	}
	stdout.flush()
	stderr.flush()
	// Log before counting: whoever sees the counter finds the log line.
	switch {
	case why == "timeout":
		log.Warn("hook killed at its timeout", "pid", pid, "timeout", r.cfg.Timeout)
		r.timedOut.Add(1)
	case why == "close":
		log.Warn("hook killed at shutdown", "pid", pid)
		r.failed.Add(1)
	case err != nil:
		log.Warn("hook failed", "pid", pid, "err", err)
		r.failed.Add(1)
	default:
		log.Debug("hook done", "pid", pid)
	}
}

// command builds the process: prefix (an interpreter, or nothing), the hook,
// args; in a process group of its own.
func (r *Runner) command(prefix, args []string, stdout, stderr *lineLogger) *exec.Cmd {
	argv := append(append(append([]string(nil), prefix...), r.cfg.Path), args...)
	return &exec.Cmd{
		Path:        argv[0],
		Args:        argv,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		// Children the hook left behind may hold its output open.
		WaitDelay: time.Second,
	}
}

// lineLogger logs what a hook writes, one record per line, at most max
// lines of at most maxLineLen bytes. It is used by one goroutine at a time.
type lineLogger struct {
	log     *slog.Logger
	stream  string
	max     int
	buf     []byte
	partial bool // buf holds the start of a line
	lines   int
	dropped int
}

func (w *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		line, rest, complete := bytes.Cut(p, []byte{'\n'})
		if room := maxLineLen - len(w.buf); room > 0 {
			w.buf = append(w.buf, line[:min(room, len(line))]...)
		}
		w.partial = true
		if !complete {
			break
		}
		w.emit()
		p = rest
	}
	return n, nil
}

// flush logs an unterminated last line and says how much was left out.
func (w *lineLogger) flush() {
	if w.partial {
		w.emit()
	}
	if w.dropped > 0 {
		w.log.Debug("hook output truncated", "stream", w.stream, "lines_not_logged", w.dropped)
	}
}

func (w *lineLogger) emit() {
	if w.lines < w.max {
		w.lines++
		w.log.Debug("hook output", "stream", w.stream, "line", string(w.buf))
	} else {
		w.dropped++
	}
	w.buf = w.buf[:0]
	w.partial = false
}
