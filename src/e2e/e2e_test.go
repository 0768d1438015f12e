// Package e2e runs the real ddhcpd binary in Linux network namespaces.
package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/nettest"
)

func TestMain(m *testing.M) { nettest.Main(m) }

// router is one ddhcpd in its own namespace, attached to the mesh bridge.
type router struct {
	name  string
	ns    *nettest.NS
	sock  string
	state string
	args  []string
	proc  *nettest.Proc
}

// mesh builds n routers on one bridged mesh link ("bat0" in every router)
// with a client link each ("client0", whose far end sits in a client
// namespace).
type mesh struct {
	t       testing.TB
	lab     *nettest.Lab
	bin     string
	routers []*router
}

func newMesh(t testing.TB, n int, args ...string) *mesh {
	t.Helper()
	nettest.RequireRoot(t)
	dir := t.TempDir() // before the lab: its processes die before the directory goes
	m := &mesh{t: t, lab: nettest.New(t), bin: nettest.BuildBinary(t, "ddhcpd/src/cmd/ddhcpd")}
	hub := m.lab.NS("hub")
	m.lab.Bridge(hub, "br0")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("r%d", i)
		r := &router{
			name:  name,
			ns:    m.lab.NS(name),
			sock:  filepath.Join(dir, name+".sock"),
			state: filepath.Join(dir, name+".state"),
		}
		m.lab.Veth(r.ns, "bat0", hub, "m"+name)
		hub.SetMaster("m"+name, "br0")
		cl := m.lab.NS("c" + name)
		m.lab.Veth(r.ns, "client0", cl, "eth0")
		r.args = append([]string{"-i", "bat0", "-c", "client0", "-C", r.sock, "-state", r.state, "-vv"}, args...)
		m.routers = append(m.routers, r)
	}
	return m
}

func (m *mesh) start(r *router, extra ...string) {
	m.t.Helper()
	r.proc = r.ns.Start(m.bin, append(slices.Clone(r.args), extra...)...)
}

func (r *router) blocks(t testing.TB) []control.Block {
	t.Helper()
	var rows []control.Block
	if err := control.Call(r.sock, "blocks", nil, &rows); err != nil {
		return nil
	}
	return rows
}

func (r *router) status(t testing.TB) (control.Status, error) {
	var st control.Status
	err := control.Call(r.sock, "status", nil, &st)
	return st, err
}

// view is the block table of every live router, by router name.
type view map[string][]control.Block

func (m *mesh) view(live []*router) view {
	v := view{}
	for _, r := range live {
		v[r.name] = r.blocks(m.t)
	}
	return v
}

// owners maps block index to the routers that hold it as ours.
func (v view) owners() map[uint32][]string {
	o := map[uint32][]string{}
	for name, rows := range v {
		for _, b := range rows {
			if b.State == "ours" {
				o[b.Index] = append(o[b.Index], name)
			}
		}
	}
	for _, names := range o {
		slices.Sort(names)
	}
	return o
}

