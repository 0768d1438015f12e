package control

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"ddhcpd/src/nolog"
)

// FuzzRequest sends arbitrary bytes as one request line to a real control
// server whose handler decodes arguments strictly: every line gets exactly
// one reply that is a JSON object with "ok", and the server keeps serving.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{`{"cmd":"status"}`, `{"cmd":"option_set","args":{"code":3,"hex":"0a000001"}}`,
		`{"cmd":""}`, `{`, `[]`, `{"cmd":"x","args":[1,2]}`, "\x00\xff", `{"cmd":"loglevel","args":{"level":4}}`} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "ctl.sock")
	h := func(_ context.Context, req Request) Reply {
		var args struct {
			Code  int    `json:"code"`
			Hex   string `json:"hex"`
			Level any    `json:"level"`
		}
		if err := req.DecodeArgs(&args); err != nil {
			return Fail("bad_args", "%v", err)
		}
		return Reply{Result: map[string]any{"cmd": req.Cmd, "code": args.Code}}
	}
	s, err := Listen(path, h, slog.New(nolog.Handler))
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, b := range line {
			if b == '\n' {
				return // one request per input
			}
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(append(line, '\n')); err != nil {
			t.Fatal(err)
		}
		reply, err := bufio.NewReader(c).ReadBytes('\n')
		if err != nil {
			t.Fatalf("no reply to %q: %v", line, err)
		}
		var r struct {
			OK    *bool           `json:"ok"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(reply, &r); err != nil || r.OK == nil || (!*r.OK && len(r.Error) == 0) {
			t.Fatalf("reply %q to %q", reply, line)
		}
	})
}
