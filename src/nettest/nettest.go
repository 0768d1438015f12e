// Package nettest builds throw-away Linux network topologies for integration
// tests: network namespaces, bridges and veth pairs, created with iproute2 and
// removed again when the test ends.
//
// Every object a [Lab] creates carries a prefix unique to that Lab, and a Lab
// only ever deletes what it created itself, so parallel tests and parallel
// test binaries never collide and the host's own interfaces are never touched.
// Links are only created inside the Lab's namespaces, never in the namespace
// of the test process, so deleting the namespaces removes all of them.
//
// The helpers need root and the ip(8) command; call [RequireRoot] first.
// Methods that take no context fail the test (t.Fatal) on error and must be
// called from the goroutine running the test that created the Lab.
package nettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cmdTimeout bounds every single ip(8) invocation made by the helpers, so a
// wedged command fails the test instead of hanging it until the test timeout.
const cmdTimeout = 10 * time.Second

// maxIfNameLen is IFNAMSIZ-1: the kernel refuses longer interface names.
const maxIfNameLen = 15

// nameRE restricts the short names tests give to namespaces and links, so they
// are safe as ip(8) arguments and in file names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// RequireRoot fails the test unless it runs as root with a working
// "ip netns". The integration tests are meant to run, not to be skipped
// silently on a machine that cannot run them.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("nettest: this test needs root to create network namespaces (euid %d); run the tests as root", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("nettest: the ip command (iproute2) is needed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput(); err != nil {
		t.Fatalf("nettest: \"ip netns list\" does not work: %v: %s", err, bytes.TrimSpace(out))
	}
}

// Lab is a set of network namespaces and processes that live as long as one
// test. Create it with [New].
type Lab struct {
	t      testing.TB
	prefix string

	mu     sync.Mutex
	nss    []*NS
	procs  []*Proc
	closed bool
}

// New returns an empty Lab whose namespaces and processes are removed in
// t.Cleanup, also when the test fails or panics. Cleanups run last first:
// take a t.TempDir that the processes write to before calling New, or it is
// removed while they still run.
func New(t testing.TB) *Lab {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("nettest: random prefix: %v", err)
	}
	l := &Lab{t: t, prefix: "ddt" + hex.EncodeToString(b[:])}
	t.Cleanup(l.cleanup)
	return l
}

// Prefix is the string every namespace of this Lab starts with.
func (l *Lab) Prefix() string { return l.prefix }

// NS creates a network namespace with lo up and IPv6 duplicate address
// detection off, so link-local addresses are usable at once instead of after
// a second or more of DAD.
func (l *Lab) NS(name string) *NS {
	l.t.Helper()
	if !nameRE.MatchString(name) || len(name) > 20 {
		l.t.Fatalf("nettest: bad namespace name %q", name)
	}
	ns := &NS{lab: l, Short: name, Name: l.prefix + "-" + name}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.t.Fatalf("nettest: namespace %q created after cleanup", name)
	}
	for _, o := range l.nss {
		if o.Short == name {
			l.mu.Unlock()
			l.t.Fatalf("nettest: namespace %q created twice", name)
		}
	}
	l.mu.Unlock()

	if err := run(context.Background(), nil, "ip", "netns", "add", ns.Name); err != nil {
		l.t.Fatalf("nettest: create namespace %s: %v", ns.Name, err)
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()

	ns.IP("link", "set", "lo", "up")
	// "all" alone is not enough: new interfaces copy their settings from
	// "default" when they are created.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if _, err := ns.Run(ctx, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0"); err != nil {
		l.t.Fatalf("nettest: disable DAD in %s: %v", ns.Name, err)
	}
	return ns
}

// Bridge creates a bridge in ns and sets it up. Multicast snooping is off so
// that IPv6 multicast is flooded to every port without waiting for MLD
// reports, and STP is off so that ports forward at once.
func (l *Lab) Bridge(ns *NS, name string) {
	l.t.Helper()
	checkIfName(l.t, name)
	ns.IP("link", "add", "name", name, "type", "bridge",
		"mcast_snooping", "0", "stp_state", "0", "forward_delay", "0")
	ns.IP("link", "set", name, "up")
}

// Veth creates a veth pair, aName in namespace a and bName in namespace b
// (a and b may be the same), and sets both ends up.
func (l *Lab) Veth(a *NS, aName string, b *NS, bName string) {
	l.t.Helper()
	checkIfName(l.t, aName)
	checkIfName(l.t, bName)
	// Create the pair directly in its namespaces: a link never exists in
	// the namespace of the test process, so a failed test cannot leave one
	// behind there.
	a.IP("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
	a.IP("link", "set", aName, "up")
	b.IP("link", "set", bName, "up")
}

func checkIfName(t testing.TB, name string) {
	t.Helper()
	if !nameRE.MatchString(name) || len(name) > maxIfNameLen {
		t.Fatalf("nettest: bad interface name %q (at most %d characters)", name, maxIfNameLen)
	}
}

// cleanup kills the Lab's processes first (a process inside a namespace keeps
// it alive) and then deletes its namespaces, which deletes their links.
func (l *Lab) cleanup() {
	l.mu.Lock()
	l.closed = true
	procs := slices.Clone(l.procs)
	nss := slices.Clone(l.nss)
	l.mu.Unlock()

	for _, p := range procs {
		p.Kill()
		select {
		case <-p.done:
		case <-time.After(cmdTimeout):
			l.t.Errorf("nettest: process %s did not exit after SIGKILL", p.name)
		}
		if l.t.Failed() {
			p.logOutput(l.t)
		}
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if err := run(context.Background(), nil, "ip", "netns", "delete", nss[i].Name); err != nil {
			l.t.Errorf("nettest: delete namespace %s: %v", nss[i].Name, err)
		}
	}
	if left := l.leftovers(); len(left) > 0 {
		l.t.Errorf("nettest: namespaces left behind: %v", left)
	}
}

// leftovers lists the namespaces with this Lab's prefix that still exist.
func (l *Lab) leftovers() []string {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return []string{fmt.Sprintf("(ip netns list: %v)", err)}
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, l.prefix+"-") {
			left = append(left, name)
		}
	}
	return left
}

