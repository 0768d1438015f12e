// Package daemon drives one node.Node with real sockets: it reads mesh and
// client datagrams, interface changes, control commands and signals on one
// goroutine, steps the node with the monotonic clock, and carries out what
// the node decided (datagrams, DHCP replies, hook runs, state file writes).
// Every protocol decision is the node's.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/config"
	"ddhcpd/src/control"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/hook"
	"ddhcpd/src/lease"
	"ddhcpd/src/netio"
	"ddhcpd/src/node"
	"ddhcpd/src/overlay"
	"ddhcpd/src/pool"
	"ddhcpd/src/statedir"
	"ddhcpd/src/wire"
)

// clock reads monotonic time since the daemon started. time.Since uses the
// monotonic reading of start, so a wall-clock step (NTP on a router without
// RTC jumping years ahead) moves no timer (C bug 16).
type clock struct{ start time.Time }

func newClock() clock { return clock{start: time.Now()} }

func (c clock) now() time.Duration { return time.Since(c.start) }

// Daemon is a running ddhcpd.
type Daemon struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	clock   clock
	node    *node.Node
	pool    *pool.Pool
	mesh    *netio.Mesh
	clients *netio.Clients // nil with -S
	ctl     chan ctlCall
	stats   driverStats

	serverID netip.Addr
	// hook runs the -H command for events; nil without -H (a nil Runner
	// does nothing).
	hook      *hook.Runner
	state     stateWriter
	leaseFile *leaseFile // nil without -leasefile
}

// driverStats are the daemon's own counters, beside the node's.
type driverStats struct {
	reload, reloadFailed, stateHanded, stateDamaged uint64
}

type ctlCall struct {
	req   control.Request
	reply chan control.Reply
}

// Run starts the daemon and serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, version string) error {
	d := &Daemon{
		cfg:     cfg,
		log:     log,
		version: version,
		clock:   newClock(),
		ctl:     make(chan ctlCall),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	id, err := statedir.NodeID(statedir.IDFiles{Dir: cfg.StateDir, Flash: cfg.NodeIDFile, Persist: cfg.Persist}, entropy{}, func(err error) {
		log.Warn("node id", "err", err)
	})
	if err != nil {
		return err
	}
	if !cfg.NoDHCP {
		d.clients, err = netio.OpenClients(ctx, netio.ClientConfig{
			Interfaces: cfg.ClientInterfaces,
			Logger:     log.With("part", "clients"),
		})
		if err != nil {
			return err
		}
		defer d.clients.Close()
		if d.serverID, err = d.findServerID(ctx); err != nil {
			return err
		}
	}
	if d.pool, err = pool.New(cfg.Pool, cfg.SizeExp, d.reserved()); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	if cfg.Hook != "" {
		if d.hook, err = hook.New(hook.Config{Path: cfg.Hook, Logger: log.With("part", "hook")}); err != nil {
			return err
		}
		defer d.hook.Close()
	}
	d.state = newStateWriter(cfg)
	if d.node, err = d.newNode(id); err != nil {
		return err
	}
	d.state.start(d.stateReport)
	d.startLeaseFile()
	defer d.stopLeaseFile()

	d.mesh, err = netio.OpenMesh(ctx, netio.MeshConfig{
		Interfaces: cfg.MeshInterfaces,
		Logger:     log.With("part", "mesh"),
	})
	if err != nil {
		return err
	}
	defer d.mesh.Close()

	srv, err := control.Listen(cfg.ControlSocket, d.handleControl, log.With("part", "control"))
	if err != nil {
		return err
	}
	ctlDone := make(chan struct{})
	go func() { srv.Serve(ctx); close(ctlDone) }()
	defer func() { cancel(); <-ctlDone }()

	log.Info("ddhcpd started", "version", version, "node", id, "pool", d.pool.Prefix(),
		"block_size", d.pool.BlockSize(), "blocks", d.pool.NumBlocks(), "mesh", cfg.MeshInterfaces,
		"clients", cfg.ClientInterfaces, "server_id", d.serverID, "learning", cfg.LearningTime)
	d.carryOut() // what the node decided at its start
	err = d.loop(ctx)
	d.saveState(true)
	d.state.stop() // a snapshot still being written is finished before we exit
	d.saveLeaseFile(true)
	return err
}

