package packaging

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"ddhcpd/src/config"
	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
)

// The Debian package for mesh gateways (scripts/deb.sh, make deb): its
// archive and control fields, the hardening of its systemd unit, its
// conffile and maintainer scripts, an installation with dpkg into a scratch
// root, and the service started from the installed unit's ExecStart in the
// unit's sandbox (launch, at the end of this file) inside a network
// namespace, where it must answer ddhcpctl and hand a DHCP lease to a client.
// Then an upgrade keeps the edited conffile, and remove and purge clean up.

// debArchs maps GOARCH to the Debian architecture of the package the test
// builds and runs: the host's.
var debArchs = map[string]struct {
	arch    string
	machine elf.Machine
}{
	"amd64": {"amd64", elf.EM_X86_64},
	"arm64": {"arm64", elf.EM_AARCH64},
}

const (
	debConffile = "/etc/ddhcpd/ddhcpd"
	debUnit     = "/lib/systemd/system/ddhcpd.service"
	debTmpfiles = "/usr/lib/tmpfiles.d/ddhcpd.conf"
)

// The unit's hardening, as required; the sets are compared whole.
var (
	wantCaps     = []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}
	wantFamilies = []string{"AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"}
	wantSettings = map[string]string{
		"ProtectSystem":    "strict",
		"ProtectHome":      "yes",
		"PrivateTmp":       "yes",
		"NoNewPrivileges":  "yes",
		"StateDirectory":   "ddhcpd",
		"RuntimeDirectory": "ddhcpd",
		"Restart":          "on-failure",
	}
)

// debEntryWant is the package's file list as dpkg-deb -c prints it.
var debEntryWant = map[string]string{
	"./":                                  "drwxr-xr-x",
	"./etc/":                              "drwxr-xr-x",
	"./etc/ddhcpd/":                       "drwxr-xr-x",
	"./etc/ddhcpd/ddhcpd":                 "-rw-r--r--",
	"./lib/":                              "drwxr-xr-x",
	"./lib/systemd/":                      "drwxr-xr-x",
	"./lib/systemd/system/":               "drwxr-xr-x",
	"./lib/systemd/system/ddhcpd.service": "-rw-r--r--",
	"./usr/":                              "drwxr-xr-x",
	"./usr/lib/":                          "drwxr-xr-x",
	"./usr/lib/tmpfiles.d/":               "drwxr-xr-x",
	"./usr/lib/tmpfiles.d/ddhcpd.conf":    "-rw-r--r--",
	"./usr/sbin/":                         "drwxr-xr-x",
	"./usr/sbin/ddhcpd":                   "-rwxr-xr-x",
	"./usr/sbin/ddhcpctl":                 "lrwxrwxrwx -> ddhcpd",
	"./usr/share/":                        "drwxr-xr-x",
	"./usr/share/doc/":                    "drwxr-xr-x",
	"./usr/share/doc/ddhcpd/":             "drwxr-xr-x",
	"./usr/share/doc/ddhcpd/copyright":    "-rw-r--r--",
}

// debControlWant are the control members and their modes.
var debControlWant = map[string]os.FileMode{
	"control": 0o644, "conffiles": 0o644, "md5sums": 0o644,
	"postinst": 0o755, "prerm": 0o755, "postrm": 0o755,
}

// debFixture is the package under test and what was unpacked from it.
type debFixture struct {
	file   string // the .deb
	arch   string
	fixed  bool   // built here with testVersion
	binDir string // scripts/deb.sh's -o directory (binaries from cross.sh), "" when not built here
	data   string // dpkg-deb -x
	ctl    string // dpkg-deb -e
	fields map[string]string
	unit   unitFile
}

func TestDeb(t *testing.T) {
	a, ok := debArchs[runtime.GOARCH]
	if !ok {
		t.Skipf("the Debian package is built for amd64 and arm64, not %s", runtime.GOARCH)
	}
	for _, tool := range []string{"dpkg-deb", "dpkg", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (Debian's dpkg; scripts/deps-pkg.sh): %v", tool, err)
		}
	}
	f := &debFixture{arch: a.arch}
	f.file, f.binDir, f.fixed = builtDeb(t, a.arch)
	tmp := t.TempDir()
	f.data, f.ctl = filepath.Join(tmp, "data"), filepath.Join(tmp, "control")
	mustRun(t, 30*time.Second, "", nil, "dpkg-deb", "-x", f.file, f.data)
	mustRun(t, 30*time.Second, "", nil, "dpkg-deb", "-e", f.file, f.ctl)
	f.fields = controlFields(t, mustRun(t, 30*time.Second, "", nil, "dpkg-deb", "-f", f.file))

	t.Run("Archive", func(t *testing.T) { checkDebArchive(t, f) })
	t.Run("Control", func(t *testing.T) { checkDebControl(t, f) })
	t.Run("Binary", func(t *testing.T) { checkDebBinary(t, f, a.machine) })
	t.Run("Unit", func(t *testing.T) { checkDebUnit(t, f) })
	if f.unit == nil {
		return // the tests below need a unit they understand
	}
	t.Run("Conffile", func(t *testing.T) { checkDebConffile(t, f) })
	t.Run("Reproducible", func(t *testing.T) { checkDebReproducible(t, f) })
	t.Run("MaintainerScripts", func(t *testing.T) { checkDebScripts(t, f) })
	t.Run("Install", func(t *testing.T) { checkDebInstall(t, f) })
}

// builtDeb builds the package for arch with scripts/deb.sh into a temporary
// directory (which also holds the binary cross.sh built), or with
// DDHCPD_DEB_DIR set takes make deb's package from that directory.
func builtDeb(t *testing.T, arch string) (file, binDir string, fixed bool) {
	t.Helper()
	dir := os.Getenv("DDHCPD_DEB_DIR")
	if dir == "" {
		if testing.Short() {
			t.Skip("building the package compiles the daemon: not in -short")
		}
		dir = filepath.Join(t.TempDir(), "dist")
		// One core, as for the .ipk: "go test ./..." runs timing-sensitive
		// namespace tests of other packages at the same time.
		out := run(t, 10*time.Minute, repoRoot(t), []string{"VERSION=" + testVersion,
			"SOURCE_DATE_EPOCH=" + testEpoch, "GOMAXPROCS=1", "GOFLAGS=-p=1"},
			filepath.Join(repoRoot(t), "scripts", "deb.sh"), "-o", dir, arch)
		if out.err != nil {
			t.Fatalf("scripts/deb.sh: %v\n%s%s", out.err, out.stdout, out.stderr)
		}
		binDir, fixed = dir, true
	}
	m, err := filepath.Glob(filepath.Join(dir, "ddhcpd_*_"+arch+".deb"))
	if err != nil || len(m) != 1 {
		t.Fatalf("want one ddhcpd_*_%s.deb in %s, found %q", arch, dir, m)
	}
	return m[0], binDir, fixed
}

