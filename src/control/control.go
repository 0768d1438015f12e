// Package control is the daemon's local API: a unix stream socket speaking
// line-delimited JSON. Each request line {"cmd": NAME, "args": {...}} gets
// exactly one reply line {"ok": true, "result": ...} or
// {"ok": false, "error": {"code": ..., "message": ...}}.
//
// The socket is created with mode 0600 and a connecting process must
// moreover pass the server's peer check (SO_PEERCRED): by default only root
// and the daemon's own user may talk to it.
//
// The server only parses and frames; answering is the caller's job, so the
// daemon's single loop keeps owning all protocol state.
package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Limits that keep a misbehaving client from holding resources.
const (
	MaxRequest  = 64 << 10         // bytes in one request line
	IdleTimeout = 10 * time.Second // a connection that sends no full line is closed
	MaxConns    = 16               // concurrent connections
)

// Request is one command.
type Request struct {
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// DecodeArgs decodes the request's arguments into v, strictly: unknown
// fields, wrong types and trailing data are errors. Absent or null
// arguments leave v as it is.
func (r Request) DecodeArgs(v any) error {
	args := bytes.TrimSpace(r.Args)
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("args of %q: %w", r.Cmd, err)
	}
	if dec.More() {
		return fmt.Errorf("args of %q: trailing data", r.Cmd)
	}
	return nil
}

// Error is the error object of a failed reply.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes.
const (
	CodeBadRequest     = "bad_request"       // not a JSON object with a "cmd" field
	CodeUnknownCommand = "unknown_command"   // the message lists the known commands
	CodeBadArgs        = "bad_args"          // wrong, missing or unknown arguments
	CodeTooLarge       = "request_too_large" // a line longer than MaxRequest
	CodeForbidden      = "forbidden"         // the peer failed the credential check
	CodeNotFound       = "not_found"         // e.g. removing an option that is not set
	CodeUnavailable    = "unavailable"       // e.g. options while DHCP is off (-S)
	CodeInternal       = "internal"
)

// Reply is one answer line.
type Reply struct {
	OK     bool   `json:"ok"`
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// Handler answers a request. It is called from connection goroutines.
type Handler func(ctx context.Context, req Request) Reply

// Fail builds an error reply.
func Fail(code, format string, a ...any) Reply {
	return Reply{Error: &Error{Code: code, Message: fmt.Sprintf(format, a...)}}
}

// Server is a listening control socket.
type Server struct {
	// IdleTimeout bounds the wait for each request line and the writing of
	// its reply; a connection that is silent that long is closed. Listen
	// sets it to the package's IdleTimeout.
	IdleTimeout time.Duration

	// AllowUID decides whether a peer with this user id may use the
	// socket. Listen sets it to allow root and the daemon's own effective
	// user; nil allows everyone. A refused peer gets one "forbidden" reply
	// and is disconnected.
	AllowUID func(uid uint32) bool

	ln   net.Listener
	path string
	log  *slog.Logger
	h    Handler
	sem  chan struct{}
	wg   sync.WaitGroup
}

// Listen opens the socket at path with mode 0600. A stale socket file left by
// a crash is replaced; a socket another daemon still answers on is not.
// The Server's exported fields may be changed before Serve is called.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another daemon is listening", path)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	self := uint32(os.Geteuid())
	return &Server{
		IdleTimeout: IdleTimeout,
		AllowUID:    func(uid uint32) bool { return uid == 0 || uid == self },
		ln:          ln,
		path:        path,
		log:         log,
		h:           h,
		sem:         make(chan struct{}, MaxConns),
	}, nil
}

// Serve accepts connections until ctx ends, then closes and removes the socket.
func (s *Server) Serve(ctx context.Context) {
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = IdleTimeout
	}
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("control accept", "err", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			break
		}
		select {
		case s.sem <- struct{}{}:
		default:
			c.SetWriteDeadline(time.Now().Add(time.Second))
			writeReply(c, Fail(CodeInternal, "too many connections"))
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.serveConn(ctx, c)
		}()
	}
	s.wg.Wait()
	os.Remove(s.path)
}

// peerUID returns the user id of the process at the other end of c.
func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("peer credentials: %T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred.Uid, nil
}

// admit applies the peer check; a refused peer gets a reply saying why.
func (s *Server) admit(c net.Conn) bool {
	if s.AllowUID == nil {
		return true
	}
	uid, err := peerUID(c)
	var reply Reply
	switch {
	case err != nil:
		s.log.Warn("control peer refused", "err", err)
		reply = Fail(CodeForbidden, "cannot check the peer's credentials")
	case !s.AllowUID(uid):
		s.log.Warn("control peer refused", "uid", uid)
		reply = Fail(CodeForbidden, "uid %d may not use the control socket", uid)
	default:
		return true
	}
	c.SetWriteDeadline(time.Now().Add(s.IdleTimeout))
	writeReply(c, reply)
	return false
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	if !s.admit(c) {
		return
	}
	r := bufio.NewReaderSize(c, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		line, err := readLine(r, MaxRequest)
		if errors.Is(err, errTooLarge) {
			c.SetWriteDeadline(time.Now().Add(s.IdleTimeout))
			writeReply(c, Fail(CodeTooLarge, "request longer than %d bytes", MaxRequest))
			return
		}
		if err != nil {
			return // EOF, idle timeout or a broken connection
		}
		var req Request
		var reply Reply
		if err := json.Unmarshal(line, &req); err != nil || req.Cmd == "" {
			reply = Fail(CodeBadRequest, "want one JSON object per line with a \"cmd\" field")
		} else {
			reply = s.h(ctx, req)
		}
		c.SetWriteDeadline(time.Now().Add(s.IdleTimeout))
		if err := writeReply(c, reply); err != nil {
			return
		}
	}
}

var errTooLarge = errors.New("line too long")

// readLine reads up to a newline, refusing lines longer than max.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, errTooLarge
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

func writeReply(w io.Writer, r Reply) error {
	r.OK = r.Error == nil
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(Fail(CodeInternal, "encode reply: %v", err))
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Call sends one request to the socket at path and decodes the result into
// result (which may be nil). A failed reply is returned as *Error; any other
// error means the daemon could not be reached or answered garbage.
func Call(path, cmd string, args, result any) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return fmt.Errorf("connect to ddhcpd at %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := Request{Cmd: cmd}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return fmt.Errorf("encode args: %w", err)
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	// A refused peer is answered before it writes; the write may then fail
	// while the reply is already waiting, so the reply is read regardless.
	_, werr := c.Write(append(b, '\n'))
	line, err := readLine(bufio.NewReader(c), 64<<20)
	if err != nil {
		if werr != nil {
			return fmt.Errorf("send request: %w", werr)
		}
		return fmt.Errorf("read reply: %w", err)
	}
	var reply struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return fmt.Errorf("bad reply: %w", err)
	}
	if !reply.OK {
		if reply.Error == nil {
			reply.Error = &Error{Code: CodeInternal, Message: "failed without an error"}
		}
		return reply.Error
	}
	if result != nil && len(reply.Result) > 0 {
		if err := json.Unmarshal(reply.Result, result); err != nil {
			return fmt.Errorf("bad result: %w", err)
		}
	}
	return nil
}
