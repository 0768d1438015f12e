package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/config"
	"ddhcpd/src/control"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/node"
	"ddhcpd/src/overlay"
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

// basicOptions go out whenever configured, requested or not (as
// dhcp4.Server.addOptions sends them; 1 not in answers to INFORM).
var basicOptions = []uint8{1, 3, 6, 15, 28}

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
		return control.Reply{Result: d.blocks(now)}
	case "leases":
		return control.Reply{Result: d.leaseRows(now)}
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
	return control.Reply{Result: d.tree()}
}

// tree describes the overlay for "tree".
func (d *Daemon) tree() control.Tree {
	ov := d.node.Overlay()
	if ov == nil {
		return control.Tree{}
	}
	t := ov.Tree()
	st := &control.TreeState{
		Node: d.node.ID().String(), Valid: t.Valid, Epoch: t.Epoch, Depth: t.Depth, Size: t.Size,
		Walk: t.State.String(), Children: []control.TreeChild{}, Neighbours: []control.TreeNeighbour{},
	}
	peer := func(p overlay.Peer) control.TreePeer {
		tp := control.TreePeer{ID: p.ID.String()}
		if p.Addr.IsValid() {
			tp.Addr = p.Addr.String()
		}
		return tp
	}
	if t.Valid {
		st.Root = t.Root.String()
		if !t.Parent.ID.IsZero() {
			p := peer(t.Parent)
			st.Parent = &p
		}
	}
	for _, c := range t.Children {
		st.Children = append(st.Children, control.TreeChild{TreePeer: peer(c.Peer), Subtree: c.Subtree})
	}
	if t.State != overlay.Idle {
		st.WalkOrigin, st.WalkEpoch = t.WalkOrigin.String(), t.WalkEpoch
	}
	for _, nb := range t.Neighbours {
		n := control.TreeNeighbour{ID: nb.ID.String(), Symmetric: nb.Symmetric, Links: []string{}, Epoch: nb.Epoch}
		if !nb.Root.IsZero() {
			n.Root = nb.Root.String()
		}
		for _, l := range nb.Links {
			n.Links = append(n.Links, l.String())
		}
		st.Neighbours = append(st.Neighbours, n)
	}
	return control.Tree{Enabled: true, TreeState: st}
}

func (d *Daemon) blocks(now time.Duration) []control.Block {
	rows := []control.Block{}
	for _, b := range d.node.Engine().Blocks() {
		row := control.Block{
			Index:     b.Index,
			First:     d.pool.Addr(b.Index, 0).String(),
			State:     b.State.String(),
			StateNum:  int(b.State),
			Inquiries: b.Inquiries,
		}
		if b.State == claim.Ours || b.State == claim.Claimed {
			row.Owner = b.Owner.String()
		}
		if b.OwnerAddr.IsValid() && b.State == claim.Claimed {
			row.OwnerAddr = b.OwnerAddr.String()
		}
		if b.Timeout > 0 {
			row.Timeout = max(b.Timeout-now, 0).Seconds()
		}
		rows = append(rows, row)
	}
	return rows
}

func (d *Daemon) leaseRows(now time.Duration) []control.Lease {
	rows := []control.Lease{}
	for _, l := range d.node.Leases().Leases() {
		row := control.Lease{
			Addr:     l.Addr.String(),
			State:    l.State.String(),
			Client:   string(l.Client),
			Hostname: l.Hostname,
			Expires:  (l.Expires - now).Seconds(),
		}
		if len(l.HW) > 0 {
			row.HW = l.HW.String()
		}
		if idx, ok := d.pool.Block(l.Addr); ok {
			row.Block = idx
			row.Local = d.node.Leases().Serving(idx)
		}
		rows = append(rows, row)
	}
	return rows
}

// optionsInForce lists the configured options and those the server derives
// itself (mask and broadcast unless configured, lease time, server id).
// Always says whether an option goes out unrequested.
func (d *Daemon) optionsInForce() control.Options {
	srv := d.node.DHCP()
	if srv == nil {
		out := control.Options{LeaseTime: int64(d.cfg.LeaseTime / time.Second), Options: []control.OptionInfo{}}
		for _, o := range d.options() {
			out.Options = append(out.Options, describe(o))
		}
		slices.SortFunc(out.Options, func(a, b control.OptionInfo) int { return int(a.Code) - int(b.Code) })
		return out
	}
	cfg := srv.Config()
	out := control.Options{DHCP: true, LeaseTime: int64(cfg.LeaseTime / time.Second), Options: []control.OptionInfo{}}
	configured := map[uint8]bool{}
	for _, o := range cfg.Options {
		configured[o.Code] = true
		out.Options = append(out.Options, describe(o))
	}
	derived := func(code uint8, data []byte) {
		info := control.DescribeOption(code, data, true)
		info.Derived = true
		out.Options = append(out.Options, info)
	}
	if !configured[1] {
		derived(1, net.CIDRMask(cfg.Subnet.Bits(), 32))
	}
	if !configured[28] {
		derived(28, lastAddr(cfg.Subnet).AsSlice())
	}
	derived(51, binary.BigEndian.AppendUint32(nil, uint32(cfg.LeaseTime/time.Second)))
	derived(54, cfg.ServerID.AsSlice())
	slices.SortFunc(out.Options, func(a, b control.OptionInfo) int { return int(a.Code) - int(b.Code) })
	return out
}

// describe decodes a configured option; Always says whether it goes out
// unrequested.
func describe(o dhcp4.Option) control.OptionInfo {
	return control.DescribeOption(o.Code, o.Data, o.Always || slices.Contains(basicOptions, o.Code))
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
}

// optionArg builds the option "option_set" describes.
func optionArg(a control.OptionSetArgs) (config.Option, error) {
	forms := 0
	for _, given := range []bool{a.Hex != "", a.Type != "" || a.Value != "", a.C != ""} {
		if given {
			forms++
		}
	}
	if forms != 1 {
		return config.Option{}, fmt.Errorf(`give the value in one form: "hex", "type" and "value", or "c" (CODE:LEN:B1.B2...)`)
	}
	if a.C != "" {
		o, err := config.ParseOption(a.C)
		if err != nil {
			return config.Option{}, fmt.Errorf("c %q: %w", a.C, err)
		}
		if a.Code != 0 && a.Code != int(o.Code) {
			return config.Option{}, fmt.Errorf("code %d but c %q", a.Code, a.C)
		}
		return o, nil
	}
	if a.Code < 1 || a.Code > 254 {
		return config.Option{}, fmt.Errorf("code %d: want 1..254", a.Code)
	}
	typ, value := a.Type, a.Value
	if a.Hex != "" {
		typ, value = "hex", a.Hex
	}
	if typ == "" {
		return config.Option{}, fmt.Errorf("value %q without a type", value)
	}
	data, err := config.EncodeOptionValue(typ, value)
	if err != nil {
		return config.Option{}, fmt.Errorf("option %d: %w", a.Code, err)
	}
	return config.Option{Code: uint8(a.Code), Data: data}, nil
}

// optionSet replaces or adds an option at once; code 51 sets the lease
// time, as the C ddhcpctl -l does.
func (d *Daemon) optionSet(a control.OptionSetArgs) control.Reply {
	o, err := optionArg(a)
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
	info := describe(opt)
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
	removed := describe(opts[i])
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
