package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"ddhcpd/src/control"
	"ddhcpd/src/nolog"
)

// fakeDaemon records the requests it gets and answers from canned results.
type fakeDaemon struct {
	path string
	mu   sync.Mutex
	got  []string // "cmd args"
}

var canned = map[string]any{
	"status": control.Status{Node: "0102030405060708", Pool: "10.0.0.0/24", BlockSize: 32, Blocks: 8,
		Owned: 1, Tracked: 2, DHCP: true, ServerID: "10.0.0.1", Interfaces: []string{"br-client"}, Leases: 3,
		Mesh: []control.Iface{{Name: "bat0", Up: true, Open: true, LinkLocal: "fe80::1"}}, Version: "v1"},
	"blocks": []control.Block{{Index: 2, First: "10.0.0.64", State: "ours", Owner: "0102030405060708", Timeout: 42}},
	"leases": []control.Lease{{Addr: "10.0.0.70", State: "assigned", HW: "02:00:00:00:00:01", Hostname: "laptop", Expires: 299, Block: 2, Local: true}},
	"options": control.Options{DHCP: true, LeaseTime: 300, Options: []control.OptionInfo{
		control.DescribeOption(3, []byte{10, 0, 0, 254}, true),
		control.DescribeOption(42, []byte{10, 0, 0, 4, 10, 0, 0, 5}, false),
	}},
	"option_set":    control.DescribeOption(6, []byte{10, 0, 0, 1}, true),
	"option_remove": control.DescribeOption(6, []byte{10, 0, 0, 1}, true),
	"loglevel":      control.LogLevel{Level: "info", CLevel: 3},
	"stats":         control.Stats{"rx.dhcp": 5, "claim.owned": 1},
	"stats_reset":   control.Stats{"rx.dhcp": 5},
	"tree":          control.Tree{},
}