// mustRun runs argv and returns its standard output; a failure fails the test.
func mustRun(t *testing.T, timeout time.Duration, dir string, env []string, argv ...string) string {
	t.Helper()
	out := run(t, timeout, dir, env, argv...)
	if out.err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(argv, " "), out.err, out.stdout, out.stderr)
	}
	return out.stdout
}

// controlFields parses Debian control fields ("Field: value", continuation
// lines start with a blank).
func controlFields(t *testing.T, text string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if strings.HasPrefix(line, " ") && last != "" {
			fields[last] += "\n" + line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Errorf("control line %q is not 'Field: value'", line)
			continue
		}
		if _, dup := fields[k]; dup {
			t.Errorf("control field %s twice", k)
		}
		fields[k], last = strings.TrimSpace(v), k
	}
	return fields
}

// checkDebArchive: exactly the expected files, owned by root, with their
// modes; the control members; md5sums that match the files.
func checkDebArchive(t *testing.T, f *debFixture) {
	listing := mustRun(t, 30*time.Second, "", nil, "dpkg-deb", "-c", f.file)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		// drwxr-xr-x root/root 0 2023-11-14 22:13 ./etc/ [-> target]
		fs := strings.Fields(line)
		if len(fs) < 6 {
			t.Errorf("dpkg-deb -c line %q", line)
			continue
		}
		name, got := fs[5], fs[0]
		if len(fs) == 8 && fs[6] == "->" {
			got += " -> " + fs[7]
		}
		seen[name] = true
		want, ok := debEntryWant[name]
		switch {
		case !ok:
			t.Errorf("package has unexpected %s", name)
		case got != want:
			t.Errorf("%s is %q, want %q", name, got, want)
		}
		if fs[1] != "root/root" {
			t.Errorf("%s owned by %s, want root/root", name, fs[1])
		}
	}
	for name := range debEntryWant {
		if !seen[name] {
			t.Errorf("package lacks %s", name)
		}
	}

	entries, err := os.ReadDir(f.ctl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if mode, ok := debControlWant[e.Name()]; !ok {
			t.Errorf("control archive has unexpected %s", e.Name())
		} else if info.Mode() != mode {
			t.Errorf("control %s mode %v, want %v", e.Name(), info.Mode(), mode)
		}
	}
	if want := slices.Sorted(maps.Keys(debControlWant)); !slices.Equal(names, want) {
		t.Errorf("control members %q, want %q", names, want)
	}

	// md5sums covers every regular file, and only those.
	sums := map[string]string{}
	for _, line := range readLines(t, filepath.Join(f.ctl, "md5sums")) {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Errorf("md5sums line %q", line)
			continue
		}
		sums["./"+name] = sum
	}
	for name, mode := range debEntryWant {
		if !strings.HasPrefix(mode, "-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.data, name))
		if err != nil {
			t.Fatal(err)
		}
		h := md5.Sum(b)
		if got, want := sums[name], hex.EncodeToString(h[:]); got != want {
			t.Errorf("md5sums has %q for %s, want %s", got, name, want)
		}
		delete(sums, name)
	}
	for name := range sums {
		t.Errorf("md5sums names %s, which is no file of the package", name)
	}

	// The packaged files are the repository's.
	for _, p := range []string{debUnit, debConffile, debTmpfiles, "/usr/share/doc/ddhcpd/copyright"} {
		got, err := os.ReadFile(filepath.Join(f.data, p))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(repoRoot(t), "files", "debian", p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("packaged %s differs from files/debian%s", p, p)
		}
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		got, _ := os.ReadFile(filepath.Join(f.ctl, s))
		want, _ := os.ReadFile(filepath.Join(repoRoot(t), "files", "debian", "DEBIAN", s))
		if !bytes.Equal(got, want) || !bytes.HasPrefix(got, []byte("#!/bin/sh\n")) {
			t.Errorf("control %s differs from files/debian/DEBIAN/%s or is no /bin/sh script", s, s)
		}
	}
}