func (v view) String() string {
	var b strings.Builder
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s:", n)
		for _, r := range v[n] {
			fmt.Fprintf(&b, " %d=%s", r.Index, r.State)
			if r.Owner != "" && r.State != "ours" {
				fmt.Fprintf(&b, "(%s)", r.Owner[:4])
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// consistent checks that no block has two owners and that every live router
// sees every owned block as claimed by its owner. ids maps router name to
// node id.
func (v view) consistent(ids map[string]string) error {
	for blk, names := range v.owners() {
		if len(names) > 1 {
			return fmt.Errorf("block %d owned by %v", blk, names)
		}
		owner := names[0]
		for name, rows := range v {
			if name == owner {
				continue
			}
			i := slices.IndexFunc(rows, func(b control.Block) bool { return b.Index == blk })
			if i < 0 || rows[i].State != "claimed" || rows[i].Owner != ids[owner] {
				return fmt.Errorf("%s does not see block %d as claimed by %s (%s)", name, blk, owner, ids[owner])
			}
		}
	}
	return nil
}

// eventually polls cond every 200 ms until it returns nil or the time is up.
func eventually(t testing.TB, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %v: %v", what, limit, err)
}

func (m *mesh) ids(t testing.TB, live []*router) map[string]string {
	ids := map[string]string{}
	for _, r := range live {
		eventually(t, 10*time.Second, r.name+" answers", func() error {
			st, err := r.status(t)
			ids[r.name] = st.Node
			return err
		})
	}
	return ids
}

// TestClaimKillRestart: three routers claim disjoint blocks of a pool too
// small for all of them; when one is killed its blocks time out and the
// others take them; when it comes back it takes nothing another router owns.
func TestClaimKillRestart(t *testing.T) {
	// 10.0.0.0/29 in blocks of one address: .0 and .7 are reserved, so six
	// usable blocks. r3 starts first and wants 2; then r1 and r2 want 3 each
	// and stay short, so they take r3's blocks once r3 is gone. Learning
	// is skipped, so a joining router inquires blindly: the owner's
	// defence must come within the inquiry window (3 inquiry intervals),
	// which a loaded machine may stretch; hence 1 s, not less.
	m := newMesh(t, 3, "-N", "10.0.0.0/29", "-b", "0", "-B", "4", "-t", "2",
		"-inquire-interval", "1s", "-L", "-server-id", "192.168.99.1")
	all := m.routers
	m.start(all[2], "-s", "2")
	idOf := m.ids(t, all[2:])
	eventually(t, 10*time.Second, "r3 owns two blocks", func() error {
		if o := len(m.view(all[2:]).owners()); o != 2 {
			return fmt.Errorf("r3 owns %d", o)
		}
		return nil
	})
	m.start(all[0], "-s", "3")
	m.start(all[1], "-s", "3")
	ids := m.ids(t, all)
	if ids["r3"] != idOf["r3"] || ids["r1"] == ids["r2"] || ids["r1"] == ids["r3"] || ids["r2"] == ids["r3"] {
		t.Fatalf("node ids not distinct: %v", ids)
	}
	full := func(live []*router, want []string) func() error {
		return func() error {
			v := m.view(live)
			if err := v.consistent(ids); err != nil {
				return fmt.Errorf("%w\n%s", err, v)
			}
			o := v.owners()
			if len(o) != 6 {
				return fmt.Errorf("%d of 6 blocks owned\n%s", len(o), v)
			}
			for _, names := range o {
				if !slices.Contains(want, names[0]) {
					return fmt.Errorf("owned by %s\n%s", names[0], v)
				}
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "three routers own the pool", full(all, []string{"r1", "r2", "r3"}))
	before := m.view(all)
	t.Logf("claimed:\n%s", before)
	var r3blocks []uint32
	for blk, names := range before.owners() {
		if names[0] == "r3" {
			r3blocks = append(r3blocks, blk)
		}
	}
	if len(r3blocks) != 2 {
		t.Fatalf("r3 owns %v after the others joined, want its two blocks kept", r3blocks)
	}

	// Kill r3 (no goodbye): its claims expire after the block timeout and
	// the two survivors, still short of addresses, take them over.
	all[2].proc.Kill()
	survivors := all[:2]
	eventually(t, 20*time.Second, "survivors own the whole pool", full(survivors, []string{"r1", "r2"}))
	after := m.view(survivors).owners()
	for _, blk := range r3blocks {
		if len(after[blk]) != 1 {
			t.Errorf("r3's block %d not taken over: %v", blk, after[blk])
		}
	}
	t.Logf("after kill:\n%s", m.view(survivors))

	// Restart r3 with the same state directory and learning skipped: it
	// must take nothing, because every block has a live owner.
	m.start(all[2], "-s", "2")
	eventually(t, 10*time.Second, "r3 answers with its old id", func() error {
		st, err := all[2].status(t)
		if err == nil && st.Node != ids["r3"] {
			t.Fatalf("r3 came back with id %s, had %s", st.Node, ids["r3"])
		}
		return err
	})
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		v := m.view(all)
		for blk, names := range v.owners() {
			if slices.Contains(names, "r3") {
				t.Fatalf("restarted r3 took block %d owned by %v\n%s", blk, names, v)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "restarted r3 agrees", full(all, []string{"r1", "r2"}))
	t.Logf("after restart:\n%s", m.view(all))
}
