package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ddhcpd/src/nolog"
)

// startServer serves an echo handler at a fresh path; setup may change the
// server before it serves.
func startServer(t *testing.T, dir string, setup func(*Server)) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "ctl.sock")
	h := func(_ context.Context, req Request) Reply {
		switch req.Cmd {
		case "echo":
			var v any
			if err := req.DecodeArgs(&v); err != nil {
				return Fail(CodeBadArgs, "%v", err)
			}
			return Reply{Result: v}
		case "sum":
			var a struct{ A, B int }
			if err := req.DecodeArgs(&a); err != nil {
				return Fail(CodeBadArgs, "%v", err)
			}
			return Reply{Result: a.A + a.B}
		}
		return Fail(CodeUnknownCommand, "unknown command %q", req.Cmd)
	}
	s, err := Listen(path, h, slog.New(nolog.Handler))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func TestSocketMode(t *testing.T) {
	path := startServer(t, "", nil)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	// A second daemon on the same path is refused.
	if _, err := Listen(path, nil, slog.New(nolog.Handler)); err == nil {
		t.Error("second listener accepted")
	}
}

func TestCall(t *testing.T) {
	path := startServer(t, "", nil)
	var got map[string]int
	if err := Call(path, "echo", map[string]int{"a": 1}, &got); err != nil || got["a"] != 1 {
		t.Fatalf("echo: %v %v", got, err)
	}
	var ce *Error
	if err := Call(path, "nope", nil, nil); !errors.As(err, &ce) || ce.Code != CodeUnknownCommand {
		t.Fatalf("unknown command: %v", err)
	}
	if err := Call(filepath.Join(t.TempDir(), "none"), "echo", nil, nil); err == nil || errors.As(err, &ce) {
		t.Fatalf("no daemon: %v", err)
	}
}

