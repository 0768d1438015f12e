package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFeedMakefile checks the OpenWrt feed's Makefile against what the .ipk
// holds, since no SDK runs here: the same files at the same places, the
// conffile, a static build, and sources that exist in this repository.
func TestFeedMakefile(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "openwrt", "ddhcpd", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	// One logical line per continued line.
	mk = strings.ReplaceAll(mk, "\\\n", " ")

	has := func(re string) bool { return regexp.MustCompile(`(?m)` + re).MatchString(mk) }
	for _, want := range []struct{ re, why string }{
		{`^include \$\(INCLUDE_DIR\)/package\.mk$`, "package.mk"},
		{`^include .*lang/golang/golang-package\.mk$`, "golang-package.mk"},
		{`^PKG_NAME:=ddhcpd$`, "PKG_NAME"},
		{`^GO_PKG:=ddhcpd$`, "GO_PKG is go.mod's module path"},
		{`^GO_PKG_BUILD_PKG:=\$\(GO_PKG\)/src/cmd/ddhcpd$`, "only the daemon is built"},
		{`^GO_PKG_INSTALL_BIN_PATH:=/usr/sbin$`, "the binary goes to /usr/sbin"},
		{`^GO_PKG_LDFLAGS_X:=main\.version=`, "main.version is set"},
		{`^GO_PKG_TARGET_VARS:=\$\(filter-out CGO_ENABLED=%,\$\(GO_PKG_TARGET_VARS\)\) CGO_ENABLED=0$`, "cgo off"},
		{`^GO_PKG_DEFAULT_LDFLAGS:=.*-linkmode internal`, "Go's own linker (static)"},
		{`^PKG_BUILD_DEPENDS:=golang/host$`, "the feed's default host Go, not a pinned golangX.Y"},
		{`^PKG_MAINTAINER:=\S`, "a maintainer"},
		{`^PKG_LICENSE:=GPL-3\.0-or-later$`, "the licence, as SPDX"},
		{`^PKG_LICENSE_FILES:=LICENSE$`, "the licence file"},
		{`^\s+PKG_SOURCE:=\$\(PKG_NAME\)-\$\(PKG_VERSION\)\.tar\.gz$`, "the release tarball"},
		{`^\s+PKG_HASH:=[0-9a-f]{64}$`, "the release tarball's sha256"},
		{`^\s+PKG_SOURCE_VERSION:=\$\(DDHCPD_GIT_COMMIT\)$`, "a git source is a commit"},
		{`^\s+DEPENDS:=\$\(GO_ARCH_DEPENDS\)$`, "no libc or other runtime dependency"},
		{`^\$\(eval \$\(call BuildPackage,ddhcpd\)\)$`, "BuildPackage"},
		{`\$\(call GoPackage/Package/Install/Bin,\$\(1\)\)`, "the Go binary is installed"},
		{`\$\(LN\) ddhcpd \$\(1\)/usr/sbin/ddhcpctl$`, "ddhcpctl -> ddhcpd"},
		{`\$\(LN\) /usr/sbin/ddhcpd \$\(1\)/usr/libexec/rpcd/ddhcpd$`, "rpcd plugin -> /usr/sbin/ddhcpd"},
		{`\$\(INSTALL_BIN\) \$\(PKG_BUILD_DIR\)/files/etc/init.d/ddhcpd \$\(1\)/etc/init.d/ddhcpd$`, "init script, 0755"},
		{`\$\(INSTALL_CONF\) \$\(PKG_BUILD_DIR\)/files/etc/config/ddhcpd \$\(1\)/etc/config/ddhcpd$`, "config, 0600"},
		{`\$\(INSTALL_DATA\) \$\(PKG_BUILD_DIR\)/files/etc/uci-defaults/50-ddhcpd \$\(1\)/etc/uci-defaults/50-ddhcpd$`, "uci-defaults script, 0644"},
		{`\$\(INSTALL_BIN\) \$\(PKG_BUILD_DIR\)/files/etc/uci-defaults/zzzz-ddhcpd-firewall \$\(1\)/etc/uci-defaults/zzzz-ddhcpd-firewall$`, "uci-defaults script (firewall rule)"},
		{`(?s)^define Package/ddhcpd/postinst\n.*killall -HUP rpcd`, "postinst tells rpcd to read its plugins"},
		{`(?s)^define Package/ddhcpd/prerm\n.*delete "firewall\.`, "prerm deletes the firewall rules"},
	} {
		if !has(want.re) {
			t.Errorf("feed Makefile: %s: no line matching %s", want.why, want.re)
		}
	}
	conffiles := regexp.MustCompile(`(?s)define Package/ddhcpd/conffiles\n(.*?)\nendef`).FindStringSubmatch(mk)
	if conffiles == nil || strings.TrimSpace(conffiles[1]) != "/etc/config/ddhcpd" {
		t.Errorf("feed conffiles %q, want /etc/config/ddhcpd", conffiles)
	}
	// Every path the package installs is one the .ipk has (dataWant).
	for _, m := range regexp.MustCompile(`\$\(1\)(/[^\s)]+)`).FindAllStringSubmatch(mk, -1) {
		p := "." + m[1]
		_, file := dataWant[p]
		_, dir := dataWant[strings.TrimSuffix(p, "/")+"/"]
		if !file && !dir {
			t.Errorf("feed installs %s, which the .ipk does not have", m[1])
		}
	}
	// The local-source Build/Prepare copies these from the checkout.
	for _, src := range []string{"go.mod", "go.sum", "src", "files"} {
		if !strings.Contains(mk, "$(DDHCPD_SRC_DIR)/"+src) {
			t.Errorf("Build/Prepare does not copy %s", src)
		}
		if _, err := os.Stat(filepath.Join(root, src)); err != nil {
			t.Errorf("Build/Prepare copies %s: %v", src, err)
		}
	}
	// The module path GO_PKG names.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^module ddhcpd$`).Match(gomod) {
		t.Errorf("go.mod's module is not ddhcpd: update GO_PKG")
	}
	// golang/host is Go 1.23 in OpenWrt 24.10's packages feed, and
	// golang-package.mk sets GOTOOLCHAIN=local: go.mod may not ask for more.
	if m := regexp.MustCompile(`(?m)^go 1\.(\d+)(\.\d+)?$`).FindSubmatch(gomod); m == nil {
		t.Errorf("go.mod has no go line of the form go 1.N[.P]")
	} else if minor, _ := strconv.Atoi(string(m[1])); minor > maxGoMinor {
		t.Errorf("go.mod asks for Go 1.%d: OpenWrt 24.10's golang/host is Go 1.%d", minor, maxGoMinor)
	}
	if regexp.MustCompile(`(?m)^toolchain `).Match(gomod) {
		t.Errorf("go.mod has a toolchain line: OpenWrt builds with its own Go (GOTOOLCHAIN=local)")
	}
}

