package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/config"
	"ddhcpd/src/control"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/netio"
	"ddhcpd/src/node"
	"ddhcpd/src/nolog"
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// varHandler is a logger whose level a control command can change, as the
// one main.go builds.
type varHandler struct {
	slog.Handler
	level *slog.LevelVar
}

func (h varHandler) LevelVar() *slog.LevelVar { return h.level }

// optionDaemon is a daemon with just what the option commands touch.
func optionDaemon(t *testing.T) (*Daemon, *slog.LevelVar) {
	t.Helper()
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	cfg := config.Default()
	cfg.Pool = netip.MustParsePrefix("10.0.0.0/24")
	cfg.Options = []config.Option{{Code: 3, Data: []byte{10, 0, 0, 254}}}
	cfg.Always = []uint8{3}
	d := &Daemon{
		cfg:      cfg,
		log:      slog.New(varHandler{nolog.Handler, lv}),
		clock:    newClock(),
		serverID: netip.MustParseAddr("10.0.0.1"),
	}
	var err error
	if d.pool, err = pool.New(cfg.Pool, cfg.SizeExp, nil); err != nil {
		t.Fatal(err)
	}
	d.mesh = &netio.Mesh{} // not open: no interfaces, zero counters
	d.node, err = node.New(node.Config{
		Node: wire.NodeID{1, 2, 3, 4, 5, 6, 7, 8},
		Pool: d.pool,
		DHCP: &dhcp4.Config{
			ServerID:  d.serverID,
			Subnet:    d.subnet(),
			LeaseTime: cfg.LeaseTime,
			Options:   d.options(),
		},
	}, rand.New(rand.NewPCG(1, 2)), d.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	return d, lv
}

func configured(d *Daemon, code uint8) (dhcp4.Option, bool) {
	opts := d.node.DHCP().Config().Options
	i := slices.IndexFunc(opts, func(o dhcp4.Option) bool { return o.Code == code })
	if i < 0 {
		return dhcp4.Option{}, false
	}
	return opts[i], true
}

func TestAnswerOptions(t *testing.T) {
	d, lv := optionDaemon(t)
	tests := []struct {
		name, cmd, args string
		code            string // error code; "" for success
		check           func(t *testing.T, result json.RawMessage)
	}{
		{name: "list", cmd: "options", check: func(t *testing.T, r json.RawMessage) {
			var o control.Options
			json.Unmarshal(r, &o)
			var got []string
			for _, i := range o.Options {
				got = append(got, i.Name+"="+i.Type+":"+i.Value)
			}
			want := []string{
				"subnet_mask=ips:255.255.255.0", "router=ips:10.0.0.254", "broadcast=ips:10.0.0.255",
				"lease_time=u32:300", "server_id=ips:10.0.0.1",
			}
			if !o.DHCP || o.LeaseTime != 300 || !slices.Equal(got, want) {
				t.Errorf("options %s", r)
			}
			if !o.Options[1].Always || o.Options[1].Derived || !o.Options[0].Derived {
				t.Errorf("flags %s", r)
			}
		}},
		{name: "list takes no args", cmd: "options", args: `{"x":1}`, code: control.CodeBadArgs},
		{name: "set typed", cmd: "option_set", args: `{"code":6,"type":"ips","value":"10.0.0.2,10.0.0.3"}`, check: func(t *testing.T, r json.RawMessage) {
			o, ok := configured(d, 6)
			if !ok || string(o.Data) != "\x0a\x00\x00\x02\x0a\x00\x00\x03" || o.Always {
				t.Errorf("option 6 %v %v", o, ok)
			}
		}},
		{name: "set hex always", cmd: "option_set", args: `{"code":15,"hex":"6d657368","always":true}`, check: func(t *testing.T, r json.RawMessage) {
			var i control.OptionInfo
			json.Unmarshal(r, &i)
			if o, ok := configured(d, 15); !ok || string(o.Data) != "mesh" || !o.Always || i.Value != "mesh" || i.Type != "string" {
				t.Errorf("option 15 %v %v, reply %s", o, ok, r)
			}
		}},
		{name: "C form keeps always", cmd: "option_set", args: `{"c":"3:4:10.0.0.9"}`, check: func(t *testing.T, r json.RawMessage) {
			if o, ok := configured(d, 3); !ok || string(o.Data) != "\x0a\x00\x00\x09" || !o.Always {
				t.Errorf("option 3 %v %v", o, ok)
			}
		}},
		{name: "always off", cmd: "option_set", args: `{"c":"3:4:10.0.0.9","always":false}`, check: func(t *testing.T, r json.RawMessage) {
			if o, _ := configured(d, 3); o.Always {
				t.Errorf("option 3 still always-sent")
			}
		}},
		{name: "lease time", cmd: "option_set", args: `{"code":51,"type":"u32","value":"600"}`, check: func(t *testing.T, r json.RawMessage) {
			if lt := d.node.DHCP().Config().LeaseTime; lt != 600*time.Second {
				t.Errorf("lease time %v", lt)
			}
			if _, ok := configured(d, 51); ok {
				t.Error("51 became a configured option")
			}
		}},
		{name: "lease time C form", cmd: "option_set", args: `{"c":"51:4:0.0.1.44"}`, check: func(t *testing.T, r json.RawMessage) {
			if lt := d.node.DHCP().Config().LeaseTime; lt != 300*time.Second {
				t.Errorf("lease time %v", lt)
			}
		}},
		{name: "lease time too short", cmd: "option_set", args: `{"code":51,"type":"u32","value":"5"}`, code: control.CodeBadArgs},
		{name: "lease time wrong size", cmd: "option_set", args: `{"code":51,"type":"u16","value":"600"}`, code: control.CodeBadArgs},
		{name: "server id refused", cmd: "option_set", args: `{"code":54,"type":"ip","value":"10.0.0.2"}`, code: control.CodeBadArgs},
		{name: "message type refused", cmd: "option_set", args: `{"c":"53:1:2"}`, code: control.CodeBadArgs},
		{name: "client id refused", cmd: "option_set", args: `{"code":61,"hex":"01"}`, code: control.CodeBadArgs},
		{name: "two forms", cmd: "option_set", args: `{"code":6,"hex":"0a000001","c":"6:4:10.0.0.1"}`, code: control.CodeBadArgs},
		{name: "no value", cmd: "option_set", args: `{"code":6}`, code: control.CodeBadArgs},
		{name: "no args", cmd: "option_set", code: control.CodeBadArgs},
		{name: "value without type", cmd: "option_set", args: `{"code":6,"value":"10.0.0.1"}`, code: control.CodeBadArgs},
		{name: "bad type", cmd: "option_set", args: `{"code":6,"type":"float","value":"1"}`, code: control.CodeBadArgs},
		{name: "bad address", cmd: "option_set", args: `{"code":6,"type":"ips","value":"10.0.0.300"}`, code: control.CodeBadArgs},
		{name: "bad hex", cmd: "option_set", args: `{"code":6,"hex":"xyz"}`, code: control.CodeBadArgs},
		{name: "code out of range", cmd: "option_set", args: `{"code":255,"hex":"00"}`, code: control.CodeBadArgs},
		{name: "code mismatch", cmd: "option_set", args: `{"code":6,"c":"3:4:10.0.0.1"}`, code: control.CodeBadArgs},
		{name: "bad C form", cmd: "option_set", args: `{"c":"3:4:10.0.0"}`, code: control.CodeBadArgs},
		{name: "code as string", cmd: "option_set", args: `{"code":"6","hex":"00"}`, code: control.CodeBadArgs},
		{name: "unknown field", cmd: "option_set", args: `{"code":6,"hex":"00","colour":1}`, code: control.CodeBadArgs},
		{name: "args not an object", cmd: "option_set", args: `[6]`, code: control.CodeBadArgs},
		{name: "set requested only", cmd: "option_set", args: `{"code":42,"type":"ips","value":"10.0.0.4"}`, check: func(t *testing.T, r json.RawMessage) {
			var i control.OptionInfo
			json.Unmarshal(r, &i)
			if i.Always || i.Name != "ntp_server" {
				t.Errorf("reply %s", r)
			}
		}},
		{name: "remove", cmd: "option_remove", args: `{"code":6}`, check: func(t *testing.T, r json.RawMessage) {
			if _, ok := configured(d, 6); ok {
				t.Error("option 6 still configured")
			}
		}},
		{name: "remove again", cmd: "option_remove", args: `{"code":6}`, code: control.CodeNotFound},
		{name: "remove lease time", cmd: "option_remove", args: `{"code":51}`, code: control.CodeBadArgs},
		{name: "remove server id", cmd: "option_remove", args: `{"code":54}`, code: control.CodeBadArgs},
		{name: "remove without code", cmd: "option_remove", args: `{}`, code: control.CodeBadArgs},
		{name: "list after changes", cmd: "options", check: func(t *testing.T, r json.RawMessage) {
			var o control.Options
			json.Unmarshal(r, &o)
			var codes, always []uint8
			for _, i := range o.Options {
				codes = append(codes, i.Code)
				if i.Always {
					always = append(always, i.Code)
				}
			}
			if !slices.Equal(codes, []uint8{1, 3, 15, 28, 42, 51, 54}) {
				t.Errorf("codes %v", codes)
			}
			// Basic options go out unrequested whatever their flag.
			if !slices.Equal(always, []uint8{1, 3, 15, 28, 51, 54}) {
				t.Errorf("always sent %v", always)
			}
		}},
		{name: "level", cmd: "loglevel", check: func(t *testing.T, r json.RawMessage) {
			if string(r) != `{"level":"warn","c_level":2}` {
				t.Errorf("level %s", r)
			}
		}},
		{name: "level by name", cmd: "loglevel", args: `{"level":"debug"}`, check: func(t *testing.T, r json.RawMessage) {
			if lv.Level() != slog.LevelDebug {
				t.Errorf("level %v, reply %s", lv.Level(), r)
			}
		}},
		{name: "level by C number", cmd: "loglevel", args: `{"level":3}`, check: func(t *testing.T, r json.RawMessage) {
			if lv.Level() != slog.LevelInfo {
				t.Errorf("level %v", lv.Level())
			}
		}},
		{name: "level fatal", cmd: "loglevel", args: `{"level":0}`, check: func(t *testing.T, r json.RawMessage) {
			if lv.Level() != slog.LevelError || string(r) != `{"level":"error","c_level":1}` {
				t.Errorf("level %v, reply %s", lv.Level(), r)
			}
		}},
		{name: "level unknown", cmd: "loglevel", args: `{"level":"loud"}`, code: control.CodeBadArgs},
		{name: "level out of range", cmd: "loglevel", args: `{"level":7}`, code: control.CodeBadArgs},
		{name: "tree", cmd: "tree", check: func(t *testing.T, r json.RawMessage) {
			if string(r) != `{"enabled":false}` {
				t.Errorf("tree %s", r)
			}
		}},
		{name: "unknown command", cmd: "frobnicate", code: control.CodeUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := d.answer(control.Request{Cmd: tt.cmd, Args: json.RawMessage(tt.args)})
			b, err := json.Marshal(reply.Result)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.code == "" && reply.Error != nil:
				t.Fatalf("error %v", reply.Error)
			case tt.code != "" && (reply.Error == nil || reply.Error.Code != tt.code):
				t.Fatalf("want %s, got %v %s", tt.code, reply.Error, b)
			}
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

func TestAnswerUnknownListsCommands(t *testing.T) {
	d, _ := optionDaemon(t)
	r := d.answer(control.Request{Cmd: "nope"})
	for _, c := range commands {
		if r.Error == nil || !strings.Contains(r.Error.Message, c) {
			t.Errorf("%v does not name %s", r.Error, c)
		}
	}
}

func TestStatsReset(t *testing.T) {
	d, _ := optionDaemon(t)
	d.node.Step(0, node.ClientPacket{Iface: "c0", Payload: []byte("not DHCP")})
	d.node.Step(0, node.ClientPacket{Iface: "c0", Payload: []byte("not DHCP")})
	d.stats.reload++
	r := d.answer(control.Request{Cmd: "stats_reset"})
	before, ok := r.Result.(control.Stats)
	if !ok || before["dhcp.drop.malformed"] != 2 || before["reload"] != 1 {
		t.Fatalf("stats_reset %+v", r)
	}
	after, _ := d.answer(control.Request{Cmd: "stats"}).Result.(control.Stats)
	if n := after["dhcp.drop.malformed"] + after["reload"]; n != 0 {
		t.Errorf("after reset: %v", after)
	}
	if _, ok := after["claim.owned"]; !ok {
		t.Errorf("stats lack the engine's counters: %v", after)
	}
}

// The commands that existed before still answer, and refuse arguments.
func TestAnswerReadCommands(t *testing.T) {
	d, _ := optionDaemon(t)
	for _, cmd := range []string{"status", "blocks", "leases", "stats"} {
		if r := d.answer(control.Request{Cmd: cmd}); r.Error != nil {
			t.Errorf("%s: %v", cmd, r.Error)
		}
		r := d.answer(control.Request{Cmd: cmd, Args: json.RawMessage(`{"verbose":true}`)})
		if r.Error == nil || r.Error.Code != control.CodeBadArgs {
			t.Errorf("%s with args: %+v", cmd, r)
		}
	}
}

func TestFixedLogLevel(t *testing.T) {
	d, _ := optionDaemon(t)
	d.log = slog.New(nolog.Handler)
	if r := d.answer(control.Request{Cmd: "loglevel"}); r.Error == nil || r.Error.Code != control.CodeUnavailable {
		t.Errorf("reply %+v", r)
	}
}

func TestNoDHCPOptions(t *testing.T) {
	d, _ := optionDaemon(t)
	var err error
	if d.node, err = node.New(node.Config{Node: d.node.ID(), Pool: d.pool}, rand.New(rand.NewPCG(1, 2)), 0); err != nil {
		t.Fatal(err)
	}
	r := d.answer(control.Request{Cmd: "options"})
	o, ok := r.Result.(control.Options)
	if !ok || o.DHCP || len(o.Options) != 1 || o.Options[0].Code != 3 || !o.Options[0].Always {
		t.Errorf("options %+v", r)
	}
	r = d.answer(control.Request{Cmd: "option_set", Args: json.RawMessage(`{"c":"6:4:10.0.0.1"}`)})
	if r.Error == nil || r.Error.Code != control.CodeUnavailable {
		t.Errorf("set without DHCP: %+v", r)
	}
}

// The handler round trip through the loop channel.
func TestHandleControlStopping(t *testing.T) {
	d, _ := optionDaemon(t)
	d.ctl = make(chan ctlCall)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := d.handleControl(ctx, control.Request{Cmd: "tree"}); r.Error == nil || r.Error.Code != control.CodeInternal {
		t.Errorf("reply %+v", r)
	}
}

// A bug behind a command answers "internal" and leaves the loop running.
func TestAnswerRecovers(t *testing.T) {
	d, _ := optionDaemon(t)
	d.node = nil
	if r := d.answer(control.Request{Cmd: "blocks"}); r.Error == nil || r.Error.Code != control.CodeInternal {
		t.Errorf("reply %+v", r)
	}
}