// newNode makes the protocol node of the configuration, with what the state
// file kept.
func (d *Daemon) newNode(id wire.NodeID) (*node.Node, error) {
	cfg := d.cfg
	// Crypto-seeded, so nodes started together pick different blocks
	// (C bug 2 seeded rand() with the second of the start).
	var seed [32]byte
	if _, err := (entropy{}).Read(seed[:]); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	nc := node.Config{
		Node: id,
		Pool: d.pool,
		Claim: claim.Config{
			SpareLeases:      cfg.SpareLeases,
			BlockTimeout:     cfg.BlockTimeout,
			TentativeTimeout: cfg.TentativeTimeout,
			InquireInterval:  cfg.InquireInterval,
			NeedlessTimeout:  cfg.NeedlessTimeout,
			LearningTime:     cfg.LearningTime,
			SyncQuiet:        cfg.SyncQuiet,
			MaxBlocks:        cfg.MaxBlocks,
		},
		Hooks:  cfg.Hook != "",
		Logger: d.log,
		Saved:  d.restore(),
	}
	for _, h := range cfg.Hosts {
		nc.Hosts = append(nc.Hosts, node.Host{Client: lease.KeyOf(h.ClientID, h.MAC), Addr: h.Addr})
	}
	if !cfg.NoDHCP {
		nc.DHCP = &dhcp4.Config{
			ServerID:  d.serverID,
			Subnet:    d.subnet(),
			LeaseTime: cfg.LeaseTime,
			Probation: cfg.Probation,
			Options:   d.options(),
			Reserve:   max(2, cfg.SpareLeases/4),
			AdmitRate: cfg.AdmitRate,
		}
	}
	if cfg.Overlay {
		nc.Overlay = &overlay.Config{
			Interfaces: cfg.MeshInterfaces,
			// Walks of one origin are ordered by epoch, which must grow
			// across restarts: the wall clock's seconds do on routers
			// that have one, and a node without one learns its last
			// epoch from its neighbours.
			Epoch: uint32(time.Now().Unix()),
		}
	}
	n, err := node.New(nc, mrand.New(mrand.NewChaCha8(seed)), d.clock.now())
	if err != nil {
		return nil, err
	}
	return n, nil
}

