package hook

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// script writes an executable shell script into a fresh directory and
// returns its path; the script finds the directory as $D.
func script(t *testing.T, body string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "hook script")
	text := "#!/bin/sh\nD=" + strconv.Quote(dir) + "\n" + body + "\n"
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestArgumentsVerbatim(t *testing.T) {
	path, dir := script(t, `for a in "$@"; do printf '%s\0' "$a"; done > "$D/args.tmp"; mv "$D/args.tmp" "$D/args"`)
	args := []string{
		"lease", "10.0.0.5", "02:00:00:00:00:01",
		"host name; touch $D/pwned1",
		"$(touch pwned2) `touch pwned3`",
		"* ? [a] ~ ' \" \\ | & > x",
		"line\nbreak",
		"",
		"-e",
		"--",
	}
	r := newRunner(t, Config{Path: path})
	r.Run(args...)
	waitFor(t, "the hook", func() bool { return exists(filepath.Join(dir, "args")) })
	b, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if !slices.Equal(got, args) {
		t.Errorf("arguments\n got %q\nwant %q", got, args)
	}
	for _, f := range []string{"pwned1", "pwned2", "pwned3", "x"} {
		if exists(filepath.Join(dir, f)) || exists(f) {
			t.Errorf("an argument was interpreted: %s exists", f)
		}
	}
}

// Scripts the C ddhcpd accepted: no execute bit, or no "#!" line.
func TestPlainScripts(t *testing.T) {
	for name, mode := range map[string]os.FileMode{"not executable": 0o644, "no shebang": 0o755} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "hook")
			body := `printf '%s|' "$@" > ` + strconv.Quote(filepath.Join(dir, "out")) + "\n"
			if err := os.WriteFile(path, []byte(body), mode); err != nil {
				t.Fatal(err)
			}
			r := newRunner(t, Config{Path: path})
			r.Run("release", "10.0.0.5", "a b")
			waitFor(t, "the hook", func() bool { return r.Stats().Started+r.Stats().Failed > 0 })
			r.Close()
			b, _ := os.ReadFile(filepath.Join(dir, "out"))
			if string(b) != "release|10.0.0.5|a b|" || r.Stats().Failed != 0 {
				t.Errorf("out %q, stats %+v", b, r.Stats())
			}
		})
	}
}

