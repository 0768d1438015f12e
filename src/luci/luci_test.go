// Package luci tests luci-app-ddhcpd, the LuCI status page, end to end: a
// real ddhcpd in network namespaces with real DHCP clients, the real rpcd
// plugin run the way rpcd runs it, the real view in headless Chromium on a
// test page that stands in for LuCI's client API (testdata/luci/luci.js),
// and the rendered tables checked against the daemon's own answers.
package luci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
	"ddhcpd/src/rpcd"
)

func TestMain(m *testing.M) { nettest.Main(m) }

// screenshotEnv, set to 1, makes TestStatusPage copy its screenshot to
// docs/luci-status.png.
const screenshotEnv = "UPDATE_SCREENSHOT"

const viewPath = "ddhcpd/status"

// TestPackageFiles checks that the menu entry, the ACL, the view and the
// plugin agree with each other.
func TestPackageFiles(t *testing.T) {
	menu := loadMenu(t)
	e, ok := menu["admin/status/ddhcpd"]
	if len(menu) != 1 || !ok {
		t.Fatalf("menu.d: want one entry admin/status/ddhcpd, got %v", menu)
	}
	if e.Title == "" || e.Action.Type != "view" || e.Action.Path != viewPath {
		t.Errorf("menu entry: %+v, want a titled view %s", e, viewPath)
	}
	if _, err := os.Stat(filepath.Join(appDir, "htdocs/luci-static/resources/view", viewPath+".js")); err != nil {
		t.Errorf("the menu's view: %v", err)
	}

	acl := loadACL(t)
	g, ok := acl["luci-app-ddhcpd"]
	if len(acl) != 1 || !ok {
		t.Fatalf("acl.d: want the one group luci-app-ddhcpd, got %v", acl)
	}
	if !slices.Equal(e.Depends.ACL, []string{"luci-app-ddhcpd"}) {
		t.Errorf("menu entry depends on ACL %v, want [luci-app-ddhcpd]", e.Depends.ACL)
	}
	if len(g.Write) != 0 {
		t.Errorf("ACL grants write access: %v; the page only reads", g.Write)
	}
	if len(g.Read.Ubus) != 1 {
		t.Errorf("ACL grants ubus objects %v, want only ddhcpd", g.Read.Ubus)
	}
	granted := slices.Sorted(slices.Values(g.Read.Ubus["ddhcpd"]))
	if want := slices.Sorted(slices.Values(rpcd.Methods())); !slices.Equal(granted, want) {
		t.Errorf("ACL grants ddhcpd %v, the plugin has %v", granted, want)
	}

	// Every ubus method the view declares is granted.
	src, err := os.ReadFile(filepath.Join(appDir, "htdocs/luci-static/resources/view", viewPath+".js"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`rpc\.declare\(\{\s*object:\s*'([^']+)',\s*method:\s*'([^']+)'`)
	calls := decl.FindAllStringSubmatch(string(src), -1)
	if len(calls) == 0 {
		t.Fatal("the view declares no rpc call")
	}
	for _, c := range calls {
		if !slices.Contains(g.Read.Ubus[c[1]], c[2]) {
			t.Errorf("the view calls %s.%s, which the ACL does not grant", c[1], c[2])
		}
	}
	if bytes.Contains(src, []byte("innerHTML")) {
		t.Error("the view sets innerHTML; every value it shows comes from the network")
	}

	mk, err := os.ReadFile(filepath.Join(appDir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LUCI_TITLE:=", "LUCI_DEPENDS:=+ddhcpd\n", "include $(TOPDIR)/rules.mk", "luci.mk", "BuildPackage"} {
		if !bytes.Contains(mk, []byte(want)) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
}

// TestStatusPage renders the page of a live router in Chromium and checks
// node, blocks, leases and tree against the daemon, then takes a screenshot.
func TestStatusPage(t *testing.T) {
	nettest.RequireRoot(t)
	start := time.Now()
	browserBin := chromium(t)
	if _, err := exec.LookPath("udhcpc"); err != nil {
		t.Fatalf("udhcpc (Debian package udhcpc) is needed for a lease with a hostname: %v", err)
	}
	bin := nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd")
	probe := nettest.BuildBinary(t, "ddhcpd/src/e2e/testdata/probe")
	plugin := installPlugin(t, bin)
	t.Logf("built in %v", time.Since(start).Round(time.Millisecond))

	dir := t.TempDir() // before the lab: its processes die before the directory goes
	l := nettest.New(t)
	hub := l.NS("hub")
	l.Bridge(hub, "br0")
	r1, r2 := l.NS("r1"), l.NS("r2")
	l.Veth(r1, "bat0", hub, "m1")
	l.Veth(r2, "bat0", hub, "m2")
	hub.SetMaster("m1", "br0")
	hub.SetMaster("m2", "br0")
	var clients []*nettest.NS
	for k := range 3 {
		c := l.NS(fmt.Sprintf("k%d", k))
		l.Veth(r1, fmt.Sprintf("c%d", k), c, "eth0")
		clients = append(clients, c)
	}
	l.Veth(r2, "c0", r2, "c0peer")
	sock1, sock2 := filepath.Join(dir, "r1.sock"), filepath.Join(dir, "r2.sock")
	common := []string{"-i", "bat0", "-N", "10.0.0.0/24", "-b", "4", "-L", "-inquire-interval", "400ms", "-server-id", "10.0.0.1", "-vv"}
	p1 := r1.Start(bin, append([]string{"-c", "c0,c1,c2", "-C", sock1, "-state", filepath.Join(dir, "r1")}, common...)...)
	p2 := r2.Start(bin, append([]string{"-c", "c0", "-C", sock2, "-state", filepath.Join(dir, "r2")}, common...)...)
	defer p1.Stop()
	defer p2.Stop()

	// Both own a block and router 1 knows router 2's.
	var st1, st2 control.Status
	eventually(t, 20*time.Second, "both routers own a block, r1 sees r2's", func() error {
		if err := control.Call(sock1, "status", nil, &st1); err != nil {
			return err
		}
		if err := control.Call(sock2, "status", nil, &st2); err != nil {
			return err
		}
		if st1.Owned == 0 || st2.Owned == 0 {
			return fmt.Errorf("owned: r1 %d, r2 %d", st1.Owned, st2.Owned)
		}
		var rows []control.Block
		if err := control.Call(sock1, "blocks", nil, &rows); err != nil {
			return err
		}
		if !slices.ContainsFunc(rows, func(b control.Block) bool { return b.State == "claimed" && b.Owner == st2.Node }) {
			return fmt.Errorf("r1 does not see a block of r2 (%s): %+v", st2.Node, rows)
		}
		return nil
	})
	t.Logf("routers own blocks after %v", time.Since(start).Round(time.Millisecond))

	// Three clients of router 1: the Go probe with a fixed MAC and no
	// hostname, udhcpc with a hostname, udhcpc with a hostname that is
	// markup (it must show as text).
	const probeMAC = "02:00:00:00:00:01"
	const hostile = "<b>phone</b>"
	out, err := clients[0].Run(context.Background(), probe, "-i", "eth0", "-mac", probeMAC, "dora")
	var ack struct{ Type, Yiaddr, Error string }
	if jerr := json.Unmarshal(out, &ack); jerr != nil || ack.Type != "ACK" {
		t.Fatalf("probe dora: %v %v %s", err, jerr, out)
	}
	wantHosts := map[string]string{probeMAC: ""}
	for k, name := range map[int]string{1: "laptop", 2: hostile} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := clients[k].Run(ctx, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "8", "-T", "2",
			"-s", "/bin/true", "-x", "hostname:"+name)
		cancel()
		if err != nil {
			t.Fatalf("udhcpc on k%d: %v: %s", k, err, out)
		}
		wantHosts[macOf(t, clients[k])] = name
	}
	var leases []control.Lease
	eventually(t, 10*time.Second, "three leases", func() error {
		if err := control.Call(sock1, "leases", nil, &leases); err != nil {
			return err
		}
		if len(leases) != 3 {
			return fmt.Errorf("%d leases: %+v", len(leases), leases)
		}
		return nil
	})
	var blocks []control.Block
	if err := control.Call(sock1, "blocks", nil, &blocks); err != nil {
		t.Fatal(err)
	}
	if err := control.Call(sock1, "status", nil, &st1); err != nil {
		t.Fatal(err)
	}
	t.Logf("leases after %v", time.Since(start).Round(time.Millisecond))

	// The page, polling every second; chromium's virtual time runs the
	// load and several polls.
	const pollInterval = 1
	srv := newPageServer(t, plugin, []string{rpcd.EnvSocket + "=" + sock1}, pollInterval)
	srv.start()
	pageURL := srv.url + "/cgi-bin/luci/admin/status/ddhcpd"
	checkPageServes(t, pageURL)
	// One run dumps the DOM and takes the screenshot, both after the
	// budget.
	shot := filepath.Join(t.TempDir(), "luci-status.png")
	dump := runBrowser(t, browserBin, "--virtual-time-budget=4500", "--window-size=1280,1250",
		"--screenshot="+shot, "--dump-dom", pageURL)
	t.Logf("page rendered after %v", time.Since(start).Round(time.Millisecond))
	p := parsePage(t, dump)
	checkRendered(t, p, dump)
	checkPNG(t, shot, 1280, 1250)
	if os.Getenv(screenshotEnv) == "1" {
		dst := filepath.Join("..", "..", "docs", "luci-status.png")
		copyFile(t, shot, dst)
		t.Logf("screenshot copied to %s", dst)
	} else {
		t.Logf("screenshot in %s (%s=1 copies it to docs/luci-status.png)", shot, screenshotEnv)
	}

	polls, _ := attr(find(p.root, byTag("body")), "data-stub-polls")
	if n, _ := strconv.Atoi(polls); n < 2 {
		t.Errorf("the view was refreshed %q times by poll, want at least 2", polls)
	}
	calls := srv.callCounts()
	if calls["overview"] < 3 || len(calls) != 1 {
		t.Errorf("ubus calls %v, want overview: the load and at least two polls", calls)
	}
	if f := srv.failures(); len(f) > 0 {
		t.Errorf("ubus failures: %v", f)
	}

	// This node.
	node := p.byID("ddhcpd-node")
	cell := func(name string) string {
		return text(find(node, func(n *html.Node) bool { v, _ := attr(n, "data-name"); return v == name }))
	}
	if got := cell("node"); got != st1.Node || len(got) < 8 {
		t.Errorf("node id shown %q, daemon says %q", got, st1.Node)
	}
	if got := cell("pool"); got != "10.0.0.0/24" {
		t.Errorf("pool shown %q", got)
	}
	if got := cell("state"); got != "active" {
		t.Errorf("state shown %q, want active (-L)", got)
	}
	if got := cell("blocks"); !strings.Contains(got, "16 blocks of 16 addresses") || !strings.Contains(got, "owned by this node: "+strconv.Itoa(st1.Owned)) {
		t.Errorf("blocks line %q (status %+v)", got, st1)
	}
	if got := cell("dhcp"); !strings.Contains(got, "c0, c1, c2") || !strings.Contains(got, "10.0.0.1") {
		t.Errorf("DHCP line %q", got)
	}
	if got := cell("mesh"); !strings.HasPrefix(got, "bat0: up, fe80::") {
		t.Errorf("mesh line %q", got)
	}

	// Blocks: every block the daemon lists, own ones with this node as
	// owner, router 2's with its id and a timeout.
	bt := p.table(t, "ddhcpd-blocks")
	if len(bt.rows) != len(blocks) {
		t.Errorf("blocks table has %d rows, the daemon lists %d: %v", len(bt.rows), len(blocks), bt.rows)
	}
	ownSeen, otherSeen := 0, 0
	for _, b := range blocks {
		_, row := bt.rowWhere(t, "First address", b.First)
		if row == nil {
			t.Errorf("block %d (%s) not in the table %v", b.Index, b.First, bt.rows)
			continue
		}
		if row[bt.col(t, "Block")] != strconv.Itoa(int(b.Index)) {
			t.Errorf("block %s: index %q, want %d", b.First, row[bt.col(t, "Block")], b.Index)
		}
		owner, state, timeout := row[bt.col(t, "Owner")], row[bt.col(t, "State")], row[bt.col(t, "Timeout")]
		switch b.State {
		case "ours":
			ownSeen++
			// Own claims do not time out: this node refreshes them.
			if state != "own" || owner != st1.Node+" (this node)" || timeout != "-" {
				t.Errorf("own block %s: row %v", b.First, row)
			}
		case "claimed":
			otherSeen++
			if state != "claimed" || owner != b.Owner || !strings.HasSuffix(timeout, "s") {
				t.Errorf("block %s of %s: row %v", b.First, b.Owner, row)
			}
		}
	}
	if ownSeen != st1.Owned || otherSeen == 0 {
		t.Errorf("own blocks shown %d (owned %d), other nodes' %d", ownSeen, st1.Owned, otherSeen)
	}
	checkLiveMap(t, p, st1, st2, blocks)

	// Leases: address, MAC, hostname as text, local.
	lt := p.table(t, "ddhcpd-leases")
	if len(lt.rows) != len(leases) {
		t.Errorf("leases table has %d rows, the daemon lists %d: %v", len(lt.rows), len(leases), lt.rows)
	}
	for _, le := range leases {
		i, row := lt.rowWhere(t, "Address", le.Addr)
		if row == nil {
			t.Errorf("lease %s not in the table %v", le.Addr, lt.rows)
			continue
		}
		host, ok := wantHosts[le.HW]
		if !ok {
			t.Errorf("lease %s of unknown MAC %s", le.Addr, le.HW)
		}
		if host == "" {
			host = "-"
		}
		if row[lt.col(t, "MAC address")] != le.HW || row[lt.col(t, "Hostname")] != host ||
			row[lt.col(t, "State")] != "assigned" || row[lt.col(t, "Served")] != "local" ||
			!strings.HasSuffix(row[lt.col(t, "Expires in")], "s") {
			t.Errorf("lease %s: row %v, want MAC %s, hostname %q, assigned, local", le.Addr, row, le.HW, host)
		}
		if host == hostile && find(lt.cells[i][lt.col(t, "Hostname")], byTag("b")) != nil {
			t.Errorf("the hostname %q became markup", hostile)
		}
	}
	if _, row := lt.rowWhere(t, "MAC address", probeMAC); row == nil || row[lt.col(t, "Address")] != ack.Yiaddr {
		t.Errorf("the probe's lease %s (%s) is not shown: %v", ack.Yiaddr, probeMAC, lt.rows)
	}

	// The overlay does not exist yet.
	if got := text(p.byID("ddhcpd-tree")); !strings.HasPrefix(got, "Off.") {
		t.Errorf("tree section %q", got)
	}

	// A daemon that cannot be reached: the page says so.
	down := newPageServer(t, plugin, []string{rpcd.EnvSocket + "=" + filepath.Join(dir, "none.sock")}, pollInterval)
	down.start()
	p = parsePage(t, runBrowser(t, browserBin, "--virtual-time-budget=1500", "--dump-dom", down.url+"/cgi-bin/luci/admin/status/ddhcpd"))
	checkNoErrors(t, p)
	banner := p.byID("ddhcpd-error")
	if style, _ := attr(banner, "style"); strings.Contains(style, "none") || !strings.Contains(text(banner), "Cannot read the status of ddhcpd: connect to ddhcpd") {
		t.Errorf("daemon down: banner %q (style %q)", text(banner), style)
	}
	t.Logf("done after %v", time.Since(start).Round(time.Millisecond))
}

// checkRendered fails the test unless the view rendered without errors.
func checkRendered(t *testing.T, p page, dump []byte) {
	t.Helper()
	checkNoErrors(t, p)
	if v, _ := attr(find(p.root, byTag("body")), "data-stub-rendered"); v != "1" || p.byID("ddhcpd-status") == nil {
		t.Fatalf("the view did not render:\n%s", tail(dump, 8192))
	}
	if style, _ := attr(p.byID("ddhcpd-error"), "style"); !strings.Contains(style, "display: none") && !strings.Contains(style, "display:none") {
		t.Errorf("error banner shown: %q", text(p.byID("ddhcpd-error")))
	}
	if find(p.root, func(n *html.Node) bool { return hasClass(n, "cbi-page-actions") }) != nil {
		t.Error("the status page shows Save/Apply/Reset buttons")
	}
}

func checkNoErrors(t *testing.T, p page) {
	t.Helper()
	if e := p.byID("stub-errors"); e != nil {
		t.Fatalf("JavaScript errors in the page:\n%s", text(e))
	}
}

// checkPageServes fetches the page and the view before the browser does, so
// a broken server shows as such.
func checkPageServes(t *testing.T, pageURL string) {
	t.Helper()
	base := pageURL[:strings.Index(pageURL, "/cgi-bin/")]
	for _, u := range []string{pageURL, base + "/luci-static/resources/view/" + viewPath + ".js", base + "/luci-static/stub/luci.js"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", u, resp.Status)
		}
	}
}

// installPlugin puts the plugin where rpcd looks for it, under the name
// that becomes the ubus object: PREFIX/usr/libexec/rpcd/ddhcpd. It is the
// ddhcpd binary itself once that answers "list" (the multi-call wiring in
// src/cmd/ddhcpd); until then the plugin alone (testdata/rpcdplugin).
func installPlugin(t *testing.T, daemon string) string {
	t.Helper()
	target := daemon
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := exec.CommandContext(ctx, daemon, "list").Output()
	cancel()
	var sigs map[string]any
	if err != nil || json.Unmarshal(out, &sigs) != nil || sigs["overview"] == nil {
		target = nettest.BuildBinary(t, "./testdata/rpcdplugin")
		t.Logf("ddhcpd does not answer \"list\" yet; the plugin is testdata/rpcdplugin")
	} else {
		t.Logf("the plugin is the ddhcpd binary")
	}
	dir := filepath.Join(t.TempDir(), "usr", "libexec", "rpcd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "ddhcpd")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// macOf returns the MAC address of eth0 in ns.
func macOf(t *testing.T, ns *nettest.NS) string {
	t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	out := ns.IP("-j", "link", "show", "dev", "eth0")
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("MAC of eth0 in %s: %v: %s", ns.Short, err, out)
	}
	return links[0].Address
}

func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("screenshot is %dx%d, want %dx%d", cfg.Width, cfg.Height, w, h)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 100 ms until it returns nil or the time is up.
func eventually(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
