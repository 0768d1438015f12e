package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The init script runs under testdata/openwrt/etc/rc.common, which sources
// the script, testdata/openwrt/lib/functions.sh (UCI files are read from
// UCI_CONFIG_DIR) and testdata/openwrt/lib/functions/procd.sh (every procd_*
// call is written to PROCD_LOG). logger and the daemon are stubs that log
// their arguments; the daemon's -check-config answers STUB_CHECK_RC with
// STUB_CHECK_OUTPUT.

const stubLogger = `#!/bin/sh
{ printf 'logger'; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >>"$LOGGER_LOG"
`

const stubDaemon = `#!/bin/sh
{ printf 'ddhcpd'; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >>"$PROG_LOG"
for a in "$@"; do
	if [ "$a" = -check-config ]; then
		[ -n "$STUB_CHECK_OUTPUT" ] && printf '%s\n' "$STUB_CHECK_OUTPUT"
		exit "${STUB_CHECK_RC:-0}"
	fi
done
exit 0
`

// The network configuration the interface triggers are looked up in: the
// 21.02+ form (a bridge device, interfaces naming it), two interfaces on one
// device, and a pre-21.02 bridge interface whose device is br-<name>.
const networkConf = `
config interface 'loopback'
	option device 'lo'
	option proto 'static'

config device
	option name 'br-client'
	option type 'bridge'
	list ports 'lan1'

config interface 'client'
	option device 'br-client'
	option proto 'static'

config interface 'client6'
	option device 'br-client'
	option proto 'dhcpv6'

config interface 'guest'
	option type 'bridge'
	option ifname 'eth0.3'
	option proto 'none'

config interface 'wan'
	option device 'eth1'
`

const validConf = `
config ddhcpd 'settings'
	option enabled '1'
	list mesh_interface 'bat0'
	list client_interface 'br-client'
	list client_interface 'br-guest'
	option pool '10.116.224.0/20'
`

// rcEnv is one fake router: UCI files, stubs and the logs they write.
type rcEnv struct {
	dir, uci, prog       string
	procdLog, loggerLog  string
	progLog, initScript  string
	rcCommon, fakeRoot   string
	checkRC, checkOutput string
	gluonHook, gluonArgs string // the gluon package's hook and arguments program (absent unless a test writes them)
}

func newRCEnv(t *testing.T, ddhcpdConf string) *rcEnv {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	e := &rcEnv{
		dir:        dir,
		uci:        filepath.Join(dir, "config"),
		prog:       filepath.Join(dir, "bin", "ddhcpd"),
		procdLog:   filepath.Join(dir, "procd.log"),
		loggerLog:  filepath.Join(dir, "logger.log"),
		progLog:    filepath.Join(dir, "prog.log"),
		initScript: filepath.Join(root, "files", "etc", "init.d", "ddhcpd"),
		fakeRoot:   filepath.Join(root, "src", "packaging", "testdata", "openwrt"),
		gluonHook:  filepath.Join(dir, "etc", "ddhcpd.hook"),
		gluonArgs:  filepath.Join(dir, "lib", "gluon", "ddhcpd", "arguments"),
	}
	e.rcCommon = filepath.Join(e.fakeRoot, "etc", "rc.common")
	if ddhcpdConf != "" {
		writeFile(t, filepath.Join(e.uci, "ddhcpd"), ddhcpdConf, 0o600)
	}
	writeFile(t, filepath.Join(e.uci, "network"), networkConf, 0o600)
	writeFile(t, filepath.Join(dir, "bin", "logger"), stubLogger, 0o755)
	writeFile(t, e.prog, stubDaemon, 0o755)
	return e
}

func (e *rcEnv) confFile() string { return filepath.Join(e.uci, "ddhcpd") }

// procdCall is one recorded procd_* call.
type procdCall struct {
	name string
	args []string
}

// rcRun is what one "/etc/init.d/ddhcpd ACTION" did.
type rcRun struct {
	result
	procd  []procdCall
	logs   [][]string // logger argument lists
	checks [][]string // daemon argument lists
}

