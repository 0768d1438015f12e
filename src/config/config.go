// Package config holds the daemon's settings: one Config, filled from a UCI
// file (-uci, OpenWrt's /etc/config/ddhcpd) and the command line (the C
// ddhcpd's flags plus our own, which win over the file) and validated in one
// place, with errors that name the offending flag, or the file, line, option
// and value.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/pool"
)

// Defaults that are not the claim engine's.
const (
	DefaultMeshInterface   = "server0"
	DefaultClientInterface = "client0"
	DefaultPool            = "10.0.0.0/24"
	DefaultSizeExp         = 5
	DefaultControlSocket   = "/var/run/ddhcpd.sock"
	DefaultStateDir        = "/tmp/ddhcpd"
	DefaultSyslogSocket    = "/dev/log"
)

// Config is the daemon's whole configuration.
type Config struct {
	MeshInterfaces   []string
	ClientInterfaces []string
	Pool             netip.Prefix // as given (the wire carries it unmasked, like the C node)
	SizeExp          uint8
	Reserved         []pool.Range
	NoDHCP           bool // -S: serve no clients, only take part in claiming

	SpareLeases      int
	BlockTimeout     time.Duration
	TentativeTimeout time.Duration
	NeedlessTimeout  time.Duration
	InquireInterval  time.Duration
	LearningTime     time.Duration
	SyncQuiet        time.Duration // fast join; 0 turns it off
	MaxBlocks        int
	AdmitRate        float64 // first DISCOVERs of unknown clients per second; 0 = no limit

	Options   []Option // -o and -option
	Always    []uint8  // option codes sent even when not requested
	ServerID  netip.Addr
	LeaseTime time.Duration
	Probation time.Duration
	Hosts     []Host

	Hook          string
	ControlSocket string
	StateDir      string
	StateInterval time.Duration // least time between writes of the state file
	Persist       string        // optional copy of the state on flash
	NodeIDFile    string        // the node id on flash, written once; default: node_id beside Persist
	PersistEvery  time.Duration // least time between writes of that copy
	LogLevel      slog.Level
	Overlay       bool   // spanning-tree overlay for routed meshes (-overlay, UCI "overlay")
	LeaseFile     string // dnsmasq-format lease file for LuCI and others (-leasefile, UCI "leasefile"); "" writes none

	// How the process runs; command line only.
	Syslog    string // -syslog[=SOCKET]: log to this syslog socket with real priorities
	Daemonize bool   // -d: detach from the terminal (C's daemon(0, 0)); -D: stay in the foreground
	PidFile   string // -pid-file: write the daemon's pid here

	UCIFile     string  // -uci: the UCI file read first; Reload reads it again
	CheckConfig bool    // -check-config: validate, report and exit
	Warnings    []error // problems that did not stop the configuration (unknown UCI options, ...)

	args []string // the command line, applied again on top of the file by Reload
}

// Host is a host reservation: a client (by MAC or client id) always gets Addr.
type Host struct {
	MAC      net.HardwareAddr // or
	ClientID []byte
	Addr     netip.Addr
}

// Option is a raw DHCP option as given with -o CODE:LEN:B1.B2...
type Option struct {
	Code uint8
	Data []byte
}

// Error is a configuration error naming the flag and its value.
type Error struct {
	Flag, Value, Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("-%s %q: %s", e.Flag, e.Value, e.Reason) }

// ErrHelp and ErrVersion are returned when -h or -V was given, and
// ErrCheckConfig when -check-config was given and the configuration is valid.
var (
	ErrHelp        = errors.New("help requested")
	ErrVersion     = errors.New("version requested")
	ErrCheckConfig = errors.New("configuration checked")
)

