package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// files/etc/uci-defaults/zzzz-ddhcpd-firewall and the feed Makefile's
// postinst and prerm parts, run as OpenWrt runs them: sourced in a subshell
// with /lib/functions.sh loaded (testdata/openwrt's stand-in), the working
// directory the script's, against real UCI files changed by the fake uci
// (fakeuci_test.go). logger, ubus and killall are stubs that log their
// arguments.

const fwDefaultsPath = "files/etc/uci-defaults/zzzz-ddhcpd-firewall"

const stubCommand = `#!/bin/sh
{ printf '%s' "$(basename "$0")"; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >>"$STUB_LOG"
exit "${STUB_RC:-0}"
`

// The event the scripts send for the firewall to reload.
var firewallEvent = []string{"ubus", "call", "service", "event", `{"type":"config.change","data":{"package":"firewall"}}`}

// An OpenWrt firewall: defaults, lan, wan, and a zone for the mesh that
// rejects input. firewallRule is one of the rules already there.
const firewallBase = `
config defaults
	option input 'REJECT'
	option output 'ACCEPT'
	option forward 'REJECT'

config zone
	option name 'lan'
	list network 'lan'
	option input 'ACCEPT'

config zone
	option name 'wan'
	list network 'wan'
	list network 'wan6'
	option input 'REJECT'

config rule
	option name 'Allow-Ping'
	option src 'wan'
	option proto 'icmp'
	option target 'ACCEPT'
`

// fwRule is the rule the script adds for zone ZONE (section ddhcpd_SEC), as
// libuci writes it.
func fwRule(sec, zone string) string {
	return "\nconfig rule 'ddhcpd_" + sec + "'\n" +
		"\toption name 'Allow-ddhcpd-" + zone + "'\n" +
		"\toption src '" + zone + "'\n" +
		"\toption proto 'udp'\n" +
		"\toption dest_port '1234-1236'\n" +
		"\toption family 'ipv6'\n" +
		"\toption src_ip 'fe80::/10'\n" +
		"\toption target 'ACCEPT'\n"
}

// libuci's form of firewallBase (uci_export), for comparing whole files.
const firewallBaseExported = `
config defaults
	option input 'REJECT'
	option output 'ACCEPT'
	option forward 'REJECT'

config zone
	option name 'lan'
	list network 'lan'
	option input 'ACCEPT'

config zone
	option name 'wan'
	list network 'wan'
	list network 'wan6'
	option input 'REJECT'

config rule
	option name 'Allow-Ping'
	option src 'wan'
	option proto 'icmp'
	option target 'ACCEPT'
`

// fwEnv is one fake router for the firewall scripts.
type fwEnv struct {
	dir, conf, uciLog, stubLog, functions string
}

func newFWEnv(t *testing.T, files map[string]string) *fwEnv {
	t.Helper()
	dir := t.TempDir()
	e := &fwEnv{
		dir:       dir,
		conf:      filepath.Join(dir, "config"),
		stubLog:   filepath.Join(dir, "stub.log"),
		functions: filepath.Join(repoRoot(t), "src", "packaging", "testdata", "openwrt", "lib", "functions.sh"),
	}
	if err := os.MkdirAll(e.conf, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(e.conf, name), content, 0o600)
	}
	e.uciLog = installFakeUCI(t, dir)
	for _, c := range []string{"logger", "ubus", "killall"} {
		writeFile(t, filepath.Join(dir, "bin", c), stubCommand, 0o755)
	}
	return e
}

// source runs script as default_postinst and /etc/init.d/boot run a
// uci-defaults file, and default_prerm a prerm-pkg: in a subshell, from its
// directory, with functions.sh loaded. It returns the uci calls and the
// stubs' calls.
func (e *fwEnv) source(t *testing.T, sh shell, script string, env ...string) (r result, uci, stubs [][]string) {
	t.Helper()
	os.Remove(e.uciLog)
	os.Remove(e.stubLog)
	env = append([]string{
		"PATH=" + filepath.Join(e.dir, "bin") + ":" + os.Getenv("PATH"),
		"UCI_CONFIG_DIR=" + e.conf,
		"STUB_LOG=" + e.stubLog,
		"IPKG_INSTROOT=",
		"PKG_UPGRADE=",
	}, env...)
	argv := append(slices.Clone(sh.argv), "-c", `. "$1" && ( cd "$(dirname "$2")" && . "$2" )`, "sh", e.functions, script)
	r = run(t, 30*time.Second, e.dir, env, argv...)
	split := func(lines []string) [][]string {
		var out [][]string
		for _, l := range lines {
			out = append(out, strings.Split(l, "\t"))
		}
		return out
	}
	return r, split(readLines(t, e.uciLog)), split(readLines(t, e.stubLog))
}

