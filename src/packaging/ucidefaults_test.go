package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/config"
)

// stubUCI records its arguments and applies "set PKG.SECTION.OPTION=VALUE"
// to the file at once (the real uci keeps it until commit), as a line after
// the section's header: enough for the migration, which only adds options.
const stubUCI = `#!/bin/sh
{ printf 'uci'; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >>"$UCI_LOG"
dir=/etc/config
while [ $# -gt 0 ]; do
	case $1 in
	-q) shift ;;
	-c) dir=$2; shift 2 ;;
	*) break ;;
	esac
done
case $1 in
set)
	pkg=${2%%.*}; rest=${2#*.}
	sec=${rest%%.*}; rest=${rest#*.}
	opt=${rest%%=*}; val=${rest#*=}
	sed -E -i "/^config[[:space:]]+[^[:space:]]+[[:space:]]+['\"]?$sec['\"]?[[:space:]]*\$/a option $opt '$val'" "$dir/$pkg"
	;;
commit) ;;
*) echo "uci stub: $*" >&2; exit 1 ;;
esac
`

// migration is one run of files/etc/uci-defaults/50-ddhcpd.
type migration struct {
	uci  [][]string // uci argument lists
	logs [][]string // logger argument lists
	conf string     // the file afterwards
}

// migrate runs the uci-defaults script as OpenWrt does (sourced in a
// subshell, from its directory) against conf ("" for no file).
func migrate(t *testing.T, sh shell, conf string) migration {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	uciDir := filepath.Join(dir, "config")
	if err := os.MkdirAll(uciDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if conf != "" {
		writeFile(t, filepath.Join(uciDir, "ddhcpd"), conf, 0o600)
	}
	writeFile(t, filepath.Join(dir, "bin", "uci"), stubUCI, 0o755)
	writeFile(t, filepath.Join(dir, "bin", "logger"), stubLogger, 0o755)
	uciLog, loggerLog := filepath.Join(dir, "uci.log"), filepath.Join(dir, "logger.log")
	script := filepath.Join(root, "files", "etc", "uci-defaults", "50-ddhcpd")
	env := []string{
		"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH"),
		"IPKG_INSTROOT=" + filepath.Join(root, "src", "packaging", "testdata", "openwrt"),
		"UCI_CONFIG_DIR=" + uciDir,
		"UCI_LOG=" + uciLog,
		"LOGGER_LOG=" + loggerLog,
	}
	argv := append(slices.Clone(sh.argv), "-c", `cd "$(dirname "$1")" && ( . "./$(basename "$1")" )`, "sh", script)
	r := run(t, 30*time.Second, dir, env, argv...)
	if r.err != nil {
		t.Fatalf("uci-defaults script failed (it would stay and run again at every boot): %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	var m migration
	for _, l := range readLines(t, uciLog) {
		m.uci = append(m.uci, strings.Split(l, "\t")[1:])
	}
	for _, l := range readLines(t, loggerLog) {
		m.logs = append(m.logs, strings.Split(l, "\t")[1:])
	}
	if b, err := os.ReadFile(filepath.Join(uciDir, "ddhcpd")); err == nil {
		m.conf = string(b)
	}
	return m
}

// sets are the options the migration set, as OPTION=VALUE.
func (m migration) sets(t *testing.T) []string {
	t.Helper()
	var out []string
	committed := false
	for _, args := range m.uci {
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "-q" })
		if len(args) > 1 && args[0] == "-c" {
			args = args[2:]
		}
		switch {
		case len(args) == 2 && args[0] == "set" && strings.HasPrefix(args[1], "ddhcpd.settings."):
			if committed {
				t.Errorf("set after commit: %q", args)
			}
			out = append(out, strings.TrimPrefix(args[1], "ddhcpd.settings."))
		case len(args) == 2 && args[0] == "commit" && args[1] == "ddhcpd":
			committed = true
		default:
			t.Errorf("unexpected uci call %q", args)
		}
	}
	if len(out) > 0 && !committed {
		t.Errorf("changes not committed: %q", m.uci)
	}
	if len(out) == 0 && committed {
		t.Errorf("commit without changes")
	}
	// One notice naming the changes, or nothing when nothing changed.
	if len(out) > 0 && (len(m.logs) != 1 || !slices.Contains(m.logs[0], "daemon.notice") || !strings.Contains(m.logs[0][len(m.logs[0])-1], strings.Join(out, " "))) {
		t.Errorf("log %q does not name the changes %q", m.logs, out)
	}
	if len(out) == 0 && len(m.logs) > 0 {
		t.Errorf("log without changes: %q", m.logs)
	}
	return out
}

