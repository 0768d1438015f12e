package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// target is what an OpenWrt architecture's binary must be.
type target struct {
	machine elf.Machine
	class   elf.Class
	order   binary.ByteOrder
	goenv   map[string]string // build settings recorded in the binary
	qemu    string            // qemu-user binary that runs it; "" = natively on amd64
}

// targets mirrors scripts/cross.sh's table; TestCrossTable keeps the two in
// step. The endianness is the point for MIPS: mips_24kc is big-endian.
var targets = map[string]target{
	"mipsel_24kc": {elf.EM_MIPS, elf.ELFCLASS32, binary.LittleEndian,
		map[string]string{"GOARCH": "mipsle", "GOMIPS": "softfloat"}, "qemu-mipsel"},
	"mips_24kc": {elf.EM_MIPS, elf.ELFCLASS32, binary.BigEndian,
		map[string]string{"GOARCH": "mips", "GOMIPS": "softfloat"}, "qemu-mips"},
	"arm_cortex-a7_neon-vfpv4": {elf.EM_ARM, elf.ELFCLASS32, binary.LittleEndian,
		map[string]string{"GOARCH": "arm", "GOARM": "7"}, "qemu-arm"},
	"aarch64_cortex-a53": {elf.EM_AARCH64, elf.ELFCLASS64, binary.LittleEndian,
		map[string]string{"GOARCH": "arm64"}, "qemu-aarch64"},
	"x86_64": {elf.EM_X86_64, elf.ELFCLASS64, binary.LittleEndian,
		map[string]string{"GOARCH": "amd64"}, ""},
}

// The VERSION the test packages are built with, and the package version
// scripts/ipk.sh must make of it.
const (
	testVersion    = "v1.2.3-4-gdeadbee"
	testPkgVersion = "1.2.3.4.gdeadbee"
	testEpoch      = "1700000000"
)

var (
	ipkOnce sync.Once
	ipkDir  string
	ipkErr  error
	ipkTmp  string
)

func TestMain(m *testing.M) {
	// Run as the scripts' uci command (fakeuci_test.go).
	if os.Getenv(fakeUCIEnv) != "" {
		os.Exit(fakeUCIMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if ipkTmp != "" {
		os.RemoveAll(ipkTmp)
	}
	os.Exit(code)
}

// builtIPKs builds every architecture's package once per test binary with
// scripts/ipk.sh, on one core: "go test ./..." runs the namespace tests of
// other packages at the same time, and they measure time. With
// DDHCPD_IPK_DIR set it checks the packages in that directory instead (make
// ipk's dist/), whatever their version.
func builtIPKs(t *testing.T) (dir string, fixedVersion bool) {
	t.Helper()
	if d := os.Getenv("DDHCPD_IPK_DIR"); d != "" {
		return d, false
	}
	if testing.Short() {
		t.Skip("building the packages takes minutes the first time: not in -short")
	}
	ipkOnce.Do(func() {
		ipkTmp, ipkErr = os.MkdirTemp("", "ddhcpd-ipk-")
		if ipkErr != nil {
			return
		}
		ipkDir = filepath.Join(ipkTmp, "dist")
		cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "ipk.sh"), "-o", ipkDir)
		cmd.Env = append(os.Environ(), "VERSION="+testVersion, "SOURCE_DATE_EPOCH="+testEpoch,
			"GOMAXPROCS=1", "GOFLAGS=-p=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			ipkErr = fmt.Errorf("scripts/ipk.sh: %v\n%s", err, out)
		}
	})
	if ipkErr != nil {
		t.Fatal(ipkErr)
	}
	return ipkDir, true
}

// ipkFile finds ARCH's package in dir.
func ipkFile(t *testing.T, dir, arch string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "ddhcpd_*_"+arch+".ipk"))
	if err != nil || len(m) != 1 {
		t.Fatalf("want one ddhcpd_*_%s.ipk in %s, found %q", arch, dir, m)
	}
	return m[0]
}

// entry is one member of a tar archive.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// readTarGz reads a gzipped tar fully, in archive order, and the length of
// the tar stream itself.
func readTarGz(t *testing.T, what string, b []byte) ([]entry, int) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not gzip: %v", what, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", what, h.Name, err)
		}
		out = append(out, entry{h, data})
	}
	return out, len(raw)
}

