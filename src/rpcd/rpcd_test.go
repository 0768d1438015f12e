package rpcd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"ddhcpd/src/control"
	"ddhcpd/src/nolog"
)

// fakeDaemon answers the control socket with canned results; a command
// missing from results is unknown, as to an older daemon.
func fakeDaemon(t *testing.T, results map[string]any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	h := func(_ context.Context, req control.Request) control.Reply {
		if err := req.DecodeArgs(&struct{}{}); err != nil {
			return control.Fail(control.CodeBadArgs, "%v", err)
		}
		r, ok := results[req.Cmd]
		if !ok {
			return control.Fail(control.CodeUnknownCommand, "unknown command %q", req.Cmd)
		}
		if err, ok := r.(*control.Error); ok {
			return control.Reply{Error: err}
		}
		return control.Reply{Result: r}
	}
	s, err := control.Listen(path, h, slog.New(nolog.Handler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

var canned = map[string]any{
	"status": control.Status{Node: "0123456789abcdef", Pool: "10.0.0.0/24", BlockSize: 16, Blocks: 16, Owned: 1},
	"blocks": []control.Block{{Index: 1, First: "10.0.0.16", State: "ours", Owner: "0123456789abcdef", Timeout: 42}},
	"leases": []control.Lease{{Addr: "10.0.0.17", State: "assigned", HW: "02:00:00:00:00:01", Expires: 299, Block: 1, Local: true}},
	"tree":   control.Tree{Enabled: false},
	"stats":  control.Stats{"dhcp.ack": 3},
}

// run calls Main and checks what rpcd checks: standard output is exactly one
// JSON value, an object.
func run(t *testing.T, socket, stdin string, args ...string) (map[string]any, int) {
	t.Helper()
	var out bytes.Buffer
	status := Main(args, strings.NewReader(stdin), &out, socket)
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: output %q is not JSON: %v", args, out.String(), err)
	}
	if dec.More() {
		t.Fatalf("%v: more than one JSON value in %q", args, out.String())
	}
	obj, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v: output %q is not a JSON object; rpcd would refuse it", args, out.String())
	}
	if !strings.HasSuffix(out.String(), "}\n") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("%v: output %q is not one line", args, out.String())
	}
	return obj, status
}

func TestList(t *testing.T) {
	got, status := run(t, "/nonexistent", "", "list")
	if status != 0 {
		t.Fatalf("list: status %d", status)
	}
	want := []string{"status", "blocks", "leases", "tree", "stats", "options", "overview", "ipv4leases"}
	if len(got) != len(want) {
		t.Fatalf("list: %v, want the methods %v", got, want)
	}
	for _, m := range want {
		sig, ok := got[m].(map[string]any)
		if !ok || len(sig) != 0 {
			t.Errorf("list: method %s: signature %v, want {}", m, got[m])
		}
	}
	if s := string(List()); !strings.HasPrefix(s, `{"status":{},"blocks":{}`) {
		t.Errorf("list is not in the documented order: %s", s)
	}
}

func TestCalls(t *testing.T) {
	sock := fakeDaemon(t, canned)
	st, status := run(t, sock, "{}", "call", "status")
	if status != 0 || st["node"] != "0123456789abcdef" || st["pool"] != "10.0.0.0/24" {
		t.Errorf("status: %v (%d)", st, status)
	}
	bl, _ := run(t, sock, "", "call", "blocks")
	rows, ok := bl["blocks"].([]any)
	if !ok || len(rows) != 1 || rows[0].(map[string]any)["first"] != "10.0.0.16" {
		t.Errorf("blocks: %v, want {\"blocks\": [one block]}", bl)
	}
	// rpcd passes the session id along with the arguments.
	le, _ := run(t, sock, `{"ubus_rpc_session":"00000000000000000000000000000000"}`, "call", "leases")
	rows, ok = le["leases"].([]any)
	if !ok || len(rows) != 1 || rows[0].(map[string]any)["hw"] != "02:00:00:00:00:01" {
		t.Errorf("leases: %v", le)
	}
	tr, _ := run(t, sock, "", "call", "tree")
	if tr["enabled"] != false {
		t.Errorf("tree: %v", tr)
	}
	sa, _ := run(t, sock, "", "call", "stats")
	if sa["dhcp.ack"] != float64(3) {
		t.Errorf("stats: %v", sa)
	}
}

