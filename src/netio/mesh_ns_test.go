package netio_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/netio"
	"ddhcpd/src/nettest"
)

const (
	waitShort = 2 * time.Second // for things that happen at once
	waitLong  = 8 * time.Second // for interface changes (netlink, then re-check)
)

// node is a helper process running a Mesh inside a namespace.
type node struct {
	t   *testing.T
	ns  *nettest.NS
	p   *nettest.Proc
	seq int
}

func startNode(t *testing.T, ns *nettest.NS, ifaces ...string) *node {
	t.Helper()
	return startNodeEnv(t, ns, nil, ifaces...)
}

// startNodeEnv is startNode with extra environment variables for the helper.
func startNodeEnv(t *testing.T, ns *nettest.NS, env []string, ifaces ...string) *node {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env = append([]string{helperEnv + "=1", "NETIO_TEST_IFACES=" + strings.Join(ifaces, ",")}, env...)
	p := ns.StartEnv(env,
		exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	if !p.WaitOutput("READY", 10*time.Second) {
		t.Fatalf("helper in %s did not start:\n%s\n%s", ns.Short, p.Output(), p.Stderr())
	}
	return &node{t: t, ns: ns, p: p}
}

// do runs a command in the helper and returns its reply.
func (n *node) do(cmd string) (string, error) {
	n.t.Helper()
	n.seq++
	id := strconv.Itoa(n.seq)
	if err := n.p.SendLine(id + " " + cmd); err != nil {
		n.t.Fatal(err)
	}
	line, ok := n.p.WaitLine(5*time.Second, func(l string) bool {
		return strings.HasPrefix(l, id+" OK") || strings.HasPrefix(l, id+" ERR")
	})
	if !ok {
		n.t.Fatalf("%s: no reply to %q; stderr:\n%s", n.ns.Short, cmd, n.p.Stderr())
	}
	rest := strings.TrimPrefix(line, id+" ")
	if s, ok := strings.CutPrefix(rest, "OK"); ok {
		return strings.TrimSpace(s), nil
	}
	return "", errors.New(strings.TrimSpace(strings.TrimPrefix(rest, "ERR")))
}

func (n *node) must(cmd string) string {
	n.t.Helper()
	out, err := n.do(cmd)
	if err != nil {
		n.t.Fatalf("%s: %s: %v", n.ns.Short, cmd, err)
	}
	return out
}

// recv is a parsed RECV line.
type recv struct {
	iface     string
	port      uint16
	src       netip.AddrPort
	dst       netip.Addr
	hop       int
	truncated bool
	size      int
	data      string
}

func parseRecv(line string) (recv, bool) {
	f := strings.Fields(line)
	if len(f) != 9 || f[0] != "RECV" {
		return recv{}, false
	}
	var r recv
	var err error
	r.iface = f[1]
	port, err1 := strconv.ParseUint(f[2], 10, 16)
	r.port = uint16(port)
	r.src, err = netip.ParseAddrPort(f[3])
	r.dst, _ = netip.ParseAddr(f[4])
	r.hop, _ = strconv.Atoi(f[5])
	r.truncated = f[6] == "true"
	r.size, _ = strconv.Atoi(f[7])
	r.data = f[8]
	return r, err == nil && err1 == nil
}

// received returns the datagrams received so far with the given payload.
func (n *node) received(data string) []recv {
	var rs []recv
	for _, l := range n.p.Lines() {
		if r, ok := parseRecv(l); ok && r.data == data {
			rs = append(rs, r)
		}
	}
	return rs
}

// waitRecv waits for a datagram with the given payload.
func (n *node) waitRecv(data string) recv {
	n.t.Helper()
	line, ok := n.p.WaitLine(waitShort, func(l string) bool {
		r, ok := parseRecv(l)
		return ok && r.data == data
	})
	if !ok {
		n.t.Fatalf("%s did not receive %q; output:\n%s\nstderr:\n%s", n.ns.Short, data, n.p.Output(), n.p.Stderr())
	}
	r, _ := parseRecv(line)
	return r
}

// waitEvents waits until the helper has reported count events of the given
// state ("open" or "closed") for iface.
func (n *node) waitEvents(iface, state string, count int) {
	n.t.Helper()
	prefix := fmt.Sprintf("EVENT %s %s ", iface, state)
	deadline := time.Now().Add(waitLong)
	for {
		got := 0
		for _, l := range n.p.Lines() {
			if strings.HasPrefix(l, prefix) {
				got++
			}
		}
		if got >= count {
			return
		}
		if time.Now().After(deadline) || n.p.Exited() {
			n.t.Fatalf("%s: %d %q events for %s, want %d; output:\n%s\nstderr:\n%s",
				n.ns.Short, got, state, iface, count, n.p.Output(), n.p.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectNone checks, after a grace period for packets in flight, that no
// datagram with the given payload arrived.
func (n *node) expectNone(data string) {
	n.t.Helper()
	time.Sleep(200 * time.Millisecond)
	if rs := n.received(data); len(rs) > 0 {
		n.t.Errorf("%s received %q, want nothing: %+v", n.ns.Short, data, rs)
	}
}

// star builds one namespace per name, each with interface NAME0 attached to
// the bridge br0 in the namespace "sw" (bridge port pNAME).
func star(t *testing.T, lab *nettest.Lab, names ...string) (*nettest.NS, map[string]*nettest.NS) {
	t.Helper()
	sw := lab.NS("sw")
	lab.Bridge(sw, "br0")
	nss := make(map[string]*nettest.NS)
	for _, name := range names {
		ns := lab.NS(name)
		lab.Veth(ns, name+"0", sw, "p"+name)
		sw.SetMaster("p"+name, "br0")
		nss[name] = ns
	}
	return sw, nss
}

func zoned(a netip.Addr, zone string, port uint16) string {
	return netip.AddrPortFrom(a.WithZone(zone), port).String()
}

// TestTwoNodes covers multicast and unicast between two nodes on a bridge:
// source address and zone, hop limit, no loopback, ports, truncation,
// send errors and a clean Close.
func TestTwoNodes(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	_, nss := star(t, lab, "a", "b")
	llA := nss["a"].WaitLinkLocal("a0", waitShort)
	llB := nss["b"].WaitLinkLocal("b0", waitShort)
	a := startNode(t, nss["a"], "a0")
	b := startNode(t, nss["b"], "b0")
	a.waitEvents("a0", "open", 1)
	b.waitEvents("b0", "open", 1)

	if got, want := a.must("status"), fmt.Sprintf("a0,%d,true,%s,true", nss["a"].LinkIndex("a0"), llA); got != want {
		t.Errorf("status = %q, want %q", got, want)
	}

	// Multicast claim traffic.
	a.must("mcast 1234 claim1")
	r := b.waitRecv("claim1")
	want := recv{iface: "b0", port: netio.McastPort, src: netip.MustParseAddrPort(zoned(llA, "b0", 1234)),
		dst: netio.Group, hop: 1, size: 6, data: "claim1"}
	if r != want {
		t.Errorf("b received %+v, want %+v", r, want)
	}

	// Unicast on 1235 to the link-local address, zone = sender's interface.
	a.must("ucast 1235 " + zoned(llB, "a0", 1235) + " renew1")
	r = b.waitRecv("renew1")
	want = recv{iface: "b0", port: netio.UnicastPort, src: netip.MustParseAddrPort(zoned(llA, "b0", 1235)),
		dst: llB, hop: 64, size: 6, data: "renew1"}
	if r != want {
		t.Errorf("b received %+v, want %+v", r, want)
	}

	// The extension port, multicast and unicast; the reply goes the
	// other way with a numeric zone.
	a.must("mcast 1236 ext1")
	if r := b.waitRecv("ext1"); r.port != netio.ExtPort || r.dst != netio.Group || r.hop != 1 {
		t.Errorf("b received %+v on the extension port", r)
	}
	b.must(fmt.Sprintf("ucast 1236 [%s%%%d]:1236 ext2", llA, nss["b"].LinkIndex("b0")))
	if r := a.waitRecv("ext2"); r.port != netio.ExtPort || r.src != netip.MustParseAddrPort(zoned(llB, "a0", 1236)) {
		t.Errorf("a received %+v", r)
	}

	// Oversized datagrams arrive cut and marked (IPv6 fragments them).
	a.must("mcastbig 1234 3000")
	line, ok := b.p.WaitLine(waitShort, func(l string) bool {
		r, ok := parseRecv(l)
		return ok && r.truncated
	})
	if r, _ := parseRecv(line); !ok || r.size != 2048 {
		t.Errorf("truncated datagram: %q", line)
	}

	// A never hears itself: multicast loopback is off, so nothing even
	// reaches its own-address filter.
	for _, data := range []string{"claim1", "ext1"} {
		a.expectNone(data)
	}
	b.expectNone("ext2")
	if got := a.must("stats"); !strings.Contains(got, " own=0 ") {
		t.Errorf("a stats %q: own packets looped back", got)
	}
	if got := b.must("stats"); !strings.Contains(got, "received=4 own=0 dropped=0 truncated=1 opens=1") {
		t.Errorf("b stats %q", got)
	}

	// Bad sends fail at once.
	for _, cmd := range []string{
		"mcast 999 x",                            // port not open
		"mcaston b0 1234 x",                      // not a mesh interface
		"ucast 1235 [fe80::1%zz0]:1235 x",        // zone is not a mesh interface
		"ucast 1235 [fe80::1]:1235 x",            // no zone
		"ucast 1235 [2001:db8::1%a0]:1235 x",     // not link-local
		"ucast 1235 [::ffff:10.0.0.1%a0]:1235 x", // not IPv6
	} {
		if _, err := a.do(cmd); err == nil {
			t.Errorf("%s: no error", cmd)
		}
	}

	out := a.must("close")
	t.Logf("a: %s", out)
	if _, err := a.do("mcast 1234 late"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("send after close: %v", err)
	}
}

// TestThreeNodes checks that multicast reaches every other node.
func TestThreeNodes(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	_, nss := star(t, lab, "a", "b", "c")
	llA := nss["a"].WaitLinkLocal("a0", waitShort)
	nodes := map[string]*node{}
	for _, name := range []string{"a", "b", "c"} {
		nodes[name] = startNode(t, nss[name], name+"0")
	}
	for name, n := range nodes {
		n.waitEvents(name+"0", "open", 1)
	}
	nodes["a"].must("mcast 1234 hello3")
	for _, name := range []string{"b", "c"} {
		r := nodes[name].waitRecv("hello3")
		if r.src != netip.MustParseAddrPort(zoned(llA, name+"0", 1234)) || r.iface != name+"0" {
			t.Errorf("%s received %+v", name, r)
		}
	}
	nodes["a"].expectNone("hello3")
}

// TestIfaceMissingAtStart starts a node before its interface exists; it
// must start serving as soon as the interface appears.
func TestIfaceMissingAtStart(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	sw, nss := star(t, lab, "a")
	nb := lab.NS("b")
	a := startNode(t, nss["a"], "a0")
	b := startNode(t, nb, "b0")
	if got := b.must("status"); got != "b0,0,false,invalid IP,false" {
		t.Errorf("status before the interface exists = %q", got)
	}
	if _, err := b.do("mcast 1234 early"); err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("multicast without interface: %v", err)
	}
	if !strings.Contains(string(b.p.Stderr()), "interface does not exist") {
		t.Errorf("no log line about the missing interface:\n%s", b.p.Stderr())
	}

	lab.Veth(nb, "b0", sw, "pb")
	sw.SetMaster("pb", "br0")
	b.waitEvents("b0", "open", 1)
	a.waitEvents("a0", "open", 1)
	a.must("mcast 1234 late1")
	b.waitRecv("late1")
	b.must("mcast 1234 late2")
	a.waitRecv("late2")
}

// TestIfaceChanges takes the interface down and up, changes its link-local
// address, and deletes and re-creates it; every time the node must close
// its sockets and serve again on the new state.
func TestIfaceChanges(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	sw, nss := star(t, lab, "a", "b")
	nb := nss["b"]
	llA := nss["a"].WaitLinkLocal("a0", waitShort)
	a := startNode(t, nss["a"], "a0")
	b := startNode(t, nb, "b0")
	a.waitEvents("a0", "open", 1)
	b.waitEvents("b0", "open", 1)
	a.must("mcast 1234 before")
	b.waitRecv("before")

	// Down: sockets closed, sends fail with ErrIfaceDown.
	nb.SetDown("b0")
	b.waitEvents("b0", "closed", 1)
	if _, err := b.do("mcast 1234 whiledown"); err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("multicast while down: %v", err)
	}
	a.must("mcast 1234 lost")

	// Up again: the group is joined again.
	nb.SetUp("b0")
	b.waitEvents("b0", "open", 2)
	a.must("mcast 1234 afterup")
	b.waitRecv("afterup")
	if rs := b.received("lost"); len(rs) > 0 {
		t.Errorf("received while down: %+v", rs)
	}

	// The link-local address goes away and a different one appears.
	nb.IP("addr", "flush", "dev", "b0", "scope", "link")
	b.waitEvents("b0", "closed", 2)
	nb.AddAddr("b0", "fe80::99/64")
	b.waitEvents("b0", "open", 3)
	a.must("ucast 1235 [fe80::99%a0]:1235 newaddr")
	if r := b.waitRecv("newaddr"); r.dst != netip.MustParseAddr("fe80::99") {
		t.Errorf("received %+v", r)
	}
	b.must("mcast 1234 fromnew")
	if r := a.waitRecv("fromnew"); r.src.Addr() != netip.MustParseAddr("fe80::99%a0") {
		t.Errorf("received %+v", r)
	}

	// Deleted and re-created with a new index.
	oldIndex := nb.LinkIndex("b0")
	nb.DelLink("b0") // deletes pb in sw too
	b.waitEvents("b0", "closed", 3)
	lab.Veth(nb, "b0", sw, "pb")
	sw.SetMaster("pb", "br0")
	newIndex := nb.LinkIndex("b0")
	if newIndex == oldIndex {
		t.Fatalf("re-created b0 kept index %d", oldIndex)
	}
	b.waitEvents("b0", "open", 4)
	a.must("mcast 1234 recreated")
	b.waitRecv("recreated")
	llB := nb.WaitLinkLocal("b0", waitShort)
	a.must("ucast 1235 " + zoned(llB, "a0", 1235) + " recreated2")
	b.waitRecv("recreated2")
	b.must("ucast 1235 " + zoned(llA, "b0", 1235) + " recreated3")
	a.waitRecv("recreated3")
	if got, want := b.must("status"), fmt.Sprintf("b0,%d,true,%s,true", newIndex, llB); got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
}

// TestTwoMeshInterfaces serves two mesh links from one process: the same
// ports are bound once per interface, each receives only its own link, and
// Multicast sends on both.
func TestTwoMeshInterfaces(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	na, nm, nc := lab.NS("a"), lab.NS("m"), lab.NS("c")
	lab.Veth(na, "a0", nm, "m0")
	lab.Veth(nc, "c0", nm, "m1")
	llA := na.WaitLinkLocal("a0", waitShort)
	llC := nc.WaitLinkLocal("c0", waitShort)
	llM0 := nm.WaitLinkLocal("m0", waitShort)
	llM1 := nm.WaitLinkLocal("m1", waitShort)
	a := startNode(t, na, "a0")
	c := startNode(t, nc, "c0")
	m := startNode(t, nm, "m0", "m1")
	a.waitEvents("a0", "open", 1)
	c.waitEvents("c0", "open", 1)
	m.waitEvents("m0", "open", 1)
	m.waitEvents("m1", "open", 1)

	a.must("mcast 1234 froma")
	if r := m.waitRecv("froma"); r.iface != "m0" || r.src != netip.MustParseAddrPort(zoned(llA, "m0", 1234)) {
		t.Errorf("m received %+v", r)
	}
	c.must("mcast 1234 fromc")
	if r := m.waitRecv("fromc"); r.iface != "m1" || r.src != netip.MustParseAddrPort(zoned(llC, "m1", 1234)) {
		t.Errorf("m received %+v", r)
	}

	m.must("mcast 1234 fromm")
	if r := a.waitRecv("fromm"); r.src != netip.MustParseAddrPort(zoned(llM0, "a0", 1234)) {
		t.Errorf("a received %+v", r)
	}
	if r := c.waitRecv("fromm"); r.src != netip.MustParseAddrPort(zoned(llM1, "c0", 1234)) {
		t.Errorf("c received %+v", r)
	}

	m.must("mcaston m1 1236 onlyc")
	c.waitRecv("onlyc")
	m.must("ucast 1235 " + zoned(llA, "m0", 1235) + " ucasta")
	a.waitRecv("ucasta")
	a.expectNone("onlyc")
	c.expectNone("ucasta")
	for _, data := range []string{"froma", "fromc"} {
		if rs := m.received(data); len(rs) != 1 {
			t.Errorf("m received %q %d times: %+v", data, len(rs), rs)
		}
	}

	// One interface down: Multicast still sends on the other.
	nm.SetDown("m1")
	m.waitEvents("m1", "closed", 1)
	m.must("mcast 1234 halfway")
	a.waitRecv("halfway")
}

// TestTwoInterfacesOneLink puts two mesh interfaces of one node on the same
// link: each hears what the other sends. netio passes those packets on (a
// link-local address is unique only per link, so it cannot tell them from a
// peer that uses the same address); the daemon drops them by node id.
func TestTwoInterfacesOneLink(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	sw, nss := star(t, lab, "a")
	nm := lab.NS("m")
	lab.Veth(nm, "m0", sw, "pm0")
	lab.Veth(nm, "m1", sw, "pm1")
	sw.SetMaster("pm0", "br0")
	sw.SetMaster("pm1", "br0")
	llM0 := nm.WaitLinkLocal("m0", waitShort)
	llM1 := nm.WaitLinkLocal("m1", waitShort)
	a := startNode(t, nss["a"], "a0")
	m := startNode(t, nm, "m0", "m1")
	a.waitEvents("a0", "open", 1)
	m.waitEvents("m0", "open", 1)
	m.waitEvents("m1", "open", 1)

	m.must("mcast 1234 twice")
	a.waitRecv("twice")
	waitCount := func(n *node, data string, want int) []recv {
		t.Helper()
		deadline := time.Now().Add(waitShort)
		for len(n.received(data)) < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // and no more than that
		rs := n.received(data)
		if len(rs) != want {
			t.Errorf("%s received %q %d times, want %d: %+v", n.ns.Short, data, len(rs), want, rs)
		}
		return rs
	}
	waitCount(a, "twice", 2)
	for _, r := range waitCount(m, "twice", 2) {
		want := map[string]netip.AddrPort{
			"m0": netip.MustParseAddrPort(zoned(llM1, "m0", 1234)),
			"m1": netip.MustParseAddrPort(zoned(llM0, "m1", 1234)),
		}[r.iface]
		if r.src != want {
			t.Errorf("m received its own packet on %s from %v, want from %v", r.iface, r.src, want)
		}
	}
	if got := m.must("stats"); !strings.Contains(got, "received=2 own=0 ") {
		t.Errorf("m stats %q", got)
	}
	a.must("mcast 1234 toboth")
	if rs := waitCount(m, "toboth", 2); len(rs) == 2 && rs[0].iface == rs[1].iface {
		t.Errorf("m received %+v, want one copy per interface", rs)
	}
}

// TestPeriodicRecheck turns the netlink notifications off: the periodic
// check alone must notice a new interface, a link going down and coming back.
func TestPeriodicRecheck(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	sw, nss := star(t, lab, "a")
	nb := lab.NS("b")
	a := startNode(t, nss["a"], "a0")
	b := startNodeEnv(t, nb, []string{"NETIO_TEST_POLL_ONLY=1"}, "b0")
	lab.Veth(nb, "b0", sw, "pb")
	sw.SetMaster("pb", "br0")
	b.waitEvents("b0", "open", 1)
	a.waitEvents("a0", "open", 1)
	a.must("mcast 1234 polled1")
	b.waitRecv("polled1")
	nb.SetDown("b0")
	b.waitEvents("b0", "closed", 1)
	nb.SetUp("b0")
	b.waitEvents("b0", "open", 2)
	a.must("mcast 1234 polled2")
	b.waitRecv("polled2")
}

// TestTentativeAddress turns duplicate address detection on for the new
// interface: the node must wait until its link-local address has passed
// DAD before it opens the sockets.
func TestTentativeAddress(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	sw, nss := star(t, lab, "a")
	nb := lab.NS("b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nb.Run(ctx, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=1"); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, nss["a"], "a0")
	b := startNode(t, nb, "b0")
	lab.Veth(nb, "b0", sw, "pb")
	sw.SetMaster("pb", "br0")
	tentative := false
	if out := nb.IP("-6", "addr", "show", "dev", "b0", "scope", "link"); strings.Contains(out, "tentative") {
		tentative = true
	}
	b.waitEvents("b0", "open", 1)
	if !tentative {
		t.Errorf("b0's link-local address was never tentative; DAD is not on")
	}
	if !strings.Contains(string(b.p.Stderr()), "no usable IPv6 link-local address yet") {
		t.Errorf("the node did not wait for DAD:\n%s", b.p.Stderr())
	}
	if out := nb.IP("-6", "addr", "show", "dev", "b0", "scope", "link"); strings.Contains(out, "tentative") {
		t.Errorf("sockets opened while the address is tentative:\n%s", out)
	}
	a.waitEvents("a0", "open", 1)
	a.must("mcast 1234 afterdad")
	b.waitRecv("afterdad")
	b.must("mcast 1234 fromb")
	a.waitRecv("fromb")
}
