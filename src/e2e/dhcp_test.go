package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
)

// dhcpLab is one router serving DHCP on several client links, each with a
// client namespace behind it.
type dhcpLab struct {
	t       testing.TB
	lab     *nettest.Lab
	bin     string
	probe   string
	router  *nettest.NS
	clients []*nettest.NS // client k sits behind the router's "cK" on its "eth0"
	sock    string
	state   string
	args    []string
	proc    *nettest.Proc
	dir     string
}

const (
	labServerID = "10.0.0.1"
	gatewayAddr = "10.0.0.254"
)

func newDHCPLab(t testing.TB, clients int, extra ...string) *dhcpLab {
	t.Helper()
	nettest.RequireRoot(t)
	dir := t.TempDir() // before the lab: its processes die before the directory goes
	l := &dhcpLab{t: t, dir: dir, lab: nettest.New(t)}
	l.bin = nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd")
	l.probe = nettest.BuildBinary(t, "./testdata/probe")
	l.router = l.lab.NS("r")
	hub := l.lab.NS("hub")
	l.lab.Bridge(hub, "br0")
	l.lab.Veth(l.router, "bat0", hub, "m0")
	hub.SetMaster("m0", "br0")
	var ifs []string
	for k := range clients {
		c := l.lab.NS(fmt.Sprintf("k%d", k))
		l.lab.Veth(l.router, fmt.Sprintf("c%d", k), c, "eth0")
		l.clients = append(l.clients, c)
		ifs = append(ifs, fmt.Sprintf("c%d", k))
	}
	l.sock = filepath.Join(l.dir, "ctl.sock")
	l.state = filepath.Join(l.dir, "state")
	// The client links have no IPv4 address: replies leave through the
	// raw socket, from the configured server identifier.
	l.args = append([]string{"-i", "bat0", "-c", strings.Join(ifs, ","), "-N", "10.0.0.0/24", "-b", "4",
		"-L", "-server-id", labServerID, "-C", l.sock, "-state", l.state, "-vv",
		"-o", "3:4:10.0.0.254", "-option", "6:ips:10.0.0.254", "-option", "42:ip:10.0.0.253"}, extra...)
	return l
}

func (l *dhcpLab) start() {
	l.t.Helper()
	l.proc = l.router.Start(l.bin, l.args...)
	eventually(l.t, 15*time.Second, "daemon owns a block", func() error {
		var st control.Status
		if err := control.Call(l.sock, "status", nil, &st); err != nil {
			return err
		}
		if st.Owned == 0 {
			return fmt.Errorf("no block owned yet")
		}
		return nil
	})
}

// probeResult is what the probe prints.
type probeResult struct {
	Type    string             `json:"type"`
	Yiaddr  string             `json:"yiaddr"`
	Ciaddr  string             `json:"ciaddr"`
	Server  string             `json:"server"`
	Options map[string]string  `json:"options"`
	Timing  map[string]float64 `json:"timing"`
	Error   string             `json:"error"`
}

// run runs the probe in client namespace k.
func (l *dhcpLab) run(k int, args ...string) probeResult {
	l.t.Helper()
	out, err := l.clients[k].Run(context.Background(), l.probe, append([]string{"-i", "eth0"}, args...)...)
	var r probeResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		l.t.Fatalf("probe %v: %v %v: %s", args, err, jerr, out)
	}
	if r.Error != "" {
		l.t.Fatalf("probe %v: %s", args, r.Error)
	}
	return r
}

func (l *dhcpLab) stats() control.Stats {
	l.t.Helper()
	var st control.Stats
	if err := control.Call(l.sock, "stats", nil, &st); err != nil {
		l.t.Fatal(err)
	}
	return st
}

func (l *dhcpLab) leases() []control.Lease {
	l.t.Helper()
	var rows []control.Lease
	if err := control.Call(l.sock, "leases", nil, &rows); err != nil {
		l.t.Fatal(err)
	}
	return rows
}

func (l *dhcpLab) leaseOf(addr string) (control.Lease, bool) {
	for _, r := range l.leases() {
		if r.Addr == addr {
			return r, true
		}
	}
	return control.Lease{}, false
}