func checkDebControl(t *testing.T, f *debFixture) {
	fl := f.fields
	for _, k := range []string{"Package", "Version", "Architecture", "Maintainer", "Installed-Size",
		"Section", "Priority", "Description"} {
		if fl[k] == "" {
			t.Errorf("control field %s missing or empty", k)
		}
	}
	want := map[string]string{"Package": "ddhcpd", "Architecture": f.arch, "Section": "net", "Priority": "optional"}
	for k, v := range want {
		if fl[k] != v {
			t.Errorf("%s: %q, want %q", k, fl[k], v)
		}
	}
	// A static binary needs no libc; nothing else is needed either.
	for _, k := range []string{"Depends", "Pre-Depends", "Recommends"} {
		if v, ok := fl[k]; ok {
			t.Errorf("%s: %q for a static binary", k, v)
		}
	}
	if f.fixed && fl["Version"] != testPkgVersion {
		t.Errorf("Version %q, want %q (from VERSION=%s)", fl["Version"], testPkgVersion, testVersion)
	}
	if r := run(t, 10*time.Second, "", nil, "dpkg", "--validate-version", fl["Version"]); r.err != nil {
		t.Errorf("Version %q is no valid Debian version: %s", fl["Version"], r.stderr)
	}
	if want := "ddhcpd_" + fl["Version"] + "_" + f.arch + ".deb"; filepath.Base(f.file) != want {
		t.Errorf("file name %s, want %s", filepath.Base(f.file), want)
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "openwrt", "ddhcpd", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^PKG_MAINTAINER:=(.*)$`).FindSubmatch(mk); m == nil {
		t.Errorf("openwrt/ddhcpd/Makefile has no PKG_MAINTAINER")
	} else if got := fl["Maintainer"]; got != strings.TrimSpace(string(m[1])) {
		t.Errorf("Maintainer %q, want the feed's %q", got, m[1])
	}
	if short, long, _ := strings.Cut(fl["Description"], "\n"); short == "" || len(long) < 100 {
		t.Errorf("Description needs a synopsis and a long description: %q", fl["Description"])
	}
	// Installed-Size is KiB: at least the files' sizes.
	size, err := strconv.Atoi(fl["Installed-Size"])
	if err != nil {
		t.Fatalf("Installed-Size %q: %v", fl["Installed-Size"], err)
	}
	var sum int64
	for name, mode := range debEntryWant {
		if info, err := os.Lstat(filepath.Join(f.data, name)); err == nil && strings.HasPrefix(mode, "-") {
			sum += info.Size()
		}
	}
	if kib := int((sum + 1023) / 1024); size < kib || size > kib+len(debEntryWant)+8 {
		t.Errorf("Installed-Size %d KiB does not fit the files' %d bytes", size, sum)
	}
	if got := readLines(t, filepath.Join(f.ctl, "conffiles")); !slices.Equal(got, []string{debConffile}) {
		t.Errorf("conffiles %q, want %s", got, debConffile)
	}
	cp, err := os.ReadFile(filepath.Join(f.data, "usr/share/doc/ddhcpd/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
		"Files: *", "License: GPL-3.0-or-later", "/usr/share/common-licenses/GPL-3"} {
		if !bytes.Contains(cp, []byte(s)) {
			t.Errorf("copyright lacks %q", s)
		}
	}
	t.Logf("%s: Version %s, Installed-Size %s KiB", filepath.Base(f.file), fl["Version"], fl["Installed-Size"])
}

// checkDebBinary: a static ELF of the architecture, built without cgo; it
// runs, tells its version, and acts as ddhcpctl through the symlink.
func checkDebBinary(t *testing.T, f *debFixture, machine elf.Machine) {
	bin := filepath.Join(f.data, "usr", "sbin", "ddhcpd")
	e, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Machine != machine {
		t.Errorf("binary for %v, want %v", e.Machine, machine)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has %v: not static", p.Type)
		}
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range bi.Settings {
		if s.Key == "CGO_ENABLED" && s.Value != "0" {
			t.Errorf("built with CGO_ENABLED=%s", s.Value)
		}
	}
	out := mustRun(t, 10*time.Second, "", nil, bin, "-V")
	if f.fixed && out != "ddhcpd "+testVersion+"\n" {
		t.Errorf("ddhcpd -V says %q, want %q", out, "ddhcpd "+testVersion)
	}
	ctl := run(t, 10*time.Second, "", nil, filepath.Join(f.data, "usr", "sbin", "ddhcpctl"), "-h")
	if ctl.err != nil || !strings.Contains(ctl.stdout, "usage: ddhcpctl") {
		t.Errorf("ddhcpctl -h (the symlink): %v %q", ctl.err, ctl.stdout)
	}
}

// unitFile is a parsed systemd unit: section -> key -> values, in order. An
// empty assignment resets a key, as in systemd.
type unitFile map[string]map[string][]string

func parseUnit(text string) (unitFile, error) {
	u := unitFile{}
	sec := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasSuffix(line, "\\"):
			return nil, fmt.Errorf("line %d: continuation lines are not understood by this test", i+1)
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = line[1 : len(line)-1]
			if u[sec] == nil {
				u[sec] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || sec == "" {
			return nil, fmt.Errorf("line %d: %q", i+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" {
			delete(u[sec], k)
			continue
		}
		u[sec][k] = append(u[sec][k], v)
	}
	return u, nil
}

// last is the value in force of a single-valued setting.
func (u unitFile) last(sec, key string) string {
	v := u[sec][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// words is a list setting's words over all its lines.
func (u unitFile) words(sec, key string) []string {
	var out []string
	for _, v := range u[sec][key] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// execStart is ExecStart's command line. Prefixes (+ would run it outside
// the sandbox), quotes and specifiers are refused: this test does not
// implement systemd's rules for them.
func (u unitFile) execStart() ([]string, error) {
	v := u["Service"]["ExecStart"]
	if len(v) != 1 {
		return nil, fmt.Errorf("want one ExecStart, have %q", v)
	}
	if strings.ContainsAny(v[0], `"'$%\`) || strings.ContainsAny(v[0][:1], "-@+!:") {
		return nil, fmt.Errorf("ExecStart %q: prefixes, quotes, variables and specifiers are not understood here", v[0])
	}
	return strings.Fields(v[0]), nil
}

// checkDebUnit: the hardening the service must have, a foreground daemon
// reading the conffile, and systemd's own offline assessment.
// A unit that parses is kept in f.unit, even if it fails these checks: the
// service test then shows what the failing settings do.
func checkDebUnit(t *testing.T, f *debFixture) {
	b, err := os.ReadFile(filepath.Join(f.data, debUnit))
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.execStart(); err != nil {
		t.Fatal(err)
	}
	f.unit = u
	for k, want := range wantSettings {
		if got := u.last("Service", k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		if got := slices.Sorted(slices.Values(u.words("Service", k))); !slices.Equal(got, wantCaps) {
			t.Errorf("%s=%q, want exactly %q", k, got, wantCaps)
		}
	}
	if got := slices.Sorted(slices.Values(u.words("Service", "RestrictAddressFamilies"))); !slices.Equal(got, wantFamilies) {
		t.Errorf("RestrictAddressFamilies=%q, want exactly %q", got, wantFamilies)
	}
	if user := u.last("Service", "User"); user != "" && user != "root" {
		t.Errorf("User=%s: the test runs the service as root", user)
	}
	// The daemon stays in the foreground: a forking type would make systemd
	// wait for a fork that never comes.
	if typ := u.last("Service", "Type"); typ != "" && typ != "simple" && typ != "exec" {
		t.Errorf("Type=%s, want simple or exec (the daemon runs in the foreground)", typ)
	}
	argv, err := u.execStart()
	if err != nil {
		t.Fatal(err)
	}
	if argv[0] != "/usr/sbin/ddhcpd" {
		t.Errorf("ExecStart runs %s, want /usr/sbin/ddhcpd", argv[0])
	}
	if i := slices.Index(argv, "-uci"); i < 0 || i+1 >= len(argv) || argv[i+1] != debConffile {
		t.Errorf("ExecStart %q does not read %s with -uci", argv, debConffile)
	}
	if got := u.last("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy=%q, want multi-user.target", got)
	}
	for _, c := range u["Service"]["ExecReload"] {
		if strings.HasPrefix(c, "+") || strings.HasPrefix(c, "!") {
			t.Errorf("ExecReload=%s runs outside the sandbox", c)
		}
	}

	// systemd's offline security assessment of the installed unit (0 is
	// the best, 10 the worst; the threshold is in tenths). Without the
	// sandbox directives it is 9 or more.
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze is needed (Debian's systemd package; scripts/deps-pkg.sh): %v", err)
	}
	r := run(t, 30*time.Second, "", nil, "systemd-analyze", "--root="+f.data, "security",
		"--offline=true", "--threshold=50", "--no-pager", "ddhcpd.service")
	if r.err != nil {
		t.Errorf("systemd-analyze security: %v\n%s%s", r.err, r.stdout, r.stderr)
	} else if i := strings.Index(r.stdout, "Overall exposure level"); i >= 0 {
		t.Logf("systemd-analyze security: %s", strings.TrimSpace(r.stdout[i:]))
	}
}

