// Package ctl is the ddhcpctl command line: it asks the daemon over the
// control socket and prints readable tables, or JSON with -json. The same
// code runs when the ddhcpd binary is called as ddhcpctl.
package ctl

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"ddhcpd/src/config"
	"ddhcpd/src/control"
)

const usage = `usage: ddhcpctl [-C PATH] [-json] COMMAND
commands:
  status    this node: id, pool, learning, interfaces
  blocks    every block that is not free: state, owner, timeout
  leases    leases of this node: address, state, client, expiry
  stats     counters
C ddhcpctl flags: -b (blocks), -s (stats)
`

// Main runs ddhcpctl with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ddhcpctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sock := fs.String("C", config.DefaultControlSocket, "")
	asJSON := fs.Bool("json", false, "")
	var cmd string
	fs.BoolFunc("b", "", func(string) error { cmd = "blocks"; return nil })
	fs.BoolFunc("s", "", func(string) error { cmd = "stats"; return nil })
	help := fs.Bool("h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "ddhcpctl: %v\n%s", err, usage)
		return 2
	}
	if *help {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
	}
	if cmd == "" {
		cmd = "status"
	}
	var raw json.RawMessage
	if err := control.Call(*sock, cmd, nil, &raw); err != nil {
		fmt.Fprintf(stderr, "ddhcpctl: %s: %v\n", cmd, err)
		var ce *control.Error
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	if *asJSON {
		stdout.Write(append(raw, '\n'))
		return 0
	}
	if err := printTable(stdout, cmd, raw); err != nil {
		fmt.Fprintf(stderr, "ddhcpctl: %v\n", err)
		return 1
	}
	return 0
}

func printTable(w io.Writer, cmd string, raw json.RawMessage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch cmd {
	case "status":
		var st control.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		fmt.Fprintf(tw, "node\t%s\n", st.Node)
		fmt.Fprintf(tw, "pool\t%s, %d blocks of %d\n", st.Pool, st.Blocks, st.BlockSize)
		fmt.Fprintf(tw, "learning\t%v\n", st.Learning)
		fmt.Fprintf(tw, "blocks\t%d owned, %d tracked\n", st.Owned, st.Tracked)
		fmt.Fprintf(tw, "uptime\t%.0fs\n", st.UptimeSeconds)
		for _, m := range st.Mesh {
			state := "down"
			if m.Open {
				state = "up " + m.LinkLocal
			}
			if m.Error != "" {
				state += " (" + m.Error + ")"
			}
			fmt.Fprintf(tw, "mesh %s\t%s\n", m.Name, state)
		}
		fmt.Fprintf(tw, "version\t%s\n", st.Version)
	case "blocks":
		var rows []control.Block
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		fmt.Fprintln(tw, "INDEX\tFIRST\tSTATE\tOWNER\tTIMEOUT")
		for _, r := range rows {
			timeout := ""
			if r.Timeout > 0 {
				timeout = fmt.Sprintf("%.0fs", r.Timeout)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Index, r.First, r.State, r.Owner, timeout)
		}
	case "leases":
		var rows []control.Lease
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		fmt.Fprintln(tw, "ADDRESS\tSTATE\tMAC\tHOSTNAME\tEXPIRES\tBLOCK")
		for _, r := range rows {
			where := "local"
			if !r.Local {
				where = "not served"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0fs\t%d %s\n", r.Addr, r.State, r.HW, r.Hostname, r.Expires, r.Block, where)
		}
	case "stats":
		var st control.Stats
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		keys := make([]string, 0, len(st))
		for k := range st {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d\n", k, st[k])
		}
	default:
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(tw, strings.TrimSpace(string(b)))
	}
	return nil
}
