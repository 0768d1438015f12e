package luci

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/html"

	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
	"ddhcpd/src/rpcd"
)

// mapScreenshotDoc is where TestBlockMapAndTree copies its screenshot with
// UPDATE_SCREENSHOT=1.
const mapScreenshotDoc = "luci-map.png"

// Node ids of the canned mesh. The root has the lowest id of the partition.
const (
	selfID   = "6c1f0a9e3b7d2e15"
	ownerA   = "b24e9d07c3a18f60"
	ownerB   = "0e93a4f2d8175bc6"
	cNodeID  = "0000000000000000" // every C node sends id 0
	cNodeAt  = "fe80::c:1%bat0"
	rootID   = "01a2b3c4d5e6f708"
	parentID = "3d5e7f9011223344"
	childA   = "8f00112233445566"
	childB   = "c0ffee0123456789"
	nbSym    = "d00dfeed98765432"
	nbOneWay = "e1e2e3e4e5e6e7e8"
)

// cannedMesh is a router of a mesh with a /20 pool of blocks of 4 (1,024
// blocks) and the overlay on, as the daemon would describe it.
type cannedMesh struct {
	pool        string // 10.20.0.0/20 unless set
	blocksN     uint32 // 1024 unless set
	blocksCalls atomic.Int32
}

// The blocks of the canned pool that are not free, by state.
var (
	cannedOurs      = append(span(64, 80), 500)
	cannedA         = span(100, 164)
	cannedB         = span(300, 332)
	cannedC         = span(700, 704)
	cannedClaiming  = []int{80, 81} // 81 becomes ours from the second refresh on
	cannedTentative = []int{900}
	cannedBlocked   = []int{0, 1}
)

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func cannedFirst(i int) string {
	a := 10<<24 | 20<<16 + i*4
	return fmt.Sprintf("%d.%d.%d.%d", a>>24&255, a>>16&255, a>>8&255, a&255)
}

func (m *cannedMesh) status() control.Status {
	pool, n := m.pool, m.blocksN
	if pool == "" {
		pool, n = "10.20.0.0/20", 1024
	}
	return control.Status{
		Node: selfID, Pool: pool, BlockSize: 4, Blocks: n,
		Owned: len(cannedOurs), Tracked: 110, SpareLeases: 2, BlockTimeout: 60,
		UptimeSeconds: 4000, Version: "test", DHCP: true, ServerID: "10.20.0.1",
		Interfaces: []string{"br-client"}, Leases: 1,
		Mesh: []control.Iface{{Name: "bat0", Up: true, Open: true, LinkLocal: "fe80::1"}},
	}
}

func (m *cannedMesh) blocks() []control.Block {
	second := m.blocksCalls.Add(1) > 1
	var out []control.Block
	add := func(idx []int, state, owner, addr string, timeout float64) {
		for _, i := range idx {
			out = append(out, control.Block{Index: uint32(i), First: cannedFirst(i), State: state, Owner: owner, OwnerAddr: addr, Timeout: timeout})
		}
	}
	add(cannedBlocked, "blocked", "", "", 0)
	add(cannedOurs, "ours", selfID, "", 0)
	if second {
		add(cannedClaiming[:1], "claiming", "", "", 2)
		add(cannedClaiming[1:], "ours", selfID, "", 0)
	} else {
		add(cannedClaiming, "claiming", "", "", 2)
	}
	add(cannedA, "claimed", ownerA, "fe80::a%bat0", 42)
	add(cannedB, "claimed", ownerB, "fe80::b%bat0", 50)
	add(cannedC, "claimed", cNodeID, cNodeAt, 30)
	add(cannedTentative, "tentative", "", "", 3)
	return out
}