func (e *rcEnv) run(t *testing.T, sh shell, action string) rcRun {
	t.Helper()
	for _, f := range []string{e.procdLog, e.loggerLog, e.progLog} {
		os.Remove(f)
	}
	env := []string{
		"PATH=" + filepath.Join(e.dir, "bin") + ":" + os.Getenv("PATH"),
		"IPKG_INSTROOT=" + e.fakeRoot,
		"UCI_CONFIG_DIR=" + e.uci,
		"PROCD_LOG=" + e.procdLog,
		"LOGGER_LOG=" + e.loggerLog,
		"PROG_LOG=" + e.progLog,
		"TEST_PROG=" + e.prog,
		"STUB_CHECK_RC=" + e.checkRC,
		"STUB_CHECK_OUTPUT=" + e.checkOutput,
		"TEST_GLUON_HOOK=" + e.gluonHook,
		"TEST_GLUON_ARGS=" + e.gluonArgs,
	}
	argv := append(slices.Clone(sh.argv), e.rcCommon, e.initScript, action)
	r := rcRun{result: run(t, 30*time.Second, e.dir, env, argv...)}
	split := func(lines []string) [][]string {
		var out [][]string
		for _, l := range lines {
			out = append(out, strings.Split(l, "\t"))
		}
		return out
	}
	for _, f := range split(readLines(t, e.procdLog)) {
		r.procd = append(r.procd, procdCall{f[0], f[1:]})
	}
	for _, f := range split(readLines(t, e.loggerLog)) {
		r.logs = append(r.logs, f[1:])
	}
	for _, f := range split(readLines(t, e.progLog)) {
		r.checks = append(r.checks, f[1:])
	}
	return r
}

// service is what one procd_open_service ... procd_close_service sent.
type service struct {
	name, script, method string
	instances            []map[string][]string
	reloadTriggers       []string // configuration packages
	interfaceTriggers    []string // logical interfaces
}

// services replays the recorded calls the way procd.sh builds its message.
func (r rcRun) services(t *testing.T) []service {
	t.Helper()
	var out []service
	var cur *service
	var inst map[string][]string
	for _, c := range r.procd {
		if cur == nil && c.name != "open_service" {
			t.Fatalf("%s outside procd_open_service/procd_close_service", c.name)
		}
		switch c.name {
		case "open_service":
			out = append(out, service{name: c.args[0], script: c.args[1]})
			cur = &out[len(out)-1]
		case "open_instance":
			inst = map[string][]string{}
		case "set_param", "append_param":
			if inst == nil {
				t.Fatalf("procd_%s %v outside an instance", c.name, c.args)
			}
			if c.name == "set_param" {
				inst[c.args[0]] = nil
			}
			inst[c.args[0]] = append(inst[c.args[0]], c.args[1:]...)
		case "close_instance":
			cur.instances = append(cur.instances, inst)
			inst = nil
		case "add_reload_trigger":
			cur.reloadTriggers = append(cur.reloadTriggers, c.args...)
		case "add_reload_interface_trigger":
			cur.interfaceTriggers = append(cur.interfaceTriggers, c.args...)
		case "close_service":
			cur.method = strings.Join(c.args, " ")
			cur = nil
		default:
			t.Errorf("unexpected procd call %s %v", c.name, c.args)
		}
	}
	if cur != nil {
		t.Fatalf("procd_open_service without procd_close_service")
	}
	return out
}

// logged reports whether some logger call has the ddhcpd tag, the priority
// and a message containing want.
func (r rcRun) logged(priority, want string) bool {
	for _, args := range r.logs {
		if len(args) == 0 {
			continue
		}
		msg := args[len(args)-1]
		if slices.Contains(args, "-t") && args[slices.Index(args, "-t")+1] == "ddhcpd" &&
			slices.Contains(args, "daemon."+priority) && strings.Contains(msg, want) {
			return true
		}
	}
	return false
}

func TestInitScriptHeader(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "files", "etc", "init.d", "ddhcpd"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "#!/bin/sh /etc/rc.common\n") {
		t.Errorf("first line is not #!/bin/sh /etc/rc.common")
	}
	if !regexp.MustCompile(`(?m)^USE_PROCD=1$`).MatchString(s) {
		t.Errorf("USE_PROCD=1 missing")
	}
	start := regexp.MustCompile(`(?m)^START=(\d\d)$`).FindStringSubmatch(s)
	stop := regexp.MustCompile(`(?m)^STOP=(\d\d)$`).FindStringSubmatch(s)
	if start == nil || stop == nil {
		t.Fatalf("START=NN and STOP=NN (two digits, for the rc.d links) missing")
	}
	// netifd's network script is START=20: the devices must be set up first.
	if n, _ := strconv.Atoi(start[1]); n <= 20 {
		t.Errorf("START=%d runs before network (20)", n)
	}
	if n, _ := strconv.Atoi(stop[1]); n >= 90 {
		t.Errorf("STOP=%d runs after network and umount (90)", n)
	}
	fi, err := os.Stat(filepath.Join(repoRoot(t), "files", "etc", "init.d", "ddhcpd"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("init script is not executable: %v", fi.Mode())
	}
}