// maxGoMinor is the Go of OpenWrt 24.10's packages feed (Go 1.23), the
// oldest feed ddhcpd builds with.
const maxGoMinor = 23

// TestFeedMakefileSources runs the feed Makefile with GNU make against
// stand-ins for rules.mk, package.mk and golang-package.mk (only the
// variables it reads), and checks what each source mode sets: the checkout,
// the release tarball and a git commit, and the static-build overrides.
func TestFeedMakefileSources(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root := repoRoot(t)
	top := t.TempDir()
	for name, text := range map[string]string{
		"rules.mk":           "version_abbrev=$(shell printf '%.8s' '$(1)')\n",
		"include/package.mk": "BuildPackage=\n",
		// As the feed's golang-package.mk has them: cgo on, external linker.
		"feeds/packages/lang/golang/golang-package.mk": "GO_PKG_TARGET_VARS=GOOS=linux GOARCH=mipsle GOMIPS=softfloat CGO_ENABLED=1 CC=gcc\n" +
			"GO_PKG_DEFAULT_LDFLAGS=-buildid '1' -linkmode external -extldflags '-Wl,-z,now'\n" +
			"GoBinPackage=\n",
	} {
		writeFile(t, filepath.Join(top, name), text, 0o644)
	}
	vars := []string{"DDHCPD_SRC_DIR", "PKG_VERSION", "PKG_SOURCE", "PKG_SOURCE_URL", "PKG_HASH",
		"PKG_SOURCE_PROTO", "PKG_SOURCE_VERSION", "PKG_MIRROR_HASH", "GO_PKG_LDFLAGS_X",
		"GO_PKG_TARGET_VARS", "GO_PKG_DEFAULT_LDFLAGS"}
	// makeVars runs the Makefile in its directory with args and returns each
	// variable's value, and whether it defines its own Build/Prepare.
	makeVars := func(t *testing.T, args ...string) (map[string]string, error) {
		t.Helper()
		printRule := "print: ; @:$(foreach v," + strings.Join(vars, " ") + ",$(info $(v)=$($(v))))" +
			"$(info Build/Prepare=$(if $(value Build/Prepare),own,default))"
		argv := append([]string{"make", "-s", "--no-print-directory", "TOPDIR=" + top, "INCLUDE_DIR=" + filepath.Join(top, "include"),
			"--eval", printRule}, args...)
		r := run(t, 30*time.Second, filepath.Join(root, "openwrt", "ddhcpd"), nil, append(argv, "print")...)
		if r.err != nil {
			return nil, fmt.Errorf("%v: %s", r.err, r.stderr)
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			k, v, _ := strings.Cut(line, "=")
			got[k] = strings.Join(strings.Fields(v), " ")
		}
		return got, nil
	}
	want := func(t *testing.T, got map[string]string, w map[string]string) {
		t.Helper()
		for k, v := range w {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	}

	t.Run("checkout", func(t *testing.T) {
		got, err := makeVars(t)
		if err != nil {
			t.Fatal(err)
		}
		want(t, got, map[string]string{"DDHCPD_SRC_DIR": root, "PKG_SOURCE": "", "PKG_SOURCE_URL": "", "PKG_SOURCE_PROTO": "",
			"PKG_VERSION": "0.1.0", "Build/Prepare": "own", "GO_PKG_LDFLAGS_X": "main.version=0.1.0-r1",
			// Static: cgo off, Go's linker, the feed's other flags kept.
			"GO_PKG_TARGET_VARS":     "GOOS=linux GOARCH=mipsle GOMIPS=softfloat CC=gcc CGO_ENABLED=0",
			"GO_PKG_DEFAULT_LDFLAGS": "-buildid '1' -linkmode internal -extldflags '-Wl,-z,now'"})
	})
	t.Run("release", func(t *testing.T) {
		got, err := makeVars(t, "DDHCPD_SRC_DIR=")
		if err != nil {
			t.Fatal(err)
		}
		want(t, got, map[string]string{"PKG_SOURCE": "ddhcpd-0.1.0.tar.gz", "PKG_SOURCE_PROTO": "", "PKG_VERSION": "0.1.0",
			"Build/Prepare": "default"})
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got["PKG_HASH"]) {
			t.Errorf("PKG_HASH %q", got["PKG_HASH"])
		}
		got, err = makeVars(t, "DDHCPD_SRC_DIR=", "DDHCPD_RELEASE_URL=https://example.org/ddhcpd/")
		if err != nil {
			t.Fatal(err)
		}
		want(t, got, map[string]string{"PKG_SOURCE_URL": "https://example.org/ddhcpd/"})
	})
	t.Run("git", func(t *testing.T) {
		const commit = "0123456789abcdef0123456789abcdef01234567"
		got, err := makeVars(t, "DDHCPD_GIT_URL=https://example.org/ddhcpd.git", "DDHCPD_GIT_COMMIT="+commit)
		if err != nil {
			t.Fatal(err)
		}
		// The commit is in the version, so in the cached tarball's name.
		want(t, got, map[string]string{"PKG_SOURCE_PROTO": "git", "PKG_SOURCE_URL": "https://example.org/ddhcpd.git",
			"PKG_SOURCE_VERSION": commit, "PKG_VERSION": "0.1.0~01234567", "PKG_SOURCE": "", "PKG_HASH": "",
			"Build/Prepare": "default", "GO_PKG_LDFLAGS_X": "main.version=0.1.0~01234567-r1"})
		for _, bad := range []string{"", "HEAD", "main", "v0.1.0", commit[:12], strings.ToUpper(commit)} {
			if _, err := makeVars(t, "DDHCPD_GIT_URL=https://example.org/ddhcpd.git", "DDHCPD_GIT_COMMIT="+bad); err == nil ||
				!strings.Contains(err.Error(), "DDHCPD_GIT_COMMIT must be a full commit id") {
				t.Errorf("commit %q: %v, want it refused", bad, err)
			}
		}
	})
}