// Default returns the configuration with every default applied.
func Default() Config {
	return Config{
		MeshInterfaces:   []string{DefaultMeshInterface},
		ClientInterfaces: []string{DefaultClientInterface},
		Pool:             netip.MustParsePrefix(DefaultPool),
		SizeExp:          DefaultSizeExp,
		SpareLeases:      claim.DefaultSpareLeases,
		BlockTimeout:     claim.DefaultBlockTimeout,
		TentativeTimeout: claim.DefaultTentativeTimeout,
		NeedlessTimeout:  claim.DefaultNeedlessTimeout,
		InquireInterval:  claim.DefaultInquireInterval,
		LearningTime:     -1, // the block timeout, as the C node
		SyncQuiet:        claim.DefaultSyncQuiet,
		ControlSocket:    DefaultControlSocket,
		StateDir:         DefaultStateDir,
		StateInterval:    time.Second,
		PersistEvery:     10 * time.Minute,
		LeaseTime:        300 * time.Second,
		AdmitRate:        20,
		Probation:        time.Hour,
		LogLevel:         slog.LevelWarn,
	}
}

// Usage is printed for -h and after a flag error.
const Usage = `usage: ddhcpd [flags]
  -i IF[,IF]   mesh interface(s) for the inter-node protocol (default server0)
  -c IF[,IF]   client interface(s) where DHCP is served (default client0)
  -N NET/LEN   address pool (default 10.0.0.0/24)
  -b EXP       block size 2^EXP, EXP 0..7 (default 5: 32 addresses)
  -s N         spare leases to keep free in owned blocks (default 2)
  -t SEC       tentative timeout, at least 2 (default 15)
  -B SEC       block timeout: claim lifetime, 1..65535 (default 60)
  -n SEC       needless timeout before an unused block is given up (default 300)
  -L           skip the learning phase
  -S           no DHCP service; only take part in claiming (spare leases 0)
  -o C:L:B.B   DHCP option CODE:LEN:BYTE.BYTE..., repeatable
  -H CMD       hook command, run as CMD EVENT ARGS...
  -C PATH      control socket (default /var/run/ddhcpd.sock)
  -v           more verbose, repeatable (default warnings)
  -d           run in the background, detached from the terminal (logs go to syslog)
  -D           run in the foreground (the default)
  -V           print the version
  -h           this help
  -state DIR             state directory for the node id (default /tmp/ddhcpd)
  -reserve RANGE[,...]   never lease these: A, A-B or A/LEN, repeatable
  -learning DUR          longest learning phase (default: the block timeout; -L sets 0)
  -sync-quiet DUR        fast join: learning ends when claims have been quiet this long
                         after our SYNC (default 2s)
  -no-sync               no fast join: learn for the whole learning phase, like C nodes
  -inquire-interval DUR  spacing of inquiries for a block (default 1s)
  -max-blocks N          own at most N blocks (default 0: automatic, room for 256
                         addresses and at most half the pool; -1: no cap)
  -admit-rate N          first DISCOVERs of unknown clients answered per second
                         (default 20; 0: no limit, no reserve for known clients)
  -server-id IP          DHCP server identifier (default: the client interface's address)
  -lease-time DUR        lease time (default 5m; -o 51:4:... sets it too, as in the C ddhcpd)
  -probation DUR         how long a declined address is not handed out (default 1h)
  -option CODE:TYPE:VAL  typed DHCP option, TYPE ip|ips|u8|u16|u32|string|hex|bool, repeatable
  -always CODE[,CODE]    send these options even when the client does not ask
  -host HW=IP            host reservation; HW is a MAC or id:HEX (client id), repeatable
  -state-interval DUR    least time between state file writes (default 1s)
  -persist FILE          also keep the state in FILE (on flash), at most every -persist-every
  -persist-every DUR     (default 10m)
  -node-id-file FILE     keep the node id in FILE too (on flash): written once, never
                         rewritten, read when the state directory has none (after a
                         reboot) (default: node_id beside the -persist file, if any)
  -uci FILE              read the UCI file (/etc/config/ddhcpd) first; the other flags win over it
  -check-config          validate the configuration, print every problem and exit
  -overlay               spanning-tree overlay for routed meshes: relay claims along a
                         tree of the nodes heard on the mesh interfaces (-i, repeatable)
  -pid-file FILE         write the daemon's pid to FILE (removed at exit)
  -syslog[=SOCKET]       log to the syslog socket (default /dev/log) with each line's
                         priority (debug, info, notice, warning, err), facility daemon
  -leasefile FILE        keep the active leases in FILE in dnsmasq's lease file format
                         (as /tmp/dhcp.leases), for LuCI; an absolute path (default: none)
`