// findServerID returns the configured server identifier, or the first
// client interface's address, waiting a little for it at boot.
func (d *Daemon) findServerID(ctx context.Context) (netip.Addr, error) {
	if d.cfg.ServerID.IsValid() {
		return d.cfg.ServerID, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ifname := range d.cfg.ClientInterfaces {
			if a, ok := d.clients.IfaceAddr(ifname); ok {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("no DHCP server identifier: give -server-id, or an IPv4 address to %v", d.cfg.ClientInterfaces)
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// reserved lists the addresses never leased: the configured ones, the server
// identifier and the addresses of configured options (routers, DNS, ...)
// that fall inside the pool (SPEC §1).
func (d *Daemon) reserved() []pool.Range {
	rs := append([]pool.Range(nil), d.cfg.Reserved...)
	add := func(a netip.Addr) {
		if a.IsValid() && d.cfg.Pool.Contains(a) {
			rs = append(rs, pool.Range{First: a, Last: a})
		}
	}
	add(d.serverID)
	for _, o := range d.cfg.Options {
		switch o.Code {
		case 3, 4, 5, 6, 7, 9, 41, 42, 44, 45, 48, 49, 69, 70, 71, 72, 73, 74, 75, 76:
			for i := 0; i+4 <= len(o.Data); i += 4 {
				add(netip.AddrFrom4([4]byte(o.Data[i : i+4])))
			}
		}
	}
	return rs
}

// subnet is the clients' subnet: from a configured mask (option 1) around
// the server identifier, else the pool.
func (d *Daemon) subnet() netip.Prefix {
	for _, o := range d.cfg.Options {
		if o.Code == 1 && len(o.Data) == 4 {
			bits := 0
			for _, b := range o.Data {
				for ; b&0x80 != 0; b <<= 1 {
					bits++
				}
			}
			if p, err := d.serverID.Prefix(bits); err == nil {
				return p
			}
		}
	}
	return d.pool.Prefix()
}

// options converts the configured options for dhcp4. Option 51 is the lease
// time, handled by dhcp4 itself.
func (d *Daemon) options() []dhcp4.Option {
	var out []dhcp4.Option
	always := map[uint8]bool{}
	for _, c := range d.cfg.Always {
		always[c] = true
	}
	for _, o := range d.cfg.Options {
		if o.Code == 51 {
			continue
		}
		out = append(out, dhcp4.Option{Code: o.Code, Data: o.Data, Always: always[o.Code]})
	}
	return out
}

func (d *Daemon) loop(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	// SIGHUP reloads what can change at run time (main ignores it before
	// the daemon runs, so an early one does not kill us).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var clientPackets <-chan netio.ClientPacket
	if d.clients != nil {
		clientPackets = d.clients.Packets()
	}
	for {
		select {
		case <-ctx.Done():
			d.log.Info("ddhcpd stopping")
			return nil
		case p, ok := <-d.mesh.Packets():
			if !ok {
				return errors.New("mesh sockets closed")
			}
			d.node.Step(d.clock.now(), node.MeshDatagram{
				Src: p.Src, Iface: p.Iface, Port: p.Port, Data: p.Data, Truncated: p.Truncated,
				Relayed: p.Dst.IsValid() && p.Dst != netio.Group,
			})
		case ev := <-d.mesh.Events():
			if ev.Open {
				d.log.Info("mesh interface ready", "iface", ev.Iface, "addr", ev.LinkLocal)
			} else {
				d.log.Warn("mesh interface lost", "iface", ev.Iface, "reason", ev.Reason)
			}
			d.node.Step(d.clock.now(), node.LinkChange{Iface: ev.Iface, Up: ev.Open})
		case p, ok := <-clientPackets:
			if !ok {
				return errors.New("client sockets closed")
			}
			d.node.Step(d.clock.now(), node.ClientPacket{
				Iface: p.Iface, SrcIP: p.SrcIP, SrcMAC: p.SrcMAC, Broadcast: p.Broadcast, Payload: p.Payload,
			})
		case c := <-d.ctl:
			c.reply <- d.answer(c.req)
		case <-hup:
			d.reload()
		case <-timer.C:
			d.node.Tick(d.clock.now())
		}
		d.carryOut()
		d.saveState(false)
		d.saveLeaseFile(false)
		next := d.node.Next()
		if d.state.dirty {
			next = min(next, d.state.due())
		}
		if due, ok := d.leaseFileDue(); ok {
			next = min(next, due)
		}
		timer.Reset(max(next-d.clock.now(), time.Millisecond))
	}
}

// carryOut does what the node decided: datagrams to the mesh, replies to
// clients, hook runs, and a state file that is out of date.
func (d *Daemon) carryOut() {
	if !d.node.HasReady() {
		return
	}
	rd := d.node.Ready()
	for _, m := range rd.Mesh {
		var err error
		switch {
		case m.To.IsValid():
			err = d.mesh.Unicast(m.Port, m.To, m.Data)
		case m.Iface != "":
			err = d.mesh.MulticastOn(m.Iface, m.Port, m.Data)
		default:
			err = d.mesh.Multicast(m.Port, m.Data)
		}
		if err != nil {
			d.node.SendFailed(m)
			d.log.Debug("mesh send", "to", m.To, "port", m.Port, "err", err)
		}
	}
	for _, r := range rd.Replies {
		dst := netio.Dest{Iface: r.Iface, IP: r.Dest.IP, Port: r.Dest.Port, MAC: r.Dest.MAC, Routed: r.Dest.Routed}
		if err := d.clients.Send(dst, r.ServerID, r.Data); err != nil {
			d.node.ReplyFailed()
			d.log.Warn("send DHCP reply", "to", r.Dest.IP, "iface", r.Iface, "err", err)
		}
	}
	for _, args := range rd.Hooks {
		d.hook.Run(args...)
	}
	if rd.StateChanged {
		d.state.dirty = true
		d.leaseFileChanged()
	}
}

// reload re-reads the UCI file on SIGHUP and applies the options, lease
// time and log level without dropping any state; other changes are logged
// as needing a restart. A broken file keeps the configuration in force.
func (d *Daemon) reload() {
	d.stats.reload++
	if d.cfg.UCIFile == "" {
		d.log.Info("SIGHUP without -uci: nothing to reload")
		return
	}
	nc, err := config.Reload(d.cfg.UCIFile, d.cfg)
	var restart *config.RestartError
	switch {
	case errors.As(err, &restart):
		d.log.Warn("reload: these changes need a restart", "settings", restart.Settings)
	case err != nil:
		for _, e := range config.Errors(err) {
			d.log.Error("reload failed, configuration kept", "err", e)
		}
		d.stats.reloadFailed++
		return
	}
	for _, w := range nc.Warnings {
		d.log.Warn("configuration", "warning", w)
	}
	d.cfg = nc
	now := d.clock.now()
	d.node.Step(now, node.SetOptions{Options: d.options()})
	d.node.Step(now, node.SetLeaseTime{LeaseTime: nc.LeaseTime})
	if lv := d.logLevel(); lv != nil {
		lv.Set(nc.LogLevel)
	}
	d.log.Info("configuration reloaded", "file", d.cfg.UCIFile, "lease_time", nc.LeaseTime, "log_level", nc.LogLevel)
}
