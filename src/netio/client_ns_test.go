package netio_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/netio"
	"ddhcpd/src/nettest"
)

// The MAC addresses the tests give their interfaces.
const (
	macSrv   = "02:00:00:00:00:01"
	macCli   = "02:00:00:00:00:02"
	macRtr   = "02:00:00:00:00:03"
	macOther = "02:00:00:00:00:04"
)

// chelper is a client-side helper process (TestClientHelperProcess) in a
// namespace.
type chelper struct {
	t   *testing.T
	ns  *nettest.NS
	p   *nettest.Proc
	seq int
}

func startClientHelper(t *testing.T, ns *nettest.NS) *chelper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := ns.StartEnv([]string{"NETIO_CLIENT_HELPER=1"}, exe, "-test.run=^TestClientHelperProcess$", "-test.count=1")
	if !p.WaitOutput("READY", 10*time.Second) {
		t.Fatalf("helper in %s did not start:\n%s\n%s", ns.Short, p.Output(), p.Stderr())
	}
	return &chelper{t: t, ns: ns, p: p}
}

// do runs a command in the helper and returns its reply.
func (h *chelper) do(cmd string) (string, error) {
	h.t.Helper()
	h.seq++
	id := strconv.Itoa(h.seq)
	if err := h.p.SendLine(id + " " + cmd); err != nil {
		h.t.Fatal(err)
	}
	line, ok := h.p.WaitLine(6*time.Second, func(l string) bool {
		return strings.HasPrefix(l, id+" OK") || strings.HasPrefix(l, id+" ERR")
	})
	if !ok {
		h.t.Fatalf("%s: no reply to %q; stderr:\n%s", h.ns.Short, cmd, h.p.Stderr())
	}
	rest := strings.TrimPrefix(line, id+" ")
	if s, ok := strings.CutPrefix(rest, "OK"); ok {
		return strings.TrimSpace(s), nil
	}
	return "", errors.New(strings.TrimSpace(strings.TrimPrefix(rest, "ERR")))
}

func (h *chelper) must(cmd string) string {
	h.t.Helper()
	out, err := h.do(cmd)
	if err != nil {
		h.t.Fatalf("%s: %s: %v", h.ns.Short, cmd, err)
	}
	return out
}

// wait waits for an output line of the given kind ("PKT", "UDP", "CAP",
// "ICMP") whose last field (the data, or for CAP the one before the verdict)
// is data, and returns its fields.
func (h *chelper) wait(kind, data string) []string {
	h.t.Helper()
	line, ok := h.p.WaitLine(waitShort, func(l string) bool { return matchLine(l, kind, data) })
	if !ok {
		h.t.Fatalf("%s: no %s line for %q; output:\n%s\nstderr:\n%s", h.ns.Short, kind, data, h.p.Output(), h.p.Stderr())
	}
	return strings.Fields(line)
}

func matchLine(l, kind, data string) bool {
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != kind {
		return false
	}
	if kind == "CAP" {
		return len(f) == 10 && f[8] == data
	}
	return f[len(f)-1] == data
}

// none checks, after a grace period for frames in flight, that no line of
// the kind with the data was printed.
func (h *chelper) none(kind, data string) {
	h.t.Helper()
	time.Sleep(200 * time.Millisecond)
	for _, l := range h.p.Lines() {
		if matchLine(l, kind, data) {
			h.t.Errorf("%s: unexpected %q", h.ns.Short, l)
		}
	}
}

// stats returns the counters of the helper's Clients.
func (h *chelper) stats() map[string]int {
	h.t.Helper()
	m := map[string]int{}
	for _, kv := range strings.Fields(h.must("stats")) {
		k, v, _ := strings.Cut(kv, "=")
		m[k], _ = strconv.Atoi(v)
	}
	return m
}

func setMAC(ns *nettest.NS, ifname, mac string) {
	ns.IP("link", "set", "dev", ifname, "address", mac)
}

