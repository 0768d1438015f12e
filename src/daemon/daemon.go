// Package daemon is ddhcpd's event loop. One goroutine owns all protocol
// state: socket readers and the control server hand it work over channels,
// and it drives the claim engine with the monotonic clock.
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sort"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/config"
	"ddhcpd/src/control"
	"ddhcpd/src/netio"
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
	pool    *pool.Pool
	eng     *claim.Engine
	mesh    *netio.Mesh
	ctl     chan ctlCall
	stats   map[string]uint64
	node    wire.NodeID
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
	var err error
	if d.pool, err = cfg.NewPool(); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	d.node, err = statedir.NodeID(cfg.StateDir, rand.Reader, func(err error) {
		log.Warn("node id damaged", "err", err)
	})
	if err != nil {
		return err
	}
	// Crypto-seeded picking, so nodes started together pick different
	// blocks (C bug 2 seeded rand() with the second of the start).
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	eng, err := claim.New(claim.Config{
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
		MaxBlocks:        cfg.MaxBlocks,
	}, d.pool, mrand.New(mrand.NewChaCha8(seed)), d.clock.now())
	if err != nil {
		return fmt.Errorf("claim engine: %w", err)
	}
	d.eng = eng

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
		"learning", cfg.LearningTime)
	if cfg.LearningTime == 0 {
		d.eng.EndLearning(d.clock.now())
	}
	return d.loop(ctx)
}

func (d *Daemon) loop(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			d.log.Info("ddhcpd stopping")
			return nil
		case p := <-d.mesh.Packets():
			d.handleMesh(p)
		case ev := <-d.mesh.Events():
			if ev.Open {
				d.log.Info("mesh interface ready", "iface", ev.Iface, "addr", ev.LinkLocal)
			} else {
				d.log.Warn("mesh interface lost", "iface", ev.Iface, "reason", ev.Reason)
			}
		case c := <-d.ctl:
			c.reply <- d.answer(c.req)
		case <-timer.C:
		}
		now := d.clock.now()
		if now >= d.eng.Next() {
			d.eng.Tick(now, nil)
		}
		d.flush()
		timer.Reset(max(d.eng.Next()-d.clock.now(), time.Millisecond))
	}
}

func (d *Daemon) count(name string) { d.stats[name]++ }

// handleMesh decodes and dispatches one datagram from the mesh.
func (d *Daemon) handleMesh(p netio.Packet) {
	d.count("mesh.rx")
	if !p.Src.Addr().IsLinkLocalUnicast() {
		d.count("drop.not_link_local")
		return
	}
	m, err := wire.Decode(p.Data)
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrShort):
			d.count("drop.short")
		case errors.Is(err, wire.ErrCommand):
			d.count("drop.unknown_command")
		default:
			d.count("drop.bad_length")
		}
		d.log.Debug("mesh packet dropped", "from", p.Src, "err", err)
		return
	}
	switch {
	case p.Port == netio.McastPort && (m.Command == wire.CmdUpdateClaim || m.Command == wire.CmdInquire):
		switch err := d.eng.Step(d.clock.now(), p.Src.Addr(), &m); {
		case errors.Is(err, claim.ErrForeignSwarm):
			d.count("drop.foreign_swarm")
		case errors.Is(err, claim.ErrOwnID):
			d.count("drop.own_id")
			d.log.Warn("packet with our own node id from another address; is the state directory copied between routers?", "from", p.Src)
		case err == nil:
			if m.Command == wire.CmdUpdateClaim {
				d.count("rx.updateclaim")
			} else {
				d.count("rx.inquire")
			}
		}
	case p.Port == netio.UnicastPort && m.Command >= wire.CmdRenewLease:
		// Roamed clients are forwarded here once the DHCP side serves them.
		d.count("drop.renew_unhandled")
	default:
		d.count("drop.wrong_port")
	}
}

// flush sends what the engine produced and reports its events.
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
			d.log.Info("block owned", "block", ev.Block, "first", d.pool.Addr(ev.Block, 0))
		case claim.EventLost:
			d.log.Warn("block lost to a higher node id", "block", ev.Block, "winner", ev.Peer, "from", ev.PeerAddr)
		case claim.EventDefended:
			d.log.Info("block defended against a lower node id", "block", ev.Block, "peer", ev.Peer, "from", ev.PeerAddr)
		case claim.EventReleased:
			d.log.Info("needless block released", "block", ev.Block)
		case claim.EventLearningEnded:
			d.log.Info("learning phase ended", "tracked", d.eng.Tracked())
		}
	}
}

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

// Commands the control socket answers.
var commands = []string{"status", "blocks", "stats"}

func (d *Daemon) answer(req control.Request) control.Reply {
	now := d.clock.now()
	switch req.Cmd {
	case "status":
		st := control.Status{
			Node:          d.node.String(),
			Pool:          d.pool.Prefix().String(),
			BlockSize:     d.pool.BlockSize(),
			Blocks:        d.pool.NumBlocks(),
			Learning:      d.eng.Learning(),
			Owned:         len(d.eng.Owned()),
			Tracked:       d.eng.Tracked(),
			SpareLeases:   d.cfg.SpareLeases,
			BlockTimeout:  int(d.cfg.BlockTimeout / time.Second),
			UptimeSeconds: now.Seconds(),
			Version:       d.version,
			Interfaces:    d.cfg.ClientInterfaces,
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
		return control.Reply{Result: st}
	case "blocks":
		rows := []control.Block{}
		for _, b := range d.eng.Blocks() {
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
		return control.Reply{Result: rows}
	case "stats":
		out := control.Stats{}
		for k, v := range d.stats {
			out[k] = v
		}
		es := d.eng.Stats()
		out["claim.bad_index"] = es.BadIndex
		out["claim.owned"] = es.Owned
		out["claim.lost"] = es.Lost
		out["claim.released"] = es.Released
		out["claim.defended"] = es.Defended
		out["claim.backed_off"] = es.BackedOff
		ms := d.mesh.Stats()
		out["mesh.queue_dropped"] = ms.Dropped
		out["mesh.own"] = ms.Own
		out["mesh.read_errors"] = ms.ReadErrors
		return control.Reply{Result: out}
	}
	known := append([]string(nil), commands...)
	sort.Strings(known)
	return control.Fail(control.CodeUnknownCommand, "unknown command %q; known: %v", req.Cmd, known)
}