// Parse reads the command line. It returns ErrHelp or ErrVersion for -h and
// -V, ErrCheckConfig for -check-config with a valid configuration, and
// otherwise every problem found, joined: an *Error for a bad flag, a
// *UCIError for a bad setting in the -uci file. The file is applied first and
// the other flags on top of it.
func Parse(args []string) (Config, error) {
	return parse(args, "", ReadUCI)
}

// flagVars are the flags that are not part of the configuration.
type flagVars struct {
	help, version bool
}

// newFlagSet defines the flags, writing into c. The defaults are c's current
// values, so a flag set made after the UCI file was applied keeps them.
func newFlagSet(c *Config, v *flagVars) *flag.FlagSet {
	fs := flag.NewFlagSet("ddhcpd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	list := func(dst *[]string) func(string) error {
		first := true
		return func(s string) error {
			if first {
				*dst, first = nil, false
			}
			for _, f := range strings.Split(s, ",") {
				if f = strings.TrimSpace(f); f != "" {
					*dst = append(*dst, f)
				}
			}
			return nil
		}
	}
	seconds := func(dst *time.Duration, min, max int) func(string) error {
		return func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n < min || n > max {
				return fmt.Errorf("want whole seconds %d..%d", min, max)
			}
			*dst = time.Duration(n) * time.Second
			return nil
		}
	}
	duration := func(dst *time.Duration) func(string) error {
		return func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return errors.New("want a duration like 500ms or 10s")
			}
			*dst = d
			return nil
		}
	}
	integer := func(dst *int, min, max int) func(string) error {
		return func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n < min || n > max {
				return fmt.Errorf("want an integer %d..%d", min, max)
			}
			*dst = n
			return nil
		}
	}
	fs.Func("i", "", list(&c.MeshInterfaces))
	fs.Func("c", "", list(&c.ClientInterfaces))
	fs.Func("N", "", func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return errors.New("want an IPv4 prefix like 10.116.224.0/20")
		}
		c.Pool = p
		return nil
	})
	fs.Func("b", "", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > pool.MaxSizeExp {
			return fmt.Errorf("block size exponent must be 0..%d (at most 128 addresses fit the wire format)", pool.MaxSizeExp)
		}
		c.SizeExp = uint8(n)
		return nil
	})
	fs.Func("s", "", integer(&c.SpareLeases, 0, 1<<20))
	fs.Func("t", "", seconds(&c.TentativeTimeout, 2, 3600))
	fs.Func("B", "", func(s string) error {
		// The C ddhcpd reads -B with strtoul(s, NULL, 0): 0x3c and 074 are 60.
		n, err := ParseCNumber(s, 16)
		if err != nil || n < 1 {
			return errors.New("want whole seconds 1..65535")
		}
		c.BlockTimeout = time.Duration(n) * time.Second
		return nil
	})
	fs.Func("n", "", seconds(&c.NeedlessTimeout, 0, 1<<24))
	fs.BoolFunc("L", "", func(string) error { c.LearningTime = 0; return nil })
	fs.BoolFunc("S", "", func(string) error { c.NoDHCP = true; return nil })
	fs.Func("o", "", func(s string) error {
		o, err := ParseOption(s)
		if err != nil {
			return err
		}
		c.Options = append(c.Options, o)
		return nil
	})
	fs.StringVar(&c.Hook, "H", c.Hook, "")
	fs.StringVar(&c.ControlSocket, "C", c.ControlSocket, "")
	fs.BoolFunc("v", "", func(string) error {
		if c.LogLevel > slog.LevelDebug {
			c.LogLevel -= 4
		}
		return nil
	})
	fs.BoolFunc("d", "", func(string) error { c.Daemonize = true; return nil })
	fs.BoolFunc("D", "", func(string) error { c.Daemonize = false; return nil })
	fs.StringVar(&c.PidFile, "pid-file", c.PidFile, "")
	fs.BoolVar(&v.version, "V", false, "")
	fs.BoolVar(&v.help, "h", false, "")
	fs.StringVar(&c.StateDir, "state", c.StateDir, "")
	fs.Func("reserve", "", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			r, err := pool.ParseRange(f)
			if err != nil {
				return err
			}
			c.Reserved = append(c.Reserved, r)
		}
		return nil
	})
	fs.Func("learning", "", duration(&c.LearningTime))
	fs.Func("sync-quiet", "", duration(&c.SyncQuiet))
	fs.BoolFunc("no-sync", "", func(string) error { c.SyncQuiet = 0; return nil })
	fs.Func("inquire-interval", "", duration(&c.InquireInterval))
	fs.Func("max-blocks", "", integer(&c.MaxBlocks, -1, 1<<22))
	fs.Func("admit-rate", "", func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1e6 {
			return errors.New("want new clients per second, 0 for no limit")
		}
		c.AdmitRate = v
		return nil
	})
	fs.Func("server-id", "", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return errors.New("want an IPv4 address")
		}
		c.ServerID = a
		return nil
	})
	fs.Func("lease-time", "", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Second || d > 0xffffffff*time.Second {
			return errors.New("want a duration of at least 10s")
		}
		c.LeaseTime = d
		return nil
	})
	fs.Func("probation", "", duration(&c.Probation))
	fs.Func("option", "", func(s string) error {
		o, err := ParseTypedOption(s)
		if err != nil {
			return err
		}
		c.Options = append(c.Options, o)
		return nil
	})
	fs.Func("always", "", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 254 {
				return errors.New("want option codes 1..254")
			}
			c.Always = append(c.Always, uint8(n))
		}
		return nil
	})
	fs.Func("host", "", func(s string) error {
		h, err := ParseHost(s)
		if err != nil {
			return err
		}
		c.Hosts = append(c.Hosts, h)
		return nil
	})
	fs.Func("state-interval", "", duration(&c.StateInterval))
	fs.StringVar(&c.Persist, "persist", c.Persist, "")
	fs.Func("persist-every", "", duration(&c.PersistEvery))
	fs.StringVar(&c.NodeIDFile, "node-id-file", c.NodeIDFile, "")
	fs.StringVar(&c.UCIFile, "uci", c.UCIFile, "")
	fs.BoolVar(&c.CheckConfig, "check-config", c.CheckConfig, "")
	fs.BoolVar(&c.Overlay, "overlay", c.Overlay, "")
	fs.Var(syslogFlag{&c.Syslog}, "syslog", "")
	fs.Func("leasefile", "", func(s string) error {
		switch {
		case s == "":
			c.LeaseFile = "" // none
		case !filepath.IsAbs(s) || strings.HasSuffix(s, "/"):
			return errors.New("want an absolute file path like /tmp/ddhcpd.leases")
		default:
			c.LeaseFile = filepath.Clean(s)
		}
		return nil
	})
	return fs
}

