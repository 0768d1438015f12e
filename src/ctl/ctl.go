// Package ctl is the ddhcpctl command line: it asks the daemon over the
// control socket and prints readable tables, or JSON with -json. The same
// code runs when the ddhcpd binary is called as ddhcpctl.
//
// The C ddhcpctl's flags keep working: -b, -d, -s, -S, -r, -l and -v pick
// one command (the last one given wins) and -o, applied after the others as
// in C, overrides them all.
package ctl

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"

	"ddhcpd/src/config"
	"ddhcpd/src/control"
)

const usage = `usage: ddhcpctl [-C PATH] [-json] COMMAND [ARGS]
commands:
  status                  this node: id, pool, learning, interfaces
  blocks                  every block that is not free: state, owner, timeout
  leases                  leases of this node: address, state, client, expiry
  options                 DHCP options in force and the lease time
  set CODE TYPE VALUE     set a DHCP option at once; TYPE is ip, ips, u8, u16,
                          u32, string, hex or bool; code 51 is the lease time
  set CODE:LEN:B1.B2...   the same in the C form, bytes in decimal
        -always           (before CODE) send it even when not requested;
                          -always=false stops that; default: keep as it was
  remove CODE             remove a DHCP option
  loglevel [LEVEL]        show or set the log level: debug, info, warn, error,
                          or the C numbers 0..4 (0 fatal .. 4 debug)
  stats                   counters
  stats-reset             counters, then zero the daemon's own
  tree                    spanning-tree overlay state
flags:
  -C PATH                 control socket (default ` + config.DefaultControlSocket + `)
  -json                   print the daemon's JSON result
  -V, -h                  version, this help
C ddhcpctl flags:
  -b                      blocks
  -d                      options
  -s, -S                  stats; stats and reset
  -o CODE:LEN:B1.B2...    set an option (applied after the other flags)
  -r CODE                 remove an option
  -l SECONDS              lease time (option 51)
  -v LEVEL                log level, 0 fatal .. 4 debug
exit status: 0 done, 1 the daemon cannot be reached, 2 usage error or the
daemon refused
`

// call is one request to send.
type call struct {
	name string // as the user gave it, for messages
	cmd  string // protocol command
	args any
}

// invocation is a parsed command line.
type invocation struct {
	sock    string
	asJSON  bool
	help    bool
	version bool
	calls   []call
}

// Main runs ddhcpctl with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	inv, err := parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "ddhcpctl: %v\n%s", err, usage)
		return 2
	}
	switch {
	case inv.help:
		fmt.Fprint(stdout, usage)
		return 0
	case inv.version:
		fmt.Fprintln(stdout, "ddhcpctl", buildVersion())
		return 0
	}
	for _, c := range inv.calls {
		var raw json.RawMessage
		if err := control.Call(inv.sock, c.cmd, c.args, &raw); err != nil {
			var ce *control.Error
			if errors.As(err, &ce) {
				fmt.Fprintf(stderr, "ddhcpctl: %s: %s (%s)\n", c.name, ce.Message, ce.Code)
				return 2
			}
			fmt.Fprintf(stderr, "ddhcpctl: %s: %v\n", c.name, err)
			return 1
		}
		if inv.asJSON {
			stdout.Write(append(raw, '\n'))
			continue
		}
		if err := printResult(stdout, c.cmd, raw); err != nil {
			fmt.Fprintf(stderr, "ddhcpctl: %s: unexpected result: %v\n", c.name, err)
			return 1
		}
	}
	return 0
}