func (e *fwEnv) firewall(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.conf, "firewall"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// uciSets are the calls that add rule SEC for ZONE.
func uciSets(sec, zone string) [][]string {
	pre := []string{"-q", "-c", "CONF"}
	var out [][]string
	for _, kv := range []string{
		"ddhcpd_" + sec + "=rule",
		"ddhcpd_" + sec + ".name=Allow-ddhcpd-" + zone,
		"ddhcpd_" + sec + ".src=" + zone,
		"ddhcpd_" + sec + ".proto=udp",
		"ddhcpd_" + sec + ".dest_port=1234-1236",
		"ddhcpd_" + sec + ".family=ipv6",
		"ddhcpd_" + sec + ".src_ip=fe80::/10",
		"ddhcpd_" + sec + ".target=ACCEPT",
	} {
		out = append(out, append(slices.Clone(pre), "set", "firewall."+kv))
	}
	return out
}

func uciCall(args ...string) []string { return append([]string{"-q", "-c", "CONF"}, args...) }

// withConf replaces the configuration directory in the logged uci calls.
func withConf(calls [][]string, conf string) [][]string {
	out := make([][]string, len(calls))
	for i, c := range calls {
		out[i] = slices.Clone(c)
		for j, a := range out[i] {
			if a == conf {
				out[i][j] = "CONF"
			}
		}
	}
	return out
}

func equalCalls(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func TestFirewallDefaultsScript(t *testing.T) {
	script := filepath.Join(repoRoot(t), fwDefaultsPath)
	st, err := os.Stat(script)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable", fwDefaultsPath)
	}
	for _, tc := range []struct {
		name            string
		ddhcpd, network string
		zones           string // appended to firewallBase
		rules           []string
		sets            [][]string
	}{
		{
			// OpenWrt 21.02+: the mesh device is an interface's device.
			name:    "interface device",
			ddhcpd:  "config ddhcpd 'settings'\n\tlist mesh_interface 'bat0'\n",
			network: "config interface 'lan'\n\toption device 'br-lan'\n\nconfig interface 'mesh'\n\toption device 'bat0'\n\toption proto 'static'\n",
			zones:   "\nconfig zone\n\toption name 'freifunk'\n\tlist network 'mesh'\n\toption input 'REJECT'\n",
			rules:   []string{fwRule("freifunk", "freifunk")},
			sets:    uciSets("freifunk", "freifunk"),
		},
		{
			// Gluon (batman-adv): bat0 is a port of the client bridge (the
			// pre-21.02 syntax Gluon writes), whose interface is in zone
			// mesh; bat0's own interface is in no zone. The gluon option
			// name.
			name:   "gluon bridge port",
			ddhcpd: "config ddhcpd 'settings'\n\toption server_interface 'bat0'\n",
			network: "config interface 'client'\n\toption type 'bridge'\n\tlist ifname 'bat0'\n\tlist ifname 'local-port'\n\toption proto 'dhcpv6'\n\n" +
				"config interface 'bat0'\n\toption ifname 'bat0'\n\toption proto 'none'\n\nconfig interface 'local_node'\n\toption device 'local-node'\n",
			zones: "\nconfig zone 'mesh'\n\toption name 'mesh'\n\tlist network 'client'\n\toption input 'REJECT'\n\n" +
				"config zone 'loc_client'\n\toption name 'loc_client'\n\tlist network 'local_node'\n\toption input 'REJECT'\n",
			rules: []string{fwRule("mesh", "mesh")},
			sets:  uciSets("mesh", "mesh"),
		},
		{
			// A 21.02+ bridge device with the mesh device as a port.
			name:    "bridge device port",
			ddhcpd:  "config ddhcpd 'settings'\n\tlist mesh_interface 'bat0'\n\tlist client_interface 'br-client'\n",
			network: "config device\n\toption name 'br-client'\n\toption type 'bridge'\n\tlist ports 'bat0'\n\tlist ports 'lan2'\n\nconfig interface 'client'\n\toption device 'br-client'\n",
			zones:   "\nconfig zone\n\toption name 'mesh'\n\toption network 'client'\n",
			rules:   []string{fwRule("mesh", "mesh")},
			sets:    uciSets("mesh", "mesh"),
		},
		{
			// Zones by device, with a wildcard; two mesh devices in two
			// zones; a zone name that is no UCI section name.
			name:    "zone devices",
			ddhcpd:  "config ddhcpd 'settings'\n\tlist mesh_interface 'bat0'\n\tlist mesh_interface 'wg-mesh'\n",
			network: "",
			zones:   "\nconfig zone\n\toption name 'mesh'\n\tlist device 'bat+'\n\nconfig zone\n\toption name 'vpn-mesh'\n\tlist device 'wg-mesh'\n\nconfig zone\n\toption name 'other'\n\tlist device 'wg+x'\n",
			rules:   []string{fwRule("mesh", "mesh"), fwRule("vpn_mesh", "vpn-mesh")},
			sets:    append(uciSets("mesh", "mesh"), uciSets("vpn_mesh", "vpn-mesh")...),
		},
		{
			// No mesh interface configured: br-client, the daemon's default.
			name:    "default interface",
			ddhcpd:  "config ddhcpd 'settings'\n\toption enabled '0'\n",
			network: "config interface 'client'\n\toption device 'br-client'\n",
			zones:   "\nconfig zone\n\toption name 'mesh'\n\tlist network 'client'\n",
			rules:   []string{fwRule("mesh", "mesh")},
			sets:    uciSets("mesh", "mesh"),
		},
	} {
		for _, sh := range shells(t) {
			t.Run(tc.name+"/"+sh.name, func(t *testing.T) {
				e := newFWEnv(t, map[string]string{
					"ddhcpd": tc.ddhcpd, "network": tc.network, "firewall": firewallBase + tc.zones,
				})
				r, uci, stubs := e.source(t, sh, script)
				if r.err != nil {
					t.Fatalf("script: %v\n%s%s", r.err, r.stdout, r.stderr)
				}
				want := firewallBaseExported + tc.zones + strings.Join(tc.rules, "") + "\n"
				if got := e.firewall(t); got != want {
					t.Errorf("firewall:\n%s\nwant:\n%s", got, want)
				}
				// Per zone: is the rule there, then the rule; then one commit.
				var wantUCI [][]string
				for i := 0; i < len(tc.sets); i += 8 {
					sec := strings.TrimSuffix(strings.TrimPrefix(tc.sets[i][4], "firewall."), "=rule")
					wantUCI = append(wantUCI, uciCall("get", "firewall."+sec))
					wantUCI = append(wantUCI, tc.sets[i:i+8]...)
				}
				wantUCI = append(wantUCI, uciCall("commit", "firewall"))
				if got := withConf(uci, e.conf); !equalCalls(got, wantUCI) {
					t.Errorf("uci calls:\n%q\nwant:\n%q", got, wantUCI)
				}
				if !equalCalls(stubs, [][]string{firewallEvent}) {
					t.Errorf("other calls %q, want the firewall's reload event", stubs)
				}

				// Again (an opkg upgrade, a sysupgrade's first boot): the
				// rules are there, nothing is added, nothing reloaded.
				before := e.firewall(t)
				r, uci, stubs = e.source(t, sh, script)
				if r.err != nil {
					t.Fatalf("second run: %v\n%s", r.err, r.stderr)
				}
				if got := e.firewall(t); got != before {
					t.Errorf("second run changed the firewall:\n%s", got)
				}
				for _, c := range uci {
					if c[len(c)-2] != "get" {
						t.Errorf("second run: uci %q", c)
					}
				}
				if len(stubs) != 0 {
					t.Errorf("second run: %q", stubs)
				}
			})
		}
	}
}

// TestFirewallDefaultsKeepsEditedRule: a rule the operator disabled or
// changed stays as it is.
func TestFirewallDefaultsKeepsEditedRule(t *testing.T) {
	script := filepath.Join(repoRoot(t), fwDefaultsPath)
	edited := "\nconfig rule 'ddhcpd_mesh'\n\toption name 'Allow-ddhcpd-mesh'\n\toption src 'mesh'\n\toption dest_port '1234-1235'\n\toption enabled '0'\n"
	fw := firewallBase + "\nconfig zone\n\toption name 'mesh'\n\tlist network 'client'\n" + edited
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			e := newFWEnv(t, map[string]string{
				"ddhcpd":   "config ddhcpd 'settings'\n\tlist mesh_interface 'br-client'\n",
				"network":  "config interface 'client'\n\toption device 'br-client'\n",
				"firewall": fw,
			})
			r, uci, stubs := e.source(t, sh, script)
			if r.err != nil {
				t.Fatalf("script: %v\n%s", r.err, r.stderr)
			}
			if got := e.firewall(t); got != fw {
				t.Errorf("firewall changed:\n%s", got)
			}
			if want := [][]string{uciCall("get", "firewall.ddhcpd_mesh")}; !equalCalls(withConf(uci, e.conf), want) {
				t.Errorf("uci calls %q, want %q", uci, want)
			}
			if len(stubs) != 0 {
				t.Errorf("calls %q", stubs)
			}
		})
	}
}