// syslogFlag is -syslog (the default socket), -syslog=SOCKET or
// -syslog=false.
type syslogFlag struct{ dst *string }

func (f syslogFlag) IsBoolFlag() bool { return true }

func (f syslogFlag) String() string {
	if f.dst == nil {
		return ""
	}
	return *f.dst
}

func (f syslogFlag) Set(s string) error {
	switch s {
	case "true":
		*f.dst = DefaultSyslogSocket
	case "false":
		*f.dst = ""
	case "":
		return errors.New("want the syslog socket's path")
	default:
		*f.dst = s
	}
	return nil
}

// parse is Parse; a non-empty uciPath replaces the command line's -uci
// (Reload reads the file again with the original command line on top), and
// read reads the file.
func parse(args []string, uciPath string, read func(path string) (*UCIFile, error)) (Config, error) {
	args = expandClusters(args)
	c := Default()
	c.args = args
	var errs []error

	// The file comes first, so the flags can win over it.
	seen := scanFlags(args)
	c.CheckConfig = seen["check-config"] != nil
	if uciPath == "" && seen["uci"] != nil {
		uciPath = *seen["uci"]
	}
	var src *uciSource
	if uciPath != "" {
		c.UCIFile = uciPath
		f, err := read(uciPath)
		if err != nil {
			errs = append(errs, unjoin(err)...)
		}
		if f != nil {
			var warns, merrs []error
			src, warns, merrs = applyUCI(f, &c)
			c.Warnings = append(c.Warnings, warns...)
			errs = append(errs, merrs...)
		}
	}
	fromFile := len(c.Options)

	var v flagVars
	fs := newFlagSet(&c, &v)
	if err := fs.Parse(args); err != nil {
		return c, errors.Join(append(errs, flagError(err))...)
	}
	if fs.NArg() > 0 {
		return c, errors.Join(append(errs, &Error{Value: fs.Arg(0), Reason: "unexpected argument"})...)
	}
	if v.help {
		return c, ErrHelp
	}
	if v.version {
		return c, ErrVersion
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	// bad names the flag, or the line of the UCI file the value came from
	// when the command line did not set it.
	bad := func(name, value, reason string) error {
		if !onCommandLine[name] {
			if e := src.blame(name, value, reason); e != nil {
				return e
			}
		}
		return &Error{Flag: name, Value: value, Reason: reason}
	}

	if c.NoDHCP {
		c.SpareLeases = 0
	}
	// Options given as flags replace the file's options with the same code.
	if cmd := c.Options[fromFile:]; fromFile > 0 && len(cmd) > 0 {
		kept := slices.DeleteFunc(slices.Clone(c.Options[:fromFile]), func(o Option) bool {
			return slices.ContainsFunc(cmd, func(f Option) bool { return f.Code == o.Code })
		})
		fromFile = len(kept)
		c.Options = append(kept, cmd...)
	}
	// The C ddhcpd takes the lease time from option 51 (the UCI file's
	// option 51 was applied when the file was read).
	for _, o := range c.Options[fromFile:] {
		if o.Code == 51 && len(o.Data) == 4 {
			c.LeaseTime = time.Duration(uint32(o.Data[0])<<24|uint32(o.Data[1])<<16|uint32(o.Data[2])<<8|uint32(o.Data[3])) * time.Second
		}
	}
	if !src.failed("N") {
		for _, h := range c.Hosts {
			if !c.Pool.Contains(h.Addr) {
				errs = append(errs, bad("host", h.Addr.String(), fmt.Sprintf("not inside the pool %v", c.Pool)))
			}
		}
	}
	if c.LearningTime < 0 {
		c.LearningTime = c.BlockTimeout
	}
	if len(c.MeshInterfaces) == 0 {
		errs = append(errs, bad("i", "", "at least one mesh interface is needed"))
	}
	for _, l := range []struct {
		flag  string
		names []string
	}{{"i", c.MeshInterfaces}, {"c", c.ClientInterfaces}} {
		for _, name := range l.names {
			if len(name) > 15 || strings.ContainsAny(name, "/ \t") {
				errs = append(errs, bad(l.flag, name, "not a valid interface name"))
			}
		}
	}
	if !src.failed("N") && !src.failed("b") {
		if _, err := c.NewPool(); err != nil {
			errs = append(errs, bad("N", c.Pool.String(), err.Error()))
		}
	}
	// The claim engine's rule (claim.Config.Validate) with its default
	// inquiries and announce gap: the inquiry window must outlast four
	// announce gaps, or a node can take a block whose owner's answer is
	// still held back.
	if window := claim.DefaultInquiries * c.InquireInterval; window < 4*claim.DefaultAnnounceGap {
		errs = append(errs, bad("inquire-interval", c.InquireInterval.String(),
			fmt.Sprintf("must be at least %v (%d inquiries must outlast 4 × the %v announce gap)",
				(4*claim.DefaultAnnounceGap+claim.DefaultInquiries-1)/claim.DefaultInquiries, claim.DefaultInquiries, claim.DefaultAnnounceGap)))
	}
	if c.StateDir == "" {
		errs = append(errs, bad("state", "", "a state directory is needed for the node id"))
	}
	// The directory of the flash copy of the state keeps the node id too.
	if c.NodeIDFile == "" && c.Persist != "" {
		c.NodeIDFile = filepath.Join(filepath.Dir(c.Persist), "node_id")
	}
	if len(errs) == 0 && c.CheckConfig {
		return c, ErrCheckConfig
	}
	return c, errors.Join(errs...)
}

// scanFlags finds the flags among args before they are parsed, the way the
// flag package will parse them: it stops at the first argument that is not a
// flag and skips the values of flags that take one. The result maps a flag's
// name to its last value.
func scanFlags(args []string) map[string]*string {
	probe := newFlagSet(new(Config), new(flagVars))
	seen := map[string]*string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := probe.Lookup(name)
		if f == nil {
			break // the flag package stops here with an error
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			if !hasValue {
				if i+1 == len(args) {
					break
				}
				i++
				value = args[i]
			}
		}
		seen[name] = &value
	}
	return seen
}