// pkg is one unpacked .ipk.
type pkg struct {
	file     string
	outer    []entry
	control  map[string]entry
	data     map[string]entry
	dataLen  int // bytes of the uncompressed data.tar
	fields   map[string]string
	fieldSeq []string
}

func unpack(t *testing.T, file string) pkg {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := pkg{file: file, control: map[string]entry{}, data: map[string]entry{}, fields: map[string]string{}}
	p.outer, _ = readTarGz(t, "package", b)
	member := func(name string) []byte {
		for _, e := range p.outer {
			if e.hdr.Name == name {
				return e.data
			}
		}
		t.Fatalf("package has no %s", name)
		return nil
	}
	ctl, _ := readTarGz(t, "control.tar.gz", member("./control.tar.gz"))
	for _, e := range ctl {
		p.control[e.hdr.Name] = e
	}
	data, n := readTarGz(t, "data.tar.gz", member("./data.tar.gz"))
	p.dataLen = n
	for _, e := range data {
		if _, dup := p.data[e.hdr.Name]; dup {
			t.Errorf("data.tar.gz has %s twice", e.hdr.Name)
		}
		p.data[e.hdr.Name] = e
	}
	c, ok := p.control["./control"]
	if !ok {
		t.Fatalf("control.tar.gz has no ./control")
	}
	// Debian-style fields; a line starting with a blank continues the last.
	last := ""
	for _, line := range strings.Split(strings.TrimRight(string(c.data), "\n"), "\n") {
		if strings.HasPrefix(line, " ") && last != "" {
			p.fields[last] += "\n" + line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Errorf("control line %q is not 'Field: value'", line)
			continue
		}
		if _, dup := p.fields[k]; dup {
			t.Errorf("control field %s twice", k)
		}
		p.fields[k], last = v, k
		p.fieldSeq = append(p.fieldSeq, k)
	}
	return p
}

