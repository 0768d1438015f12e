// Package daemon is ddhcpd's event loop. One goroutine owns all protocol
// state: socket readers and the control server hand it work over channels,
// and it drives the claim engine, the lease table and the DHCP decisions with
// the monotonic clock.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/config"
	"ddhcpd/src/control"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/hook"
	"ddhcpd/src/lease"
	"ddhcpd/src/netio"
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

// reclaimBatch bounds lease reclamation per loop pass (Kea 39).
const reclaimBatch = 100

// Daemon is a running ddhcpd.
type Daemon struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	clock   clock
	node    wire.NodeID
	pool    *pool.Pool
	eng     *claim.Engine
	mesh    *netio.Mesh
	ctl     chan ctlCall
	stats   map[string]uint64

	// DHCP side; nil with -S.
	clients  *netio.Clients
	leases   *lease.Table
	dhcp     *dhcp4.Server
	serverID netip.Addr
	parked   parkedDiscovers
	demand   bool // a client got nothing: claim at once
	roam     roaming
	syncs    int           // SYNCs sent while learning
	nextSync time.Duration // when to send the next one

	// The spanning-tree overlay; nil without -overlay.
	ov    *overlay.Node
	flood *overlay.Flooder

	// hook runs the -H command for events; nil without -H (a nil Runner
	// does nothing).
	hook *hook.Runner

	state stateWriter
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
		stats:   make(map[string]uint64),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var err error
	d.node, err = statedir.NodeID(cfg.StateDir, entropy{}, func(err error) {
		log.Warn("node id damaged", "err", err)
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
	// Crypto-seeded picking, so nodes started together pick different
	// blocks (C bug 2 seeded rand() with the second of the start).
	var seed [32]byte
	if _, err := (entropy{}).Read(seed[:]); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	d.eng, err = claim.New(claim.Config{
		Node: d.node,
		Swarm: wire.Swarm{
			Prefix:    cfg.Pool.Addr(),
			PrefixLen: uint8(cfg.Pool.Bits()),
			BlockSize: uint8(d.pool.BlockSize()),
		},
		SpareLeases:      cfg.SpareLeases,
		BlockTimeout:     cfg.BlockTimeout,
		TentativeTimeout: cfg.TentativeTimeout,
		InquireInterval:  cfg.InquireInterval,
		NeedlessTimeout:  cfg.NeedlessTimeout,
		LearningTime:     cfg.LearningTime,
		SyncQuiet:        cfg.SyncQuiet,
		MaxBlocks:        cfg.MaxBlocks,
	}, d.pool, mrand.New(mrand.NewChaCha8(seed)), d.clock.now())
	if err != nil {
		return fmt.Errorf("claim engine: %w", err)
	}
	if d.ov, err = d.newOverlay(); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	d.flood = overlay.NewFlooder(dedupWindow(cfg.InquireInterval))
	d.leases = lease.NewTable(d.pool)
	for _, h := range cfg.Hosts {
		d.leases.Reserve(lease.KeyOf(h.ClientID, h.MAC), h.Addr)
	}
	if !cfg.NoDHCP {
		d.dhcp, err = dhcp4.New(dhcp4.Config{
			ServerID:  d.serverID,
			Subnet:    d.subnet(),
			LeaseTime: cfg.LeaseTime,
			Probation: cfg.Probation,
			Options:   d.options(),
			Reserve:   max(2, cfg.SpareLeases/4),
			AdmitRate: cfg.AdmitRate,
		}, d.leases, blockView{d})
		if err != nil {
			return err
		}
	}
	if cfg.Hook != "" {
		if d.hook, err = hook.New(hook.Config{Path: cfg.Hook, Logger: log.With("part", "hook")}); err != nil {
			return err
		}
		defer d.hook.Close()
	}
	d.state = newStateWriter(cfg)
	d.restore()
	d.state.start(d.stateReport)

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

	log.Info("ddhcpd started", "version", version, "node", d.node, "pool", d.pool.Prefix(),
		"block_size", d.pool.BlockSize(), "blocks", d.pool.NumBlocks(), "mesh", cfg.MeshInterfaces,
		"clients", cfg.ClientInterfaces, "server_id", d.serverID, "learning", cfg.LearningTime)
	if cfg.LearningTime == 0 {
		d.eng.EndLearning(d.clock.now())
	}
	err = d.loop(ctx)
	d.saveState(true)
	d.state.stop() // a snapshot still being written is finished before we exit
	return err
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
			d.handleMesh(p)
		case ev := <-d.mesh.Events():
			if ev.Open {
				d.log.Info("mesh interface ready", "iface", ev.Iface, "addr", ev.LinkLocal)
				d.nextSync = d.clock.now() // a late interface: ask again
			} else {
				d.log.Warn("mesh interface lost", "iface", ev.Iface, "reason", ev.Reason)
			}
		case p, ok := <-clientPackets:
			if !ok {
				return errors.New("client sockets closed")
			}
			d.handleClient(p)
		case c := <-d.ctl:
			c.reply <- d.answer(c.req)
		case <-hup:
			d.reload()
		case <-timer.C:
		}
		d.housekeeping()
		timer.Reset(max(d.next()-d.clock.now(), time.Millisecond))
	}
}