// linkMAC returns the MAC address of a link.
func linkMAC(t *testing.T, ns *nettest.NS, ifname string) string {
	t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	out := ns.IP("-j", "link", "show", "dev", ifname)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("%s: link %s: cannot parse %q: %v", ns.Short, ifname, out, err)
	}
	return links[0].Address
}

// checkCap checks a CAP line: addresses, TTL, length and verdict.
func checkCap(t *testing.T, f []string, srcMAC, dstMAC, src, dst string, ttl int) {
	t.Helper()
	want := []string{"CAP", f[1], srcMAC, dstMAC, src, dst, strconv.Itoa(ttl)}
	if len(f) != 10 || !slices.Equal(f[:7], want) || f[9] != "ok" {
		t.Errorf("captured %q, want %q ... ok", f, want)
	}
}

// TestClientDirect serves a link whose server side has no IPv4 address: a
// broadcast DISCOVER arrives; the OFFER goes by unicast to the client's MAC
// address and to an address the client does not have yet, and by broadcast;
// once the client has its address it renews by unicast and gets the ACK on
// its UDP socket.
func TestClientDirect(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	ns, nc := lab.NS("s"), lab.NS("c")
	lab.Veth(ns, "srv0", nc, "cli0")
	setMAC(ns, "srv0", macSrv)
	setMAC(nc, "cli0", macCli)

	srv := startClientHelper(t, ns)
	srv.must("open srv0")
	srv.must("wait srv0 open")
	if got, want := srv.must("status"), fmt.Sprintf("srv0,%d,true,%s,invalid IP,true", ns.LinkIndex("srv0"), macSrv); got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	if _, err := srv.do("addr srv0"); err == nil {
		t.Errorf("IfaceAddr of an interface without IPv4 address succeeded")
	}

	cli := startClientHelper(t, nc)
	cli.must("udplisten c68 0.0.0.0:68 cli0")
	cli.must("capture cap cli0")

	// DISCOVER from a client without address: 0.0.0.0:68 to
	// 255.255.255.255:67. Its UDP checksum is offloaded on the veth.
	cli.must("udpsend c68 255.255.255.255:67 DISCOVER1")
	got := srv.wait("PKT", "DISCOVER1")
	want := []string{"PKT", "srv0", macCli, "ff:ff:ff:ff:ff:ff", "0.0.0.0:68", "255.255.255.255:67", "true", "9", "DISCOVER1"}
	if !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}

	// OFFER by unicast to the MAC address and yiaddr: no ARP, and the
	// client's stack drops it (not its address), but the frame arrives.
	srv.must("send srv0 10.9.0.50 68 " + macCli + " 10.9.0.1 OFFER1")
	checkCap(t, cli.wait("CAP", "OFFER1"), macSrv, macCli, "10.9.0.1:67", "10.9.0.50:68", 64)
	cli.none("UDP", "OFFER1")

	// OFFER by broadcast: the client's UDP socket gets it too.
	srv.must("send srv0 255.255.255.255 68 - 10.9.0.1 OFFER2")
	checkCap(t, cli.wait("CAP", "OFFER2"), macSrv, "ff:ff:ff:ff:ff:ff", "10.9.0.1:67", "255.255.255.255:68", 64)
	if got := cli.wait("UDP", "OFFER2"); !slices.Equal(got[2:4], []string{"10.9.0.1:67", "255.255.255.255"}) {
		t.Errorf("client received %q", got)
	}

	// The server interface gets an address: it becomes the default
	// server identifier.
	ns.AddAddr("srv0", "10.9.0.1/24")
	deadline := time.Now().Add(waitShort)
	for {
		a, err := srv.do("addr srv0")
		if err == nil && a == "10.9.0.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IfaceAddr after adding 10.9.0.1: %q, %v", a, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The client configures its lease and renews by unicast.
	nc.AddAddr("cli0", "10.9.0.50/24")
	cli.must("udpsend c68 10.9.0.1:67 RENEW1")
	got = srv.wait("PKT", "RENEW1")
	want = []string{"PKT", "srv0", macCli, macSrv, "10.9.0.50:68", "10.9.0.1:67", "false", "6", "RENEW1"}
	if !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}
	srv.must("send srv0 10.9.0.50 68 " + macCli + " 10.9.0.1 ACK1")
	checkCap(t, cli.wait("CAP", "ACK1"), macSrv, macCli, "10.9.0.1:67", "10.9.0.50:68", 64)
	if got := cli.wait("UDP", "ACK1"); !slices.Equal(got[2:4], []string{"10.9.0.1:67", "10.9.0.50"}) {
		t.Errorf("client received %q", got)
	}
	// Nothing binds port 67 on the server, so its kernel answers the
	// unicast renewal with "port unreachable"; see the report in the log.
	time.Sleep(100 * time.Millisecond)
	for _, l := range cli.p.Lines() {
		if strings.HasPrefix(l, "ICMP cap 10.9.0.1 10.9.0.50 3 3") {
			t.Logf("the server's kernel sent ICMP port unreachable for the unicast renewal: %s", l)
		}
	}

	st := srv.stats()
	if st["frames"] != 2 || st["received"] != 2 || st["malformed"] != 0 || st["ignored"] != 0 || st["senderrors"] != 0 {
		t.Errorf("server stats %v", st)
	}
	t.Logf("server: %s", srv.must("close"))
}

