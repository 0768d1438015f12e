package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
)

// meshLab is routers on one mesh bridge, each with a client bridge
// (br-client) carrying the anycast gateway 10.0.0.1, as Freifunk routers do,
// and clients whose link can be moved from one router's bridge to another's.
type meshLab struct {
	t       testing.TB
	lab     *nettest.Lab
	bin     string
	probe   string
	hub     *nettest.NS
	dir     string
	routers map[string]*labRouter
	clients map[string]*labClient
}

type labRouter struct {
	name, sock string
	ns         *nettest.NS
	args       []string
	proc       *nettest.Proc
}

type labClient struct {
	name string
	ns   *nettest.NS
	at   *labRouter // router whose bridge holds the client's link
	port string     // the link's far end, in the router's namespace
}

// newEmptyMeshLab makes the lab with its binaries built and no router yet.
func newEmptyMeshLab(t testing.TB) *meshLab {
	t.Helper()
	nettest.RequireRoot(t)
	dir := t.TempDir() // before the lab: its processes die before the directory goes
	m := &meshLab{t: t, dir: dir, lab: nettest.New(t),
		routers: map[string]*labRouter{}, clients: map[string]*labClient{}}
	m.bin = nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd")
	m.probe = nettest.BuildBinary(t, "./testdata/probe")
	return m
}

func newMeshLab(t testing.TB, routers []string, args ...string) *meshLab {
	t.Helper()
	m := newEmptyMeshLab(t)
	m.hub = m.lab.NS("hub")
	m.lab.Bridge(m.hub, "br0")
	for i, name := range routers {
		r := &labRouter{name: name, ns: m.lab.NS(name), sock: filepath.Join(m.dir, name+".sock")}
		m.lab.Veth(r.ns, "bat0", m.hub, "m"+name)
		m.hub.SetMaster("m"+name, "br0")
		m.lab.Bridge(r.ns, "br-client")
		// A fixed bridge MAC, as on a router: otherwise it changes when a
		// client's port joins and the client socket is reopened.
		r.ns.IP("link", "set", "br-client", "address", fmt.Sprintf("02:dd:00:00:00:%02x", i+1))
		r.ns.AddAddr("br-client", "10.0.0.1/24")
		r.args = append([]string{"-i", "bat0", "-c", "br-client", "-server-id", "10.0.0.1",
			"-N", "10.0.0.0/24", "-b", "3", "-reserve", "10.0.0.0/29",
			"-C", r.sock, "-state", filepath.Join(m.dir, name+".state"), "-vv"}, args...)
		m.routers[name] = r
	}
	return m
}

func (m *meshLab) start(name string, extra ...string) *labRouter {
	m.t.Helper()
	r := m.routers[name]
	r.proc = r.ns.Start(m.bin, append(slices.Clone(r.args), extra...)...)
	eventually(m.t, 10*time.Second, name+" answers", func() error {
		var st control.Status
		return control.Call(r.sock, "status", nil, &st)
	})
	return r
}

// client makes a client namespace whose eth0 is plugged into router's bridge.
func (m *meshLab) client(name, router string) *labClient {
	m.t.Helper()
	r := m.routers[router]
	c := &labClient{name: name, ns: m.lab.NS(name), at: r, port: "p" + name}
	m.lab.Veth(r.ns, c.port, c.ns, "eth0")
	r.ns.SetMaster(c.port, "br-client")
	m.clients[name] = c
	return c
}

// move plugs the client's link into another router's bridge (the client
// walks to another router; its own interface stays up).
func (m *meshLab) move(name, router string) {
	m.t.Helper()
	c, r := m.clients[name], m.routers[router]
	c.at.ns.IP("link", "set", c.port, "netns", r.ns.Name)
	r.ns.SetMaster(c.port, "br-client")
	r.ns.SetUp(c.port)
	c.at = r
}