// parse turns the command line into the requests to send. Flags may stand
// before and after the command; "--" ends them.
func parse(args []string) (invocation, error) {
	inv := invocation{sock: config.DefaultControlSocket}
	fs := flag.NewFlagSet("ddhcpctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&inv.sock, "C", inv.sock, "")
	fs.BoolVar(&inv.asJSON, "json", false, "")
	fs.BoolVar(&inv.help, "h", false, "")
	fs.BoolVar(&inv.version, "V", false, "")

	var flagCall *call // the last C command flag
	var sets []call    // -o, applied after the others
	var always *bool
	simple := func(name, cmd string) func(string) error {
		return func(string) error {
			flagCall = &call{name: name, cmd: cmd}
			return nil
		}
	}
	fs.BoolFunc("b", "", simple("-b", "blocks"))
	fs.BoolFunc("d", "", simple("-d", "options"))
	fs.BoolFunc("s", "", simple("-s", "stats"))
	fs.BoolFunc("S", "", simple("-S", "stats_reset"))
	fs.Func("r", "", func(v string) error {
		code, err := optionCode(v)
		if err != nil {
			return err
		}
		flagCall = &call{name: "-r", cmd: "option_remove", args: control.OptionRemoveArgs{Code: code}}
		return nil
	})
	fs.Func("l", "", func(v string) error {
		a, err := leaseTimeArgs(v)
		if err != nil {
			return err
		}
		flagCall = &call{name: "-l", cmd: "option_set", args: a}
		return nil
	})
	fs.Func("v", "", func(v string) error {
		a, err := levelArgs(v)
		if err != nil {
			return err
		}
		flagCall = &call{name: "-v", cmd: "loglevel", args: a}
		return nil
	})
	fs.Func("o", "", func(v string) error {
		if _, err := config.ParseOption(v); err != nil {
			return err
		}
		sets = append(sets, call{name: "-o", cmd: "option_set", args: control.OptionSetArgs{C: v}})
		return nil
	})
	fs.BoolFunc("always", "", func(v string) error {
		b, err := strconv.ParseBool(v)
		always = &b
		return err
	})

	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return inv, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			words = append(words, rest...)
			break
		}
		words = append(words, rest[0])
		args = rest[1:]
	}
	if inv.help || inv.version {
		return inv, nil
	}

	switch {
	case len(words) > 0 && (flagCall != nil || len(sets) > 0):
		return inv, fmt.Errorf("give either a command or C ddhcpctl flags, not both")
	case len(sets) > 0:
		inv.calls = sets
	case flagCall != nil:
		inv.calls = []call{*flagCall}
	case len(words) == 0:
		inv.calls = []call{{name: "status", cmd: "status"}}
	default:
		c, err := command(words)
		if err != nil {
			return inv, err
		}
		inv.calls = []call{c}
	}
	if always != nil {
		for i, c := range inv.calls {
			a, ok := c.args.(control.OptionSetArgs)
			if !ok || a.Code == 51 {
				return inv, fmt.Errorf("-always goes with set and -o")
			}
			a.Always = always
			inv.calls[i].args = a
		}
	}
	return inv, nil
}

// command builds the request of a named command and its arguments.
func command(words []string) (call, error) {
	name, rest := words[0], words[1:]
	c := call{name: name, cmd: name}
	nargs := func(min, max int) error {
		if len(rest) < min || len(rest) > max {
			return fmt.Errorf("%s: wrong number of arguments", name)
		}
		return nil
	}
	switch name {
	case "status", "blocks", "leases", "options", "stats", "tree":
		return c, nargs(0, 0)
	case "stats-reset", "stats_reset":
		c.cmd = "stats_reset"
		return c, nargs(0, 0)
	case "set":
		c.cmd = "option_set"
		switch len(rest) {
		case 1:
			if _, err := config.ParseOption(rest[0]); err != nil {
				return c, fmt.Errorf("set %s: %v", rest[0], err)
			}
			c.args = control.OptionSetArgs{C: rest[0]}
		case 3:
			code, err := optionCode(rest[0])
			if err != nil {
				return c, fmt.Errorf("set: %v", err)
			}
			if _, err := config.EncodeOptionValue(rest[1], rest[2]); err != nil {
				return c, fmt.Errorf("set %s: %v", rest[0], err)
			}
			c.args = control.OptionSetArgs{Code: code, Type: rest[1], Value: rest[2]}
		default:
			return c, fmt.Errorf("set: want CODE TYPE VALUE or CODE:LEN:B1.B2...")
		}
		return c, nil
	case "remove":
		c.cmd = "option_remove"
		if err := nargs(1, 1); err != nil {
			return c, err
		}
		code, err := optionCode(rest[0])
		if err != nil {
			return c, fmt.Errorf("remove: %v", err)
		}
		c.args = control.OptionRemoveArgs{Code: code}
		return c, nil
	case "loglevel":
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		if len(rest) == 1 {
			a, err := levelArgs(rest[0])
			if err != nil {
				return c, fmt.Errorf("loglevel: %v", err)
			}
			c.args = a
		}
		return c, nil
	}
	return c, fmt.Errorf("unknown command %q", name)
}

func optionCode(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 254 {
		return 0, fmt.Errorf("option code %q: want 1..254", s)
	}
	return n, nil
}

// leaseTimeArgs is -l SECONDS: option 51, four bytes, as the C ddhcpctl
// sends it. Like the C ddhcpctl (strtoul with base 0) it takes 0x hex and
// 0 octal as well as decimal.
func leaseTimeArgs(s string) (control.OptionSetArgs, error) {
	n, err := config.ParseCNumber(s, 32)
	if err != nil {
		return control.OptionSetArgs{}, fmt.Errorf("lease time %q: want seconds (decimal, 0x hex or 0 octal)", s)
	}
	return control.OptionSetArgs{Code: 51, Type: "u32", Value: strconv.FormatUint(n, 10)}, nil
}

// levelArgs accepts a level name or a C level number; numbers are sent as
// JSON numbers.
func levelArgs(s string) (control.LogLevelArgs, error) {
	raw, _ := json.Marshal(s)
	if n, err := strconv.Atoi(s); err == nil {
		raw, _ = json.Marshal(n)
	}
	if _, err := control.ParseLevel(raw); err != nil {
		return control.LogLevelArgs{}, err
	}
	return control.LogLevelArgs{Level: raw}, nil
}

// buildVersion is the version the Go toolchain stamped into the binary.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return "dev"
}

// printJSON prints a result without a table of its own as indented JSON.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, strings.TrimSpace(string(b)))
	return err
}
