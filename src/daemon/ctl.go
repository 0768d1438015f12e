package daemon

import (
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/node"
)

// handleControl runs on a control connection's goroutine and waits for the
// loop to answer.
func (d *Daemon) handleControl(ctx context.Context, req control.Request) control.Reply {
	c := ctlCall{req: req, reply: make(chan control.Reply, 1)}
	select {
	case d.ctl <- c:
	case <-ctx.Done():
		return control.Fail(control.CodeInternal, "daemon stopping")
	}
	select {
	case r := <-c.reply:
		return r
	case <-ctx.Done():
		return control.Fail(control.CodeInternal, "daemon stopping")
	}
}

// commands the control socket answers, sorted.
var commands = []string{
	"blocks", "leases", "loglevel", "option_remove", "option_set", "options",
	"stats", "stats_reset", "status", "tree",
}

// ownOptions are set by the DHCP server itself and never from
// configuration; 51, the lease time, is set through "option_set" too.
var ownOptions = []uint8{50, 53, 54, 58, 59, 61, 82}

// answer runs on the loop. A bug in it answers "internal" rather than
// ending the daemon.
func (d *Daemon) answer(req control.Request) (reply control.Reply) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("control command failed", "cmd", req.Cmd, "panic", p)
			reply = control.Fail(control.CodeInternal, "%s failed: %v", req.Cmd, p)
		}
	}()
	now := d.clock.now()
	switch req.Cmd {
	case "option_set":
		var a control.OptionSetArgs
		if err := req.DecodeArgs(&a); err != nil {
			return control.Fail(control.CodeBadArgs, "%v", err)
		}
		return d.optionSet(a)
	case "option_remove":
		a := control.OptionRemoveArgs{Code: -1}
		if err := req.DecodeArgs(&a); err != nil {
			return control.Fail(control.CodeBadArgs, "%v", err)
		}
		return d.optionRemove(a.Code)
	case "loglevel":
		var a control.LogLevelArgs
		if err := req.DecodeArgs(&a); err != nil {
			return control.Fail(control.CodeBadArgs, "%v", err)
		}
		return d.setLogLevel(a)
	case "status", "blocks", "leases", "options", "stats", "stats_reset", "tree":
		if err := req.DecodeArgs(&struct{}{}); err != nil {
			return control.Fail(control.CodeBadArgs, "%s takes no arguments: %v", req.Cmd, err)
		}
	default:
		return control.Fail(control.CodeUnknownCommand, "unknown command %q; known: %v", req.Cmd, commands)
	}
	switch req.Cmd {
	case "status":
		return control.Reply{Result: d.status(now)}
	case "blocks":
		return control.Reply{Result: control.BlockRows(d.pool, d.node.Engine().Blocks(), now)}
	case "leases":
		return control.Reply{Result: control.LeaseRows(d.node.Leases(), now)}
	case "options":
		return control.Reply{Result: d.optionsInForce()}
	case "stats":
		return control.Reply{Result: d.counters()}
	case "stats_reset":
		st := d.counters()
		d.stats = driverStats{}
		d.node.ResetCounters()
		return control.Reply{Result: st}
	}
	if ov := d.node.Overlay(); ov != nil {
		return control.Reply{Result: control.TreeView(d.node.ID(), ov.Tree())}
	}
	return control.Reply{Result: control.Tree{}}
}

// optionsInForce lists the options of the DHCP server, or the configured
// ones without DHCP (-S).
func (d *Daemon) optionsInForce() control.Options {
	if srv := d.node.DHCP(); srv != nil {
		return control.OptionsView(srv.Config(), true)
	}
	return control.OptionsView(dhcp4.Config{LeaseTime: d.cfg.LeaseTime, Options: d.options()}, false)
}

// optionSet replaces or adds an option at once; code 51 sets the lease
// time, as the C ddhcpctl -l does.
func (d *Daemon) optionSet(a control.OptionSetArgs) control.Reply {
	o, err := control.OptionOf(a)
	if err != nil {
		return control.Fail(control.CodeBadArgs, "%v", err)
	}
	if slices.Contains(ownOptions, o.Code) {
		return control.Fail(control.CodeBadArgs, "option %d is set by the server itself", o.Code)
	}
	srv := d.node.DHCP()
	if srv == nil {
		return control.Fail(control.CodeUnavailable, "no DHCP service (-S)")
	}
	if o.Code == 51 {
		if len(o.Data) != 4 {
			return control.Fail(control.CodeBadArgs, "lease time (option 51) takes 4 bytes, not %d", len(o.Data))
		}
		lt := time.Duration(binary.BigEndian.Uint32(o.Data)) * time.Second
		if lt < 10*time.Second {
			return control.Fail(control.CodeBadArgs, "lease time %v: want at least 10s", lt)
		}
		d.node.Step(d.clock.now(), node.SetLeaseTime{LeaseTime: lt})
		d.log.Info("lease time set by control", "lease_time", lt)
		info := control.DescribeOption(51, o.Data, true)
		info.Derived = true
		return control.Reply{Result: info}
	}
	opts := srv.Config().Options
	opt := dhcp4.Option{Code: o.Code, Data: o.Data}
	if i := slices.IndexFunc(opts, func(x dhcp4.Option) bool { return x.Code == o.Code }); i >= 0 {
		opt.Always = opts[i].Always
		opts = slices.Delete(slices.Clone(opts), i, i+1)
	}
	if a.Always != nil {
		opt.Always = *a.Always
	}
	d.node.Step(d.clock.now(), node.SetOptions{Options: append(opts, opt)})
	info := control.DescribeConfigured(opt)
	d.log.Info("option set by control", "code", info.Code, "type", info.Type, "value", info.Value, "always", info.Always)
	return control.Reply{Result: info}
}

