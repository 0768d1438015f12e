package daemon

import (
	"context"
	"sort"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/control"
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

// commands the control socket answers.
var commands = []string{"status", "blocks", "leases", "stats"}

func (d *Daemon) answer(req control.Request) control.Reply {
	now := d.clock.now()
	switch req.Cmd {
	case "status":
		return control.Reply{Result: d.status(now)}
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
	case "leases":
		rows := []control.Lease{}
		for _, l := range d.leases.Leases() {
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
				row.Local = d.leases.Serving(idx)
			}
			rows = append(rows, row)
		}
		return control.Reply{Result: rows}
	case "stats":
		return control.Reply{Result: d.counters()}
	}
	known := append([]string(nil), commands...)
	sort.Strings(known)
	return control.Fail(control.CodeUnknownCommand, "unknown command %q; known: %v", req.Cmd, known)
}

func (d *Daemon) status(now time.Duration) control.Status {
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
		Leases:        d.leases.Len(),
		DHCP:          d.dhcp != nil,
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

func (d *Daemon) counters() control.Stats {
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
	if d.clients != nil {
		cs := d.clients.Stats()
		out["clients.received"] = cs.Received
		out["clients.queue_dropped"] = cs.Dropped
		out["clients.malformed_frames"] = cs.Malformed
		out["clients.send_errors"] = cs.SendErrors
	}
	return out
}