func TestInitScriptStart(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			e := newRCEnv(t, validConf)
			r := e.run(t, sh, "start")
			if r.err != nil {
				t.Fatalf("start: %v\n%s%s", r.err, r.stdout, r.stderr)
			}
			// The daemon's own check ran once, on the file it will read.
			wantCheck := []string{"-uci", e.confFile(), "-check-config"}
			if len(r.checks) != 1 || !slices.Equal(r.checks[0], wantCheck) {
				t.Errorf("daemon calls %q, want one: %q", r.checks, wantCheck)
			}
			svcs := r.services(t)
			if len(svcs) != 1 {
				t.Fatalf("%d procd services, want 1: %v", len(svcs), r.procd)
			}
			s := svcs[0]
			if s.name != "ddhcpd" || s.script != e.initScript || s.method != "set" {
				t.Errorf("service %q script %q method %q", s.name, s.script, s.method)
			}
			if len(s.instances) != 1 {
				t.Fatalf("%d instances, want 1", len(s.instances))
			}
			in := s.instances[0]
			want := map[string][]string{
				"command":       {e.prog, "-uci", e.confFile(), "-syslog"},
				"stdout":        {"1"},
				"stderr":        {"1"},
				"file":          {e.confFile()},
				"netdev":        {"bat0", "br-client", "br-guest"},
				"reload_signal": {"HUP"},
			}
			for k, v := range want {
				if !slices.Equal(in[k], v) {
					t.Errorf("param %s = %q, want %q", k, in[k], v)
				}
			}
			// respawn: threshold, timeout, retry, all numbers.
			if rs := in["respawn"]; len(rs) != 3 {
				t.Errorf("respawn %q, want threshold, timeout and retry", rs)
			} else {
				for _, v := range rs {
					if _, err := strconv.Atoi(v); err != nil {
						t.Errorf("respawn %q: %q is not a number", rs, v)
					}
				}
			}
			for k := range in {
				if _, ok := want[k]; !ok && k != "respawn" {
					t.Errorf("unexpected param %s %q", k, in[k])
				}
			}
			if !slices.Contains(s.reloadTriggers, "ddhcpd") {
				t.Errorf("reload triggers %q lack the ddhcpd config", s.reloadTriggers)
			}
			// bat0 has no logical interface: its own name; br-client is the
			// device of client and client6; br-guest is the pre-21.02
			// bridge interface guest. wan and loopback are not ours.
			got := slices.Sorted(slices.Values(s.interfaceTriggers))
			if want := []string{"bat0", "client", "client6", "guest"}; !slices.Equal(got, want) {
				t.Errorf("interface triggers %q, want %q", got, want)
			}
		})
	}
}

func TestInitScriptDisabled(t *testing.T) {
	for _, sh := range shells(t) {
		for _, v := range []string{"0", "off", "false", "no", "disabled"} {
			t.Run(sh.name+"/"+v, func(t *testing.T) {
				e := newRCEnv(t, strings.Replace(validConf, "option enabled '1'", "option enabled '"+v+"'", 1))
				r := e.run(t, sh, "start")
				if r.err != nil {
					t.Fatalf("start: %v\n%s", r.err, r.stderr)
				}
				if len(r.checks) != 0 {
					t.Errorf("daemon ran while disabled: %q", r.checks)
				}
				svcs := r.services(t)
				if len(svcs) != 1 || len(svcs[0].instances) != 0 {
					t.Fatalf("want one service without instances, got %+v", svcs)
				}
				// Enabling it later with uci commit must reach the script.
				if !slices.Contains(svcs[0].reloadTriggers, "ddhcpd") {
					t.Errorf("no reload trigger while disabled: %q", svcs[0].reloadTriggers)
				}
				if !r.logged("notice", "enabled is 0") {
					t.Errorf("no log line saying why: %q", r.logs)
				}
			})
		}
	}
}