// checkDebConffile: the conffile is valid for the packaged daemon (no
// warnings either), keeps its state in the unit's StateDirectory and its
// socket in the RuntimeDirectory, and ddhcpctl's default socket path leads to
// that socket through the tmpfiles symlink. It documents every option the
// OpenWrt file does, except OpenWrt's enabled.
func checkDebConffile(t *testing.T, f *debFixture) {
	conf := filepath.Join(f.data, debConffile)
	r := run(t, 10*time.Second, "", nil, filepath.Join(f.data, "usr", "sbin", "ddhcpd"), "-uci", conf, "-check-config")
	if r.err != nil || r.stdout != "ok\n" || r.stderr != "" {
		t.Errorf("ddhcpd -uci %s -check-config: %v %q %q", debConffile, r.err, r.stdout, r.stderr)
	}
	cfg, err := config.Parse([]string{"-uci", conf})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if want := "/var/lib/" + f.unit.last("Service", "StateDirectory"); cfg.StateDir != want {
		t.Errorf("state_dir %q, want the unit's state directory %s", cfg.StateDir, want)
	}
	runDir := "/run/" + f.unit.last("Service", "RuntimeDirectory")
	if filepath.Dir(cfg.ControlSocket) != runDir {
		t.Errorf("control_socket %q is not in the unit's runtime directory %s", cfg.ControlSocket, runDir)
	}
	if cfg.Persist != "" && !strings.HasPrefix(cfg.Persist, cfg.StateDir+"/") {
		t.Errorf("persist %q is outside the writable state directory", cfg.Persist)
	}
	// ddhcpctl's default, /var/run/ddhcpd.sock, is /run/ddhcpd.sock on
	// Debian (/var/run -> /run).
	dflt := strings.Replace(config.DefaultControlSocket, "/var/run/", "/run/", 1)
	var link []string
	for _, line := range readLines(t, filepath.Join(f.data, debTmpfiles)) {
		if fs := strings.Fields(line); len(fs) == 7 && fs[0] == "L" && fs[1] == dflt {
			link = fs
		}
	}
	if link == nil {
		t.Errorf("%s has no 'L %s' line", debTmpfiles, dflt)
	} else if target := filepath.Join(filepath.Dir(dflt), link[6]); target != cfg.ControlSocket {
		t.Errorf("%s -> %s, want the control socket %s", dflt, target, cfg.ControlSocket)
	}

	names := func(path string) map[string]bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\s*#?\s*(?:option|list)\s+(\w+)`).FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
		return out
	}
	deb := names(conf)
	for name := range names(filepath.Join(repoRoot(t), "files", "etc", "config", "ddhcpd")) {
		if !deb[name] && name != "enabled" {
			t.Errorf("the Debian conffile does not mention option %s of files/etc/config/ddhcpd", name)
		}
	}
	if deb["enabled"] {
		t.Errorf("the Debian conffile has option enabled, which only OpenWrt's init script reads")
	}
}

// checkDebReproducible: the same binary, version and time give the same
// package, byte for byte.
func checkDebReproducible(t *testing.T, f *debFixture) {
	if !f.fixed {
		t.Skip("only for a package built by this test")
	}
	out := filepath.Join(t.TempDir(), "dist")
	cross := map[string]string{"amd64": "x86_64", "arm64": "aarch64_cortex-a53"}[f.arch]
	bin, err := os.ReadFile(filepath.Join(f.binDir, cross, "ddhcpd"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(out, cross, "ddhcpd"), string(bin), 0o755)
	mustRun(t, time.Minute, repoRoot(t), []string{"VERSION=" + testVersion, "SOURCE_DATE_EPOCH=" + testEpoch},
		filepath.Join(repoRoot(t), "scripts", "deb.sh"), "-n", "-o", out, f.arch)
	a, _ := os.ReadFile(f.file)
	b, err := os.ReadFile(filepath.Join(out, filepath.Base(f.file)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("a second build of the same binary gives a different package")
	}
}

// Stand-ins for systemd's tools: each call is logged, one line per call.
const fakeSystemdTool = `#!/bin/sh
printf '%s\n' "$(basename "$0") $*" >>"$FAKE_LOG"
exit "${FAKE_RC:-0}"
`

// fakeBin makes a directory with systemctl and systemd-tmpfiles stand-ins.
func fakeBin(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fakebin")
	for _, n := range []string{"systemctl", "systemd-tmpfiles"} {
		writeFile(t, filepath.Join(dir, n), fakeSystemdTool, 0o755)
	}
	return dir
}

// runScript runs a maintainer script in a mount namespace of its own whose
// /run is an empty tmpfs; with systemd the script finds /run/systemd/system
// there, as on a system that systemd runs. Nothing outside is touched.
func runScript(t *testing.T, script string, systemd bool, env []string, args ...string) (calls []string, r result) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "calls.log")
	mkdir := ":"
	if systemd {
		mkdir = "mkdir -p /run/systemd/system"
	}
	mnt, err := exec.LookPath("mount")
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
		mnt + ` -t tmpfs tmpfs /run && ` + strings.Replace(mkdir, "mkdir", "/bin/mkdir", 1) + ` && exec "$@"`, "sh", script}, args...)
	r = run(t, 30*time.Second, "", append([]string{"FAKE_LOG=" + log}, env...), argv...)
	return readLines(t, log), r
}