// NS is a network namespace created by a [Lab].
type NS struct {
	lab   *Lab
	Short string // name given by the test
	Name  string // full name as known to "ip netns"
}

// Run runs a command inside the namespace ("ip netns exec") and returns its
// standard output. The error includes the standard error of the command.
func (n *NS) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return n.RunEnv(ctx, nil, name, args...)
}

// RunEnv is [NS.Run] with extra environment variables ("KEY=value") added to
// the environment of the test process.
func (n *NS) RunEnv(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	argv := append([]string{"netns", "exec", n.Name, name}, args...)
	err := runOut(ctx, env, &stdout, "ip", argv...)
	return stdout.Bytes(), err
}

// IP runs "ip -n NS ARGS..." and returns its output; it fails the test on
// error.
func (n *NS) IP(args ...string) string {
	n.lab.t.Helper()
	var stdout bytes.Buffer
	argv := append([]string{"-n", n.Name}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := runOut(ctx, nil, &stdout, "ip", argv...); err != nil {
		n.lab.t.Fatalf("nettest: %s: %v", n.Short, err)
	}
	return stdout.String()
}

// SetUp sets a link up.
func (n *NS) SetUp(ifname string) {
	n.lab.t.Helper()
	n.IP("link", "set", ifname, "up")
}

// SetDown sets a link down.
func (n *NS) SetDown(ifname string) {
	n.lab.t.Helper()
	n.IP("link", "set", ifname, "down")
}

// SetMaster attaches a link to a bridge (or other master) in the same
// namespace.
func (n *NS) SetMaster(ifname, master string) {
	n.lab.t.Helper()
	n.IP("link", "set", ifname, "master", master)
}

// DelLink deletes a link; deleting one end of a veth pair deletes both.
func (n *NS) DelLink(ifname string) {
	n.lab.t.Helper()
	n.IP("link", "del", ifname)
}

// AddAddr adds an address in CIDR notation, e.g. "10.0.0.1/24" or
// "fd00::1/64". IPv6 addresses are added with nodad.
func (n *NS) AddAddr(ifname, cidr string) {
	n.lab.t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		n.lab.t.Fatalf("nettest: bad address %q: %v", cidr, err)
	}
	args := []string{"addr", "add", cidr, "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	n.IP(args...)
}

// LinkIndex returns the interface index of a link.
func (n *NS) LinkIndex(ifname string) int {
	n.lab.t.Helper()
	var links []struct {
		Index int `json:"ifindex"`
	}
	out := n.IP("-j", "link", "show", "dev", ifname)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		n.lab.t.Fatalf("nettest: %s: link %s: cannot parse %q: %v", n.Short, ifname, out, err)
	}
	return links[0].Index
}

// LinkLocal returns the first IPv6 link-local address of ifname that has
// finished duplicate address detection, without zone, or an error if there is
// none.
func (n *NS) LinkLocal(ifname string) (netip.Addr, error) {
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	err := runOut(ctx, nil, &stdout, "ip", "-n", n.Name, "-j", "-6", "addr", "show", "dev", ifname, "scope", "link")
	if err != nil {
		return netip.Addr{}, err
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			Tentative bool   `json:"tentative"`
			DADFailed bool   `json:"dadfailed"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &links); err != nil {
		return netip.Addr{}, fmt.Errorf("parse ip output %q: %w", stdout.String(), err)
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			if err == nil && addr.IsLinkLocalUnicast() && !a.Tentative && !a.DADFailed {
				return addr, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no usable link-local address on %s", ifname)
}

// WaitLinkLocal waits until ifname has a usable (non-tentative) IPv6
// link-local address and returns it without zone. It fails the test after
// timeout.
func (n *NS) WaitLinkLocal(ifname string, timeout time.Duration) netip.Addr {
	n.lab.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		addr, err := n.LinkLocal(ifname)
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			n.lab.t.Fatalf("nettest: %s: no link-local address on %s after %v: %v", n.Short, ifname, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run runs a command for at most cmdTimeout.
func run(ctx context.Context, env []string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	return runOut(ctx, env, nil, name, args...)
}

// runOut runs a command, collects its standard output in stdout (if not nil)
// and wraps its standard error into the error.
func runOut(ctx context.Context, env []string, stdout *bytes.Buffer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