// optionRemove removes a configured option.
func (d *Daemon) optionRemove(code int) control.Reply {
	switch {
	case code == -1:
		return control.Fail(control.CodeBadArgs, `option_remove wants {"code": 1..254}`)
	case code < 1 || code > 254:
		return control.Fail(control.CodeBadArgs, "code %d: want 1..254", code)
	case code == 51:
		return control.Fail(control.CodeBadArgs, "the lease time (option 51) cannot be removed, only set")
	case slices.Contains(ownOptions, uint8(code)):
		return control.Fail(control.CodeBadArgs, "option %d is set by the server itself", code)
	case d.node.DHCP() == nil:
		return control.Fail(control.CodeUnavailable, "no DHCP service (-S)")
	}
	opts := d.node.DHCP().Config().Options
	i := slices.IndexFunc(opts, func(x dhcp4.Option) bool { return int(x.Code) == code })
	if i < 0 {
		return control.Fail(control.CodeNotFound, "option %d is not configured", code)
	}
	removed := control.DescribeConfigured(opts[i])
	d.node.Step(d.clock.now(), node.SetOptions{Options: slices.Delete(slices.Clone(opts), i, i+1)})
	d.log.Info("option removed by control", "code", code)
	return control.Reply{Result: removed}
}

// setLogLevel reports the log level and changes it when asked.
func (d *Daemon) setLogLevel(a control.LogLevelArgs) control.Reply {
	lv := d.logLevel()
	if lv == nil {
		return control.Fail(control.CodeUnavailable, "the log level is fixed in this daemon")
	}
	if len(a.Level) > 0 {
		l, err := control.ParseLevel(a.Level)
		if err != nil {
			return control.Fail(control.CodeBadArgs, "%v", err)
		}
		if old := lv.Level(); old != l {
			lv.Set(l)
			d.log.Info("log level set by control", "from", old, "to", l)
		}
	}
	return control.Reply{Result: control.DescribeLevel(lv.Level())}
}

func (d *Daemon) status(now time.Duration) control.Status {
	eng := d.node.Engine()
	st := control.Status{
		Node:          d.node.ID().String(),
		Pool:          d.pool.Prefix().String(),
		BlockSize:     d.pool.BlockSize(),
		Blocks:        d.pool.NumBlocks(),
		Learning:      eng.Learning(),
		Owned:         len(eng.Owned()),
		Tracked:       eng.Tracked(),
		SpareLeases:   d.cfg.SpareLeases,
		BlockTimeout:  int(d.cfg.BlockTimeout / time.Second),
		UptimeSeconds: now.Seconds(),
		Version:       d.version,
		Interfaces:    d.cfg.ClientInterfaces,
		Leases:        d.node.Leases().Len(),
		DHCP:          d.node.DHCP() != nil,
	}
	if d.serverID.IsValid() {
		st.ServerID = d.serverID.String()
	}
	for _, i := range d.mesh.Interfaces() {
		row := control.Iface{Name: i.Name, Up: i.Up, Open: i.Open}
		if i.LinkLocal.IsValid() {
			row.LinkLocal = i.LinkLocal.String()
		}
		if i.Err != nil {
			row.Error = i.Err.Error()
		}
		st.Mesh = append(st.Mesh, row)
	}
	return st
}

// counters are the daemon's own counters (reset by "stats_reset") and the
// cumulative ones of the claim engine and the sockets.
func (d *Daemon) counters() control.Stats {
	nc := d.node.Counters()
	out := control.Stats(nc.Map())
	for k, v := range map[string]uint64{
		"reload": d.stats.reload, "reload.failed": d.stats.reloadFailed,
		"state.handed_to_writer": d.stats.stateHanded, "state.damaged": d.stats.stateDamaged,
	} {
		if v != 0 {
			out[k] = v
		}
	}
	es := d.node.Engine().Stats()
	out["claim.bad_index"] = es.BadIndex
	out["claim.owned"] = es.Owned
	out["claim.lost"] = es.Lost
	out["claim.released"] = es.Released
	out["claim.defended"] = es.Defended
	out["claim.backed_off"] = es.BackedOff
	out["claim.stale_after_release"] = es.StaleAfterRelease
	ms := d.mesh.Stats()
	out["mesh.queue_dropped"] = ms.Dropped
	out["mesh.own"] = ms.Own
	out["mesh.read_errors"] = ms.ReadErrors
	if d.clients != nil {
		cs := d.clients.Stats()
		out["clients.received"] = cs.Received
		out["clients.queue_dropped"] = cs.Dropped
		out["clients.malformed_frames"] = cs.Malformed
		out["clients.send_errors"] = cs.SendErrors
	}
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	out["go.goroutines"] = uint64(runtime.NumGoroutine())
	out["go.heap_alloc_bytes"] = mem.HeapAlloc
	out["go.sys_bytes"] = mem.Sys
	hs := d.hook.Stats()
	out["hook.started"] = hs.Started
	out["hook.failed"] = hs.Failed
	out["hook.timed_out"] = hs.TimedOut
	out["hook.dropped"] = hs.Dropped
	if p50, p99, n := d.node.RoamRTT(); n > 0 {
		out["roam.rtt_p50_us"] = uint64(p50.Microseconds())
		out["roam.rtt_p99_us"] = uint64(p99.Microseconds())
	}
	return out
}
