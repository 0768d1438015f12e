package logging

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSeverity(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 4, 7},
		{slog.LevelDebug, 7},
		{slog.LevelInfo - 1, 7},
		{slog.LevelInfo, 6},
		{slog.LevelInfo + 1, 6},
		{LevelNotice, 5},
		{slog.LevelWarn - 1, 5},
		{slog.LevelWarn, 4},
		{slog.LevelError - 1, 4},
		{slog.LevelError, 3},
		{slog.LevelError + 8, 3},
	} {
		if got := Severity(tt.level); got != tt.want {
			t.Errorf("Severity(%v) = %d, want %d", tt.level, got, tt.want)
		}
	}
}

// logAll logs one line at each level, a, b, c, d, e from debug to error.
func logAll(log *slog.Logger) {
	log.Debug("a")
	log.Info("b")
	log.Log(context.Background(), LevelNotice, "c")
	log.Warn("d")
	log.Error("e", "k", "v w")
}

func TestJournalPrefix(t *testing.T) {
	var buf bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	h := NewJournal(&buf, level)
	logAll(slog.New(h))
	want := `<7>level=DEBUG msg=a
<6>level=INFO msg=b
<5>level=NOTICE msg=c
<4>level=WARN msg=d
<3>level=ERROR msg=e k="v w"
`
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}

	// Derived loggers share the prefixing; the level changes at run time.
	buf.Reset()
	h.LevelVar().Set(slog.LevelWarn)
	log := slog.New(h).With("part", "mesh").WithGroup("g")
	logAll(log)
	want = `<4>level=WARN msg=d part=mesh
<3>level=ERROR msg=e part=mesh g.k="v w"
`
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}
}

// The daemon finds the run-time level through this interface
// (src/daemon/ctl_state.go).
var _ interface{ LevelVar() *slog.LevelVar } = (*Handler)(nil)

func TestTextUnchanged(t *testing.T) {
	var buf bytes.Buffer
	level := new(slog.LevelVar)
	log := slog.New(NewText(&buf, level))
	logAll(log)
	// The default level is info: notice is written, and named.
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^time=\S+ level=NOTICE msg=c$`).MatchString(lines[1]) {
		t.Fatalf("at the default level: %q", lines)
	}
	level.Set(slog.LevelDebug)
	buf.Reset()
	logAll(log)
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%q", lines)
	}
	re := regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|NOTICE|WARN|ERROR) msg=[a-e]`)
	for _, l := range lines {
		if !re.MatchString(l) || strings.HasPrefix(l, "<") {
			t.Errorf("line %q", l)
		}
	}
}

// listen makes a unixgram socket standing in for /dev/log.
func listen(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

// logdParse reads a datagram as OpenWrt's logd does: "<PRI>", then a
// "Mmm dd hh:mm:ss " stamp it drops.
func logdParse(d string) (pri int, msg string, ok bool) {
	m := regexp.MustCompile(`^<(\d{1,3})>((Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d )(.*)$`).FindStringSubmatch(d)
	if m == nil {
		return 0, "", false
	}
	fmt.Sscan(m[1], &pri)
	return pri, m[4], true
}

func TestSyslogSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	srv := listen(t, path)
	var fallback bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	h, s := NewSyslog(path, "ddhcpd", &fallback, level)
	defer s.Close()
	s.now = func() time.Time { return time.Date(2025, time.March, 7, 9, 5, 3, 0, time.Local) }
	logAll(slog.New(h))
	pid := os.Getpid()
	for _, want := range []string{
		fmt.Sprintf("<31>Mar  7 09:05:03 ddhcpd[%d]: level=DEBUG msg=a", pid),
		fmt.Sprintf("<30>Mar  7 09:05:03 ddhcpd[%d]: level=INFO msg=b", pid),
		fmt.Sprintf("<29>Mar  7 09:05:03 ddhcpd[%d]: level=NOTICE msg=c", pid),
		fmt.Sprintf("<28>Mar  7 09:05:03 ddhcpd[%d]: level=WARN msg=d", pid),
		fmt.Sprintf(`<27>Mar  7 09:05:03 ddhcpd[%d]: level=ERROR msg=e k="v w"`, pid),
	} {
		got := receive(t, srv)
		if got != want {
			t.Errorf("datagram %q, want %q", got, want)
		}
		pri, msg, ok := logdParse(got)
		if !ok || pri>>3 != FacilityDaemon || !strings.HasPrefix(msg, fmt.Sprintf("ddhcpd[%d]: level=", pid)) {
			t.Errorf("logd would read %q as pri %d msg %q (%v)", got, pri, msg, ok)
		}
	}
	if fallback.Len() != 0 {
		t.Errorf("fallback used: %q", fallback.String())
	}
	// The run-time level applies.
	h.LevelVar().Set(slog.LevelError)
	slog.New(h).Warn("hidden")
	slog.New(h).Error("shown")
	if got := receive(t, srv); !strings.HasSuffix(got, "level=ERROR msg=shown") {
		t.Errorf("after the level change: %q", got)
	}
}

// A syslog daemon that is not there, or that restarts: lines go to the
// fallback meanwhile, and to the new socket once it is there.
func TestSyslogReconnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var fallback bytes.Buffer
	level := new(slog.LevelVar)
	h, s := NewSyslog(path, "ddhcpd", &fallback, level)
	defer s.Close()
	log := slog.New(h)

	log.Warn("nobody listens")
	if fallback.String() != "level=WARN msg=\"nobody listens\"\n" {
		t.Errorf("fallback %q", fallback.String())
	}

	srv := listen(t, path)
	log.Warn("one")
	if got := receive(t, srv); !strings.HasSuffix(got, "level=WARN msg=one") {
		t.Errorf("got %q", got)
	}

	// logd restarts: its socket is replaced by a new one.
	srv.Close()
	os.Remove(path)
	srv = listen(t, path)
	fallback.Reset()
	log.Error("two")
	if got := receive(t, srv); !strings.HasSuffix(got, "level=ERROR msg=two") {
		t.Errorf("got %q", got)
	}
	if fallback.Len() != 0 {
		t.Errorf("fallback used: %q", fallback.String())
	}
}

func TestSyslogConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	srv := listen(t, path)
	srv.SetReadBuffer(1 << 20)
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	h, s := NewSyslog(path, "ddhcpd", os.Stderr, level)
	defer s.Close()
	var wg sync.WaitGroup
	const n = 50
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := slog.New(h).With("g", g)
			for i := range n {
				if i%2 == 0 {
					log.Debug("x", "i", i)
				} else {
					log.Error("x", "i", i)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for range 4 * n {
		d := receive(t, srv)
		pri, msg, ok := logdParse(d)
		switch {
		case !ok:
			t.Fatalf("datagram %q", d)
		case strings.Contains(msg, "level=DEBUG") && pri != 31, strings.Contains(msg, "level=ERROR") && pri != 27:
			t.Errorf("priority %d for %q", pri, msg)
		}
	}
	<-done
}

func TestJournalStream(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := os.Create(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	env := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	if !JournalStream(env, f) {
		t.Errorf("%s: the stream itself not recognised", env)
	}
	if JournalStream(env, g) {
		t.Errorf("%s: another file taken for the stream", env)
	}
	for _, bad := range []string{"", "1", "a:b", "1:", ":1", "-1:2"} {
		if JournalStream(bad, f) {
			t.Errorf("JOURNAL_STREAM=%q accepted", bad)
		}
	}
}