func (m *meshLab) probeRun(client string, args ...string) probeResult {
	m.t.Helper()
	out, err := m.clients[client].ns.Run(context.Background(), m.probe, append([]string{"-i", "eth0"}, args...)...)
	var r probeResult
	if jerr := json.Unmarshal(out, &r); jerr != nil || r.Error != "" {
		m.t.Fatalf("probe %v: %v %v %s %s", args, err, jerr, r.Error, out)
	}
	return r
}

func (r *labRouter) stats(t testing.TB) control.Stats {
	t.Helper()
	var st control.Stats
	if err := control.Call(r.sock, "stats", nil, &st); err != nil {
		t.Fatalf("%s stats: %v", r.name, err)
	}
	return st
}

func (r *labRouter) lease(t testing.TB, addr string) (control.Lease, bool) {
	t.Helper()
	var rows []control.Lease
	if err := control.Call(r.sock, "leases", nil, &rows); err != nil {
		t.Fatalf("%s leases: %v", r.name, err)
	}
	for _, l := range rows {
		if l.Addr == addr {
			return l, true
		}
	}
	return control.Lease{}, false
}

// knows waits until r sees every block owner owns as claimed by it.
func (m *meshLab) knows(r, owner *labRouter) {
	m.t.Helper()
	eventually(m.t, 10*time.Second, r.name+" knows "+owner.name+"'s blocks", func() error {
		var rows []control.Block
		if err := control.Call(r.sock, "blocks", nil, &rows); err != nil {
			return err
		}
		for _, b := range owner.owns(m.t) {
			i := slices.IndexFunc(rows, func(x control.Block) bool { return x.Index == b })
			if i < 0 || rows[i].State != "claimed" {
				return fmt.Errorf("block %d not claimed in %s's view", b, r.name)
			}
		}
		return nil
	})
}

func (r *labRouter) owns(t testing.TB) []uint32 {
	var rows []control.Block
	control.Call(r.sock, "blocks", nil, &rows)
	var out []uint32
	for _, b := range rows {
		if b.State == "ours" {
			out = append(out, b.Index)
		}
	}
	return out
}

// TestRoaming: a busybox udhcpc client leases on r1, walks to r2, and keeps
// its address through a unicast renewal (forwarded with RENEWLEASE and
// answered with LEASEACK on port 1235) and a broadcast one; a RELEASE made
// at r2 frees the lease at r1.
func TestRoaming(t *testing.T) {
	m := newMeshLab(t, []string{"r1", "r2"}, "-L", "-B", "6", "-t", "2", "-inquire-interval", "400ms")
	r1 := m.start("r1")
	eventually(t, 10*time.Second, "r1 owns a block", func() error {
		if len(r1.owns(t)) == 0 {
			return fmt.Errorf("no block")
		}
		return nil
	})
	r2 := m.start("r2")
	m.knows(r2, r1)
	c := m.client("k", "r1")

	udhcpc, log := startUdhcpc(t, c.ns, m.dir)
	defer udhcpc.Stop()
	addr := eventAddr(waitFile(t, log, "bound", 30*time.Second), "bound")
	if l, ok := r1.lease(t, addr); !ok || l.State != "assigned" || !l.Local {
		t.Fatalf("r1 has no lease for %s: %+v", addr, l)
	}

	// Capture the inter-node unicast port on r2's mesh link, unbuffered,
	// from the moment tcpdump says it listens.
	capture, capLog := filepath.Join(m.dir, "1235.txt"), filepath.Join(m.dir, "tcpdump.log")
	tcpdump := r2.ns.Start("sh", "-c", "exec tcpdump --immediate-mode -l -nn -x -i bat0 udp port 1235 > "+capture+" 2>"+capLog)
	waitFile(t, capLog, "listening on", 10*time.Second)

	m.move("k", "r2")
	renewNow(t, udhcpc)
	waitFile(t, log, "renew "+addr, 15*time.Second)
	if st := r2.stats(t); st["roam.ack"] < 1 || st["roam.forwarded"] < 1 {
		t.Errorf("r2 did not forward: %v", st)
	}
	if st := r1.stats(t); st["roam.owner.ack"] < 1 {
		t.Errorf("r1 did not answer as owner: %v", st)
	}
	eventually(t, 5*time.Second, "RENEWLEASE (10) and LEASEACK (11) captured on port 1235", func() error {
		if cmds := renewCommands(t, capture); !slices.Contains(cmds, 0x10) || !slices.Contains(cmds, 0x11) {
			return fmt.Errorf("commands %x", cmds)
		}
		return nil
	})
	tcpdump.Stop()

	// A broadcast renewal (REBINDING) at r2 keeps the address too.
	udhcpc.Stop()
	r := m.probeRun("k", "-addr", addr, "-state", "rebind", "request")
	if r.Type != "ACK" || r.Yiaddr != addr {
		t.Fatalf("rebinding at r2: %+v", r)
	}
	// RELEASE at r2 frees the lease at r1 (command 19).
	m.probeRun("k", "-addr", addr, "-server", "10.0.0.1", "release")
	eventually(t, 5*time.Second, "r1 frees the roamed lease", func() error {
		if l, _ := r1.lease(t, addr); l.State != "released" {
			return fmt.Errorf("%+v", l)
		}
		return nil
	})
	t.Logf("roamed renewal round trips: r2 stats %v", r2.stats(t))
}

