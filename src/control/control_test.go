package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	h := func(_ context.Context, req Request) Reply {
		switch req.Cmd {
		case "echo":
			var v any
			json.Unmarshal(req.Args, &v)
			return Reply{Result: v}
		}
		return Fail(CodeUnknownCommand, "unknown command %q", req.Cmd)
	}
	s, err := Listen(path, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func TestSocketMode(t *testing.T) {
	path := startServer(t)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	// A second daemon on the same path is refused.
	if _, err := Listen(path, nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("second listener accepted")
	}
}

func TestCall(t *testing.T) {
	path := startServer(t)
	var got map[string]int
	if err := Call(path, "echo", map[string]int{"a": 1}, &got); err != nil || got["a"] != 1 {
		t.Fatalf("echo: %v %v", got, err)
	}
	var ce *Error
	if err := Call(path, "nope", nil, nil); !errors.As(err, &ce) || ce.Code != CodeUnknownCommand {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	path := startServer(t)
	tests := []struct {
		name, send, code string
	}{
		{"malformed json", "{nope\n", CodeBadRequest},
		{"no cmd", "{}\n", CodeBadRequest},
		{"not an object", "[1,2]\n", CodeBadRequest},
		{"oversized", strings.Repeat("x", MaxRequest+10) + "\n", CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go io.WriteString(c, tt.send)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			var r Reply
			var e struct{ Error *Error }
			json.Unmarshal(line, &r)
			json.Unmarshal(line, &e)
			if r.OK || e.Error == nil || e.Error.Code != tt.code {
				t.Errorf("reply %s", line)
			}
		})
	}
	// The server still answers afterwards.
	if err := Call(path, "echo", 1, nil); err != nil {
		t.Fatal(err)
	}
}