// TestFirewallDefaultsNothingToDo: without the firewall package nothing is
// asked; a mesh interface in no zone is logged, and the script still
// succeeds (a uci-defaults file that fails runs again at every boot).
func TestFirewallDefaultsNothingToDo(t *testing.T) {
	script := filepath.Join(repoRoot(t), fwDefaultsPath)
	ddhcpd := "config ddhcpd 'settings'\n\tlist mesh_interface 'bat0'\n\tlist mesh_interface 'mesh1'\n"
	for _, sh := range shells(t) {
		t.Run("no firewall/"+sh.name, func(t *testing.T) {
			e := newFWEnv(t, map[string]string{"ddhcpd": ddhcpd, "network": ""})
			r, uci, stubs := e.source(t, sh, script)
			if r.err != nil || len(uci) != 0 || len(stubs) != 0 {
				t.Errorf("without /etc/config/firewall: %v, uci %q, calls %q\n%s", r.err, uci, stubs, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(e.conf, "firewall")); err == nil {
				t.Errorf("a firewall config was made")
			}
		})
		t.Run("no zone/"+sh.name, func(t *testing.T) {
			e := newFWEnv(t, map[string]string{"ddhcpd": ddhcpd, "network": "", "firewall": firewallBase})
			r, uci, stubs := e.source(t, sh, script)
			if r.err != nil {
				t.Fatalf("script: %v\n%s", r.err, r.stderr)
			}
			if len(uci) != 0 {
				t.Errorf("uci calls %q", uci)
			}
			if got := e.firewall(t); got != firewallBase {
				t.Errorf("firewall changed:\n%s", got)
			}
			want := [][]string{{"logger", "-t", "ddhcpd", "-p", "daemon.notice",
				"no firewall zone holds the mesh interface(s) bat0 mesh1: if the mesh is firewalled, allow UDP 1234-1236 from fe80::/10 on it"}}
			if !equalCalls(stubs, want) {
				t.Errorf("calls %q, want %q", stubs, want)
			}
		})
	}
}

// feedScript is "define Package/ddhcpd/NAME" of the feed Makefile as
// package-pack.mk writes it into the package ($$ becomes $).
func feedScript(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "openwrt", "ddhcpd", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?ms)^define Package/ddhcpd/` + name + `\n(.*?)^endef$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("feed Makefile: no define Package/ddhcpd/%s", name)
	}
	body := string(m[1])
	// Make expands the define: every $ must be $$, or make eats it.
	if rest := strings.ReplaceAll(body, "$$", ""); strings.Contains(rest, "$") {
		t.Errorf("Package/ddhcpd/%s has a single $ (a make variable or a lost shell one):\n%s", name, body)
	}
	if !strings.HasPrefix(body, "#!/bin/sh\n") {
		t.Errorf("Package/ddhcpd/%s does not start with #!/bin/sh", name)
	}
	return strings.ReplaceAll(body, "$$", "$")
}

