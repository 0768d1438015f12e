// Package control is the daemon's local API: a unix stream socket speaking
// line-delimited JSON. Each request line {"cmd": NAME, "args": {...}} gets
// exactly one reply line {"ok": true, "result": ...} or
// {"ok": false, "error": {"code": ..., "message": ...}}.
//
// The server only parses and frames; answering is the caller's job, so the
// daemon's single loop keeps owning all protocol state.
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
	"sync"
	"time"
)

// Limits that keep a misbehaving client from holding resources.
const (
	MaxRequest  = 64 << 10         // bytes in one request line
	IdleTimeout = 10 * time.Second // a connection that sends nothing is closed
	MaxConns    = 16               // concurrent connections
)

// Request is one command.
type Request struct {
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Error is the error object of a failed reply.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes.
const (
	CodeBadRequest     = "bad_request"
	CodeUnknownCommand = "unknown_command"
	CodeTooLarge       = "request_too_large"
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
	ln   net.Listener
	path string
	log  *slog.Logger
	h    Handler
	sem  chan struct{}
	wg   sync.WaitGroup
}

// Listen opens the socket at path with mode 0600. A stale socket file left by
// a crash is replaced; a socket another daemon still answers on is not.
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
	return &Server{ln: ln, path: path, log: log, h: h, sem: make(chan struct{}, MaxConns)}, nil
}

// Serve accepts connections until ctx ends, then closes and removes the socket.
func (s *Server) Serve(ctx context.Context) {
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

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	for {
		c.SetDeadline(time.Now().Add(IdleTimeout))
		line, err := readLine(r, MaxRequest)
		if errors.Is(err, errTooLarge) {
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
// result (which may be nil). A failed reply is returned as *Error.
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
			return err
		}
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return err
	}
	line, err := readLine(bufio.NewReader(c), 64<<20)
	if err != nil {
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
		return json.Unmarshal(reply.Result, result)
	}
	return nil
}