// Errors returns the single errors inside err (Parse joins them), so that
// each can be printed on a line of its own.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	return unjoin(err)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// NewPool builds the pool geometry from the configuration.
func (c *Config) NewPool() (*pool.Pool, error) {
	return pool.New(c.Pool, c.SizeExp, c.Reserved)
}

// flagError turns the flag package's message into an *Error naming the flag.
func flagError(err error) error {
	// The flag package reports `invalid value "V" for flag -X: REASON` and
	// `flag provided but not defined: -X`.
	msg := err.Error()
	// ... and `invalid boolean value "V" for -X: REASON` for boolean flags.
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		value, rest, _ := strings.Cut(strings.TrimPrefix(rest, `"`), `" for -`)
		name, reason, _ := strings.Cut(rest, ": ")
		return &Error{Flag: name, Value: value, Reason: reason}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		value, rest, _ := strings.Cut(strings.TrimPrefix(rest, `"`), `" for flag -`)
		name, reason, _ := strings.Cut(rest, ": ")
		return &Error{Flag: name, Value: value, Reason: reason}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return &Error{Flag: name, Value: "", Reason: "unknown flag"}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return &Error{Flag: name, Value: "", Reason: "needs a value"}
	}
	return err
}

// expandClusters turns getopt-style "-Lv" and "-vv" into separate flags, as
// the C ddhcpd accepts them.
func expandClusters(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.Trim(a[1:], "LSvVhdD") == "" {
			for _, r := range a[1:] {
				out = append(out, "-"+string(r))
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// ParseOption parses the C ddhcpd's CODE:LEN:B1.B2... form; LEN must match
// the number of bytes. CODE and LEN are decimal (the C code reads them with
// atoi); each byte is read as C's strtoul with base 0 reads it: decimal
// ("3:4:10.116.254.254"), 0x hexadecimal ("3:4:0x0a.0x74.0xfe.0xfe") or,
// with a leading 0, octal ("3:4:012.0164.0376.0376").
func ParseOption(s string) (Option, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return Option{}, errors.New("want CODE:LEN:B1.B2...")
	}
	code, err := strconv.Atoi(parts[0])
	if err != nil || code < 1 || code > 254 {
		return Option{}, fmt.Errorf("option code %q: want a decimal 1..254", parts[0])
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 || n > 255 {
		return Option{}, fmt.Errorf("option length %q: want a decimal 0..255", parts[1])
	}
	var data []byte
	if parts[2] != "" {
		for _, f := range strings.Split(parts[2], ".") {
			v, err := ParseCNumber(f, 8)
			if err != nil {
				return Option{}, fmt.Errorf("option byte %q is not 0..255 (decimal, 0x hex or 0 octal)", f)
			}
			data = append(data, byte(v))
		}
	}
	if len(data) != n {
		return Option{}, fmt.Errorf("option length %d but %d bytes given", n, len(data))
	}
	return Option{Code: uint8(code), Data: data}, nil
}

// ParseCNumber reads an unsigned number of at most bits bits the way C's
// strtoul with base 0 reads one: 0x or 0X and hexadecimal digits, a leading
// 0 and octal digits, or decimal digits. Unlike strtoul it refuses a sign,
// blanks, trailing characters and values that do not fit, rather than
// wrapping or stopping early; Go's own forms (0o, 0b, _) are refused too.
func ParseCNumber(s string, bits int) (uint64, error) {
	base, digits := 10, s
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" || strings.ContainsAny(digits, "+-_") {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseUint(digits, base, bits)
}