func TestInitScriptEnabledByDefault(t *testing.T) {
	sh := shells(t)[0]
	e := newRCEnv(t, strings.Replace(validConf, "option enabled '1'\n", "", 1))
	r := e.run(t, sh, "start")
	if svcs := r.services(t); len(svcs) != 1 || len(svcs[0].instances) != 1 {
		t.Errorf("without option enabled: %+v, want one instance", svcs)
	}
}

func TestInitScriptInvalidConfig(t *testing.T) {
	problems := []string{
		"/etc/config/ddhcpd:5: option block_size '9': not in 0..7",
		"/etc/config/ddhcpd:7: option pool '10.0.0.0/40': not an IPv4 prefix",
	}
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			e := newRCEnv(t, validConf)
			e.checkRC, e.checkOutput = "1", strings.Join(problems, "\n")
			r := e.run(t, sh, "start")
			svcs := r.services(t)
			if len(svcs) != 1 || len(svcs[0].instances) != 0 {
				t.Fatalf("started with an invalid config: %+v", svcs)
			}
			for _, p := range problems {
				if !r.logged("err", p) {
					t.Errorf("check output line %q not logged: %q", p, r.logs)
				}
			}
			if !r.logged("err", "not starting") {
				t.Errorf("no 'not starting' line: %q", r.logs)
			}
		})
	}
}

func TestInitScriptReload(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(sh.name+"/valid", func(t *testing.T) {
			e := newRCEnv(t, validConf)
			r := e.run(t, sh, "reload")
			if r.err != nil {
				t.Fatalf("reload: %v\n%s", r.err, r.stderr)
			}
			// One check, then procd gets the instance again: it compares
			// the file's checksum and the devices and sends reload_signal.
			if len(r.checks) != 1 {
				t.Errorf("daemon called %d times, want 1: %q", len(r.checks), r.checks)
			}
			svcs := r.services(t)
			if len(svcs) != 1 || len(svcs[0].instances) != 1 {
				t.Fatalf("reload sent %+v, want one service with one instance", svcs)
			}
			if sig := svcs[0].instances[0]["reload_signal"]; !slices.Equal(sig, []string{"HUP"}) {
				t.Errorf("reload_signal %q", sig)
			}
		})
		t.Run(sh.name+"/invalid", func(t *testing.T) {
			e := newRCEnv(t, validConf)
			e.checkRC, e.checkOutput = "1", "/etc/config/ddhcpd:3: option spare '-1': negative"
			r := e.run(t, sh, "reload")
			if r.err == nil {
				t.Errorf("reload with an invalid config succeeded")
			}
			// procd is not told anything: the running daemon keeps going.
			if len(r.procd) != 0 {
				t.Errorf("procd calls on an invalid reload: %v", r.procd)
			}
			if !r.logged("err", "option spare '-1': negative") || !r.logged("err", "not reloading") {
				t.Errorf("logs %q", r.logs)
			}
		})
		t.Run(sh.name+"/disabled", func(t *testing.T) {
			e := newRCEnv(t, strings.Replace(validConf, "option enabled '1'", "option enabled '0'", 1))
			e.checkRC = "1" // never asked
			r := e.run(t, sh, "reload")
			// A service without instances: procd stops the running one.
			svcs := r.services(t)
			if len(svcs) != 1 || len(svcs[0].instances) != 0 {
				t.Errorf("reload of a disabled config sent %+v, want no instance", svcs)
			}
			if len(r.checks) != 0 {
				t.Errorf("daemon ran: %q", r.checks)
			}
		})
	}
}

func TestInitScriptStop(t *testing.T) {
	sh := shells(t)[0]
	e := newRCEnv(t, validConf)
	r := e.run(t, sh, "stop")
	if r.err != nil {
		t.Fatalf("stop: %v\n%s", r.err, r.stderr)
	}
	if len(r.procd) != 1 || r.procd[0].name != "kill" || r.procd[0].args[0] != "ddhcpd" {
		t.Errorf("stop made procd calls %v, want procd_kill ddhcpd", r.procd)
	}
}

