package packaging

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Budget for the mipsel_24kc package (8 MB-flash routers); see
// docs/openwrt.md. Over it is reported, not failed: the figure is a goal.
const ipkBudget = 1_200_000

// heavyPackages must not end up in the daemon: each would add hundreds of
// kilobytes (HTTP, TLS and certificates, templates, XML, protobuf). The
// control socket speaks JSON over a unix socket and rpcd talks to us on
// stdin/stdout, so none is needed.
var heavyPackages = []string{
	"net/http", "crypto/tls", "crypto/x509", "html/template", "text/template",
	"encoding/xml", "google.golang.org/protobuf", "net/rpc", "plugin",
}

// modules whose code size is reported; anything else is the standard
// library (runtime included).
var sizeModules = []string{
	"ddhcpd",
	"github.com/insomniacslk/dhcp",
	"github.com/vishvananda/netlink",
	"github.com/vishvananda/netns",
	"github.com/mdlayher/packet",
	"github.com/mdlayher/socket",
	"golang.org/x/net",
	"golang.org/x/sys",
	"golang.org/x/sync",
	"github.com/u-root/uio",
	"github.com/josharian/native",
	"github.com/pierrec/lz4/v4",
}

func moduleOf(pkg string) string {
	for _, m := range sizeModules {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	if strings.HasPrefix(pkg, "vendor/golang.org/x/") {
		return "std (vendored x/net, x/crypto)"
	}
	first, _, _ := strings.Cut(pkg, "/")
	if strings.Contains(first, ".") {
		return pkg // a module not listed above: shown on its own
	}
	return "std"
}

// TestBinarySize attributes the packaged mipsel_24kc binary's machine code
// to modules, from the function table that even a stripped Go binary keeps,
// and fails if a heavy standard package crept in. go test -v prints the
// table (docs/openwrt.md quotes it).
func TestBinarySize(t *testing.T) {
	dir, _ := builtIPKs(t)
	const arch = "mipsel_24kc"
	file := ipkFile(t, dir, arch)
	p := unpack(t, file)
	bin := p.data["./usr/sbin/ddhcpd"].data
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	text, pcln := f.Section(".text"), f.Section(".gopclntab")
	if text == nil || pcln == nil {
		t.Fatal("no .text or .gopclntab")
	}
	pclnData, err := pcln.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(pclnData, text.Addr))
	if err != nil {
		t.Fatalf("function table: %v", err)
	}
	code := map[string]uint64{}
	stdCode := map[string]uint64{} // by top-level standard package
	pkgs := map[string]bool{}
	var total uint64
	for _, fn := range tab.Funcs {
		pkg := fn.PackageName()
		if pkg == "" {
			continue
		}
		pkgs[pkg] = true
		code[moduleOf(pkg)] += fn.End - fn.Entry
		if moduleOf(pkg) == "std" {
			top := pkg
			if i := strings.Index(pkg, "/"); i > 0 && pkg[:i] != "net" && pkg[:i] != "encoding" && pkg[:i] != "log" {
				top = pkg[:i] // runtime/..., internal/..., crypto/...: together
			}
			stdCode[top] += fn.End - fn.Entry
		}
		total += fn.End - fn.Entry
	}
	for _, h := range heavyPackages {
		for pkg := range pkgs {
			if pkg == h || strings.HasPrefix(pkg, h+"/") {
				t.Errorf("the daemon links %s: find who imports it (go list -deps ./src/cmd/ddhcpd)", pkg)
			}
		}
	}

	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: binary %d bytes (.text %d, .rodata %d, .gopclntab %d), package %d bytes",
		arch, len(bin), text.Size, sectionSize(f, ".rodata"), pcln.Size, st.Size())
	if st.Size() > ipkBudget {
		fmt.Fprintf(&b, ", %d over the %d budget", st.Size()-ipkBudget, ipkBudget)
	}
	fmt.Fprintf(&b, "\nmachine code by module (%d bytes of functions):\n", total)
	names := slices.Collect(maps.Keys(code))
	sort.Slice(names, func(i, j int) bool { return code[names[i]] > code[names[j]] })
	for _, m := range names {
		fmt.Fprintf(&b, "  %9d  %5.1f%%  %s\n", code[m], 100*float64(code[m])/float64(total), m)
	}
	names = slices.Collect(maps.Keys(stdCode))
	sort.Slice(names, func(i, j int) bool { return stdCode[names[i]] > stdCode[names[j]] })
	fmt.Fprintf(&b, "standard library, largest:\n")
	for _, m := range names[:min(len(names), 15)] {
		fmt.Fprintf(&b, "  %9d  %s\n", stdCode[m], m)
	}
	t.Log(b.String())
}

func sectionSize(f *elf.File, name string) uint64 {
	if s := f.Section(name); s != nil {
		return s.Size
	}
	return 0
}