func startFake(t *testing.T) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{path: filepath.Join(t.TempDir(), "ctl.sock")}
	h := func(_ context.Context, req control.Request) control.Reply {
		f.mu.Lock()
		f.got = append(f.got, strings.TrimSpace(req.Cmd+" "+string(req.Args)))
		f.mu.Unlock()
		if args := string(req.Args); strings.Contains(args, `"code":54`) || strings.Contains(args, `"c":"54:`) {
			return control.Fail(control.CodeBadArgs, "option 54 is set by the server itself")
		}
		if r, ok := canned[req.Cmd]; ok {
			return control.Reply{Result: r}
		}
		return control.Fail(control.CodeUnknownCommand, "unknown command %q", req.Cmd)
	}
	s, err := control.Listen(f.path, h, slog.New(nolog.Handler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func (f *fakeDaemon) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

func TestRequests(t *testing.T) {
	f := startFake(t)
	tests := []struct {
		args []string
		want []string // requests sent
		code int      // exit status
	}{
		{nil, []string{"status"}, 0},
		{[]string{"status"}, []string{"status"}, 0},
		{[]string{"blocks"}, []string{"blocks"}, 0},
		{[]string{"leases", "-json"}, []string{"leases"}, 0},
		{[]string{"options"}, []string{"options"}, 0},
		{[]string{"set", "6", "ips", "10.0.0.1,10.0.0.2"}, []string{`option_set {"code":6,"type":"ips","value":"10.0.0.1,10.0.0.2"}`}, 0},
		{[]string{"set", "3:4:10.0.0.1"}, []string{`option_set {"c":"3:4:10.0.0.1"}`}, 0},
		{[]string{"set", "-always", "15", "string", "mesh lan; $(x)"}, []string{`option_set {"code":15,"type":"string","value":"mesh lan; $(x)","always":true}`}, 0},
		{[]string{"set", "-always=false", "3:4:10.0.0.1"}, []string{`option_set {"c":"3:4:10.0.0.1","always":false}`}, 0},
		{[]string{"set", "--", "15", "string", "-dash"}, []string{`option_set {"code":15,"type":"string","value":"-dash"}`}, 0},
		{[]string{"remove", "6"}, []string{`option_remove {"code":6}`}, 0},
		{[]string{"loglevel"}, []string{"loglevel"}, 0},
		{[]string{"loglevel", "debug"}, []string{`loglevel {"level":"debug"}`}, 0},
		{[]string{"loglevel", "4"}, []string{`loglevel {"level":4}`}, 0},
		{[]string{"stats"}, []string{"stats"}, 0},
		{[]string{"stats-reset"}, []string{"stats_reset"}, 0},
		{[]string{"tree"}, []string{"tree"}, 0},
		{[]string{"-C", f.path, "tree"}, []string{"tree"}, 0},
		// The C ddhcpctl's flags.
		{[]string{"-b"}, []string{"blocks"}, 0},
		{[]string{"-d"}, []string{"options"}, 0},
		{[]string{"-s"}, []string{"stats"}, 0},
		{[]string{"-S"}, []string{"stats_reset"}, 0},
		{[]string{"-r", "6"}, []string{`option_remove {"code":6}`}, 0},
		{[]string{"-l", "600"}, []string{`option_set {"code":51,"type":"u32","value":"600"}`}, 0},
		{[]string{"-v", "3"}, []string{`loglevel {"level":3}`}, 0},
		{[]string{"-v", "0"}, []string{`loglevel {"level":0}`}, 0},
		{[]string{"-o", "3:4:10.116.254.254"}, []string{`option_set {"c":"3:4:10.116.254.254"}`}, 0},
		// C number forms (strtoul with base 0): hex, octal.
		{[]string{"-l", "0x258"}, []string{`option_set {"code":51,"type":"u32","value":"600"}`}, 0},
		{[]string{"-l", "01130"}, []string{`option_set {"code":51,"type":"u32","value":"600"}`}, 0},
		{[]string{"-o", "3:4:0x0a.0164.0xFE.254"}, []string{`option_set {"c":"3:4:0x0a.0164.0xFE.254"}`}, 0},
		{[]string{"-b", "-s"}, []string{"stats"}, 0},                                           // the last wins
		{[]string{"-o", "6:4:10.0.0.1", "-b"}, []string{`option_set {"c":"6:4:10.0.0.1"}`}, 0}, // -o wins
		{[]string{"-o", "6:4:10.0.0.1", "-o", "3:4:10.0.0.2"}, []string{`option_set {"c":"6:4:10.0.0.1"}`, `option_set {"c":"3:4:10.0.0.2"}`}, 0},
		{[]string{"-always", "-o", "6:4:10.0.0.1"}, []string{`option_set {"c":"6:4:10.0.0.1","always":true}`}, 0},
		// Refused by the daemon: exit 2.
		{[]string{"set", "54", "ip", "10.0.0.1"}, []string{`option_set {"code":54,"type":"ip","value":"10.0.0.1"}`}, 2},
		{[]string{"-o", "54:4:10.0.0.1", "-o", "3:4:10.0.0.2"}, []string{`option_set {"c":"54:4:10.0.0.1"}`}, 2},
		// Usage errors: exit 2, nothing sent.
		{[]string{"frob"}, nil, 2},
		{[]string{"status", "extra"}, nil, 2},
		{[]string{"-b", "leases"}, nil, 2},
		{[]string{"-x"}, nil, 2},
		{[]string{"set", "6", "ips"}, nil, 2},
		{[]string{"set", "6", "ips", "10.0.0.300"}, nil, 2},
		{[]string{"set", "6", "float", "1"}, nil, 2},
		{[]string{"set", "3:4:10.0.0"}, nil, 2},
		{[]string{"set", "0", "hex", "00"}, nil, 2},
		{[]string{"remove"}, nil, 2},
		{[]string{"remove", "x"}, nil, 2},
		{[]string{"loglevel", "loud"}, nil, 2},
		{[]string{"-v", "5"}, nil, 2},
		{[]string{"-l", "-1"}, nil, 2},
		{[]string{"-l", "5m"}, nil, 2},
		{[]string{"-r", "255"}, nil, 2},
		{[]string{"-o", "3:4:1.2.3"}, nil, 2},
		{[]string{"-o", "3:1:0x100"}, nil, 2},
		{[]string{"-o", "3:1:08"}, nil, 2},
		{[]string{"-l", "0x"}, nil, 2},
		{[]string{"-always", "status"}, nil, 2},
		{[]string{"-always", "-l", "600"}, nil, 2},
		{[]string{"-h"}, nil, 0},
		{[]string{"-V"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-C", f.path}, tt.args...)
			code := Main(args, &stdout, &stderr)
			got := f.requests()
			if code != tt.code || !slices.Equal(got, tt.want) {
				t.Errorf("exit %d, sent %q; want %d, %q\nstdout: %s\nstderr: %s", code, got, tt.code, tt.want, stdout.String(), stderr.String())
			}
			if code != 0 && stderr.Len() == 0 {
				t.Error("failed without a message")
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-C", filepath.Join(t.TempDir(), "none"), "-b"}, &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "ddhcpctl: -b: connect to ddhcpd at ") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestRefusedMessage(t *testing.T) {
	f := startFake(t)
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-C", f.path, "set", "54", "ip", "10.0.0.1"}, &stdout, &stderr)
	want := "ddhcpctl: set: option 54 is set by the server itself (bad_args)\n"
	if code != 2 || stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("exit %d, stderr %q, stdout %q", code, stderr.String(), stdout.String())
	}
}

func TestOutput(t *testing.T) {
	f := startFake(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status"}, `node       0102030405060708
pool       10.0.0.0/24, 8 blocks of 32
learning   false
blocks     1 owned, 2 tracked
dhcp       10.0.0.1 on br-client, 3 leases
uptime     0s
mesh bat0  up fe80::1
version    v1
`},
		{[]string{"-b"}, `INDEX  FIRST      STATE  OWNER             TIMEOUT
2      10.0.0.64  ours   0102030405060708  42s
`},
		{[]string{"leases"}, `ADDRESS    STATE     MAC                HOSTNAME  EXPIRES  BLOCK
10.0.0.70  assigned  02:00:00:00:00:01  laptop    299s     2 local
`},
		{[]string{"-d"}, `lease time 300s
CODE  NAME        LEN  TYPE  VALUE              SENT       FROM
3     router      4    ips   10.0.0.254         always     config
42    ntp_server  8    ips   10.0.0.4,10.0.0.5  requested  config
`},
		{[]string{"set", "6:4:10.0.0.1"}, "set  option 6 dns_server: ips 10.0.0.1 (always)\n"},
		{[]string{"-r", "6"}, "removed  option 6 dns_server: ips 10.0.0.1 (always)\n"},
		{[]string{"-v", "3"}, "log level  info (3)\n"},
		{[]string{"-s"}, "claim.owned  1\nrx.dhcp      5\n"},
		{[]string{"tree"}, "overlay  disabled\n"},
		{[]string{"-json", "tree"}, `{"enabled":false}` + "\n"},
		{[]string{"-json", "-s"}, `{"claim.owned":1,"rx.dhcp":5}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"-C", f.path}, tt.args...), &stdout, &stderr)
			if code != 0 || stdout.String() != tt.want {
				t.Errorf("exit %d, stderr %q, got\n%s\nwant\n%s", code, stderr.String(), stdout.String(), tt.want)
			}
		})
	}
}