// checkDebScripts: the maintainer scripts call systemctl only where systemd
// runs the system, never enable or start the service, restart it only on an
// upgrade if it runs, stop it on removal, and succeed without systemctl.
func checkDebScripts(t *testing.T, f *debFixture) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	fake := fakeBin(t)
	empty := t.TempDir()
	withFake := "PATH=" + fake + ":/usr/sbin:/usr/bin:/sbin:/bin"
	cases := []struct {
		name    string
		script  string
		args    []string
		systemd bool
		env     []string
		want    []string
		fails   bool
	}{
		{"install", "postinst", []string{"configure", ""}, true, nil,
			[]string{"systemctl --system daemon-reload", "systemd-tmpfiles --create ddhcpd.conf"}, false},
		{"upgrade", "postinst", []string{"configure", "1.0"}, true, nil,
			[]string{"systemctl --system daemon-reload", "systemd-tmpfiles --create ddhcpd.conf",
				"systemctl try-restart ddhcpd.service"}, false},
		{"systemctl fails", "postinst", []string{"configure", "1.0"}, true, []string{"FAKE_RC=1"},
			[]string{"systemctl --system daemon-reload", "systemd-tmpfiles --create ddhcpd.conf",
				"systemctl try-restart ddhcpd.service"}, false},
		{"abort-upgrade", "postinst", []string{"abort-upgrade", "1.0"}, true, nil, nil, false},
		{"no systemd", "postinst", []string{"configure", ""}, false, nil, nil, false},
		{"DPKG_ROOT", "postinst", []string{"configure", ""}, true, []string{"DPKG_ROOT=" + empty}, nil, false},
		{"no systemctl", "postinst", []string{"configure", ""}, true, []string{"PATH=" + empty}, nil, false},
		{"unknown", "postinst", []string{"bogus"}, true, nil, nil, true},
		{"remove", "prerm", []string{"remove"}, true, nil, []string{"systemctl stop ddhcpd.service"}, false},
		{"prerm upgrade", "prerm", []string{"upgrade", "2.0"}, true, nil, nil, false},
		{"prerm no systemd", "prerm", []string{"remove"}, false, nil, nil, false},
		{"postrm remove", "postrm", []string{"remove"}, true, nil, []string{"systemctl --system daemon-reload"}, false},
		{"postrm upgrade", "postrm", []string{"upgrade", "2.0"}, true, nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := append([]string{withFake}, c.env...)
			calls, r := runScript(t, filepath.Join(f.ctl, c.script), c.systemd, env, c.args...)
			if (r.err != nil) != c.fails {
				t.Errorf("%s %q: %v (want failure: %v)\n%s%s", c.script, c.args, r.err, c.fails, r.stdout, r.stderr)
			}
			if !slices.Equal(calls, c.want) {
				t.Errorf("%s %q called %q, want %q", c.script, c.args, calls, c.want)
			}
		})
	}
}

// dpkgRoot runs dpkg on the scratch root, maintainer scripts outside a
// chroot with DPKG_ROOT set (the root has no shell), with the systemd
// stand-ins first on PATH: with DPKG_ROOT the scripts must not call them.
func dpkgRoot(t *testing.T, root, fake string, args ...string) string {
	t.Helper()
	log := filepath.Join(filepath.Dir(root), "calls.log")
	env := []string{"FAKE_LOG=" + log, "PATH=" + fake + ":" + os.Getenv("PATH")}
	out := mustRun(t, 2*time.Minute, "", env, append([]string{"dpkg", "--root=" + root,
		"--force-script-chrootless", "--log=" + filepath.Join(filepath.Dir(root), "dpkg.log")}, args...)...)
	if calls := readLines(t, log); len(calls) > 0 {
		t.Errorf("dpkg %q: the scripts called %q although DPKG_ROOT was set", args, calls)
		os.Remove(log)
	}
	return out
}

// dpkgStatus is dpkg's status, version and conffiles of ddhcpd in root.
func dpkgStatus(t *testing.T, root string) (status, version, conffiles string) {
	t.Helper()
	r := run(t, 10*time.Second, "", nil, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"),
		"-W", "-f", "${Status}|${Version}|${Conffiles}", "ddhcpd")
	if r.err != nil {
		return "", "", ""
	}
	parts := strings.SplitN(r.stdout, "|", 3)
	return parts[0], parts[1], strings.TrimSpace(parts[2])
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// checkDebInstall installs the package into a scratch root with dpkg, runs
// the service from it, upgrades, removes and purges.
func checkDebInstall(t *testing.T, f *debFixture) {
	tmp := t.TempDir() // before the lab in Service: its processes die first
	root := filepath.Join(tmp, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status"), "", 0o644)
	fake := fakeBin(t)

	dpkgRoot(t, root, fake, "--install", f.file)
	status, version, conffiles := dpkgStatus(t, root)
	if status != "install ok installed" || version != f.fields["Version"] {
		t.Fatalf("after dpkg --install: status %q, version %q", status, version)
	}
	conf := filepath.Join(root, debConffile)
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	h := md5.Sum(b)
	if want := debConffile + " " + hex.EncodeToString(h[:]); conffiles != want {
		t.Errorf("dpkg records conffiles %q, want %q", conffiles, want)
	}
	for _, p := range []string{"/usr/sbin/ddhcpd", "/usr/sbin/ddhcpctl", debUnit, debTmpfiles} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s not installed", p)
		}
	}
	if r := run(t, 30*time.Second, "", nil, "dpkg", "--root="+root, "--verify", "ddhcpd"); r.err != nil || r.stdout != "" {
		t.Errorf("dpkg --verify: %v %s%s", r.err, r.stdout, r.stderr)
	}

	// The administrator's edit of the conffile, which the upgrade keeps.
	adjustConffile(t, conf)
	edited, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Service", func(t *testing.T) { checkDebService(t, f, root) })

	t.Run("Upgrade", func(t *testing.T) {
		// The same package with a higher version, repacked with dpkg-deb.
		dir := filepath.Join(tmp, "repack")
		mustRun(t, 30*time.Second, "", nil, "dpkg-deb", "-R", f.file, dir)
		ctl := filepath.Join(dir, "DEBIAN", "control")
		b, err := os.ReadFile(ctl)
		if err != nil {
			t.Fatal(err)
		}
		newVersion := f.fields["Version"] + "+1"
		b = bytes.Replace(b, []byte("Version: "+f.fields["Version"]+"\n"), []byte("Version: "+newVersion+"\n"), 1)
		writeFile(t, ctl, string(b), 0o644)
		deb := filepath.Join(tmp, "ddhcpd_"+newVersion+"_"+f.arch+".deb")
		mustRun(t, time.Minute, "", nil, "dpkg-deb", "--root-owner-group", "--build", dir, deb)
		dpkgRoot(t, root, fake, "--install", deb)
		if status, version, _ := dpkgStatus(t, root); status != "install ok installed" || version != newVersion {
			t.Errorf("after the upgrade: status %q, version %q", status, version)
		}
		if got, _ := os.ReadFile(conf); !bytes.Equal(got, edited) {
			t.Errorf("the upgrade replaced the edited %s", debConffile)
		}
	})

	dpkgRoot(t, root, fake, "--remove", "ddhcpd")
	if status, _, _ := dpkgStatus(t, root); status != "deinstall ok config-files" {
		t.Errorf("after dpkg --remove: status %q, want deinstall ok config-files", status)
	}
	for p, want := range map[string]bool{"/usr/sbin/ddhcpd": false, debUnit: false, "/run/ddhcpd.sock": false,
		debConffile: true, "/var/lib/ddhcpd/node_id": true} {
		if exists(filepath.Join(root, p)) != want {
			t.Errorf("after dpkg --remove: %s there: %v, want %v", p, !want, want)
		}
	}
	dpkgRoot(t, root, fake, "--purge", "ddhcpd")
	if status, _, _ := dpkgStatus(t, root); status != "" && status != "purge ok not-installed" && status != "unknown ok not-installed" {
		t.Errorf("after dpkg --purge: status %q", status)
	}
	for _, p := range []string{debConffile, "/var/lib/ddhcpd"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("after dpkg --purge: %s is still there", p)
		}
	}
}