func (m *cannedMesh) tree() control.Tree {
	return control.Tree{Enabled: true, TreeState: &control.TreeState{
		Node: selfID, Valid: true, Root: rootID, Epoch: 7, Depth: 3, Size: 23,
		Parent: &control.TreePeer{ID: parentID, Addr: "fe80::3d%bat0"},
		Children: []control.TreeChild{
			{TreePeer: control.TreePeer{ID: childA, Addr: "fe80::8f%bat0"}, Subtree: 3},
			{TreePeer: control.TreePeer{ID: childB, Addr: "fe80::c0%bat0"}, Subtree: 1},
		},
		Walk: "idle",
		Neighbours: []control.TreeNeighbour{
			{ID: parentID, Links: []string{"fe80::3d%bat0"}, Symmetric: true, Root: rootID, Epoch: 7},
			{ID: childA, Links: []string{"fe80::8f%bat0"}, Symmetric: true, Root: rootID, Epoch: 7},
			{ID: childB, Links: []string{"fe80::c0%bat0"}, Symmetric: true, Root: rootID, Epoch: 7},
			{ID: nbSym, Links: []string{"fe80::d0%bat0"}, Symmetric: true, Root: rootID, Epoch: 7},
			{ID: nbOneWay, Links: []string{"fe80::e1%bat0"}},
		},
	}}
}