// TestInitScriptWithDaemon runs the init script against the packaged x86_64
// daemon instead of the stub: its -check-config decides, and its lines
// ("FILE:LINE: option X 'V': reason") end up in the log.
func TestInitScriptWithDaemon(t *testing.T) {
	if !hostIsAMD64() {
		t.Skip("runs the x86_64 package's binary")
	}
	dir, _ := builtIPKs(t)
	p := unpack(t, ipkFile(t, dir, "x86_64"))
	shipped := string(p.data["./etc/config/ddhcpd"].data)
	sh := shells(t)[0]

	e := newRCEnv(t, shipped)
	writeFile(t, e.prog, string(p.data["./usr/sbin/ddhcpd"].data), 0o755)
	probe := run(t, 30*time.Second, e.dir, nil, e.prog, "-uci", e.confFile(), "-check-config")
	if strings.Contains(probe.stderr, "flag provided but not defined") {
		t.Skipf("the daemon has no -uci/-check-config yet: %s", strings.TrimSpace(probe.stderr))
	}
	if probe.err != nil {
		t.Fatalf("the packaged /etc/config/ddhcpd does not pass -check-config: %v\n%s", probe.err, probe.stderr)
	}

	// As shipped: disabled.
	r := e.run(t, sh, "start")
	if svcs := r.services(t); len(svcs) != 1 || len(svcs[0].instances) != 0 {
		t.Errorf("shipped config (enabled 0) started the daemon: %+v", svcs)
	}

	// Enabled: started with the file.
	on := regexp.MustCompile(`(?m)^(\s*option enabled )'0'`).ReplaceAllString(shipped, "${1}'1'")
	writeFile(t, e.confFile(), on, 0o600)
	r = e.run(t, sh, "start")
	svcs := r.services(t)
	if len(svcs) != 1 || len(svcs[0].instances) != 1 {
		t.Fatalf("enabled shipped config: %+v, want one instance\n%q", svcs, r.logs)
	}
	// The daemon accepts the command line the script gives procd.
	command := svcs[0].instances[0]["command"]
	if probe := run(t, 30*time.Second, e.dir, nil, append(command, "-check-config")...); probe.err != nil || strings.TrimSpace(probe.stdout) != "ok" {
		t.Errorf("%q -check-config: %v\n%s%s", command, probe.err, probe.stdout, probe.stderr)
	}

	// A gluon node's file, with the gluon package's hook and extra
	// arguments: started, and the daemon takes the whole command line.
	gluon, err := os.ReadFile(filepath.Join(repoRoot(t), "src", "config", "testdata", "gluon.uci"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.confFile(), string(gluon), 0o600)
	writeFile(t, e.gluonHook, "#!/bin/sh\n", 0o755)
	writeFile(t, e.gluonArgs, "#!/bin/sh\necho -L -o 42:4:0x0a.0273.0x7f.1\n", 0o755)
	r = e.run(t, sh, "start")
	svcs = r.services(t)
	if len(svcs) != 1 || len(svcs[0].instances) != 1 {
		t.Fatalf("gluon config: %+v, want one instance\n%q", svcs, r.logs)
	}
	command = svcs[0].instances[0]["command"]
	if !slices.Contains(command, e.gluonHook) || !slices.Contains(command, "-L") {
		t.Errorf("gluon command line %q lacks the hook or the extra arguments", command)
	}
	if probe := run(t, 30*time.Second, e.dir, nil, append(command, "-check-config")...); probe.err != nil || strings.TrimSpace(probe.stdout) != "ok" {
		t.Errorf("%q -check-config: %v\n%s%s", command, probe.err, probe.stdout, probe.stderr)
	}
	os.Remove(e.gluonHook)
	os.Remove(e.gluonArgs)

	// Invalid: not started, and the daemon's reason is in the log.
	writeFile(t, e.confFile(), "config ddhcpd 'settings'\n\toption enabled '1'\n\toption pool '10.0.0.0/40'\n", 0o600)
	r = e.run(t, sh, "start")
	if svcs := r.services(t); len(svcs) != 1 || len(svcs[0].instances) != 0 {
		t.Errorf("invalid config started the daemon: %+v", svcs)
	}
	if !r.logged("err", e.confFile()+":3: option pool '10.0.0.0/40'") {
		t.Errorf("the daemon's complaint is not in the log: %q", r.logs)
	}
}

// TestInitScriptDevices: the devices come from the lists or plain options,
// from the gluon package's names too, without duplicates; none at all is
// br-client, the daemon's default.
func TestInitScriptDevices(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		netdev     []string
		triggers   []string
	}{
		{"options", `
config ddhcpd 'settings'
	option mesh_interface 'bat0 mesh1'
	option client_interface 'br-client'
`, []string{"bat0", "mesh1", "br-client"}, []string{"bat0", "client", "client6", "mesh1"}},
		{"gluon names", `
config ddhcpd 'settings'
	option server_interface 'bat0'
	option dhcp_interface 'br-client'
	list client_interface 'br-client'
`, []string{"bat0", "br-client"}, []string{"bat0", "client", "client6"}},
		{"none", `
config ddhcpd 'settings'
	option enabled '1'
`, []string{"br-client"}, []string{"client", "client6"}},
	} {
		for _, sh := range shells(t) {
			t.Run(tc.name+"/"+sh.name, func(t *testing.T) {
				e := newRCEnv(t, tc.conf)
				r := e.run(t, sh, "start")
				svcs := r.services(t)
				if len(svcs) != 1 || len(svcs[0].instances) != 1 {
					t.Fatalf("%+v, want one instance\n%s", svcs, r.stderr)
				}
				if got := svcs[0].instances[0]["netdev"]; !slices.Equal(got, tc.netdev) {
					t.Errorf("netdev %q, want %q", got, tc.netdev)
				}
				got := slices.Sorted(slices.Values(svcs[0].interfaceTriggers))
				if !slices.Equal(got, tc.triggers) {
					t.Errorf("interface triggers %q, want %q", got, tc.triggers)
				}
			})
		}
	}
}

