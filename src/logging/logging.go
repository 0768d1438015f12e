// Package logging is the daemon's log handler: slog's text lines, each
// with its real syslog priority wherever it goes. There are three ways out:
//
//   - NewText: lines on stderr as slog's TextHandler writes them, for a
//     terminal or a file;
//   - NewJournal: the same lines without the time, each preceded by "<N>"
//     (N the syslog severity), the sd-daemon(3) prefix that journald reads
//     as the line's priority (SyslogLevelPrefix=yes, the default) when
//     stderr is the journal stream (JournalStream);
//   - NewSyslog: one datagram per line to the syslog socket (/dev/log),
//     "<PRI>Mmm dd hh:mm:ss ddhcpd[PID]: LINE" with facility daemon, the
//     RFC 3164 local format that syslog(3) and logger(1) send and that
//     OpenWrt's logd, busybox syslogd and journald read. procd logs a
//     service's stderr as daemon.err whatever the line says; this keeps
//     debug, info, notice, warning and err apart in logread.
//
// Each handler has a run-time level (LevelVar), which the daemon's control
// socket changes.
package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LevelNotice is between info and warning: syslog's notice.
const LevelNotice = slog.LevelInfo + 2

// Syslog severities (RFC 5424 §6.2.1) and the daemon facility.
const (
	SevErr     = 3
	SevWarning = 4
	SevNotice  = 5
	SevInfo    = 6
	SevDebug   = 7

	FacilityDaemon = 3
)

// DefaultSocket is the local syslog socket.
const DefaultSocket = "/dev/log"

// Severity is the syslog severity of a slog level: debug 7, info 6, notice
// 5, warning 4, error (and above) 3.
func Severity(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return SevDebug
	case l < LevelNotice:
		return SevInfo
	case l < slog.LevelWarn:
		return SevNotice
	case l < slog.LevelError:
		return SevWarning
	}
	return SevErr
}

// Handler is a slog.Handler whose level can change at run time. Each record
// is formatted by slog's TextHandler and handed to its sink with its
// severity.
type Handler struct {
	inner slog.Handler
	out   *output
	level *slog.LevelVar
}

// output is what a Handler and the handlers derived from it (WithAttrs,
// WithGroup) share: the sink, and the severity of the record being written.
type output struct {
	mu   sync.Mutex
	sev  int
	sink func(sev int, line []byte) error
}

// Write receives one formatted line from the TextHandler.
func (o *output) Write(p []byte) (int, error) {
	if err := o.sink(o.sev, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func newHandler(sink func(int, []byte) error, level *slog.LevelVar, withTime bool) *Handler {
	out := &output{sink: sink}
	opts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				if !withTime {
					return slog.Attr{}
				}
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok && l == LevelNotice {
					a.Value = slog.StringValue("NOTICE")
				}
			}
			return a
		},
	}
	return &Handler{inner: slog.NewTextHandler(out, opts), out: out, level: level}
}

// LevelVar is the handler's level; setting it takes effect at once.
func (h *Handler) LevelVar() *slog.LevelVar { return h.level }

// Enabled reports whether records of level l are written.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle writes one record.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.sev = Severity(r.Level)
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a handler that adds as to every record.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(as), out: h.out, level: h.level}
}

// WithGroup returns a handler that puts the record's attributes in a group.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), out: h.out, level: h.level}
}

// NewText writes lines to w as slog's TextHandler does (time, level,
// message, attributes).
func NewText(w io.Writer, level *slog.LevelVar) *Handler {
	return newHandler(func(_ int, line []byte) error {
		_, err := w.Write(line)
		return err
	}, level, true)
}

// NewJournal writes lines to w, each preceded by "<N>", its syslog
// severity, and without the time (the journal stamps every line).
func NewJournal(w io.Writer, level *slog.LevelVar) *Handler {
	var buf []byte
	return newHandler(func(sev int, line []byte) error {
		buf = append(append(append(buf[:0], '<'), strconv.Itoa(sev)...), '>')
		_, err := w.Write(append(buf, line...))
		return err
	}, level, false)
}

// JournalStream reports whether f (stderr) is the journal stream that
// systemd names in JOURNAL_STREAM ("DEVICE:INODE", decimal): only then do
// "<N>" prefixes reach journald. A child with its stderr redirected
// elsewhere inherits the variable but not the stream.
func JournalStream(env string, f *os.File) bool {
	dev, ino, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == d && uint64(st.Ino) == i // Dev is uint32 on some ports
}

// SyslogWriteTimeout bounds the wait for a syslog daemon that does not
// read: a line that cannot be sent in time goes to the fallback.
const SyslogWriteTimeout = 500 * time.Millisecond

// Syslog sends lines to a syslog socket.
type Syslog struct {
	mu        sync.Mutex
	path, tag string
	pid       int
	fallback  io.Writer
	now       func() time.Time
	conn      net.Conn
	buf       []byte
}

// NewSyslog writes each line as one datagram to the syslog socket at path
// (DefaultSocket), tagged tag[PID], facility daemon, with the severity of
// its level, and without the time in the line (syslog stamps it). The
// socket is opened at the first line and opened again after an error (the
// syslog daemon restarted); a line that cannot be sent is written to
// fallback (stderr) instead, so nothing is lost.
func NewSyslog(path, tag string, fallback io.Writer, level *slog.LevelVar) (*Handler, *Syslog) {
	s := &Syslog{path: path, tag: tag, pid: os.Getpid(), fallback: fallback, now: time.Now}
	return newHandler(s.write, level, false), s
}

func (s *Syslog) write(sev int, line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	line = bytes.TrimRight(line, "\n")
	s.buf = fmt.Appendf(s.buf[:0], "<%d>%s %s[%d]: %s", FacilityDaemon*8+sev, s.now().Format(time.Stamp), s.tag, s.pid, line)
	if err := s.send(s.buf); err == nil {
		return nil
	}
	_, err := s.fallback.Write(append(line, '\n'))
	return err
}

// send writes msg, opening the socket if needed and once more after an
// error.
func (s *Syslog) send(msg []byte) error {
	var err error
	for range 2 {
		if s.conn == nil {
			if s.conn, err = net.DialTimeout("unixgram", s.path, SyslogWriteTimeout); err != nil {
				s.conn = nil
				return err
			}
		}
		s.conn.SetWriteDeadline(time.Now().Add(SyslogWriteTimeout))
		if _, err = s.conn.Write(msg); err == nil {
			return nil
		}
		s.conn.Close()
		s.conn = nil
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return err // the daemon is there but does not read: do not wait twice
		}
	}
	return err
}

// Close closes the socket.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