// serve answers the control socket as the daemon would.
func (m *cannedMesh) serve(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	h := func(_ context.Context, req control.Request) control.Reply {
		switch req.Cmd {
		case "status":
			return control.Reply{Result: m.status()}
		case "blocks":
			return control.Reply{Result: m.blocks()}
		case "leases":
			return control.Reply{Result: []control.Lease{{Addr: "10.20.1.2", State: "assigned", HW: "02:00:00:00:00:01", Expires: 290, Block: 64, Local: true}}}
		case "tree":
			return control.Reply{Result: m.tree()}
		}
		return control.Fail(control.CodeUnknownCommand, "unknown command %q", req.Cmd)
	}
	s, err := control.Listen(path, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

// TestBlockMapAndTree renders the page of a router in a bigger mesh (a
// daemon with canned answers behind the real plugin) and checks the block
// map and the drawing of the overlay tree.
func TestBlockMapAndTree(t *testing.T) {
	mesh := &cannedMesh{}
	shot := filepath.Join(t.TempDir(), "luci-map.png")
	p, srv := cannedPage(t, mesh, "--window-size=1280,1560", "--screenshot="+shot)
	checkPNG(t, shot, 1280, 1560)
	if os.Getenv(screenshotEnv) == "1" {
		dst := filepath.Join("..", "..", "docs", mapScreenshotDoc)
		copyFile(t, shot, dst)
		t.Logf("screenshot copied to %s", dst)
	} else {
		t.Logf("screenshot in %s (%s=1 copies it to docs/%s)", shot, screenshotEnv, mapScreenshotDoc)
	}
	if f := srv.failures(); len(f) > 0 {
		t.Errorf("ubus failures: %v", f)
	}

	checkBlockMap(t, p)
	checkTreeDrawing(t, p)

	// The tables are still there.
	if bt := p.table(t, "ddhcpd-blocks"); len(bt.rows) != len(mesh.blocks()) {
		t.Errorf("blocks table has %d rows, want %d", len(bt.rows), len(mesh.blocks()))
	}
	treeCell := func(name string) string {
		return text(find(p.byID("ddhcpd-tree"), func(n *html.Node) bool { v, _ := attr(n, "data-name"); return v == name }))
	}
	if treeCell("root") != rootID || !strings.Contains(treeCell("parent"), parentID) || treeCell("size") != "23" {
		t.Errorf("the tree's table: root %q, parent %q, size %q", treeCell("root"), treeCell("parent"), treeCell("size"))
	}
}

// cannedPage loads the page of the canned router in chromium, with extra
// flags, and returns the DOM after the load and at least two refreshes.
func cannedPage(t *testing.T, mesh *cannedMesh, extra ...string) (page, *pageServer) {
	t.Helper()
	browserBin := chromium(t)
	plugin := installPlugin(t, nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd"))
	sock := mesh.serve(t)
	srv := newPageServer(t, plugin, []string{rpcd.EnvSocket + "=" + sock}, 1)
	srv.start()
	pageURL := srv.url + "/cgi-bin/luci/admin/status/ddhcpd"
	checkPageServes(t, pageURL)
	args := append([]string{"--virtual-time-budget=3500"}, extra...)
	dump := runBrowser(t, browserBin, append(args, "--dump-dom", pageURL)...)
	p := parsePage(t, dump)
	checkRendered(t, p, dump)
	polls, _ := attr(find(p.root, byTag("body")), "data-stub-polls")
	if n, _ := strconv.Atoi(polls); n < 2 {
		t.Fatalf("the view was refreshed %q times by poll, want at least 2", polls)
	}
	return p, srv
}

// TestBlockMapLargePool checks the map of a pool of more blocks than it
// draws cells (a /17 of blocks of 4: 8,192 blocks): one cell for 4 blocks,
// showing the most notable state among them.
func TestBlockMapLargePool(t *testing.T) {
	p, srv := cannedPage(t, &cannedMesh{pool: "10.20.0.0/17", blocksN: 8192})
	if f := srv.failures(); len(f) > 0 {
		t.Errorf("ubus failures: %v", f)
	}
	cells := blockMap(t, p)
	if len(cells) != 2048 {
		t.Fatalf("the map of 8192 blocks has %d cells, want 2048", len(cells))
	}
	grid := find(p.byID("ddhcpd-map"), func(n *html.Node) bool { return hasClass(n, "ddhcpd-map") })
	if per, _ := attr(grid, "data-per-cell"); per != "4" {
		t.Errorf("blocks per cell %q, want 4", per)
	}
	for i, c := range cells {
		if c.index != 4*i {
			t.Fatalf("cell %d starts at block %d, want %d", i, c.index, 4*i)
		}
	}
	var labels []string
	for _, n := range findAll(p.byID("ddhcpd-map"), func(n *html.Node) bool { return hasClass(n, "ddhcpd-map-row") }) {
		labels = append(labels, text(n))
	}
	if len(labels) != 32 || labels[1] != "10.20.4.0" || labels[31] != "10.20.124.0" {
		t.Errorf("row labels %v, want 32 rows from 10.20.0.0, 1024 addresses each", labels)
	}
	for _, w := range []struct {
		cell  int
		class string
		title []string
	}{
		{0, "blocked", []string{"Blocks 0-3\n10.20.0.0 - 10.20.0.15\n", "2 reserved", "2 free"}},
		{16, "ours", []string{"Blocks 64-67", "4 own"}},
		{20, "ours", []string{"Blocks 80-83", "1 claiming", "1 own", "2 free"}}, // 81 is ours after the refresh
		{25, "claimed", []string{"4 claimed (b24e9d07)"}},
		{175, "claimed", []string{"4 claimed (C node " + cNodeAt + ")"}},
		{225, "tentative", []string{"1 tentative", "3 free"}},
		{226, "free", []string{"Blocks 904-907", "free"}},
	} {
		c := cells[w.cell]
		if !c.has(w.class) {
			t.Errorf("cell %d: class %v, want %s", w.cell, c.class, w.class)
		}
		for _, s := range w.title {
			if !strings.Contains(c.title, s) {
				t.Errorf("cell %d: title %q lacks %q", w.cell, c.title, s)
			}
		}
	}
	if a, b := background(cells[25].style), background(cells[26].style); a == "" || a != b || cells[25].owner != ownerA {
		t.Errorf("cells of %s: colours %q %q, owner %q", ownerA, a, b, cells[25].owner)
	}
}

// mapCell is one cell of the block map.
type mapCell struct {
	node  *html.Node
	index int
	class []string
	style string
	title string
	owner string
}

func (c mapCell) has(class string) bool {
	for _, k := range c.class {
		if k == class {
			return true
		}
	}
	return false
}

// blockMap returns the cells of the block map in document order.
func blockMap(t *testing.T, p page) []mapCell {
	t.Helper()
	m := p.byID("ddhcpd-map")
	if m == nil {
		t.Fatal("no block map #ddhcpd-map in the page")
	}
	var cells []mapCell
	for _, n := range findAll(m, func(n *html.Node) bool { return hasClass(n, "ddhcpd-cell") }) {
		c := mapCell{node: n}
		v, _ := attr(n, "data-index")
		var err error
		if c.index, err = strconv.Atoi(v); err != nil {
			t.Fatalf("cell without a block index: %v", n.Attr)
		}
		cls, _ := attr(n, "class")
		c.class = strings.Fields(cls)
		c.style, _ = attr(n, "style")
		c.title, _ = attr(n, "title")
		c.owner, _ = attr(n, "data-owner")
		cells = append(cells, c)
	}
	return cells
}

// background is the background colour a cell's style sets.
func background(style string) string {
	for _, decl := range strings.Split(style, ";") {
		if k, v, ok := strings.Cut(decl, ":"); ok && strings.TrimSpace(k) == "background-color" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func checkBlockMap(t *testing.T, p page) {
	t.Helper()
	cells := blockMap(t, p)
	if len(cells) != 1024 {
		t.Fatalf("the block map has %d cells, want one per block: 1024", len(cells))
	}
	for i, c := range cells {
		if c.index != i {
			t.Fatalf("cell %d is block %d", i, c.index)
		}
	}
	// Row labels: 64 cells to a row, each row one /24.
	var labels []string
	for _, n := range findAll(p.byID("ddhcpd-map"), func(n *html.Node) bool { return hasClass(n, "ddhcpd-map-row") }) {
		labels = append(labels, text(n))
	}
	if len(labels) != 16 || labels[0] != "10.20.0.0" || labels[1] != "10.20.1.0" || labels[15] != "10.20.15.0" {
		t.Errorf("row labels %v, want 16 rows 10.20.0.0 ... 10.20.15.0", labels)
	}

	want := map[int]string{}
	for _, i := range cannedOurs {
		want[i] = "ours"
	}
	want[81] = "ours" // after the refresh
	want[80] = "claiming"
	for _, i := range cannedA {
		want[i] = "A"
	}
	for _, i := range cannedB {
		want[i] = "B"
	}
	for _, i := range cannedC {
		want[i] = "C"
	}
	for _, i := range cannedTentative {
		want[i] = "tentative"
	}
	for _, i := range cannedBlocked {
		want[i] = "blocked"
	}
	colours := map[string]map[string]bool{}
	for _, c := range cells {
		w := want[c.index]
		if w == "" {
			w = "free"
		}
		bg := background(c.style)
		fail := func(why string) {
			t.Errorf("block %d (%s): %s; class %v, style %q, title %q", c.index, w, why, c.class, c.style, c.title)
		}
		if c.has("ours") != (w == "ours") {
			fail("class ours is only for own blocks")
		}
		if c.has("tentative") != (w == "claiming" || w == "tentative") {
			fail("class tentative is for blocks being inquired about")
		}
		if c.has("blocked") != (w == "blocked") {
			fail("class blocked is for reserved blocks")
		}
		if c.has("free") != (w == "free") {
			fail("class free is for free blocks")
		}
		if w == "claiming" && !c.has("claiming") {
			fail("this node's inquiry is not marked claiming")
		}
		switch w {
		case "ours", "claiming", "A", "B", "C":
			if bg == "" {
				fail("no owner colour")
			}
			k := w
			if w == "claiming" {
				k = "ours"
			}
			if colours[k] == nil {
				colours[k] = map[string]bool{}
			}
			colours[k][bg] = true
		default:
			if bg != "" {
				fail("an owner colour on a block without owner")
			}
		}
		first := cannedFirst(c.index)
		if !strings.Contains(c.title, "Block "+strconv.Itoa(c.index)+"\n") || !strings.Contains(c.title, first+" - ") {
			fail("the title does not give block index and first address " + first)
		}
		switch w {
		case "A":
			if !strings.Contains(c.title, "claimed") || !strings.Contains(c.title, "Owner: "+ownerA) {
				fail("title without state and owner")
			}
		case "ours":
			if !strings.Contains(c.title, "own") || !strings.Contains(c.title, "Owner: "+selfID+" (this node)") {
				fail("title without state and owner")
			}
		case "C":
			if !strings.Contains(c.title, "Owner: C node "+cNodeAt) {
				fail("title without the C node's address")
			}
		case "blocked":
			if !strings.Contains(c.title, "reserved") {
				fail("title without state")
			}
		case "free":
			if !strings.Contains(c.title, "free") {
				fail("title without state")
			}
		}
	}
	// One colour per owner, and a different one for each.
	seen := map[string]string{}
	for _, k := range []string{"ours", "A", "B", "C"} {
		if len(colours[k]) != 1 {
			t.Errorf("the blocks of %s have colours %v, want one", k, colours[k])
			continue
		}
		for bg := range colours[k] {
			if other, dup := seen[bg]; dup {
				t.Errorf("%s and %s have the same colour %s", other, k, bg)
			}
			seen[bg] = k
		}
	}

	// The legend names every owner with its colour.
	legend := p.byID("ddhcpd-map-legend")
	for _, s := range []string{"own block", "claiming", "tentative", "reserved", "free"} {
		if !strings.Contains(text(legend), s) {
			t.Errorf("legend %q lacks %q", text(legend), s)
		}
	}
	owners := findAll(legend, func(n *html.Node) bool { return hasClass(n, "ddhcpd-owner") })
	byOwner := map[string]string{}
	for _, o := range owners {
		k, _ := attr(o, "data-owner")
		byOwner[k] = text(o)
	}
	wantOwners := map[string]string{
		selfID:  "6c1f0a9e (this node): 18",
		ownerA:  "b24e9d07: 64",
		ownerB:  "0e93a4f2: 32",
		cNodeAt: "C node " + cNodeAt + ": 4",
	}
	if len(byOwner) != len(wantOwners) {
		t.Errorf("owners in the legend %v, want %v", byOwner, wantOwners)
	}
	for k, w := range wantOwners {
		if byOwner[k] != w {
			t.Errorf("legend for owner %s: %q, want %q", k, byOwner[k], w)
		}
	}
}

// treeNode is a node of the tree drawing.
type treeNode struct {
	class []string
	id    string
	text  string
}

func checkTreeDrawing(t *testing.T, p page) {
	t.Helper()
	svg := find(p.byID("ddhcpd-tree"), byTag("svg"))
	if svg == nil {
		t.Fatalf("no drawing in the tree section: %q", text(p.byID("ddhcpd-tree")))
	}
	byRole := map[string][]treeNode{}
	for _, g := range findAll(svg, func(n *html.Node) bool { return hasClass(n, "ddhcpd-tnode") }) {
		cls, _ := attr(g, "class")
		id, _ := attr(g, "data-id")
		// The text drawn, without the tooltip.
		var drawn []string
		for _, tx := range findAll(g, byTag("text")) {
			drawn = append(drawn, text(tx))
		}
		n := treeNode{class: strings.Fields(cls), id: id, text: strings.Join(drawn, " | ")}
		for _, role := range []string{"top", "parent", "self", "child", "neighbour"} {
			if hasClass(g, role) {
				byRole[role] = append(byRole[role], n)
			}
		}
		if hasClass(g, "root") {
			byRole["root"] = append(byRole["root"], n)
		}
	}
	one := func(role, id, drawn string) {
		t.Helper()
		ns := byRole[role]
		if len(ns) != 1 || ns[0].id != id || ns[0].text != drawn {
			t.Errorf("%s in the drawing: %+v, want %s drawn as %q", role, ns, id, drawn)
		}
	}
	one("self", selfID, "6c1f0a9e | this node, subtree 5")
	one("parent", parentID, "3d5e7f90 | parent")
	one("top", rootID, "01a2b3c4 | ★ root, 23 nodes")
	one("root", rootID, "01a2b3c4 | ★ root, 23 nodes")
	children := byRole["child"]
	if len(children) != 2 || children[0].id != childA || children[0].text != "8f001122 | subtree 3" ||
		children[1].id != childB || children[1].text != "c0ffee01 | subtree 1" {
		t.Errorf("children in the drawing: %+v, want %s with subtree 3 and %s with subtree 1", children, childA, childB)
	}
	nbs := byRole["neighbour"]
	if len(nbs) != 2 || nbs[0].id != nbSym || nbs[0].text != "d00dfeed | neighbour" ||
		nbs[1].id != nbOneWay || nbs[1].text != "e1e2e3e4 | one-way neighbour" {
		t.Errorf("neighbours outside the tree in the drawing: %+v", nbs)
	}
	// Edges: root to parent (2 hops, dashed), parent to this node, this
	// node to each child, this node to the neighbours.
	edges := map[string]int{}
	for _, l := range findAll(svg, byTag("line")) {
		cls, _ := attr(l, "class")
		edges[cls]++
	}
	if edges["ddhcpd-tedge up"] != 2 || edges["ddhcpd-tedge down"] != 2 || edges["ddhcpd-tedge side"] != 1 {
		t.Errorf("edges %v, want 2 up, 2 down, 1 to the neighbours", edges)
	}
	if !strings.Contains(text(svg), "2 hops") {
		t.Errorf("the drawing does not say how far the root is: %q", text(svg))
	}
	if got := text(find(p.byID("ddhcpd-tree"), func(n *html.Node) bool { return hasClass(n, "ddhcpd-tree-caption") })); got != "Root 01a2b3c4, epoch 7, 23 nodes, this node at depth 3." {
		t.Errorf("tree caption %q", got)
	}
}

// checkLiveMap checks the block map of TestStatusPage against the daemon:
// one cell per block, the daemon's blocks in their state, each in the
// colour of its owner, the rest free.
func checkLiveMap(t *testing.T, p page, st, other control.Status, blocks []control.Block) {
	t.Helper()
	cells := blockMap(t, p)
	if len(cells) != int(st.Blocks) {
		t.Fatalf("the block map has %d cells, the pool %d blocks", len(cells), st.Blocks)
	}
	listed := map[int]control.Block{}
	for _, b := range blocks {
		listed[int(b.Index)] = b
	}
	colour := map[string]string{} // by owner
	for i, c := range cells {
		b, ok := listed[i]
		if c.index != i {
			t.Errorf("cell %d is block %d", i, c.index)
		}
		state, _ := attr(c.node, "data-state")
		switch {
		case !ok:
			if !c.has("free") || state != "free" || c.owner != "" || background(c.style) != "" {
				t.Errorf("free block %d: class %v, state %q, owner %q, style %q", i, c.class, state, c.owner, c.style)
			}
			continue
		case state != b.State:
			t.Errorf("block %d is %s, the map says %q", i, b.State, state)
		case b.State == "ours":
			if !c.has("ours") || c.owner != st.Node {
				t.Errorf("own block %d: class %v, owner %q", i, c.class, c.owner)
			}
		case b.State == "claimed":
			if !c.has("claimed") || c.has("ours") || c.owner != b.Owner {
				t.Errorf("block %d of %s: class %v, owner %q", i, b.Owner, c.class, c.owner)
			}
		}
		if b.State == "ours" || b.State == "claimed" {
			bg := background(c.style)
			if bg == "" || (colour[c.owner] != "" && colour[c.owner] != bg) {
				t.Errorf("block %d of %s: colour %q (other blocks of the owner: %q)", i, c.owner, bg, colour[c.owner])
			}
			colour[c.owner] = bg
		}
	}
	if colour[st.Node] == "" || colour[other.Node] == "" {
		t.Errorf("the map shows no block of this node (%s) or of the other router (%s): colours %v", st.Node, other.Node, colour)
	}
}