// TestPrintTree prints an overlay that is on.
func TestPrintTree(t *testing.T) {
	raw := json.RawMessage(`{"enabled":true,"node":"0000000000000005","valid":true,"root":"0000000000000001",
		"epoch":7,"depth":2,"size":5,"parent":{"id":"0000000000000004","addr":"fe80::4%m4"},
		"children":[{"id":"0000000000000006","addr":"fe80::6%m5","subtree":1}],"walk":"idle",
		"neighbours":[{"id":"0000000000000004","links":["fe80::4%m4"],"symmetric":true,"root":"0000000000000001","epoch":7}]}`)
	var buf bytes.Buffer
	if err := printResult(&buf, "tree", raw); err != nil {
		t.Fatal(err)
	}
	want := `overlay    enabled
node       0000000000000005
tree       root 0000000000000001, epoch 7, 5 nodes, depth 2
parent     0000000000000004 at fe80::4%m4
child      0000000000000006 at fe80::6%m5, subtree of 1
walk       idle
neighbour  0000000000000004  fe80::4%m4  both ways  tree of 0000000000000001
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// A result of the wrong shape is reported, not printed as garbage.
func TestBadResult(t *testing.T) {
	var buf bytes.Buffer
	if err := printResult(&buf, "blocks", json.RawMessage(`{"x":1}`)); err == nil {
		t.Errorf("printed %q", buf.String())
	}
}