// renewCommands reads the command byte (UDP payload offset 14) of every
// datagram in a `tcpdump -x` capture of IPv6/UDP.
func renewCommands(t testing.TB, path string) []byte {
	b, _ := os.ReadFile(path)
	var cmds []byte
	var hexs strings.Builder
	flush := func() {
		// IPv6 header 40 bytes + UDP 8 = payload at byte 48; command at 48+14.
		h := hexs.String()
		if len(h) >= 2*(48+15) {
			var c byte
			fmt.Sscanf(h[2*(48+14):2*(48+15)], "%02x", &c)
			cmds = append(cmds, c)
		}
		hexs.Reset()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "\t0x") {
			_, rest, _ := strings.Cut(line, ":")
			hexs.WriteString(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
			continue
		}
		flush()
	}
	flush()
	return cmds
}

// TestOwnerGone: the owner of a roamed client's block dies; once its claim
// expires the router the client is on claims the orphaned block and adopts
// the client's renewal, so the client keeps its address.
func TestOwnerGone(t *testing.T) {
	m := newMeshLab(t, []string{"r1", "r2"}, "-L", "-B", "4", "-t", "2", "-inquire-interval", "400ms")
	r1 := m.start("r1")
	eventually(t, 10*time.Second, "r1 owns a block", func() error {
		if len(r1.owns(t)) == 0 {
			return fmt.Errorf("no block")
		}
		return nil
	})
	r2 := m.start("r2")
	m.knows(r2, r1)
	m.client("k", "r1")
	a := m.probeRun("k", "dora")
	if a.Type != "ACK" {
		t.Fatalf("%+v", a)
	}
	m.move("k", "r2")
	r1.proc.Kill()
	start := time.Now()
	// The client keeps renewing (every second here); the first tries go
	// unanswered (r1 is gone), then r2 adopts.
	var got probeResult
	eventually(t, 25*time.Second, "renewal adopted by r2", func() error {
		got = m.probeRun("k", "-addr", a.Yiaddr, "-server", "10.0.0.1", "-state", "renew", "-timeout", "1s", "request")
		if got.Type != "ACK" {
			return fmt.Errorf("%+v", got)
		}
		return nil
	})
	if got.Yiaddr != a.Yiaddr {
		t.Fatalf("client got %s, had %s", got.Yiaddr, a.Yiaddr)
	}
	if l, ok := r2.lease(t, a.Yiaddr); !ok || !l.Local || l.State != "assigned" {
		t.Errorf("r2 lease %+v", l)
	}
	if st := r2.stats(t); st["roam.drop.no_answer"] < 1 || st["dhcp.drop.block_not_served"] < 1 {
		t.Errorf("the dead owner was not asked first, or the orphaned block not waited for: %v", st)
	}
	t.Logf("adopted %v after the owner died; r2 stats %v", time.Since(start).Round(100*time.Millisecond), r2.stats(t))
}

