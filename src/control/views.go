package control

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/config"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/lease"
	"ddhcpd/src/overlay"
	"ddhcpd/src/pool"
	"ddhcpd/src/wire"
)

// The views below turn the node's state into the replies of the read
// commands; they read, and change nothing.

// basicOptions go out whenever configured, requested or not (as
// dhcp4.Server.addOptions sends them; 1 not in answers to INFORM).
var basicOptions = []uint8{1, 3, 6, 15, 28}

// TreeView describes the overlay of node id for "tree".
func TreeView(id wire.NodeID, t overlay.TreeInfo) Tree {
	st := &TreeState{
		Node: id.String(), Valid: t.Valid, Epoch: t.Epoch, Depth: t.Depth, Size: t.Size,
		Walk: t.State.String(), Children: []TreeChild{}, Neighbours: []TreeNeighbour{},
	}
	peer := func(p overlay.Peer) TreePeer {
		tp := TreePeer{ID: p.ID.String()}
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
		st.Children = append(st.Children, TreeChild{TreePeer: peer(c.Peer), Subtree: c.Subtree})
	}
	if t.State != overlay.Idle {
		st.WalkOrigin, st.WalkEpoch = t.WalkOrigin.String(), t.WalkEpoch
	}
	for _, nb := range t.Neighbours {
		n := TreeNeighbour{ID: nb.ID.String(), Symmetric: nb.Symmetric, Links: []string{}, Epoch: nb.Epoch}
		if !nb.Root.IsZero() {
			n.Root = nb.Root.String()
		}
		for _, l := range nb.Links {
			n.Links = append(n.Links, l.String())
		}
		st.Neighbours = append(st.Neighbours, n)
	}
	return Tree{Enabled: true, TreeState: st}
}

// BlockRows lists the claim engine's blocks for "blocks".
func BlockRows(p *pool.Pool, bs []claim.BlockInfo, now time.Duration) []Block {
	rows := []Block{}
	for _, b := range bs {
		row := Block{
			Index:     b.Index,
			First:     p.Addr(b.Index, 0).String(),
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

// LeaseRows lists the lease table for "leases".
func LeaseRows(t *lease.Table, now time.Duration) []Lease {
	rows := []Lease{}
	for _, l := range t.Leases() {
		row := Lease{
			Addr:     l.Addr.String(),
			State:    l.State.String(),
			Client:   string(l.Client),
			Hostname: l.Hostname,
			Expires:  (l.Expires - now).Seconds(),
		}
		if len(l.HW) > 0 {
			row.HW = l.HW.String()
		}
		if k, ok := t.ReservedFor(l.Addr); ok && l.Client != "" &&
			(k == l.Client || len(l.HW) > 0 && k == lease.KeyOf(nil, l.HW)) {
			row.Static = true
		}
		if idx, ok := t.Pool().Block(l.Addr); ok {
			row.Block = idx
			row.Local = t.Serving(idx)
		}
		rows = append(rows, row)
	}
	return rows
}

// optionsInForce lists the configured options and those the server derives
// itself (mask and broadcast unless configured, lease time, server id).
// Always says whether an option goes out unrequested.
// Without a DHCP server (dhcp false) only the configured options are listed.
func OptionsView(cfg dhcp4.Config, dhcp bool) Options {
	if !dhcp {
		out := Options{LeaseTime: int64(cfg.LeaseTime / time.Second), Options: []OptionInfo{}}
		for _, o := range cfg.Options {
			out.Options = append(out.Options, DescribeConfigured(o))
		}
		slices.SortFunc(out.Options, func(a, b OptionInfo) int { return int(a.Code) - int(b.Code) })
		return out
	}
	out := Options{DHCP: true, LeaseTime: int64(cfg.LeaseTime / time.Second), Options: []OptionInfo{}}
	configured := map[uint8]bool{}
	for _, o := range cfg.Options {
		configured[o.Code] = true
		out.Options = append(out.Options, DescribeConfigured(o))
	}
	derived := func(code uint8, data []byte) {
		info := DescribeOption(code, data, true)
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
	slices.SortFunc(out.Options, func(a, b OptionInfo) int { return int(a.Code) - int(b.Code) })
	return out
}

// DescribeConfigured decodes a configured option; Always says whether it goes out
// unrequested.
func DescribeConfigured(o dhcp4.Option) OptionInfo {
	return DescribeOption(o.Code, o.Data, o.Always || slices.Contains(basicOptions, o.Code))
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
}

// OptionOf builds the option "option_set" describes.
func OptionOf(a OptionSetArgs) (config.Option, error) {
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
