package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"ddhcpd/src/control"
)

// printResult prints the result of cmd as a table.
func printResult(w io.Writer, cmd string, raw json.RawMessage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var err error
	switch cmd {
	case "status":
		err = printStatus(tw, raw)
	case "blocks":
		err = printBlocks(tw, raw)
	case "leases":
		err = printLeases(tw, raw)
	case "options":
		err = printOptions(tw, raw)
	case "option_set":
		var o control.OptionInfo
		if err = json.Unmarshal(raw, &o); err == nil {
			fmt.Fprintf(tw, "set\t%s\n", optionLine(o))
		}
	case "option_remove":
		var o control.OptionInfo
		if err = json.Unmarshal(raw, &o); err == nil {
			fmt.Fprintf(tw, "removed\t%s\n", optionLine(o))
		}
	case "loglevel":
		var l control.LogLevel
		if err = json.Unmarshal(raw, &l); err == nil {
			fmt.Fprintf(tw, "log level\t%s (%d)\n", l.Level, l.CLevel)
		}
	case "stats", "stats_reset":
		err = printStats(tw, raw)
	case "tree":
		err = printTree(tw, raw)
	default:
		err = printJSON(tw, raw)
	}
	if err != nil {
		return err
	}
	return tw.Flush()
}

func printStatus(w io.Writer, raw json.RawMessage) error {
	var st control.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	fmt.Fprintf(w, "node\t%s\n", st.Node)
	fmt.Fprintf(w, "pool\t%s, %d blocks of %d\n", st.Pool, st.Blocks, st.BlockSize)
	fmt.Fprintf(w, "learning\t%v\n", st.Learning)
	fmt.Fprintf(w, "blocks\t%d owned, %d tracked\n", st.Owned, st.Tracked)
	if st.DHCP {
		fmt.Fprintf(w, "dhcp\t%s on %s, %d leases\n", st.ServerID, strings.Join(st.Interfaces, ","), st.Leases)
	} else {
		fmt.Fprintf(w, "dhcp\toff\n")
	}
	fmt.Fprintf(w, "uptime\t%.0fs\n", st.UptimeSeconds)
	for _, m := range st.Mesh {
		state := "down"
		if m.Open {
			state = "up " + m.LinkLocal
		}
		if m.Error != "" {
			state += " (" + m.Error + ")"
		}
		fmt.Fprintf(w, "mesh %s\t%s\n", m.Name, state)
	}
	fmt.Fprintf(w, "version\t%s\n", st.Version)
	return nil
}

func printBlocks(w io.Writer, raw json.RawMessage) error {
	var rows []control.Block
	if err := json.Unmarshal(raw, &rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "INDEX\tFIRST\tSTATE\tOWNER\tTIMEOUT")
	for _, r := range rows {
		timeout := ""
		if r.Timeout > 0 {
			timeout = fmt.Sprintf("%.0fs", r.Timeout)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", r.Index, r.First, r.State, r.Owner, timeout)
	}
	return nil
}

func printLeases(w io.Writer, raw json.RawMessage) error {
	var rows []control.Lease
	if err := json.Unmarshal(raw, &rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "ADDRESS\tSTATE\tMAC\tHOSTNAME\tEXPIRES\tBLOCK")
	for _, r := range rows {
		where := "local"
		if !r.Local {
			where = "not served"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.0fs\t%d %s\n", r.Addr, r.State, r.HW, r.Hostname, r.Expires, r.Block, where)
	}
	return nil
}

func printOptions(w io.Writer, raw json.RawMessage) error {
	var o control.Options
	if err := json.Unmarshal(raw, &o); err != nil {
		return err
	}
	if !o.DHCP {
		fmt.Fprintln(w, "DHCP service off (-S): nothing is sent")
	}
	fmt.Fprintf(w, "lease time %ds\n", o.LeaseTime)
	fmt.Fprintln(w, "CODE\tNAME\tLEN\tTYPE\tVALUE\tSENT\tFROM")
	for _, r := range o.Options {
		from := "config"
		if r.Derived {
			from = "server"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Code, r.Name, r.Len, r.Type, r.Value, sent(r), from)
	}
	return nil
}

// sent says when an option goes out.
func sent(o control.OptionInfo) string {
	if o.Always {
		return "always"
	}
	return "requested"
}

// optionLine is one option in words:
// "option 6 dns_server: ips 10.0.0.1 (always)".
func optionLine(o control.OptionInfo) string {
	name := ""
	if o.Name != "" {
		name = " " + o.Name
	}
	return fmt.Sprintf("option %d%s: %s %s (%s)", o.Code, name, o.Type, o.Value, sent(o))
}

func printStats(w io.Writer, raw json.RawMessage) error {
	var st control.Stats
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%d\n", k, st[k])
	}
	return nil
}

func printTree(w io.Writer, raw json.RawMessage) error {
	var t control.Tree
	if err := json.Unmarshal(raw, &t); err != nil {
		return err
	}
	if !t.Enabled || t.TreeState == nil {
		fmt.Fprintf(w, "overlay\tdisabled\n")
		return nil
	}
	st := t.TreeState
	fmt.Fprintf(w, "overlay\tenabled\n")
	fmt.Fprintf(w, "node\t%s\n", st.Node)
	if st.Valid {
		fmt.Fprintf(w, "tree\troot %s, epoch %d, %d nodes, depth %d\n", st.Root, st.Epoch, st.Size, st.Depth)
		parent := "none (this node is the root)"
		if st.Parent != nil {
			parent = peerText(*st.Parent)
		}
		fmt.Fprintf(w, "parent\t%s\n", parent)
		for _, c := range st.Children {
			fmt.Fprintf(w, "child\t%s, subtree of %d\n", peerText(c.TreePeer), c.Subtree)
		}
	} else {
		fmt.Fprintf(w, "tree\tnone yet\n")
	}
	walk := st.Walk
	if st.WalkOrigin != "" {
		walk += fmt.Sprintf(" (walk of %s, epoch %d)", st.WalkOrigin, st.WalkEpoch)
	}
	fmt.Fprintf(w, "walk\t%s\n", walk)
	for _, n := range st.Neighbours {
		way := "one way"
		if n.Symmetric {
			way = "both ways"
		}
		root := "no tree"
		if n.Root != "" {
			root = "tree of " + n.Root
		}
		fmt.Fprintf(w, "neighbour\t%s\t%s\t%s\t%s\n", n.ID, strings.Join(n.Links, " "), way, root)
	}
	return nil
}

func peerText(p control.TreePeer) string {
	if p.Addr == "" {
		return p.ID
	}
	return p.ID + " at " + p.Addr
}