// The test's network: the gateway's mesh link and client link, and the
// address its client link has (the server identifier).
const (
	debMeshIf   = "mesh0"
	debClientIf = "client0"
	debGwAddr   = "10.116.224.1/20"
)

// adjustConffile edits the installed conffile as an administrator would:
// this test's interfaces, a short tentative phase and an informative log.
// Each line must be there exactly once.
func adjustConffile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{
		{"\tlist mesh_interface 'bat0'\n", "\tlist mesh_interface '" + debMeshIf + "'\n"},
		{"\tlist client_interface 'br-client'\n", "\tlist client_interface '" + debClientIf + "'\n"},
		{"\toption tentative_timeout '15'\n", "\toption tentative_timeout '2'\n"},
		{"\toption log_level 'warn'\n", "\toption log_level 'info'\n"},
	} {
		if n := strings.Count(s, r[0]); n != 1 {
			t.Fatalf("%s has %q %d times, want once", path, strings.TrimSpace(r[0]), n)
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	writeFile(t, path, s, 0o644)
}

// debSpec is the unit's sandbox for launch (below), with argv
// in place of ExecStart. It creates what systemd creates before the start:
// the state and runtime directories with their modes, a private /tmp.
func debSpec(t *testing.T, u unitFile, root string, argv []string) launchSpec {
	t.Helper()
	sp := launchSpec{
		Root:     root,
		Argv:     argv,
		Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		ReadOnly: u.last("Service", "ProtectSystem") == "strict",
		Bounding: u.words("Service", "CapabilityBoundingSet"),
		Ambient:  u.words("Service", "AmbientCapabilities"),
		Families: u.words("Service", "RestrictAddressFamilies"),
		UMask:    -1,
	}
	if !sp.ReadOnly {
		t.Fatalf("ProtectSystem=%q: the test only emulates strict", u.last("Service", "ProtectSystem"))
	}
	yes := func(k string) bool {
		switch u.last("Service", k) {
		case "yes", "true", "1", "on":
			return true
		}
		return false
	}
	sp.NoNewPrivs = yes("NoNewPrivileges")
	if yes("PrivateTmp") {
		sp.PrivateTmp = t.TempDir()
		if err := os.Chmod(sp.PrivateTmp, 0o1777); err != nil {
			t.Fatal(err)
		}
	}
	if m := u.last("Service", "UMask"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			t.Fatalf("UMask=%s: %v", m, err)
		}
		sp.UMask = int(v)
	}
	for _, d := range []struct{ key, base string }{{"StateDirectory", "/var/lib"}, {"RuntimeDirectory", "/run"}} {
		mode := os.FileMode(0o755)
		if m := u.last("Service", d.key+"Mode"); m != "" {
			v, err := strconv.ParseUint(m, 8, 32)
			if err != nil {
				t.Fatalf("%sMode=%s: %v", d.key, m, err)
			}
			mode = os.FileMode(v)
		}
		for _, name := range u.words("Service", d.key) {
			p := filepath.Join(d.base, name)
			if err := os.MkdirAll(filepath.Join(root, p), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(root, p), mode); err != nil {
				t.Fatal(err)
			}
			sp.Writable = append(sp.Writable, p)
		}
	}
	return sp
}

// startService starts argv in the unit's sandbox inside ns, through this
// test binary as the launcher.
func startService(t *testing.T, ns *nettest.NS, sp launchSpec) *nettest.Proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	p := ns.StartEnv([]string{launchEnv + "=" + string(js)}, self)
	// Before the subtest's directories go (the lab kills it only later).
	t.Cleanup(p.Kill)
	return p
}

// ctlStatus asks the daemon through the installed ddhcpctl at its default
// socket path, inside the root (as on the gateway: /var/run/ddhcpd.sock ->
// /run/ddhcpd.sock -> ddhcpd/ddhcpd.sock).
func ctlStatus(root string) (control.Status, error) {
	var st control.Status
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "chroot", root, "/usr/sbin/ddhcpctl", "-json", "status")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return st, fmt.Errorf("ddhcpctl status: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return st, fmt.Errorf("ddhcpctl -json status: %v: %q", err, stdout.String())
	}
	return st, nil
}

// eventually polls cond until it returns nil, the process exits or limit
// passes; the last error is reported.
func eventually(t *testing.T, limit time.Duration, what string, p *nettest.Proc, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s: the daemon exited (%v): %v\nstderr:\n%s", what, p.Wait(), err, p.Stderr())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		<-tick.C
	}
}