// TestPartitionConflict: the mesh is cut in two and both halves take the
// same block and lease the same address to different clients; after the
// merge one owner remains, and the loser's client is refused at its next
// renewal and gets another address: no address is held twice.
func TestPartitionConflict(t *testing.T) {
	// Both routers reserve 10.0.0.9 for their own client, so each claims
	// block 1 (10.0.0.8/29) when that client appears, and nothing else.
	m := newMeshLab(t, []string{"r1", "r2"}, "-L", "-s", "0", "-B", "4", "-t", "2", "-inquire-interval", "400ms")
	m.hub.IP("link", "set", "mr2", "nomaster") // cut
	r1 := m.start("r1", "-host", "02:00:00:00:00:01=10.0.0.9")
	r2 := m.start("r2", "-host", "02:00:00:00:00:02=10.0.0.9")
	m.client("k1", "r1")
	m.client("k2", "r2")
	var a1, a2 probeResult
	eventually(t, 30*time.Second, "both halves lease 10.0.0.9", func() error {
		a1 = m.probeRun("k1", "-mac", "02:00:00:00:00:01", "-timeout", "1s", "dora")
		a2 = m.probeRun("k2", "-mac", "02:00:00:00:00:02", "-timeout", "1s", "dora")
		if a1.Yiaddr != "10.0.0.9" || a2.Yiaddr != "10.0.0.9" {
			return fmt.Errorf("%+v %+v", a1, a2)
		}
		return nil
	})
	var st1, st2 control.Status
	control.Call(r1.sock, "status", nil, &st1)
	control.Call(r2.sock, "status", nil, &st2)
	winner, loser, loserMAC, loserClient := r1, r2, "02:00:00:00:00:02", "k2"
	if st2.Node > st1.Node {
		winner, loser, loserMAC, loserClient = r2, r1, "02:00:00:00:00:01", "k1"
	}

	m.hub.SetMaster("mr2", "br0") // merge
	eventually(t, 30*time.Second, "one owner of block 1", func() error {
		w, l := winner.owns(t), loser.owns(t)
		if !slices.Contains(w, 1) || slices.Contains(l, 1) {
			return fmt.Errorf("winner owns %v, loser owns %v", w, l)
		}
		return nil
	})
	// The winner keeps its client's lease; the loser's client is refused
	// when it renews (forwarded to the winner) and gets another address.
	// A renewal lost on a loaded machine is sent again, as a client would.
	var r probeResult
	for range 3 {
		if r = m.probeRun(loserClient, "-mac", loserMAC, "-addr", "10.0.0.9", "-server", "10.0.0.1", "-state", "renew", "request"); r.Type != "none" {
			break
		}
	}
	if r.Type != "NAK" {
		t.Fatalf("loser's client renewing 10.0.0.9: %+v", r)
	}
	var again probeResult
	eventually(t, 30*time.Second, "loser's client gets a new address", func() error {
		again = m.probeRun(loserClient, "-mac", loserMAC, "-timeout", "1s", "dora")
		if again.Type != "ACK" {
			return fmt.Errorf("%+v", again)
		}
		return nil
	})
	if again.Yiaddr == "10.0.0.9" {
		t.Fatalf("loser's client got 10.0.0.9 again")
	}
	if l, ok := winner.lease(t, "10.0.0.9"); !ok || l.State != "assigned" || !strings.HasSuffix(l.HW, map[bool]string{true: "02", false: "01"}[loser == r1]) {
		t.Errorf("winner's lease of 10.0.0.9: %+v", l)
	}
	t.Logf("winner %s, loser %s; loser's client moved to %s", winner.name, loser.name, again.Yiaddr)
}