// TestFeedPrerm: the package's removal deletes the ddhcpd_* rules, and only
// them, and has the firewall reloaded; not in an image root, not on an
// upgrade, and quietly without a firewall.
func TestFeedPrerm(t *testing.T) {
	prerm := feedScript(t, "prerm")
	fw := firewallBaseExported + "\nconfig zone\n\toption name 'mesh'\n\tlist network 'client'\n" +
		fwRule("mesh", "mesh") + "\nconfig rule 'ddhcpd_notes'\n\toption name 'x'\n" + fwRule("vpn_mesh", "vpn-mesh") +
		"\nconfig redirect 'ddhcpd_keep'\n\toption name 'not a rule'\n\nconfig rule\n\toption name 'Allow-ddhcpd-by-hand'\n\n"
	wantFW := firewallBaseExported + "\nconfig zone\n\toption name 'mesh'\n\tlist network 'client'\n" +
		"\nconfig redirect 'ddhcpd_keep'\n\toption name 'not a rule'\n\nconfig rule\n\toption name 'Allow-ddhcpd-by-hand'\n\n"
	for _, sh := range shells(t) {
		t.Run("live/"+sh.name, func(t *testing.T) {
			e := newFWEnv(t, map[string]string{"firewall": fw})
			path := filepath.Join(e.dir, "info", "ddhcpd.prerm-pkg")
			writeFile(t, path, prerm, 0o755)
			r, uci, stubs := e.source(t, sh, path)
			if r.err != nil {
				t.Fatalf("prerm: %v\n%s", r.err, r.stderr)
			}
			if got := e.firewall(t); got != wantFW {
				t.Errorf("firewall:\n%s\nwant:\n%s", got, wantFW)
			}
			want := [][]string{
				uciCall("delete", "firewall.ddhcpd_mesh"), uciCall("delete", "firewall.ddhcpd_notes"),
				uciCall("delete", "firewall.ddhcpd_vpn_mesh"), uciCall("commit", "firewall"),
			}
			if got := withConf(uci, e.conf); !equalCalls(got, want) {
				t.Errorf("uci calls %q, want %q", got, want)
			}
			if !equalCalls(stubs, [][]string{firewallEvent}) {
				t.Errorf("calls %q, want the reload event", stubs)
			}
		})
		for _, env := range [][]string{{"IPKG_INSTROOT=/build/root"}, {"PKG_UPGRADE=1"}} {
			t.Run(env[0]+"/"+sh.name, func(t *testing.T) {
				e := newFWEnv(t, map[string]string{"firewall": fw})
				path := filepath.Join(e.dir, "info", "ddhcpd.prerm-pkg")
				writeFile(t, path, prerm, 0o755)
				r, uci, stubs := e.source(t, sh, path, env...)
				if r.err != nil || len(uci) != 0 || len(stubs) != 0 || e.firewall(t) != fw {
					t.Errorf("with %s: %v, uci %q, calls %q", env[0], r.err, uci, stubs)
				}
			})
		}
		t.Run("no rules/"+sh.name, func(t *testing.T) {
			e := newFWEnv(t, map[string]string{"firewall": firewallBase})
			path := filepath.Join(e.dir, "info", "ddhcpd.prerm-pkg")
			writeFile(t, path, prerm, 0o755)
			r, uci, stubs := e.source(t, sh, path)
			if r.err != nil || len(uci) != 0 || len(stubs) != 0 {
				t.Errorf("nothing to delete: %v, uci %q, calls %q", r.err, uci, stubs)
			}
		})
		t.Run("no firewall/"+sh.name, func(t *testing.T) {
			e := newFWEnv(t, nil)
			path := filepath.Join(e.dir, "info", "ddhcpd.prerm-pkg")
			writeFile(t, path, prerm, 0o755)
			r, uci, stubs := e.source(t, sh, path)
			if r.err != nil || len(uci) != 0 || len(stubs) != 0 {
				t.Errorf("without a firewall: %v, uci %q, calls %q\n%s", r.err, uci, stubs, r.stderr)
			}
		})
	}
}