// TestInitScriptGluon: what the gluon package's init script gave the C
// daemon besides its settings keeps coming: -H /etc/ddhcpd.hook when that
// hook exists and the file names no hook, and the words
// /lib/gluon/ddhcpd/arguments prints (not glob-expanded). The daemon's
// check sees them too.
func TestInitScriptGluon(t *testing.T) {
	const args = "#!/bin/sh\necho '-L -o 42:4:10.116.254.1' '*'\n"
	for _, sh := range shells(t) {
		for _, tc := range []struct {
			name       string
			hook, prog bool
			conf       string
			extra      []string
		}{
			{"hook and arguments", true, true, validConf, []string{"-H", "HOOK", "-L", "-o", "42:4:10.116.254.1", "*"}},
			{"hook", true, false, validConf, []string{"-H", "HOOK"}},
			{"arguments", false, true, validConf, []string{"-L", "-o", "42:4:10.116.254.1", "*"}},
			{"own hook", true, false, validConf + "\toption hook '/usr/lib/ddhcpd/hook'\n", nil},
			{"neither", false, false, validConf, nil},
		} {
			t.Run(sh.name+"/"+tc.name, func(t *testing.T) {
				e := newRCEnv(t, tc.conf)
				if tc.hook {
					writeFile(t, e.gluonHook, "#!/bin/sh\n", 0o755)
				}
				if tc.prog {
					writeFile(t, e.gluonArgs, args, 0o755)
				}
				// A file named * where the words are split: not expanded.
				writeFile(t, filepath.Join(e.dir, "glob-bait"), "", 0o644)
				var extra []string
				for _, a := range tc.extra {
					if a == "HOOK" {
						a = e.gluonHook
					}
					extra = append(extra, a)
				}
				for _, action := range []string{"start", "reload"} {
					r := e.run(t, sh, action)
					if r.err != nil {
						t.Fatalf("%s: %v\n%s", action, r.err, r.stderr)
					}
					svcs := r.services(t)
					if len(svcs) != 1 || len(svcs[0].instances) != 1 {
						t.Fatalf("%s: %+v", action, svcs)
					}
					want := append([]string{e.prog, "-uci", e.confFile(), "-syslog"}, extra...)
					if got := svcs[0].instances[0]["command"]; !slices.Equal(got, want) {
						t.Errorf("%s: command %q, want %q", action, got, want)
					}
					wantCheck := append([]string{"-uci", e.confFile(), "-check-config"}, extra...)
					if len(r.checks) != 1 || !slices.Equal(r.checks[0], wantCheck) {
						t.Errorf("%s: daemon calls %q, want one: %q", action, r.checks, wantCheck)
					}
				}
			})
		}
	}
}