// reload re-reads the UCI file on SIGHUP and applies the options, lease
// time and log level without dropping any state; other changes are logged
// as needing a restart. A broken file keeps the configuration in force.
func (d *Daemon) reload() {
	d.count("reload")
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
		d.count("reload.failed")
		return
	}
	for _, w := range nc.Warnings {
		d.log.Warn("configuration", "warning", w)
	}
	d.cfg = nc
	if d.dhcp != nil {
		d.dhcp.SetOptions(d.options())
		d.dhcp.SetLeaseTime(nc.LeaseTime)
	}
	if lv := d.logLevel(); lv != nil {
		lv.Set(nc.LogLevel)
	}
	d.log.Info("configuration reloaded", "file", d.cfg.UCIFile, "lease_time", nc.LeaseTime, "log_level", nc.LogLevel)
}

// housekeeping runs whatever is due: the claim engine when it asks (or at
// once when a client got nothing), lease reclamation, and state saving.
func (d *Daemon) housekeeping() {
	now := d.clock.now()
	if d.demand {
		d.demand = false
		// As many addresses as clients are waiting, so a burst of new
		// clients claims enough blocks in one round.
		d.eng.Demand(now, max(1, len(d.parked.byClient)))
		d.eng.Tick(now, d.leases)
	} else if now >= d.eng.Next() {
		d.eng.Tick(now, d.leases)
	}
	d.flush()
	if at, ok := d.leases.NextExpiry(); ok && at <= now {
		for _, l := range d.leases.Reclaim(now, reclaimBatch) {
			d.count("lease.reclaimed")
			d.log.Debug("lease expired", "addr", l.Addr, "hw", l.HW.String())
			d.state.dirty = true
		}
	}
	d.parked.expire(now)
	d.roamTimers(now)
	d.overlayTick(now)
	d.sync(now)
	d.saveState(false)
}

// next is when housekeeping must run again.
func (d *Daemon) next() time.Duration {
	t := d.eng.Next()
	if at, ok := d.leases.NextExpiry(); ok {
		t = min(t, at)
	}
	if d.state.dirty {
		t = min(t, d.state.due())
	}
	if at, ok := d.nextRoamTimer(); ok {
		t = min(t, at)
	}
	if d.wantSync() {
		t = min(t, d.nextSync)
	}
	if d.ov != nil {
		t = min(t, d.ov.Next())
	}
	return t
}

func (d *Daemon) count(name string) { d.stats[name]++ }

// runHook runs the -H command with args, without waiting for it.
func (d *Daemon) runHook(args ...string) { d.hook.Run(args...) }

// hookMAC prints a MAC for the hook as the C ddhcpd does: upper case.
func hookMAC(hw net.HardwareAddr) string { return strings.ToUpper(hw.String()) }

// flush sends what the engine produced and applies its events.
func (d *Daemon) flush() {
	for _, m := range d.eng.Outbox() {
		b, err := m.Encode()
		if err != nil {
			d.log.Error("encode", "err", err)
			continue
		}
		name := "tx.inquire"
		if m.Command == wire.CmdUpdateClaim {
			name = "tx.updateclaim"
		}
		if err := d.mesh.Multicast(netio.McastPort, b); err != nil {
			d.count("tx.error")
			d.log.Debug("multicast", "err", err)
			continue
		}
		d.count(name)
	}
	for _, ev := range d.eng.Events() {
		switch ev.Kind {
		case claim.EventOwned:
			d.leases.AddBlock(ev.Block)
			d.state.dirty = true
			d.log.Info("block owned", "block", ev.Block, "first", d.pool.Addr(ev.Block, 0))
			d.runHook("blockowned", fmt.Sprint(ev.Block), d.pool.Addr(ev.Block, 0).String())
			d.replayParked()
		case claim.EventLost:
			d.leases.LoseBlock(ev.Block)
			d.state.dirty = true
			d.log.Warn("block lost to a higher node id", "block", ev.Block, "winner", ev.Peer, "from", ev.PeerAddr)
			d.runHook("blocklost", fmt.Sprint(ev.Block), ev.Peer.String())
			d.handOver(d.clock.now(), ev.Block, ev.Peer, ev.PeerAddr)
		case claim.EventDefended:
			d.log.Info("block defended against a lower node id", "block", ev.Block, "peer", ev.Peer, "from", ev.PeerAddr)
		case claim.EventReleased:
			d.leases.DropBlock(ev.Block)
			d.state.dirty = true
			d.log.Info("needless block released", "block", ev.Block)
		case claim.EventLearningEnded:
			d.log.Info("learning phase ended", "tracked", d.eng.Tracked())
			d.runHook("endlearning")
		}
	}
}

// blockView lets dhcp4 see block ownership through the claim engine.
type blockView struct{ d *Daemon }

func (v blockView) Locate(idx uint32) dhcp4.Location {
	bi := v.d.eng.Block(idx)
	switch bi.State {
	case claim.Ours:
		return dhcp4.Location{Kind: dhcp4.Ours}
	case claim.Claimed:
		return dhcp4.Location{Kind: dhcp4.Peer, Node: bi.Owner, NodeAddr: bi.OwnerAddr}
	}
	return dhcp4.Location{Kind: dhcp4.Unowned}
}

func (v blockView) Demand() { v.d.demand = true }

func (v blockView) Want(idx uint32) { v.d.eng.Want(v.d.clock.now(), idx) }