// TestFeedPostinst: rpcd is told to read its plugins again on a live
// router; in an image root nothing happens; no rpcd running is no failure
// (default_postinst returns the part's status to opkg).
func TestFeedPostinst(t *testing.T) {
	postinst := feedScript(t, "postinst")
	for _, sh := range shells(t) {
		for _, tc := range []struct {
			name  string
			env   []string
			calls [][]string
		}{
			{"live", nil, [][]string{{"killall", "-HUP", "rpcd"}}},
			{"no rpcd", []string{"STUB_RC=1"}, [][]string{{"killall", "-HUP", "rpcd"}}},
			{"image", []string{"IPKG_INSTROOT=/build/root"}, nil},
		} {
			t.Run(tc.name+"/"+sh.name, func(t *testing.T) {
				e := newFWEnv(t, nil)
				path := filepath.Join(e.dir, "info", "ddhcpd.postinst-pkg")
				writeFile(t, path, postinst, 0o755)
				r, _, stubs := e.source(t, sh, path, tc.env...)
				if r.err != nil {
					t.Errorf("postinst: %v\n%s", r.err, r.stderr)
				}
				if !equalCalls(stubs, tc.calls) {
					t.Errorf("calls %q, want %q", stubs, tc.calls)
				}
			})
		}
	}
}