// capMask is a /proc/PID/status capability line's value for names.
func capMask(t *testing.T, names []string) uint64 {
	t.Helper()
	set, err := capSet(names)
	if err != nil {
		t.Fatal(err)
	}
	var m uint64
	for c := range set {
		m |= 1 << uint(c)
	}
	return m
}

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// prepareRoot adds what a Debian system has and the scratch root lacks:
// the mount points of /proc, /sys, /dev, /tmp, /var/tmp and /run, and
// base-files' /var/run -> /run. Then systemd-tmpfiles makes the package's
// /run entries, as at boot.
func prepareRoot(t *testing.T, root string) {
	t.Helper()
	for d, mode := range map[string]os.FileMode{"proc": 0o555, "sys": 0o555, "dev": 0o755,
		"tmp": 0o1777, "var/tmp": 0o1777, "run": 0o755} {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if !exists(filepath.Join(root, "var/run")) {
		if err := os.Symlink("/run", filepath.Join(root, "var/run")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.LookPath("systemd-tmpfiles"); err != nil {
		t.Fatalf("systemd-tmpfiles is needed (Debian's systemd package): %v", err)
	}
	mustRun(t, 30*time.Second, "", nil, "systemd-tmpfiles", "--root="+root, "--create",
		filepath.Join(root, debTmpfiles))
}

// checkDebService starts the installed unit's ExecStart in its sandbox in a
// network namespace: it must come up, show its mesh interface open on
// ddhcpctl status at the default socket path, lease an address to a DHCP
// client, keep its state in the state directory and stop cleanly on SIGTERM.
// The same start without CAP_NET_RAW, without AF_PACKET, or with the state
// outside the state directory must fail (the daemon exits with an error, or
// owns a block and still gives a client no lease): the sandbox is real, and
// the unit's settings are what the daemon needs.
func checkDebService(t *testing.T, f *debFixture, root string) {
	nettest.RequireRoot(t)
	u, err := parseUnit(string(mustReadFile(t, filepath.Join(root, debUnit))))
	if err != nil {
		t.Fatal(err)
	}
	argv, err := u.execStart()
	if err != nil {
		t.Fatal(err)
	}
	prepareRoot(t, root)
	if _, err := exec.LookPath("udhcpc"); err != nil {
		t.Fatalf("udhcpc is needed (scripts/deps.sh installs it): %v", err)
	}

	lab := nettest.New(t)
	gw, mesh, cl := lab.NS("gw"), lab.NS("mesh"), lab.NS("client")
	lab.Veth(gw, debMeshIf, mesh, "m0")
	lab.Veth(gw, debClientIf, cl, "eth0")
	gw.AddAddr(debClientIf, debGwAddr)

	t.Run("Runs", func(t *testing.T) {
		p := startService(t, gw, debSpec(t, u, root, argv))
		var st control.Status
		eventually(t, 30*time.Second, "ddhcpctl status with the mesh interface open", p, func() error {
			var err error
			if st, err = ctlStatus(root); err != nil {
				return err
			}
			if len(st.Mesh) != 1 || st.Mesh[0].Name != debMeshIf || !st.Mesh[0].Open || st.Mesh[0].Error != "" {
				return fmt.Errorf("mesh interfaces %+v", st.Mesh)
			}
			return nil
		})
		if !slices.Equal(st.Interfaces, []string{debClientIf}) || !st.DHCP || st.Pool != debPool.String() {
			t.Errorf("status: client interfaces %q, dhcp %v, pool %s", st.Interfaces, st.DHCP, st.Pool)
		}
		if f.fixed && st.Version != testVersion {
			t.Errorf("status version %q, want %q", st.Version, testVersion)
		}

		// The sandbox as the kernel sees it.
		ps := procStatus(t, p.Pid())
		want := fmt.Sprintf("%016x", capMask(t, wantCaps))
		for _, k := range []string{"CapEff", "CapBnd", "CapAmb"} {
			if ps[k] != want {
				t.Errorf("daemon %s %s, want %s (%q)", k, ps[k], want, wantCaps)
			}
		}
		if ps["NoNewPrivs"] != "1" || ps["Seccomp"] != "2" {
			t.Errorf("daemon NoNewPrivs %q Seccomp %q, want 1 and 2", ps["NoNewPrivs"], ps["Seccomp"])
		}

		// A client gets a lease from the packaged daemon.
		if addr, err := lease(t, cl, 20); err != nil || !debPool.Contains(addr) {
			t.Errorf("no lease from the pool: %v %v\ndaemon:\n%s", addr, err, p.Stderr())
		}

		for _, path := range []string{"/var/lib/ddhcpd/node_id", "/run/ddhcpd/ddhcpd.sock"} {
			if !exists(filepath.Join(root, path)) {
				t.Errorf("%s missing while the daemon runs", path)
			}
		}
		if err := p.Stop(); err != nil {
			t.Errorf("the daemon did not stop cleanly on SIGTERM: %v\n%s", err, p.Stderr())
		}
		if !exists(filepath.Join(root, "/var/lib/ddhcpd/state.json")) {
			t.Errorf("no state.json in the state directory after the stop")
		}
	})

	// Controls: a smaller sandbox must break the daemon, or the test above
	// proves nothing about the unit's settings.
	without := func(list []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
	}
	controls := []struct {
		name   string
		change func(*launchSpec)
	}{
		{"WithoutCapNetRaw", func(sp *launchSpec) {
			sp.Bounding, sp.Ambient = without(sp.Bounding, "CAP_NET_RAW"), without(sp.Ambient, "CAP_NET_RAW")
		}},
		{"WithoutAFPacket", func(sp *launchSpec) { sp.Families = without(sp.Families, "AF_PACKET") }},
		{"StateOutsideStateDirectory", func(sp *launchSpec) { sp.Argv = append(sp.Argv, "-state", "/var/cache/ddhcpd") }},
	}
	for _, c := range controls {
		t.Run(c.name, func(t *testing.T) {
			sp := debSpec(t, u, root, slices.Clone(argv))
			c.change(&sp)
			p := startService(t, gw, sp)
			defer p.Stop()
			// Either it ends with an error, or it runs but cannot serve:
			// once it owns a block, a client gets no lease.
			var st control.Status
			eventually(t, 30*time.Second, "the daemon exits or owns a block", nil, func() error {
				if p.Exited() {
					return nil
				}
				var err error
				if st, err = ctlStatus(root); err != nil {
					return err
				}
				if st.Learning || st.Owned == 0 {
					return fmt.Errorf("learning %v, %d blocks owned", st.Learning, st.Owned)
				}
				return nil
			})
			if p.Exited() {
				if p.Wait() == nil {
					t.Errorf("the daemon exited with status 0")
				}
				t.Logf("the daemon fails as it should: %s", lastLine(p.Stderr()))
				return
			}
			if addr, err := lease(t, cl, 3); err == nil {
				t.Errorf("a client got %v all the same (status %+v)", addr, st)
			}
			t.Logf("the daemon owns %d blocks but serves no client: %s", st.Owned, firstLine(p.Stderr()))
		})
	}
}

// debPool is the conffile's pool.
var debPool = netip.MustParsePrefix("10.116.224.0/20")

// lease runs busybox udhcpc on eth0 of ns for tries DISCOVERs a second
// apart and returns the address it was offered and acknowledged.
func lease(t *testing.T, ns *nettest.NS, tries int) (netip.Addr, error) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	writeFile(t, script, "#!/bin/sh\n[ \"$1\" = bound ] && echo \"bound $ip\"\nexit 0\n", 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(tries+30)*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-s", script,
		"-t", strconv.Itoa(tries), "-T", "1", "-A", "1")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("udhcpc: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if a, ok := strings.CutPrefix(line, "bound "); ok {
			return netip.ParseAddr(a)
		}
	}
	return netip.Addr{}, fmt.Errorf("udhcpc bound no address: %q", out)
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// ---- The launcher: the unit's sandbox without systemd ----

// The Debian test runs the packaged daemon the way systemd runs the unit,
// without systemd: this test binary, started again with launchEnv set to a
// launchSpec, becomes the service's sandbox and then execs ExecStart in it.
// Before the exec it
//   - makes the installed root read-only (ProtectSystem=strict: bind the root
//     onto itself, remount it read-only) except the StateDirectory= and
//     RuntimeDirectory= directories, bound writable onto themselves as
//     systemd does, and a private /tmp and /var/tmp (PrivateTmp=);
//   - chroots into the root, so the unit's and the conffile's paths are
//     taken inside it;
//   - sets UMask=, NoNewPrivileges=, drops every capability outside
//     CapabilityBoundingSet= from the bounding set and raises
//     AmbientCapabilities= (root's capabilities after the exec are the
//     bounding set, as under systemd);
//   - installs a seccomp filter that fails socket(2) with EAFNOSUPPORT for
//     every family outside RestrictAddressFamilies=, as systemd's does.
//
// Not emulated: ProtectHome= (the scratch root has no /home, /root or
// /run/user), the other Protect*=, Private*= and Restrict*= settings, which
// the unit test leaves to systemd-analyze, and Restart=.
//
// It runs inside the network namespace of the test ("ip netns exec", which
// also gives it a mount namespace of its own: none of the mounts is seen
// outside). The main goroutine is locked to the main thread during init, so
// the per-thread settings (capabilities, no_new_privs, seccomp) are those of
// the thread that execs.
const launchEnv = "DDHCPD_DEB_LAUNCH"

// launchSpec is what the launcher does; the test builds it from the unit.
type launchSpec struct {
	Root       string   // the installed root (host path)
	Argv       []string // ExecStart, inside Root
	Env        []string
	Writable   []string // paths inside Root left writable (state, runtime)
	ReadOnly   bool     // ProtectSystem=strict
	PrivateTmp string   // host directory mounted on /tmp and /var/tmp; "" for none
	NoNewPrivs bool
	Bounding   []string // capability names; nil keeps every capability
	Ambient    []string
	Families   []string // address families; nil allows all
	UMask      int      // -1: unchanged
}

func init() {
	s := os.Getenv(launchEnv)
	if s == "" {
		return
	}
	runtime.LockOSThread()
	err := launch(s)
	fmt.Fprintf(os.Stderr, "deb launcher: %v\n", err)
	os.Exit(127)
}

// launch sets up the sandbox and execs; it returns only on error.
func launch(specJSON string) error {
	var sp launchSpec
	if err := json.Unmarshal([]byte(specJSON), &sp); err != nil {
		return err
	}
	if len(sp.Argv) == 0 || sp.Root == "" {
		return errors.New("no root or command")
	}
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	lastCap, err := strconv.Atoi(strings.TrimSpace(string(last)))
	if err != nil {
		return err
	}
	bounding, err := capSet(sp.Bounding)
	if err != nil {
		return err
	}
	ambient, err := capSet(sp.Ambient)
	if err != nil {
		return err
	}
	var filter []unix.SockFilter
	if sp.Families != nil {
		if filter, err = familyFilter(sp.Families); err != nil {
			return err
		}
	}

	mount := func(src, dst, fstype string, flags uintptr) error {
		if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", src, dst, err)
		}
		return nil
	}
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE); err != nil {
		return err
	}
	root := sp.Root
	if sp.ReadOnly {
		if err := mount(root, root, "", unix.MS_BIND|unix.MS_REC); err != nil {
			return err
		}
	}
	// The API file systems, as systemd leaves them to a service.
	for _, d := range []string{"proc", "sys", "dev"} {
		if err := mount("/"+d, filepath.Join(root, d), "", unix.MS_BIND|unix.MS_REC); err != nil {
			return err
		}
	}
	for _, w := range sp.Writable {
		p := filepath.Join(root, w)
		if err := mount(p, p, "", unix.MS_BIND); err != nil {
			return err
		}
	}
	if sp.PrivateTmp != "" {
		for _, d := range []string{"tmp", "var/tmp"} {
			if err := mount(sp.PrivateTmp, filepath.Join(root, d), "", unix.MS_BIND); err != nil {
				return err
			}
		}
	}
	if sp.ReadOnly {
		// Only the root's own mount: the writable ones above stay so.
		if err := mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY); err != nil {
			return err
		}
	}
	if err := unix.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if sp.UMask >= 0 {
		unix.Umask(sp.UMask)
	}
	if sp.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if sp.Bounding != nil {
		for c := 0; c <= lastCap; c++ {
			if !bounding[c] {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
					return fmt.Errorf("drop capability %d: %w", c, err)
				}
			}
		}
	}
	if len(ambient) > 0 {
		// An ambient capability must be inheritable (and permitted).
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capget: %w", err)
		}
		for c := range ambient {
			data[c/32].Inheritable |= 1 << (uint(c) % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capset: %w", err)
		}
		for c := range ambient {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				return fmt.Errorf("raise ambient capability %d: %w", c, err)
			}
		}
	}
	if filter != nil {
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		// Still allowed without no_new_privs: CAP_SYS_ADMIN is in effect
		// until the exec.
		if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return fmt.Errorf("exec %s: %w", sp.Argv[0], unix.Exec(sp.Argv[0], sp.Argv, sp.Env))
}