// TestClientRelay sends routed replies to relay agents: one on the link
// (the router) and one behind the router. Both arrive at a UDP socket on
// port 67 from port 67, with valid checksums; the remote one was routed.
// The server's default route through another interface is not used.
func TestClientRelay(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	ns, nr, nx := lab.NS("s"), lab.NS("r"), lab.NS("x")
	lab.Veth(ns, "srv0", nr, "r0")
	lab.Veth(nr, "r1", nx, "x0")
	setMAC(ns, "srv0", macSrv)
	setMAC(nr, "r0", macRtr)
	ns.AddAddr("srv0", "10.9.0.1/24")
	ns.IP("route", "add", "10.9.1.0/24", "via", "10.9.0.254")
	nr.AddAddr("r0", "10.9.0.254/24")
	nr.AddAddr("r1", "10.9.1.254/24")
	nx.AddAddr("x0", "10.9.1.2/24")
	nx.IP("route", "add", "default", "via", "10.9.1.254")
	if _, err := nr.Run(context.Background(), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatal(err)
	}

	srv := startClientHelper(t, ns)
	srv.must("open srv0")
	srv.must("wait srv0 open")
	if a := srv.must("addr srv0"); a != "10.9.0.1" {
		t.Errorf("IfaceAddr = %q", a)
	}
	rtr := startClientHelper(t, nr)
	rtr.must("udplisten rl 0.0.0.0:67 -")
	rtr.must("capture cr r0")
	rem := startClientHelper(t, nx)
	rem.must("udplisten xl 0.0.0.0:67 -")
	rem.must("capture cx x0")

	// A relayed request reaches the server from port 67.
	rtr.must("udpsend rl 10.9.0.1:67 RELAYREQ")
	got := srv.wait("PKT", "RELAYREQ")
	want := []string{"PKT", "srv0", macRtr, macSrv, "10.9.0.254:67", "10.9.0.1:67", "false", "8", "RELAYREQ"}
	if !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}

	// The reply to the relay on the link.
	srv.must("routed srv0 10.9.0.254 67 10.9.0.1 REPLY1")
	if got := rtr.wait("UDP", "REPLY1"); !slices.Equal(got[2:4], []string{"10.9.0.1:67", "10.9.0.254"}) {
		t.Errorf("relay received %q", got)
	}
	checkCap(t, rtr.wait("CAP", "REPLY1"), macSrv, macRtr, "10.9.0.1:67", "10.9.0.254:67", 64)

	// The reply to the relay behind the router: routed, TTL one less.
	srv.must("routed srv0 10.9.1.2 67 10.9.0.1 REPLY2")
	if got := rem.wait("UDP", "REPLY2"); !slices.Equal(got[2:4], []string{"10.9.0.1:67", "10.9.1.2"}) {
		t.Errorf("remote relay received %q", got)
	}
	f := rem.wait("CAP", "REPLY2")
	checkCap(t, f, f[2], f[3], "10.9.0.1:67", "10.9.1.2:67", 63)
	rtr.none("UDP", "REPLY2")

	// A relay in a subnet the server has no route for through srv0,
	// while the default route leads elsewhere: bound to srv0, the kernel
	// takes the relay as on-link there instead of using the default route.
	nq := lab.NS("q")
	lab.Veth(ns, "wan0", nq, "q0")
	ns.AddAddr("wan0", "192.168.7.1/24")
	ns.IP("route", "add", "default", "via", "192.168.7.2")
	nr.AddAddr("r0", "10.77.0.1/24")
	srv.must("routed srv0 10.77.0.1 67 10.9.0.1 REPLY3")
	if got := rtr.wait("UDP", "REPLY3"); !slices.Equal(got[2:4], []string{"10.9.0.1:67", "10.77.0.1"}) {
		t.Errorf("relay received %q", got)
	}

	// Our own sends (and the ARP they need) never come back to us.
	if st := srv.stats(); st["frames"] != 1 || st["received"] != 1 || st["senderrors"] != 0 {
		t.Errorf("server stats %v", st)
	}
}