// exchange sends raw bytes on a fresh connection and returns the reply line.
func exchange(t *testing.T, path, send string) []byte {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.WriteString(c, send)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func errorCode(line []byte) string {
	var r struct {
		OK    bool
		Error *Error
	}
	if json.Unmarshal(line, &r) != nil || r.OK || r.Error == nil {
		return ""
	}
	return r.Error.Code
}

func TestBadRequests(t *testing.T) {
	path := startServer(t, "", nil)
	tests := []struct {
		name, send, code string
	}{
		{"malformed json", "{nope\n", CodeBadRequest},
		{"no cmd", "{}\n", CodeBadRequest},
		{"not an object", "[1,2]\n", CodeBadRequest},
		{"empty line", "\n", CodeBadRequest},
		{"trailing garbage", `{"cmd":"echo"} x` + "\n", CodeBadRequest},
		{"cmd not a string", `{"cmd":7}` + "\n", CodeBadRequest},
		{"unknown command", `{"cmd":"nope"}` + "\n", CodeUnknownCommand},
		{"good args", `{"cmd":"sum","args":{"a":1,"b":2}}` + "\n", ""},
		{"wrong arg type", `{"cmd":"sum","args":{"a":"1"}}` + "\n", CodeBadArgs},
		{"unknown arg", `{"cmd":"sum","args":{"c":1}}` + "\n", CodeBadArgs},
		{"args not an object", `{"cmd":"sum","args":[1]}` + "\n", CodeBadArgs},
		{"oversized", strings.Repeat("x", MaxRequest+10) + "\n", CodeTooLarge},
		{"oversized without newline", strings.Repeat("x", MaxRequest+5000), CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := exchange(t, path, tt.send)
			if got := errorCode(line); got != tt.code {
				t.Errorf("reply %.200s: code %q, want %q", line, got, tt.code)
			}
		})
	}
	// The server still answers afterwards.
	if err := Call(path, "echo", 1, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSeveralRequestsOnOneConnection(t *testing.T) {
	path := startServer(t, "", nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, `{"cmd":"echo","args":1}`+"\n"+`{nope`+"\n"+`{"cmd":"echo","args":2}`+"\n")
	r := bufio.NewReader(c)
	for _, want := range []string{`{"ok":true,"result":1}`, "bad_request", `{"ok":true,"result":2}`} {
		line, err := r.ReadString('\n')
		if err != nil || !strings.Contains(line, want) {
			t.Fatalf("reply %q %v, want %s", line, err, want)
		}
	}
}

func TestDecodeArgs(t *testing.T) {
	type args struct {
		Code int    `json:"code"`
		Hex  string `json:"hex,omitempty"`
	}
	tests := []struct {
		raw     string
		want    args
		wantErr bool
	}{
		{raw: "", want: args{Code: -1}},
		{raw: "null", want: args{Code: -1}},
		{raw: " {} ", want: args{Code: -1}},
		{raw: `{"code":6,"hex":"00"}`, want: args{Code: 6, Hex: "00"}},
		{raw: `{"code":"6"}`, wantErr: true},
		{raw: `{"code":6,"extra":1}`, wantErr: true},
		{raw: `{"code":6} {"code":7}`, wantErr: true},
		{raw: `[6]`, wantErr: true},
		{raw: `{"code":1e400}`, wantErr: true},
	}
	for _, tt := range tests {
		got := args{Code: -1}
		err := Request{Cmd: "x", Args: json.RawMessage(tt.raw)}.DecodeArgs(&got)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("%s: %+v %v", tt.raw, got, err)
		}
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	path := startServer(t, "", func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	for _, send := range []string{"", `{"cmd":"echo"`} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, send)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		n, err := c.Read(make([]byte, 10))
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("sent %q: read %d %v, want EOF", send, n, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("sent %q: closed after %v", send, d)
		}
		c.Close()
	}
	if err := Call(path, "echo", 1, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTooManyConnections(t *testing.T) {
	path := startServer(t, "", nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range MaxConns {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The accepts are asynchronous: wait until the server holds them all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := Call(path, "echo", 1, nil)
		var ce *Error
		if errors.As(err, &ce) && ce.Code == CodeInternal && strings.Contains(ce.Message, "too many") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("17th connection: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conns[0].Close()
	conns = conns[1:]
	deadline = time.Now().Add(5 * time.Second)
	for Call(path, "echo", 1, nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no connection freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The peer check reads the real credentials and refuses with "forbidden".
func TestForbiddenPeer(t *testing.T) {
	var seen atomic.Int64
	seen.Store(-1)
	path := startServer(t, "", func(s *Server) {
		s.AllowUID = func(uid uint32) bool { seen.Store(int64(uid)); return false }
	})
	var ce *Error
	if err := Call(path, "echo", 1, nil); !errors.As(err, &ce) || ce.Code != CodeForbidden {
		t.Fatalf("refused peer: %v", err)
	}
	if got := seen.Load(); got != int64(os.Geteuid()) {
		t.Errorf("peer uid %d, want %d", got, os.Geteuid())
	}
	line := exchange(t, path, "")
	if errorCode(line) != CodeForbidden {
		t.Errorf("silent refused peer got %s", line)
	}
}

func TestDefaultAllowUID(t *testing.T) {
	s, err := Listen(filepath.Join(t.TempDir(), "s"), nil, slog.New(nolog.Handler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	self := uint32(os.Geteuid())
	for uid, want := range map[uint32]bool{0: true, self: true, 65534: self == 65534, 1000: self == 1000} {
		if got := s.AllowUID(uid); got != want {
			t.Errorf("uid %d allowed %v", uid, got)
		}
	}
}

const peerEnv = "DDHCPD_CONTROL_TEST_SOCKET"

// TestPeerHelper is the client TestNonRootPeer runs as another user.
func TestPeerHelper(t *testing.T) {
	path := os.Getenv(peerEnv)
	if path == "" {
		t.Skip("helper of TestNonRootPeer")
	}
	err := Call(path, "echo", 1, nil)
	fmt.Printf("uid %d: %v\n", os.Getuid(), err)
}

// TestNonRootPeer runs a client as nobody against the default check. The
// socket is opened to everyone for it, so only the peer check refuses.
func TestNonRootPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	dir, err := os.MkdirTemp("", "ctltest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	path := startServer(t, dir, func(s *Server) { os.Chmod(s.path, 0o666) })
	// The test binary sits in a directory only root may enter: copy it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	if err := os.WriteFile(helper, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helper, "-test.run=^TestPeerHelper$", "-test.v")
	cmd.Env = append(os.Environ(), peerEnv+"="+path)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "uid 65534: forbidden: uid 65534 may not use the control socket") {
		t.Errorf("helper said:\n%s", out)
	}
	// Root still gets through.
	if err := Call(path, "echo", 1, nil); err != nil {
		t.Error(err)
	}
}