func TestEmptyListIsArray(t *testing.T) {
	sock := fakeDaemon(t, map[string]any{"status": canned["status"], "leases": nil, "blocks": []control.Block{}})
	le, _ := run(t, sock, "", "call", "leases")
	if rows, ok := le["leases"].([]any); !ok || len(rows) != 0 {
		t.Errorf("leases: %v, want an empty array", le)
	}
	ov, _ := run(t, sock, "", "call", "overview")
	if rows, ok := ov["leases"].([]any); !ok || len(rows) != 0 {
		t.Errorf("overview leases: %v, want an empty array", ov["leases"])
	}
}

func TestOverview(t *testing.T) {
	sock := fakeDaemon(t, canned)
	ov, status := run(t, sock, "", "call", "overview")
	if status != 0 {
		t.Fatalf("overview: status %d: %v", status, ov)
	}
	if ov["status"].(map[string]any)["node"] != "0123456789abcdef" {
		t.Errorf("overview status: %v", ov["status"])
	}
	if b, ok := ov["blocks"].([]any); !ok || len(b) != 1 {
		t.Errorf("overview blocks: %v", ov["blocks"])
	}
	if l, ok := ov["leases"].([]any); !ok || len(l) != 1 {
		t.Errorf("overview leases: %v", ov["leases"])
	}
	if tr, ok := ov["tree"].(map[string]any); !ok || tr["enabled"] != false {
		t.Errorf("overview tree: %v", ov["tree"])
	}
	if _, ok := ov["errors"]; ok {
		t.Errorf("overview: errors %v", ov["errors"])
	}

	// An older daemon without "tree": the rest still comes.
	old := map[string]any{"status": canned["status"], "blocks": canned["blocks"], "leases": canned["leases"]}
	ov, status = run(t, fakeDaemon(t, old), "", "call", "overview")
	errs, _ := ov["errors"].(map[string]any)
	if status != 0 || ov["status"] == nil || ov["tree"] != nil || !strings.Contains(errs["tree"].(string), "unknown_command") {
		t.Errorf("overview without tree: %v (%d)", ov, status)
	}
}

func TestErrors(t *testing.T) {
	sock := fakeDaemon(t, map[string]any{
		"status":  canned["status"],
		"options": &control.Error{Code: control.CodeUnavailable, Message: "no DHCP service (-S)"},
	})
	cases := []struct {
		name   string
		socket string
		stdin  string
		args   []string
		code   string
		status int
		msg    string
	}{
		{"daemon down", filepath.Join(t.TempDir(), "none.sock"), "", []string{"call", "status"}, CodeUnreachable, 1, "connect to ddhcpd"},
		{"daemon down overview", filepath.Join(t.TempDir(), "none.sock"), "", []string{"call", "overview"}, CodeUnreachable, 1, "connect to ddhcpd"},
		{"daemon error", sock, "", []string{"call", "options"}, control.CodeUnavailable, 1, "no DHCP service"},
		{"unknown method", sock, "", []string{"call", "option_set"}, CodeUnknownMethod, 2, `unknown method "option_set"`},
		{"not an object", sock, "[1,2]", []string{"call", "status"}, CodeBadInput, 2, "JSON object"},
		{"not JSON", sock, "{", []string{"call", "status"}, CodeBadInput, 2, "JSON object"},
		{"no args", sock, "", nil, CodeUsage, 2, "usage"},
		{"call without method", sock, "", []string{"call"}, CodeUsage, 2, "usage"},
		{"other word", sock, "", []string{"status"}, CodeUsage, 2, "usage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, status := run(t, c.socket, c.stdin, c.args...)
			if status != c.status || got["code"] != c.code || !strings.Contains(got["error"].(string), c.msg) {
				t.Errorf("got %v (status %d), want code %s, status %d, error containing %q", got, status, c.code, c.status, c.msg)
			}
		})
	}
}

func TestSocketChoice(t *testing.T) {
	sock := fakeDaemon(t, canned)
	t.Setenv(EnvSocket, sock)
	// The environment wins over the path the binary passes.
	if st, status := run(t, "/nonexistent.sock", "", "call", "status"); status != 0 || st["node"] == nil {
		t.Errorf("with %s set: %v (%d)", EnvSocket, st, status)
	}
	t.Setenv(EnvSocket, "")
	got, _ := run(t, "", "", "call", "status")
	if msg, _ := got["error"].(string); !strings.Contains(msg, "/var/run/ddhcpd.sock") && got["node"] == nil {
		t.Errorf("default socket: %v, want an error naming /var/run/ddhcpd.sock", got)
	}
}

func TestTooMuchInput(t *testing.T) {
	big := `{"x":"` + strings.Repeat("a", maxInput) + `"}`
	got, status := run(t, "/nonexistent", big, "call", "status")
	if status != 2 || got["code"] != CodeBadInput {
		t.Errorf("got %v (%d)", got, status)
	}
}