// parsed is what the daemon makes of the migrated file.
func (m migration) parsed(t *testing.T) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ddhcpd")
	writeFile(t, path, m.conf, 0o600)
	c, err := config.Parse([]string{"-uci", path})
	if err != nil {
		t.Fatalf("the migrated file does not parse: %v\n%s", err, m.conf)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("warnings: %v\n%s", c.Warnings, m.conf)
	}
	return c
}

// A file for the gluon package that leaves the block size and timeout to
// that package's init script (-b 2, -B 300).
const gluonMinimal = `config ddhcpd 'settings'
	option block_network '10.116.224.0/20'
	option server_interface 'bat0'
	option dhcp_interface 'br-client'

config dhcp_option 'router'
	option code '3'
	option len '4'
	option payload '10.116.254.254'
`

// TestUCIDefaults: the migration writes what the gluon package's init
// script defaulted differently, and the node id file, and nothing else.
func TestUCIDefaults(t *testing.T) {
	root := repoRoot(t)
	read := func(path string) string {
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	shipped := read("files/etc/config/ddhcpd")
	ours := "config ddhcpd 'settings'\n\tlist mesh_interface 'bat0'\n\toption pool '10.116.224.0/20'\n"
	const nodeID = "node_id_file=/etc/ddhcpd/node_id"
	for _, sh := range shells(t) {
		for _, tc := range []struct {
			name, conf string
			want       []string
			check      func(t *testing.T, c config.Config)
		}{
			{"gluon node", read("src/config/testdata/gluon.uci"), []string{nodeID}, func(t *testing.T, c config.Config) {
				if c.SizeExp != 2 || c.BlockTimeout != 300*time.Second || c.NodeIDFile != "/etc/ddhcpd/node_id" {
					t.Errorf("%+v", c)
				}
			}},
			{"gluon minimal", gluonMinimal, []string{"block_size_pow=2", "block_timeout=300", nodeID}, func(t *testing.T, c config.Config) {
				// What the gluon init script ran the C daemon with.
				if c.SizeExp != 2 || c.BlockTimeout != 300*time.Second || c.Pool.String() != "10.116.224.0/20" ||
					!slices.Equal(c.MeshInterfaces, []string{"bat0"}) || c.LeaseTime != 300*time.Second {
					t.Errorf("%+v", c)
				}
			}},
			{"gluon, no dhcp_option", "config ddhcpd 'settings'\n\toption block_network '10.116.224.0/20'\n\toption server_interface 'bat0'\n", []string{"block_size_pow=2", "block_timeout=300", nodeID}, nil},
			{"gluon shipped", read("src/config/testdata/gluon-shipped.uci"), []string{"block_size_pow=2", "block_timeout=300", nodeID}, nil},
			{"gluon, our block size name", gluonMinimal + "\nconfig ddhcpd 'settings'\n\toption block_size_exp '3'\n\toption block_timeout '60'\n", []string{nodeID}, nil},
			{"ours shipped", shipped, nil, nil},
			{"ours older", ours, []string{nodeID}, func(t *testing.T, c config.Config) {
				if c.SizeExp != 5 || c.BlockTimeout != time.Minute {
					t.Errorf("our defaults changed: %+v", c)
				}
			}},
			{"ours with persist", ours + "\toption persist '/etc/ddhcpd/state.json'\n", nil, nil},
			{"node id file off", ours + "\toption node_id_file ''\n", nil, nil},
			{"no settings section", "config ddhcpd\n\toption pool '10.0.0.0/24'\n", nil, nil},
			{"no file", "", nil, nil},
		} {
			t.Run(sh.name+"/"+tc.name, func(t *testing.T) {
				m := migrate(t, sh, tc.conf)
				if got := m.sets(t); !slices.Equal(got, tc.want) {
					t.Errorf("set %q, want %q", got, tc.want)
				}
				if tc.conf == "" {
					return
				}
				if tc.check != nil {
					tc.check(t, m.parsed(t))
				}
				// Once is enough: a second run changes nothing.
				if again := migrate(t, sh, m.conf); len(again.sets(t)) > 0 {
					t.Errorf("second run changed %q", again.sets(t))
				}
			})
		}
	}
}