// script writes a client hook script that configures the address it gets and
// logs every event, so renewals (unicast from the configured address) work.
func (l *dhcpLab) script(name, body string) (path, log string) {
	path = filepath.Join(l.dir, name+".sh")
	log = filepath.Join(l.dir, name+".log")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+strings.ReplaceAll(body, "LOG", log)), 0o755); err != nil {
		l.t.Fatal(err)
	}
	return path, log
}

// eventAddr returns the address of the first "EVENT ADDR" line of a client
// script log.
func eventAddr(log, event string) string {
	for _, line := range strings.Split(log, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == event {
			return f[1]
		}
	}
	return ""
}

// startUdhcpc starts busybox udhcpc on eth0 of ns in the foreground, with a
// script that sets the address it gets and logs each "EVENT ADDRESS" to the
// returned file in dir.
func startUdhcpc(t testing.TB, ns *nettest.NS, dir string) (*nettest.Proc, string) {
	t.Helper()
	script, log := filepath.Join(dir, "udhcpc.sh"), filepath.Join(dir, "udhcpc.log")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
echo "$1 $ip" >> `+log+`
case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;; esac
`), 0o755); err != nil {
		t.Fatal(err)
	}
	// Ten DISCOVERs 2 s apart and a 1 s pause, not busybox's 20 s pause
	// after three, which outlasts the tests' waits when a loaded machine
	// answers late. A renewal (SIGUSR1) gets 3 unicast and 3 broadcast
	// tries, -T apart: 12 s.
	return ns.Start("udhcpc", "-i", "eth0", "-f", "-s", script, "-t", "10", "-T", "2", "-A", "1"), log
}

// renewNow makes udhcpc renew at once (SIGUSR1): its own timer renews
// later than T1.
func renewNow(t testing.TB, udhcpc *nettest.Proc) {
	t.Helper()
	if out, err := exec.Command("kill", "-USR1", fmt.Sprint(udhcpc.Pid())).CombinedOutput(); err != nil {
		t.Fatalf("signal udhcpc: %v %s", err, out)
	}
}

func waitFile(t testing.TB, path, substr string, limit time.Duration) string {
	t.Helper()
	var b []byte
	eventually(t, limit, "'"+substr+"' in "+filepath.Base(path), func() error {
		b, _ = os.ReadFile(path)
		if !strings.Contains(string(b), substr) {
			return fmt.Errorf("log so far: %q", b)
		}
		return nil
	})
	return string(b)
}

// TestRealClients: busybox udhcpc and ISC dhclient get leases, renew by
// unicast at T1, and never share an address.
func TestRealClients(t *testing.T) {
	l := newDHCPLab(t, 2, "-lease-time", "10s")
	// Renewals are unicast to the server identifier, so the clients must
	// be able to resolve it: the router's client links carry it, as on a
	// real router.
	l.router.AddAddr("c0", labServerID+"/24")
	l.router.AddAddr("c1", labServerID+"/24")
	l.start()

	udhcpc, udhcpcLog := startUdhcpc(t, l.clients[0], l.dir)
	defer udhcpc.Stop()

	dhclientScript, dhclientLog := l.script("dhclient", `
echo "$reason $new_ip_address" >> LOG
case "$reason" in
BOUND|RENEW|REBOOT|REBIND) ip addr replace "$new_ip_address/24" dev "$interface" ;;
esac
`)
	dhclient := l.clients[1].Start("dhclient", "-d", "-sf", dhclientScript,
		"-lf", filepath.Join(l.dir, "dhclient.leases"), "-pf", filepath.Join(l.dir, "dhclient.pid"), "eth0")
	defer dhclient.Stop()

	uLog := waitFile(t, udhcpcLog, "bound", 30*time.Second)
	dLog := waitFile(t, dhclientLog, "BOUND", 30*time.Second)
	uAddr, dAddr := eventAddr(uLog, "bound"), eventAddr(dLog, "BOUND")
	if uAddr == dAddr {
		t.Fatalf("udhcpc and dhclient share %s", uAddr)
	}
	for _, a := range []string{uAddr, dAddr} {
		if r, ok := l.leaseOf(a); !ok || r.State != "assigned" || !r.Local {
			t.Errorf("lease of %s: %+v", a, r)
		}
	}
	// Both renew by unicast to the server identifier and keep their
	// addresses: dhclient at T1 (5 s), udhcpc when told to (SIGUSR1; its
	// own timer renews later than T1).
	renewNow(t, udhcpc)
	waitFile(t, udhcpcLog, "renew "+uAddr, 15*time.Second)
	waitFile(t, dhclientLog, "RENEW "+dAddr, 15*time.Second)
	if st := l.stats(); st["dhcp.rx.unicast"] == 0 || st["dhcp.tx.ACK"] < 4 {
		t.Errorf("renewals not unicast or not acknowledged: %v", st)
	}
	t.Logf("udhcpc %s, dhclient %s, stats %v", uAddr, dAddr, l.stats())
}

// TestProtocolCases drives the states and messages of the Kea flow with the
// Go probe client (nclient4).
func TestProtocolCases(t *testing.T) {
	l := newDHCPLab(t, 2, "-probation", "1h")
	l.start()
	macA, macB := "02:00:00:00:0a:01", "02:00:00:00:0b:01"

	a := l.run(0, "-mac", macA, "-prl", "1,3,6", "dora")
	if a.Type != "ACK" || a.Server != labServerID || a.Yiaddr == "" {
		t.Fatalf("DORA: %+v", a)
	}
	t.Run("option 55", func(t *testing.T) {
		if _, ok := a.Options["42"]; ok {
			t.Error("option 42 sent without being requested")
		}
		r := l.run(0, "-mac", macA, "-prl", "42", "discover")
		if r.Options["42"] != hex.EncodeToString([]byte{10, 0, 0, 253}) {
			t.Errorf("requested option 42 missing: %+v", r.Options)
		}
		for _, code := range []string{"1", "3", "6", "51", "54", "58", "59"} {
			if _, ok := r.Options[code]; !ok {
				t.Errorf("option %s missing", code)
			}
		}
	})
	t.Run("rebind (broadcast, ciaddr)", func(t *testing.T) {
		r := l.run(0, "-mac", macA, "-addr", a.Yiaddr, "-state", "rebind", "request")
		if r.Type != "ACK" || r.Yiaddr != a.Yiaddr || r.Ciaddr != a.Yiaddr {
			t.Errorf("%+v", r)
		}
	})
	t.Run("INIT-REBOOT known address", func(t *testing.T) {
		if r := l.run(0, "-mac", macA, "-addr", a.Yiaddr, "-state", "initreboot", "request"); r.Type != "ACK" || r.Yiaddr != a.Yiaddr {
			t.Errorf("%+v", r)
		}
	})
	t.Run("INIT-REBOOT address held by another client: NAK", func(t *testing.T) {
		if r := l.run(1, "-mac", macB, "-addr", a.Yiaddr, "-state", "initreboot", "request"); r.Type != "NAK" || r.Server != labServerID {
			t.Errorf("%+v", r)
		}
	})
	t.Run("INIT-REBOOT address outside the pool: silence", func(t *testing.T) {
		if r := l.run(1, "-mac", macB, "-addr", "192.168.77.7", "-state", "initreboot", "-timeout", "1s", "request"); r.Type != "none" {
			t.Errorf("%+v", r)
		}
	})
	t.Run("INIT-REBOOT known client asking for another free address of our block: granted, old lease freed", func(t *testing.T) {
		// Another address of the same block of 16 (ours).
		ip := netip.MustParseAddr(a.Yiaddr).As4()
		ip[3] = ip[3]&^15 | (ip[3]+5)&15
		other := netip.AddrFrom4(ip).String()
		if r := l.run(0, "-mac", macA, "-addr", other, "-state", "initreboot", "request"); r.Type != "ACK" || r.Yiaddr != other {
			t.Errorf("%+v", r)
		}
		if r, _ := l.leaseOf(a.Yiaddr); r.State == "assigned" {
			t.Errorf("the old lease is still assigned: %+v", r)
		}
	})
	b := l.run(1, "-mac", macB, "dora")
	t.Run("two clients never share", func(t *testing.T) {
		if b.Type != "ACK" || b.Yiaddr == a.Yiaddr {
			t.Errorf("B: %+v (A has %s)", b, a.Yiaddr)
		}
	})
	t.Run("INFORM", func(t *testing.T) {
		r := l.run(1, "-mac", macB, "-addr", b.Yiaddr, "inform")
		if r.Type != "ACK" || r.Yiaddr != "" || r.Ciaddr != b.Yiaddr {
			t.Errorf("%+v", r)
		}
		if _, ok := r.Options["51"]; ok {
			t.Error("INFORM reply with a lease time")
		}
	})
	t.Run("RELEASE then DISCOVER", func(t *testing.T) {
		l.run(1, "-mac", macB, "-addr", b.Yiaddr, "-server", labServerID, "release")
		eventually(t, 3*time.Second, "released", func() error {
			if r, _ := l.leaseOf(b.Yiaddr); r.State != "released" {
				return fmt.Errorf("%+v", r)
			}
			return nil
		})
		if r := l.run(1, "-mac", macB, "dora"); r.Type != "ACK" || r.Yiaddr != b.Yiaddr {
			t.Errorf("after release the client got %+v, had %s", r, b.Yiaddr)
		}
	})
	t.Run("DECLINE: not offered during probation", func(t *testing.T) {
		l.run(1, "-mac", macB, "-addr", b.Yiaddr, "-server", labServerID, "decline")
		eventually(t, 3*time.Second, "declined", func() error {
			if r, _ := l.leaseOf(b.Yiaddr); r.State != "declined" {
				return fmt.Errorf("%+v", r)
			}
			return nil
		})
		// The same client, and others asking for it, get other addresses.
		for i := range 5 {
			mac := fmt.Sprintf("02:00:00:00:0c:%02x", i)
			r := l.run(1, "-mac", mac, "-addr", b.Yiaddr, "discover")
			if r.Type != "OFFER" || r.Yiaddr == b.Yiaddr {
				t.Errorf("client %s: %+v", mac, r)
			}
		}
		if r := l.run(1, "-mac", macB, "dora"); r.Yiaddr == b.Yiaddr {
			t.Errorf("decliner got the declined address back")
		}
	})
}

// TestRestartKeepsLeases: a restarted daemon (clean stop, and kill -9)
// restores its blocks and leases, and a client renews the same address.
func TestRestartKeepsLeases(t *testing.T) {
	l := newDHCPLab(t, 1, "-state-interval", "100ms")
	l.start()
	a := l.run(0, "-mac", "02:00:00:00:0d:01", "dora")
	if a.Type != "ACK" {
		t.Fatalf("%+v", a)
	}
	for _, how := range []string{"stop", "kill -9"} {
		time.Sleep(300 * time.Millisecond) // past the state interval
		if how == "stop" {
			l.proc.Stop()
		} else {
			l.proc.Kill()
		}
		started := time.Now()
		l.start()
		fresh := l.run(0, "-mac", fmt.Sprintf("02:00:00:00:0d:%02x", len(how)+10), "dora")
		if fresh.Type != "ACK" {
			t.Fatalf("after %s: no new lease: %+v", how, fresh)
		}
		t.Logf("after %s: first new lease %v after the start (blocks restored from the state file)", how, time.Since(started).Round(time.Millisecond))
		r := l.run(0, "-mac", "02:00:00:00:0d:01", "-addr", a.Yiaddr, "-server", labServerID, "-state", "renew", "request")
		if r.Type != "ACK" || r.Yiaddr != a.Yiaddr {
			t.Fatalf("after %s: renewal got %+v, had %s", how, r, a.Yiaddr)
		}
		// Another client must not get that address.
		o := l.run(0, "-mac", "02:00:00:00:0d:02", "-addr", a.Yiaddr, "discover")
		if o.Yiaddr == a.Yiaddr {
			t.Fatalf("after %s: %s offered to another client", how, a.Yiaddr)
		}
		st := l.stats()
		if st["state.restored"] != 1 {
			t.Errorf("after %s: state not restored: %v", how, st)
		}
	}
}

// TestMalformedInput: broken packets are dropped and counted, the daemon
// keeps serving. Each payload is a UDP payload sent to port 67.
func TestMalformedInput(t *testing.T) {
	l := newDHCPLab(t, 1)
	l.start()
	good := discoverBytes(t, nil)
	padded := slices.Clone(good[:240]) // C bug 19: PAD bytes between options
	padded = append(padded, 53, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 61, 7, 1, 2, 0, 0, 0, 0, 9, 0, 0, 0, 255)
	many := slices.Clone(good[:240]) // 300 options (C bug 20: a uint8 count)
	many = append(many, 53, 1, 1)
	for i := range 300 {
		many = append(many, byte(100+i%100), 0)
	}
	many = append(many, 255)
	cases := map[string][]byte{
		"truncated":           good[:100],
		"bad magic cookie":    append(append(slices.Clone(good[:236]), 1, 2, 3, 4), good[240:]...),
		"option past the end": append(slices.Clone(good[:240]), 53, 1, 1, 12, 200, 'x'),
		"missing option 53":   append(slices.Clone(good[:240]), 12, 1, 'x', 255),
		"DISCOVER with 54":    discoverBytes(t, []byte{54, 4, 10, 0, 0, 1}),
		"empty":               {},
	}
	before := l.stats()
	var payloads []string
	for _, p := range cases {
		payloads = append(payloads, hex.EncodeToString(p))
	}
	// 20 rounds of everything, and the PAD and 300-option packets.
	for range 20 {
		l.run(0, append([]string{"raw"}, payloads...)...)
	}
	l.run(0, "raw", hex.EncodeToString(padded), hex.EncodeToString(many))
	eventually(t, 5*time.Second, "drops counted", func() error {
		st := l.stats()
		malformed := st["dhcp.drop.malformed"] - before["dhcp.drop.malformed"] + st["clients.malformed_frames"] - before["clients.malformed_frames"]
		if malformed < 20*3 || st["dhcp.drop.no_message_type"] < 20 || st["dhcp.drop.discover_with_server_id"] < 20 {
			return fmt.Errorf("%v", st)
		}
		// The PAD-filled and 300-option DISCOVERs are valid DHCP:
		// they are answered.
		if st["dhcp.tx.OFFER"] < 1 {
			return fmt.Errorf("PAD/300-option DISCOVERs not answered: %v", st)
		}
		return nil
	})
	if r := l.run(0, "dora"); r.Type != "ACK" {
		t.Fatalf("daemon stopped serving: %+v", r)
	}
	if l.proc.Exited() {
		t.Fatal("daemon exited")
	}
	t.Logf("stats: %v", l.stats())
}

// discoverBytes is a minimal DISCOVER from 02:00:00:00:0e:01 with extra
// options before END.
func discoverBytes(t testing.TB, extra []byte) []byte {
	b := make([]byte, 240)
	b[0], b[1], b[2] = 1, 1, 6
	copy(b[4:], []byte{9, 9, 9, 9})
	copy(b[28:], []byte{2, 0, 0, 0, 0x0e, 1})
	copy(b[236:], []byte{99, 130, 83, 99})
	b = append(b, 53, 1, 1)
	b = append(b, extra...)
	return append(b, 255)
}

// TestDemandClaimsAtOnce: a router with no spare leases owns nothing; a
// DISCOVER makes it claim at once, and the waiting client gets its OFFER as
// soon as the block is owned, without retrying.
func TestDemandClaimsAtOnce(t *testing.T) {
	l := newDHCPLab(t, 1, "-s", "0")
	l.proc = l.router.Start(l.bin, l.args...)
	eventually(t, 10*time.Second, "daemon answers", func() error {
		var st control.Status
		return control.Call(l.sock, "status", nil, &st)
	})
	time.Sleep(2 * time.Second)
	var st control.Status
	if err := control.Call(l.sock, "status", nil, &st); err != nil || st.Owned != 0 {
		t.Fatalf("owns %d blocks with -s 0 and no client (%v)", st.Owned, err)
	}
	start := time.Now()
	// One DISCOVER, no retransmission, waiting up to 20 s (3 s normally).
	r := l.run(0, "-timeout", "20s", "discover")
	took := time.Since(start)
	if r.Type != "OFFER" {
		t.Fatalf("no offer: %+v", r)
	}
	stats := l.stats()
	if stats["dhcp.parked_answered"] < 1 || stats["claim.owned"] < 1 {
		t.Errorf("offer did not come from the parked DISCOVER: %v", stats)
	}
	t.Logf("first offer %v after the DISCOVER (3 inquiries of 1 s)", took.Round(time.Millisecond))
}

// TestNoPortUnreachable: a unicast datagram to the server's port 67 (a
// renewal) is not answered by the kernel with ICMP port unreachable, which
// a client on a connected socket sees as an error; the daemon still gets it.
func TestNoPortUnreachable(t *testing.T) {
	l := newDHCPLab(t, 1)
	l.router.AddAddr("c0", labServerID+"/24")
	l.clients[0].AddAddr("eth0", "10.0.0.77/24")
	l.start()
	before := l.stats()
	if r := l.run(0, "-addr", labServerID, "-timeout", "1s", "udp67"); r.Type != "none" {
		t.Fatalf("unicast to port 67: %s", r.Type)
	}
	eventually(t, 3*time.Second, "the daemon got the datagram", func() error {
		if st := l.stats(); st["dhcp.drop.malformed"] <= before["dhcp.drop.malformed"] {
			return fmt.Errorf("%v", st)
		}
		return nil
	})
}

// TestHook: -H runs the hook with the event and its arguments as argv: a
// hostname full of shell syntax arrives verbatim and runs nothing.
func TestHook(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "hook.log")
	script := filepath.Join(dir, "hook.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|' \"$@\" >> "+log+"\necho >> "+log+"\n"), 0o755)
	l := newDHCPLab(t, 1, "-H", script)
	l.start()
	// No spaces (udhcpc's -x splits at them); a shell would expand ${IFS}.
	evil := "x;$(touch${IFS}" + filepath.Join(dir, "pwned") + ");`id`"
	r := l.run(0, "-mac", "02:00:00:00:0f:01", "dora")
	if r.Type != "ACK" {
		t.Fatalf("%+v", r)
	}
	// The probe sends no hostname; use a RELEASE and a named client instead.
	l.run(0, "-mac", "02:00:00:00:0f:01", "-addr", r.Yiaddr, "-server", labServerID, "release")
	got := waitFile(t, log, "release|"+r.Yiaddr+"|02:00:00:00:0F:01|", 5*time.Second)
	for _, want := range []string{"endlearning|", "blockowned|", "lease|" + r.Yiaddr + "|02:00:00:00:0F:01|"} {
		if !strings.Contains(got, want) {
			t.Errorf("hook log lacks %q:\n%s", want, got)
		}
	}
	// A hostname with shell syntax (option 12) is passed as one argument.
	if _, err := l.clients[0].Run(context.Background(), "udhcpc", "-i", "eth0", "-q", "-n", "-t", "10", "-T", "2",
		"-s", "/bin/true", "-x", "hostname:"+evil); err != nil {
		t.Fatalf("udhcpc: %v", err)
	}
	got = waitFile(t, log, evil+"|", 5*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("the hostname was run by a shell")
	}
	if st := l.stats(); st["hook.started"] < 4 || st["hook.failed"] != 0 {
		t.Errorf("hook stats %v", st)
	}
}

// TestControl: every control command against a running daemon, bad
// requests get error objects, and the daemon keeps serving.
func TestControl(t *testing.T) {
	l := newDHCPLab(t, 1)
	l.start()
	if st, err := os.Stat(l.sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st.Mode(), err)
	}
	for _, c := range []struct {
		cmd  string
		args any
	}{
		{"status", nil}, {"blocks", nil}, {"leases", nil}, {"stats", nil}, {"options", nil},
		{"option_set", map[string]any{"code": 42, "type": "ip", "value": "10.0.0.253"}},
		{"option_remove", map[string]any{"code": 42}},
		{"loglevel", map[string]any{"level": "info"}}, {"loglevel", nil},
		{"stats_reset", nil}, {"tree", nil},
	} {
		var out json.RawMessage
		if err := control.Call(l.sock, c.cmd, c.args, &out); err != nil {
			t.Errorf("%s: %v", c.cmd, err)
		}
	}
	for _, bad := range []struct {
		cmd  string
		args any
		code string
	}{
		{"nonsense", nil, control.CodeUnknownCommand},
		{"option_set", map[string]any{"code": 54, "hex": "0a000001"}, "bad_args"},
		{"option_set", map[string]any{"bogus": 1}, "bad_args"},
		{"loglevel", map[string]any{"level": "loud"}, "bad_args"},
	} {
		var ce *control.Error
		if err := control.Call(l.sock, bad.cmd, bad.args, nil); !errors.As(err, &ce) || ce.Code != bad.code {
			t.Errorf("%s %v: %v, want %s", bad.cmd, bad.args, err, bad.code)
		}
	}
	if r := l.run(0, "dora"); r.Type != "ACK" {
		t.Fatalf("daemon stopped serving: %+v", r)
	}
}