func TestCrossTable(t *testing.T) {
	out := run(t, 10*time.Second, repoRoot(t), nil, filepath.Join(repoRoot(t), "scripts", "cross.sh"), "-l")
	if out.err != nil {
		t.Fatalf("cross.sh -l: %v %s", out.err, out.stderr)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out.stdout), "\n") {
		f := strings.Fields(line)
		arch := f[0]
		want, ok := targets[arch]
		if !ok {
			t.Errorf("cross.sh builds %s, which this test does not know", arch)
			continue
		}
		seen[arch] = true
		env := map[string]string{}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if !mapsEqual(env, want.goenv) {
			t.Errorf("%s: cross.sh sets %v, want %v", arch, env, want.goenv)
		}
	}
	for arch := range targets {
		if !seen[arch] {
			t.Errorf("cross.sh does not build %s", arch)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestIPK(t *testing.T) {
	dir, fixed := builtIPKs(t)
	root := repoRoot(t)
	initScript, err := os.ReadFile(filepath.Join(root, "files", "etc", "init.d", "ddhcpd"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(filepath.Join(root, "files", "etc", "config", "ddhcpd"))
	if err != nil {
		t.Logf("files/etc/config/ddhcpd not there yet: not comparing the packaged config")
		config = nil
	}
	for _, arch := range slices.Sorted(maps.Keys(targets)) {
		t.Run(arch, func(t *testing.T) {
			file := ipkFile(t, dir, arch)
			p := unpack(t, file)
			checkOuter(t, p)
			checkControl(t, p, arch, fixed)
			checkData(t, p, initScript, config)
			checkBinary(t, p, arch, fixed)
		})
	}
}

// checkOuter: a gzipped tar (what OpenWrt's ipkg-build writes and opkg
// reads; not Debian's ar) of exactly these three members, in this order.
func checkOuter(t *testing.T, p pkg) {
	var names []string
	for _, e := range p.outer {
		names = append(names, e.hdr.Name)
		if e.hdr.Typeflag != tar.TypeReg {
			t.Errorf("outer %s is not a regular file", e.hdr.Name)
		}
		checkOwner(t, "outer", e.hdr)
	}
	if want := []string{"./debian-binary", "./data.tar.gz", "./control.tar.gz"}; !slices.Equal(names, want) {
		t.Errorf("outer members %q, want %q", names, want)
	}
	for _, e := range p.outer {
		if e.hdr.Name == "./debian-binary" && string(e.data) != "2.0\n" {
			t.Errorf("debian-binary is %q", e.data)
		}
	}
}

func checkOwner(t *testing.T, where string, h *tar.Header) {
	if h.Uid != 0 || h.Gid != 0 {
		t.Errorf("%s %s owned by %d:%d, want root", where, h.Name, h.Uid, h.Gid)
	}
}

func checkControl(t *testing.T, p pkg, arch string, fixed bool) {
	wantFiles := map[string]int64{
		"./":             0o755,
		"./control":      0o644,
		"./conffiles":    0o644,
		"./postinst":     0o755,
		"./prerm":        0o755,
		"./postinst-pkg": 0o755,
		"./prerm-pkg":    0o755,
	}
	for name, e := range p.control {
		mode, ok := wantFiles[name]
		if !ok {
			t.Errorf("control.tar.gz has unexpected %s", name)
			continue
		}
		if e.hdr.Mode&0o7777 != mode {
			t.Errorf("control %s mode %o, want %o", name, e.hdr.Mode&0o7777, mode)
		}
		checkOwner(t, "control", e.hdr)
	}
	for name := range wantFiles {
		if _, ok := p.control[name]; !ok {
			t.Errorf("control.tar.gz lacks %s", name)
		}
	}

	f := p.fields
	for _, k := range []string{"Package", "Version", "Architecture", "Maintainer", "Section",
		"Description", "Installed-Size", "License"} {
		if strings.TrimSpace(f[k]) == "" {
			t.Errorf("control field %s missing or empty", k)
		}
	}
	if f["License"] != "GPL-3.0-or-later" {
		t.Errorf("License %q, want GPL-3.0-or-later (LICENSE)", f["License"])
	}
	if f["Package"] != "ddhcpd" {
		t.Errorf("Package %q", f["Package"])
	}
	if f["Architecture"] != arch {
		t.Errorf("Architecture %q, want %q", f["Architecture"], arch)
	}
	if f["Section"] != "net" {
		t.Errorf("Section %q", f["Section"])
	}
	// The binary is static: it needs no libc package, and nothing else.
	if d, ok := f["Depends"]; ok {
		t.Errorf("Depends: %q for a static binary", d)
	}
	if fixed && f["Version"] != testPkgVersion {
		t.Errorf("Version %q, want %q (from VERSION=%s)", f["Version"], testPkgVersion, testVersion)
	}
	if want := "ddhcpd_" + f["Version"] + "_" + arch + ".ipk"; filepath.Base(p.file) != want {
		t.Errorf("file name %s, want %s", filepath.Base(p.file), want)
	}
	// Installed-Size is bytes: ipkg-build writes the length of the
	// uncompressed data.tar, and opkg compares (size+1023)/1024 with the
	// free kilobytes. So it is at least the sum of the files' sizes.
	size, err := strconv.Atoi(f["Installed-Size"])
	if err != nil {
		t.Fatalf("Installed-Size %q: %v", f["Installed-Size"], err)
	}
	if size != p.dataLen {
		t.Errorf("Installed-Size %d, want the uncompressed data.tar's %d bytes", size, p.dataLen)
	}
	var sum int64
	for _, e := range p.data {
		if e.hdr.Typeflag == tar.TypeReg {
			sum += e.hdr.Size
		}
	}
	if int64(size) < sum || int64(size) > sum+int64(2*len(p.data)+2)*512+10240 {
		t.Errorf("Installed-Size %d does not fit the files' %d bytes", size, sum)
	}
	t.Logf("%s: %s, files %d bytes, Installed-Size %d", arch, filepath.Base(p.file), sum, size)

	if got := string(p.control["./conffiles"].data); got != "/etc/config/ddhcpd\n" {
		t.Errorf("conffiles %q, want /etc/config/ddhcpd", got)
	}
	// Every conffile must be a regular file of the package.
	for _, cf := range strings.Fields(string(p.control["./conffiles"].data)) {
		if e, ok := p.data["."+cf]; !ok || e.hdr.Typeflag != tar.TypeReg {
			t.Errorf("conffile %s is not a file of the package", cf)
		}
	}
	for _, s := range []string{"./postinst", "./prerm", "./postinst-pkg", "./prerm-pkg"} {
		if !bytes.HasPrefix(p.control[s].data, []byte("#!/bin/sh\n")) {
			t.Errorf("%s does not start with #!/bin/sh", s)
		}
	}
	// The package's own parts are the feed Makefile's, as the SDK packs them.
	for _, s := range []string{"postinst", "prerm"} {
		if got, want := string(p.control["./"+s+"-pkg"].data), feedScript(t, s); got != want {
			t.Errorf("%s-pkg is not the feed Makefile's Package/ddhcpd/%s:\n%s\nwant:\n%s", s, s, got, want)
		}
	}
}

// dataWant is the package's file list: type, mode, link target.
var dataWant = map[string]struct {
	typ  byte
	mode int64
	link string
}{
	"./":                           {tar.TypeDir, 0o755, ""},
	"./etc/":                       {tar.TypeDir, 0o755, ""},
	"./etc/config/":                {tar.TypeDir, 0o755, ""},
	"./etc/config/ddhcpd":          {tar.TypeReg, 0o600, ""},
	"./etc/init.d/":                {tar.TypeDir, 0o755, ""},
	"./etc/init.d/ddhcpd":          {tar.TypeReg, 0o755, ""},
	"./etc/uci-defaults/":          {tar.TypeDir, 0o755, ""},
	"./etc/uci-defaults/50-ddhcpd": {tar.TypeReg, 0o644, ""},
	"./usr/":                       {tar.TypeDir, 0o755, ""},
	"./usr/libexec/":               {tar.TypeDir, 0o755, ""},
	"./usr/libexec/rpcd/":          {tar.TypeDir, 0o755, ""},
	"./usr/libexec/rpcd/ddhcpd":    {tar.TypeSymlink, 0, "/usr/sbin/ddhcpd"},
	"./usr/sbin/":                  {tar.TypeDir, 0o755, ""},
	"./usr/sbin/ddhcpctl":          {tar.TypeSymlink, 0, "ddhcpd"},
	"./usr/sbin/ddhcpd":            {tar.TypeReg, 0o755, ""},
	"./etc/uci-defaults/zzzz-ddhcpd-firewall": {tar.TypeReg, 0o755, ""},
}

func checkData(t *testing.T, p pkg, initScript, config []byte) {
	for name, e := range p.data {
		w, ok := dataWant[name]
		if !ok {
			t.Errorf("data.tar.gz has unexpected %s", name)
			continue
		}
		checkOwner(t, "data", e.hdr)
		if e.hdr.Typeflag != w.typ {
			t.Errorf("%s type %q, want %q", name, e.hdr.Typeflag, w.typ)
		}
		if w.typ == tar.TypeSymlink {
			if e.hdr.Linkname != w.link {
				t.Errorf("%s -> %s, want -> %s", name, e.hdr.Linkname, w.link)
			}
		} else if e.hdr.Mode&0o7777 != w.mode {
			t.Errorf("%s mode %o, want %o", name, e.hdr.Mode&0o7777, w.mode)
		}
	}
	for name := range dataWant {
		if _, ok := p.data[name]; !ok {
			t.Errorf("data.tar.gz lacks %s", name)
		}
	}
	if e, ok := p.data["./etc/init.d/ddhcpd"]; ok && !bytes.Equal(e.data, initScript) {
		t.Errorf("packaged init script differs from files/etc/init.d/ddhcpd")
	}
	if e, ok := p.data["./etc/config/ddhcpd"]; ok && config != nil && !bytes.Equal(e.data, config) {
		t.Errorf("packaged config differs from files/etc/config/ddhcpd")
	}
	if defaults, err := os.ReadFile(filepath.Join(repoRoot(t), "files", "etc", "uci-defaults", "50-ddhcpd")); err != nil {
		t.Error(err)
	} else if e, ok := p.data["./etc/uci-defaults/50-ddhcpd"]; ok && !bytes.Equal(e.data, defaults) {
		t.Errorf("packaged uci-defaults script differs from files/etc/uci-defaults/50-ddhcpd")
	}
	if want, err := os.ReadFile(filepath.Join(repoRoot(t), fwDefaultsPath)); err != nil {
		t.Error(err)
	} else if e, ok := p.data["./etc/uci-defaults/zzzz-ddhcpd-firewall"]; ok && !bytes.Equal(e.data, want) {
		t.Errorf("packaged uci-defaults script differs from %s", fwDefaultsPath)
	}
}

// checkBinary: a static ELF for the architecture's CPU, built as make cross
// builds it; run (under qemu-user for the routers' CPUs) it tells its version
// (the build info cannot: -trimpath leaves -ldflags out of it).
func checkBinary(t *testing.T, p pkg, arch string, fixed bool) {
	e, ok := p.data["./usr/sbin/ddhcpd"]
	if !ok {
		return
	}
	want := targets[arch]
	f, err := elf.NewFile(bytes.NewReader(e.data))
	if err != nil {
		t.Fatalf("binary is not ELF: %v", err)
	}
	if f.Machine != want.machine || f.Class != want.class || f.ByteOrder != want.order {
		t.Errorf("binary is %v %v %v, want %v %v %v", f.Machine, f.Class, f.ByteOrder,
			want.machine, want.class, want.order)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("binary type %v, want ET_EXEC (static, not PIE)", f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has %v: not static", prog.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs %q", libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("binary has a symbol table: not built with -s")
	}
	if f.Machine == elf.EM_MIPS {
		// .MIPS.abiflags byte 7 is the FP ABI: 3 is soft float. A 24Kc has
		// no FPU; hard-float code would trap on every float instruction.
		s := f.Section(".MIPS.abiflags")
		if s == nil {
			t.Errorf("MIPS binary without .MIPS.abiflags")
		} else if b, err := s.Data(); err != nil || len(b) < 8 || b[7] != 3 {
			t.Errorf(".MIPS.abiflags %x: FP ABI is not soft float (3)", b)
		}
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "usr", "sbin", "ddhcpd")
	writeFile(t, bin, string(e.data), 0o755)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("no Go build info: %v", err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range want.goenv {
		if settings[k] != v {
			t.Errorf("built with %s=%q, want %q", k, settings[k], v)
		}
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "-trimpath": "true"} {
		if settings[k] != v {
			t.Errorf("built with %s=%q, want %q", k, settings[k], v)
		}
	}

	argv := []string{bin}
	if want.qemu != "" {
		q, err := exec.LookPath(want.qemu)
		if err != nil {
			q, err = exec.LookPath(want.qemu + "-static")
		}
		if err != nil {
			t.Logf("%s not installed: not running the binary (scripts/deps-pkg.sh installs qemu-user)", want.qemu)
			return
		}
		argv = []string{q, bin}
	} else if f.Machine != elf.EM_X86_64 || !hostIsAMD64() {
		return
	}
	r := run(t, time.Minute, tmp, nil, append(argv, "-V")...)
	if r.err != nil {
		t.Errorf("ddhcpd -V: %v\n%s%s", r.err, r.stdout, r.stderr)
	} else if fixed && !strings.Contains(r.stdout, testVersion) {
		t.Errorf("ddhcpd -V says %q, want %s", r.stdout, testVersion)
	}
}

func hostIsAMD64() bool { return runtime.GOOS == "linux" && runtime.GOARCH == "amd64" }

// TestIPKRpcdPlugin: rpcd runs every executable in /usr/libexec/rpcd with
// "list" at start and waits for it. Whatever the binary answers, it must
// answer and exit, not start a daemon; and if it succeeds, with JSON.
func TestIPKRpcdPlugin(t *testing.T) {
	if !hostIsAMD64() {
		t.Skip("runs the x86_64 package's binary")
	}
	dir, _ := builtIPKs(t)
	p := unpack(t, ipkFile(t, dir, "x86_64"))
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "usr", "sbin", "ddhcpd")
	writeFile(t, bin, string(p.data["./usr/sbin/ddhcpd"].data), 0o755)
	plugin := filepath.Join(tmp, "usr", "libexec", "rpcd", "ddhcpd")
	if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, plugin); err != nil {
		t.Fatal(err)
	}
	r := run(t, 10*time.Second, tmp, nil, plugin, "list")
	if r.err != nil {
		t.Logf("rpcd mode not there yet: %s list: %v %s", plugin, r.err, strings.TrimSpace(r.stderr))
		return
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Errorf("%s list printed %q: not a JSON object: %v", plugin, r.stdout, err)
	}
}

// TestIPKReproducible: the same binaries and VERSION give the same bytes;
// and a VERSION that is a bare commit (no release tag yet) becomes a version
// that sorts before any release.
func TestIPKReproducible(t *testing.T) {
	dir, fixed := builtIPKs(t)
	if !fixed {
		t.Skip("checking packages from DDHCPD_IPK_DIR")
	}
	first, err := os.ReadFile(ipkFile(t, dir, "x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	repack := func(version string) string {
		out := t.TempDir()
		bin, err := os.ReadFile(filepath.Join(dir, "x86_64", "ddhcpd"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(out, "x86_64", "ddhcpd"), string(bin), 0o755)
		r := run(t, time.Minute, repoRoot(t),
			[]string{"VERSION=" + version, "SOURCE_DATE_EPOCH=" + testEpoch},
			filepath.Join(repoRoot(t), "scripts", "ipk.sh"), "-n", "-o", out, "x86_64")
		if r.err != nil {
			t.Fatalf("ipk.sh -n: %v\n%s", r.err, r.stderr)
		}
		return out
	}
	again, err := os.ReadFile(ipkFile(t, repack(testVersion), "x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("packing the same binary twice gave different bytes")
	}
	hashDir := repack("93d47c4-dirty")
	if _, err := os.Stat(filepath.Join(hashDir, "ddhcpd_0~git93d47c4.dirty_x86_64.ipk")); err != nil {
		m, _ := filepath.Glob(filepath.Join(hashDir, "*.ipk"))
		t.Errorf("VERSION=93d47c4-dirty packaged as %q, want ddhcpd_0~git93d47c4.dirty_x86_64.ipk", m)
	}
}

// TestIPKMaintainerScripts runs postinst and prerm as opkg does: from
// /usr/lib/opkg/info/ddhcpd.*, with $IPKG_INSTROOT set when installing into
// an image. They hand over to OpenWrt's default_postinst/default_prerm from
// /lib/functions.sh (enable + start on a live router, only enable in an
// image root; stop + disable on removal), and do nothing where that file is
// missing or IPKG_NO_SCRIPT=1.
func TestIPKMaintainerScripts(t *testing.T) {
	dir, _ := builtIPKs(t)
	p := unpack(t, ipkFile(t, dir, "x86_64"))
	for _, sh := range shells(t) {
		for _, script := range []string{"postinst", "prerm"} {
			t.Run(sh.name+"/"+script, func(t *testing.T) {
				root := t.TempDir()
				log := filepath.Join(root, "calls")
				path := filepath.Join(root, "usr", "lib", "opkg", "info", "ddhcpd."+script)
				writeFile(t, path, string(p.control["./"+script].data), 0o755)
				runScript := func(env ...string) result {
					return run(t, 10*time.Second, root, append(env, "CALLS="+log),
						append(slices.Clone(sh.argv), path, "configure")...)
				}

				// No /lib/functions.sh in the root: nothing to do, success.
				if r := runScript("IPKG_INSTROOT=" + root); r.err != nil {
					t.Errorf("without functions.sh: %v %s", r.err, r.stderr)
				}
				writeFile(t, filepath.Join(root, "lib", "functions.sh"), `
default_postinst() { echo "default_postinst $*" >>"$CALLS"; }
default_prerm() { echo "default_prerm $*" >>"$CALLS"; }
`, 0o644)
				if r := runScript("IPKG_INSTROOT=" + root); r.err != nil {
					t.Errorf("%s: %v %s", script, r.err, r.stderr)
				}
				want := []string{"default_" + script + " " + path + " configure"}
				if got := readLines(t, log); !slices.Equal(got, want) {
					t.Errorf("calls %q, want %q", got, want)
				}
				if script == "postinst" {
					os.Remove(log)
					if r := runScript("IPKG_INSTROOT="+root, "IPKG_NO_SCRIPT=1"); r.err != nil {
						t.Errorf("IPKG_NO_SCRIPT=1: %v", r.err)
					}
					if got := readLines(t, log); len(got) != 0 {
						t.Errorf("IPKG_NO_SCRIPT=1 still called %q", got)
					}
				}
			})
		}
	}
}
