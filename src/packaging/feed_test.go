package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
		{`^PKG_BUILD_DEPENDS:=golang[0-9.]*/host$`, "a host Go"},
		{`^\s+DEPENDS:=\$\(GO_ARCH_DEPENDS\)$`, "no libc or other runtime dependency"},
		{`^\$\(eval \$\(call BuildPackage,ddhcpd\)\)$`, "BuildPackage"},
		{`\$\(call GoPackage/Package/Install/Bin,\$\(1\)\)`, "the Go binary is installed"},
		{`\$\(LN\) ddhcpd \$\(1\)/usr/sbin/ddhcpctl$`, "ddhcpctl -> ddhcpd"},
		{`\$\(LN\) /usr/sbin/ddhcpd \$\(1\)/usr/libexec/rpcd/ddhcpd$`, "rpcd plugin -> /usr/sbin/ddhcpd"},
		{`\$\(INSTALL_BIN\) \$\(PKG_BUILD_DIR\)/files/etc/init.d/ddhcpd \$\(1\)/etc/init.d/ddhcpd$`, "init script, 0755"},
		{`\$\(INSTALL_CONF\) \$\(PKG_BUILD_DIR\)/files/etc/config/ddhcpd \$\(1\)/etc/config/ddhcpd$`, "config, 0600"},
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
	if goVer := regexp.MustCompile(`(?m)^go (1\.\d+)`).FindSubmatch(gomod); goVer != nil {
		if !strings.Contains(mk, "PKG_BUILD_DEPENDS:=golang"+string(goVer[1])+"/host") {
			t.Errorf("go.mod asks for Go %s: PKG_BUILD_DEPENDS should be golang%[1]s/host", goVer[1])
		}
	}
}