// capNames are Linux's capabilities by number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// capSet maps capability names to their numbers.
func capSet(names []string) (map[int]bool, error) {
	set := map[int]bool{}
	for _, n := range names {
		i := indexOf(capNames, n)
		if i < 0 {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		set[i] = true
	}
	return set, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// addressFamilies are the families a unit may name, as systemd spells them.
var addressFamilies = map[string]uint32{
	"AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6,
	"AF_NETLINK": unix.AF_NETLINK, "AF_PACKET": unix.AF_PACKET,
}

// auditArch is this architecture's AUDIT_ARCH_* (seccomp_data.arch).
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("no seccomp filter for %s", runtime.GOARCH)
}

// familyFilter is a classic BPF seccomp program: socket(2) with a family
// outside families fails with EAFNOSUPPORT; everything else is allowed.
func familyFilter(families []string) ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	const (
		offNr    = 0  // seccomp_data.nr
		offArch  = 4  // seccomp_data.arch
		offArg0  = 16 // seccomp_data.args[0], low half (little-endian)
		retAllow = unix.SECCOMP_RET_ALLOW
	)
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
	}
	ret := func(k uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k}
	}
	var fams []uint32
	for _, f := range families {
		v, ok := addressFamilies[f]
		if !ok {
			return nil, fmt.Errorf("unknown address family %q", f)
		}
		fams = append(fams, v)
	}
	n := uint8(len(fams))
	// Layout: 0 ld arch; 1 jeq arch; 2 ld nr; 3 jeq socket; 4 ld arg0;
	// 5..5+n-1 jeq family; 5+n ret errno; 6+n ret allow.
	prog := []unix.SockFilter{
		ld(offArch),
		jeq(arch, 0, n+4), // another ABI: allow
		ld(offNr),
		jeq(uint32(unix.SYS_SOCKET), 0, n+2),
		ld(offArg0),
	}
	for i, f := range fams {
		prog = append(prog, jeq(f, n-uint8(i), 0))
	}
	prog = append(prog, ret(unix.SECCOMP_RET_ERRNO|uint32(unix.EAFNOSUPPORT)), ret(retAllow))
	return prog, nil
}