// TestClientIfaceLifecycle starts before the interface exists, then takes
// it down and up, changes its MAC address, and deletes and re-creates it. A
// second Clients on the same interface relies on the periodic check alone.
func TestClientIfaceLifecycle(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	ns, nc := lab.NS("s"), lab.NS("c")
	srv := startClientHelper(t, ns)
	srv.must("open srv0")
	poll := startClientHelper(t, ns)
	poll.must("open srv0 200")
	if got := srv.must("status"); got != "srv0,0,false,,invalid IP,false" {
		t.Errorf("status before the interface exists = %q", got)
	}
	if _, err := srv.do("send srv0 255.255.255.255 68 - 10.9.0.1 EARLY"); err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("send without interface: %v", err)
	}
	if !strings.Contains(string(srv.p.Stderr()), "interface does not exist") {
		t.Errorf("no log line about the missing interface:\n%s", srv.p.Stderr())
	}

	lab.Veth(ns, "srv0", nc, "cli0")
	setMAC(nc, "cli0", macCli)
	cli := startClientHelper(t, nc)
	cli.must("udplisten c68 0.0.0.0:68 cli0")
	cli.must("capture cap cli0")
	// exchange checks traffic both ways for both servers.
	exchange := func(tag, srcMAC string) {
		t.Helper()
		srv.must("wait srv0 open")
		poll.must("wait srv0 open")
		cli.must("udpsend c68 255.255.255.255:67 D" + tag)
		srv.wait("PKT", "D"+tag)
		poll.wait("PKT", "D"+tag)
		srv.must("send srv0 10.9.0.50 68 " + macCli + " 10.9.0.1 O" + tag)
		checkCap(t, cli.wait("CAP", "O"+tag), srcMAC, macCli, "10.9.0.1:67", "10.9.0.50:68", 64)
		poll.must("send srv0 255.255.255.255 68 - 10.9.0.1 P" + tag)
		checkCap(t, cli.wait("CAP", "P"+tag), srcMAC, "ff:ff:ff:ff:ff:ff", "10.9.0.1:67", "255.255.255.255:68", 64)
	}
	// The veth got a random MAC address; changing it here would race
	// with the servers opening their sockets.
	exchange("created", linkMAC(t, ns, "srv0"))

	// Down and up.
	ns.SetDown("srv0")
	srv.must("wait srv0 closed")
	poll.must("wait srv0 closed")
	if _, err := srv.do("send srv0 255.255.255.255 68 - 10.9.0.1 DOWN"); err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("send while down: %v", err)
	}
	ns.SetUp("srv0")
	exchange("up", linkMAC(t, ns, "srv0"))

	// A new MAC address: the sockets are opened again and frames leave
	// with the new address.
	opens := srv.stats()["opens"]
	setMAC(ns, "srv0", macOther)
	deadline := time.Now().Add(waitLong)
	for srv.stats()["opens"] <= opens || poll.stats()["opens"] <= opens {
		if time.Now().After(deadline) {
			t.Fatalf("sockets not re-opened after the MAC address change: %v %v", srv.stats(), poll.stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	exchange("newmac", macOther)

	// Deleted and re-created with a new index.
	oldIndex := ns.LinkIndex("srv0")
	ns.DelLink("srv0")
	srv.must("wait srv0 closed")
	poll.must("wait srv0 closed")
	lab.Veth(ns, "srv0", nc, "cli0")
	setMAC(nc, "cli0", macCli)
	// The client's sockets were bound to the old cli0.
	cli.must("udplisten c68b 0.0.0.0:68 cli0")
	cli.must("capture cap2 cli0")
	if ns.LinkIndex("srv0") == oldIndex {
		t.Fatalf("re-created srv0 kept index %d", oldIndex)
	}
	srv.must("wait srv0 open")
	poll.must("wait srv0 open")
	cli.must("udpsend c68b 255.255.255.255:67 Drecreated")
	srv.wait("PKT", "Drecreated")
	poll.wait("PKT", "Drecreated")
	mac := linkMAC(t, ns, "srv0")
	srv.must("send srv0 10.9.0.50 68 " + macCli + " 10.9.0.1 Orecreated")
	checkCap(t, cli.wait("CAP", "Orecreated"), mac, macCli, "10.9.0.1:67", "10.9.0.50:68", 64)
	if got, want := srv.must("status"), fmt.Sprintf("srv0,%d,true,%s,invalid IP,true", ns.LinkIndex("srv0"), mac); got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	for _, h := range []*chelper{srv, poll} {
		if st := h.stats(); st["received"] != 4 || st["malformed"] != 0 || st["ignored"] != 0 || st["readerrors"] != 0 {
			t.Errorf("stats %v", st)
		}
		t.Logf("%s", h.must("close"))
	}
}

// TestClientCoexistence runs another DHCP server's socket (UDP port 67,
// bound to its own interface) in the same namespace: both see only their own
// clients. Traffic that is not DHCP to the server never passes the socket
// filter; frames unicast to other hosts are ignored in promiscuous mode.
func TestClientCoexistence(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	ns, nc, no := lab.NS("s"), lab.NS("c"), lab.NS("o")
	lab.Veth(ns, "srv0", nc, "cli0")
	lab.Veth(ns, "oth0", no, "oc0")
	setMAC(ns, "srv0", macSrv)
	setMAC(nc, "cli0", macCli)
	ns.AddAddr("srv0", "10.9.0.1/24")
	ns.AddAddr("oth0", "10.9.5.1/24")

	srv := startClientHelper(t, ns)
	srv.must("open srv0")
	srv.must("wait srv0 open")
	// The other server binds port 67 after us: we do not hold it.
	srv.must("udplisten other 0.0.0.0:67 oth0")
	oc := startClientHelper(t, no)
	oc.must("udplisten o68 0.0.0.0:68 oc0")
	cli := startClientHelper(t, nc)
	cli.must("udplisten c68 0.0.0.0:68 cli0")

	oc.must("udpsend o68 255.255.255.255:67 OTHERDISC")
	srv.wait("UDP", "OTHERDISC")
	cli.must("udpsend c68 255.255.255.255:67 OURDISC")
	srv.wait("PKT", "OURDISC")
	srv.none("UDP", "OURDISC")
	srv.none("PKT", "OTHERDISC")

	// Noise from the client: UDP to other ports, ICMP, and hand-made
	// frames the filter must judge by their real UDP header.
	nc.AddAddr("cli0", "10.9.0.2/24")
	cli.must("udpsend c68 10.9.0.1:68 NOISE68")
	cli.must("udpsend c68 10.9.0.1:5353 NOISE5353")
	cli.must("udpsend c68 255.255.255.255:68 NOISEBCAST")
	cli.must("icmp 10.9.0.1")
	srvMAC, _ := net.ParseMAC(macSrv)
	cliMAC, _ := net.ParseMAC(macCli)
	frame := func(dstMAC net.HardwareAddr, dstPort uint16, opts []byte, payload string) string {
		f := netio.UDPFrame{DstMAC: dstMAC, SrcMAC: cliMAC, Src: netip.MustParseAddrPort("10.9.0.2:68"),
			Dst: netip.AddrPortFrom(netip.MustParseAddr("10.9.0.1"), dstPort), Payload: []byte(payload)}
		b, err := netio.AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		b = b[:14+28+len(payload)]
		if len(opts) > 0 {
			// IP options: header length, total length and both
			// checksums (the UDP one does not cover them) fixed up.
			b = slices.Insert(b, 14+20, opts...)
			b[14] = 0x40 | byte((20+len(opts))/4)
			binary.BigEndian.PutUint16(b[14+2:], uint16(len(b)-14))
			b[14+10], b[14+11] = 0, 0
			var sum uint32
			for i := 14; i < 14+20+len(opts); i += 2 {
				sum += uint32(b[i])<<8 | uint32(b[i+1])
			}
			for sum > 0xffff {
				sum = sum>>16 + sum&0xffff
			}
			binary.BigEndian.PutUint16(b[14+10:], ^uint16(sum))
		}
		return hex.EncodeToString(b)
	}
	// Options whose last two bytes read as port 67 to a filter that
	// assumed a 20-byte header; the real port is 68.
	cli.must("sendframe cli0 " + frame(srvMAC, 68, []byte{1, 1, 0, 67}, "HIDDEN67"))
	// A later fragment whose bytes at the UDP port offset say 67.
	later := frame(srvMAC, 67, nil, "LATERFRAG")
	lb, _ := hex.DecodeString(later)
	lb[14+6], lb[14+7] = 0x00, 0x10 // fragment offset 16
	lb[14+10], lb[14+11] = 0, 0
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(lb[i])<<8 | uint32(lb[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(lb[14+10:], ^uint16(sum))
	cli.must("sendframe cli0 " + hex.EncodeToString(lb))
	// IP options and port 67: for us.
	cli.must("sendframe cli0 " + frame(srvMAC, 67, []byte{1, 1, 1, 0}, "OPTS67"))
	srv.wait("PKT", "OPTS67")
	for _, data := range []string{"NOISE68", "NOISE5353", "NOISEBCAST", "HIDDEN67", "LATERFRAG"} {
		srv.none("PKT", data)
	}
	st := srv.stats()
	if st["frames"] != 2 || st["received"] != 2 || st["malformed"] != 0 || st["ignored"] != 0 {
		t.Errorf("after the noise: stats %v, want only OURDISC and OPTS67", st)
	}

	// Promiscuous: a DHCP frame to another host's MAC passes the filter
	// and is ignored.
	ns.IP("link", "set", "srv0", "promisc", "on")
	cli.must("sendframe cli0 " + frame(net.HardwareAddr{2, 0, 0, 0, 0, 0x99}, 67, nil, "NOTFORUS"))
	cli.must("sendframe cli0 " + frame(srvMAC, 67, nil, "FORUS"))
	srv.wait("PKT", "FORUS")
	srv.none("PKT", "NOTFORUS")
	if st := srv.stats(); st["frames"] != 4 || st["received"] != 3 || st["ignored"] != 1 {
		t.Errorf("promiscuous: stats %v", st)
	}

	// The other server still gets its own traffic.
	oc.must("udpsend o68 255.255.255.255:67 OTHERDISC2")
	srv.wait("UDP", "OTHERDISC2")
	srv.none("PKT", "OTHERDISC2")
}

// TestClientTwoInterfaces serves two client links from one Clients: each
// datagram is attributed to its interface and replies leave by the right one.
func TestClientTwoInterfaces(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	ns, na, nb := lab.NS("s"), lab.NS("a"), lab.NS("b")
	lab.Veth(ns, "srv0", na, "a0")
	lab.Veth(ns, "srv1", nb, "b0")
	setMAC(ns, "srv0", macSrv)
	setMAC(ns, "srv1", macRtr)
	setMAC(na, "a0", macCli)
	setMAC(nb, "b0", macOther)
	ns.AddAddr("srv1", "10.9.7.1/24")

	srv := startClientHelper(t, ns)
	srv.must("open srv0,srv1")
	srv.must("wait srv0 open")
	srv.must("wait srv1 open")
	if got, want := srv.must("status"), fmt.Sprintf("srv0,%d,true,%s,invalid IP,true srv1,%d,true,%s,10.9.7.1,true",
		ns.LinkIndex("srv0"), macSrv, ns.LinkIndex("srv1"), macRtr); got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	ca, cb := startClientHelper(t, na), startClientHelper(t, nb)
	for _, c := range []struct {
		h    *chelper
		dev  string
		name string
	}{{ca, "a0", "A"}, {cb, "b0", "B"}} {
		c.h.must("udplisten u 0.0.0.0:68 " + c.dev)
		c.h.must("capture cap " + c.dev)
		c.h.must("udpsend u 255.255.255.255:67 DISC" + c.name)
	}
	if got := srv.wait("PKT", "DISCA"); got[1] != "srv0" || got[2] != macCli {
		t.Errorf("server received %q", got)
	}
	if got := srv.wait("PKT", "DISCB"); got[1] != "srv1" || got[2] != macOther {
		t.Errorf("server received %q", got)
	}
	srv.must("send srv1 255.255.255.255 68 - 10.9.7.1 OFFERB")
	checkCap(t, cb.wait("CAP", "OFFERB"), macRtr, "ff:ff:ff:ff:ff:ff", "10.9.7.1:67", "255.255.255.255:68", 64)
	srv.must("send srv0 255.255.255.255 68 - 10.9.0.1 OFFERA")
	checkCap(t, ca.wait("CAP", "OFFERA"), macSrv, "ff:ff:ff:ff:ff:ff", "10.9.0.1:67", "255.255.255.255:68", 64)
	ca.none("CAP", "OFFERB")
	cb.none("CAP", "OFFERA")

	// One interface down: the other goes on.
	ns.SetDown("srv0")
	srv.must("wait srv0 closed")
	cb.must("udpsend u 255.255.255.255:67 DISCB2")
	srv.wait("PKT", "DISCB2")
	srv.must("send srv1 255.255.255.255 68 - 10.9.7.1 OFFERB2")
	cb.wait("UDP", "OFFERB2")
}

// TestClientBridgePort serves a bridge and, by mistake, one of its ports:
// the port's socket sees nothing (the bridge takes the frames), and a
// warning says so.
func TestClientBridgePort(t *testing.T) {
	nettest.RequireRoot(t)
	t.Parallel()
	lab := nettest.New(t)
	ns, nc := lab.NS("s"), lab.NS("c")
	lab.Bridge(ns, "br0")
	lab.Veth(ns, "p0", nc, "cli0")
	ns.SetMaster("p0", "br0")
	srv := startClientHelper(t, ns)
	srv.must("open p0,br0")
	srv.must("wait p0 open")
	srv.must("wait br0 open")
	if !strings.Contains(string(srv.p.Stderr()), "client interface is a bridge port") {
		t.Errorf("no warning about the bridge port:\n%s", srv.p.Stderr())
	}
	cli := startClientHelper(t, nc)
	cli.must("udplisten u 0.0.0.0:68 cli0")
	cli.must("udpsend u 255.255.255.255:67 BRDISC")
	if got := srv.wait("PKT", "BRDISC"); got[1] != "br0" {
		t.Errorf("server received %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if st := srv.stats(); st["frames"] != 1 {
		t.Errorf("stats %v: the bridge port saw the frame too", st)
	}
}