func TestConcurrencyBounded(t *testing.T) {
	// Each run marks itself running, counts the runs it sees, and
	// unmarks itself before it ends.
	path, dir := script(t, `mkdir -p "$D/run"; touch "$D/run/$$"
echo $(ls "$D/run" | wc -l) >> "$D/counts"
sleep 0.5
rm "$D/run/$$"`)
	r := newRunner(t, Config{Path: path})
	const runs = 10
	for i := range runs {
		r.Run("lease", strconv.Itoa(i))
	}
	waitFor(t, "all runs", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "counts"))
		return strings.Count(string(b), "\n") == runs && allDone(dir)
	})
	b, _ := os.ReadFile(filepath.Join(dir, "counts"))
	most := 0
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		most = max(most, n)
	}
	if most != DefaultMaxRunning {
		t.Errorf("at most %d hooks ran at once, want %d (counts %q)", most, DefaultMaxRunning, b)
	}
	if st := r.Stats(); st.Started != runs || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func allDone(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "run"))
	return err == nil && len(entries) == 0
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	path, dir := script(t, `sleep 30 & echo $! > "$D/child.tmp"; mv "$D/child.tmp" "$D/child"; wait`)
	var logs syncBuffer
	r := newRunner(t, Config{
		Path:    path,
		Timeout: 200 * time.Millisecond,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	start := time.Now()
	r.Run("endlearning")
	waitFor(t, "the timeout", func() bool { return r.Stats().TimedOut == 1 })
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("killed after %v", d)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	child := strings.TrimSpace(string(b))
	waitFor(t, "the hook's child to die", func() bool { return dead(child) })
	if st := r.Stats(); st.Started != 1 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"hook killed at its timeout\"") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// dead reports whether process pid is gone or a zombie.
func dead(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

func TestQueueFullDrops(t *testing.T) {
	path, dir := script(t, `touch "$D/started.$1"; while [ ! -e "$D/go" ]; do sleep 0.02; done`)
	var logs syncBuffer
	r := newRunner(t, Config{Path: path, MaxRunning: 1, QueueSize: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r.Run("first")
	waitFor(t, "the first hook", func() bool { return exists(filepath.Join(dir, "started.first")) })
	for i := range 10 {
		r.Run("next" + strconv.Itoa(i))
	}
	if st := r.Stats(); st.Dropped != 8 {
		t.Errorf("dropped %d of 10 with one running and a queue of 2", st.Dropped)
	}
	if n := strings.Count(logs.String(), "hook queue full"); n != 1 {
		t.Errorf("%d warnings about the full queue", n)
	}
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	waitFor(t, "the queued hooks", func() bool {
		return exists(filepath.Join(dir, "started.next0")) && exists(filepath.Join(dir, "started.next1"))
	})
	r.Close()
	if st := r.Stats(); st.Started != 3 || st.Dropped != 8 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	if exists(filepath.Join(dir, "started.next2")) {
		t.Error("a dropped event ran")
	}
}

func TestRunNeverBlocks(t *testing.T) {
	path, _ := script(t, `sleep 5`)
	r := newRunner(t, Config{Path: path, CloseWait: 50 * time.Millisecond})
	start := time.Now()
	for i := range 1000 {
		r.Run("lease", strconv.Itoa(i))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("1000 calls took %v", d)
	}
	if st := r.Stats(); st.Dropped < 1000-DefaultQueueSize-DefaultMaxRunning {
		t.Errorf("dropped only %d", st.Dropped)
	}
	start = time.Now()
	r.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if st := r.Stats(); st.Dropped+st.Started != 1000 || st.Failed != st.Started {
		t.Errorf("after Close: %+v", st)
	}
	r.Run("late") // after Close: dropped, no panic
	if st := r.Stats(); st.Dropped+st.Started != 1001 {
		t.Errorf("late event: %+v", st)
	}
}

func TestOutputLogged(t *testing.T) {
	path, _ := script(t, `echo "first line"; echo "to stderr" >&2
i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done
printf 'no newline'; exit 3`)
	var logs syncBuffer
	r := newRunner(t, Config{
		Path:        path,
		OutputLines: 5,
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	r.Run("blockowned", "3", "10.0.0.96")
	waitFor(t, "the hook", func() bool { return r.Stats().Failed == 1 })
	r.Close()
	out := logs.String()
	for _, want := range []string{
		`level=DEBUG msg="hook output" hook="` + path + `" event=blockowned stream=stdout line="first line"`,
		`stream=stderr line="to stderr"`,
		`stream=stdout line="line 3"`,
		`msg="hook output truncated" hook="` + path + `" event=blockowned stream=stdout lines_not_logged=97`,
		`level=WARN msg="hook failed"`,
		`err="exit status 3"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if n := strings.Count(out, `stream=stdout line=`); n != 5 {
		t.Errorf("%d stdout lines logged, want 5", n)
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestLongLineCut(t *testing.T) {
	var logs syncBuffer
	w := &lineLogger{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), stream: "stdout", max: 10}
	long := strings.Repeat("x", 3*maxLineLen)
	w.Write([]byte(long[:100]))
	w.Write([]byte(long[100:] + "\nshort\n"))
	w.flush()
	out := logs.String()
	if !strings.Contains(out, "line="+strings.Repeat("x", maxLineLen)+"\n") || !strings.Contains(out, "line=short") {
		t.Errorf("log:\n%s", out)
	}
}

func TestCloseKillsRunningHooks(t *testing.T) {
	path, dir := script(t, `touch "$D/started"; sleep 30`)
	r := newRunner(t, Config{Path: path, CloseWait: 100 * time.Millisecond})
	r.Run("lease", "10.0.0.5", "02:00:00:00:00:01")
	waitFor(t, "the hook", func() bool { return exists(filepath.Join(dir, "started")) })
	start := time.Now()
	r.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if st := r.Stats(); st.Started != 1 || st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestStartFailure(t *testing.T) {
	r := newRunner(t, Config{Path: filepath.Join(t.TempDir(), "missing")})
	r.Run("endlearning")
	waitFor(t, "the failure", func() bool { return r.Stats().Failed == 1 })
	if st := r.Stats(); st.Started != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNilRunner(t *testing.T) {
	var r *Runner
	r.Run("lease")
	r.Close()
	if r.Stats() != (Stats{}) {
		t.Error("nil runner counted")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a path")
	}
}
