package statedir

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ddhcpd/src/lease"
	"ddhcpd/src/wire"
)

// router is one router's files: the state directory on tmpfs, the node id
// and the state copy on flash.
type router struct {
	t                 *testing.T
	dir, flash, state string
	warned            []error
}

func newRouter(t *testing.T) *router {
	root := t.TempDir()
	return &router{
		t:     t,
		dir:   filepath.Join(root, "tmp", "ddhcpd"),
		flash: filepath.Join(root, "etc", "ddhcpd", "node_id"),
		state: filepath.Join(root, "etc", "ddhcpd", "state.json"),
	}
}

func (r *router) files() IDFiles { return IDFiles{Dir: r.dir, Flash: r.flash, Persist: r.state} }

func (r *router) nodeID() wire.NodeID {
	r.t.Helper()
	r.warned = nil
	id, err := NodeID(r.files(), rand.Reader, func(err error) { r.warned = append(r.warned, err) })
	if err != nil {
		r.t.Fatal(err)
	}
	if id.IsZero() {
		r.t.Fatal("zero node id")
	}
	return id
}

func (r *router) tmpfsFile() string { return filepath.Join(r.dir, NodeIDFile) }

// reboot empties tmpfs.
func (r *router) reboot() { os.RemoveAll(filepath.Dir(r.dir)) }

// read returns the id in an id file, or zero.
func read(t *testing.T, path string) wire.NodeID {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return wire.NodeID{}
	}
	id, err := wire.ParseNodeID(strings.TrimSpace(string(b)))
	if err != nil {
		t.Errorf("%s: %v", path, err)
	}
	return id
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// untouched records a file's identity and age so that a rewrite shows.
type untouched struct {
	path  string
	ino   uint64
	mtime time.Time
	data  []byte
}

func pin(t *testing.T, path string) untouched {
	t.Helper()
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	return untouched{path, fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime(), data}
}

func (u untouched) check(t *testing.T) {
	t.Helper()
	fi, err := os.Stat(u.path)
	if err != nil {
		t.Fatalf("%s: %v", u.path, err)
	}
	data, _ := os.ReadFile(u.path)
	if fi.Sys().(*syscall.Stat_t).Ino != u.ino || !fi.ModTime().Equal(u.mtime) || !bytes.Equal(data, u.data) {
		t.Errorf("%s was rewritten", u.path)
	}
}

// First start: a new id, in tmpfs and on flash; restarts keep it and never
// write the flash file again.
func TestNodeIDFresh(t *testing.T) {
	r := newRouter(t)
	a := r.nodeID()
	if len(r.warned) != 0 {
		t.Errorf("warnings on a first start: %v", r.warned)
	}
	if read(t, r.tmpfsFile()) != a || read(t, r.flash) != a {
		t.Fatalf("id %v not written to tmpfs and flash", a)
	}
	for _, p := range []string{r.tmpfsFile(), r.flash} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v", p, st.Mode(), err)
		}
	}
	flash := pin(t, r.flash)
	if b := r.nodeID(); b != a || len(r.warned) != 0 {
		t.Errorf("restart: %v != %v (%v)", b, a, r.warned)
	}
	flash.check(t)
}

// A reboot empties tmpfs: the id comes back from flash, which is only read.
func TestNodeIDFlashOnly(t *testing.T) {
	r := newRouter(t)
	a := r.nodeID()
	flash := pin(t, r.flash)
	for range 3 {
		r.reboot()
		if b := r.nodeID(); b != a || len(r.warned) != 0 {
			t.Fatalf("after a reboot: %v, want %v (%v)", b, a, r.warned)
		}
		if read(t, r.tmpfsFile()) != a {
			t.Errorf("tmpfs not written again")
		}
	}
	flash.check(t)
}

// The id is in tmpfs only (a daemon that ran before it had a flash file):
// it is kept, and written to flash once.
func TestNodeIDTmpfsOnly(t *testing.T) {
	r := newRouter(t)
	want := wire.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
	write(t, r.tmpfsFile(), want.String()+"\n")
	if id := r.nodeID(); id != want || len(r.warned) != 0 {
		t.Fatalf("id %v, want %v (%v)", id, want, r.warned)
	}
	if read(t, r.flash) != want {
		t.Errorf("flash file %v, want %v", read(t, r.flash), want)
	}
	r.reboot()
	if id := r.nodeID(); id != want {
		t.Errorf("after a reboot: %v, want %v", id, want)
	}
}

// Only the flash copy of the state is left (a router that kept its state
// on flash before it had a node id file): its "node" is the id.
func TestNodeIDPersistOnly(t *testing.T) {
	want := wire.NodeID{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}
	for _, how := range []string{"SaveState", "Snapshot"} {
		t.Run(how, func(t *testing.T) {
			r := newRouter(t)
			os.MkdirAll(filepath.Dir(r.state), 0o700)
			st := State{SavedAt: time.Now(), Node: want.String(), Pool: "10.0.0.0/24", SizeExp: 2, Blocks: []uint32{3}}
			if how == "SaveState" {
				st.Leases = []Record{{Addr: "10.0.0.13", State: "assigned", Remaining: 60}}
				if err := SaveState(r.state, st); err != nil {
					t.Fatal(err)
				}
			} else {
				var s Snapshot
				s.Apply([]lease.Lease{{Addr: netip.MustParseAddr("10.0.0.13"), State: lease.Assigned, Expires: time.Minute}}, nil, true)
				if err := s.Save(r.state, st, 0); err != nil {
					t.Fatal(err)
				}
			}
			state := pin(t, r.state)
			if id := r.nodeID(); id != want || len(r.warned) != 0 {
				t.Fatalf("id %v, want %v (%v)", id, want, r.warned)
			}
			if read(t, r.tmpfsFile()) != want || read(t, r.flash) != want {
				t.Errorf("id not written to tmpfs and flash")
			}
			// The state file is the daemon's to restore: left as it was.
			state.check(t)
			// Without a flash id file configured, the state copy alone.
			r2 := newRouter(t)
			r2.state = r.state
			r2.flash = ""
			if id := r2.nodeID(); id != want {
				t.Errorf("without a flash file: %v, want %v", id, want)
			}
		})
	}
}

// Damaged files are set aside as .bad, reported, and the next source is
// used.
func TestNodeIDDamaged(t *testing.T) {
	a := wire.NodeID{1, 1, 1, 1, 1, 1, 1, 1}
	b := wire.NodeID{2, 2, 2, 2, 2, 2, 2, 2}
	c := wire.NodeID{3, 3, 3, 3, 3, 3, 3, 3}
	for _, bad := range []string{"garbage\n", "0000000000000000\n", "", "01020304050607\n", "0102030405060708090a\n"} {
		t.Run("tmpfs "+strings.TrimSpace(bad), func(t *testing.T) {
			r := newRouter(t)
			write(t, r.tmpfsFile(), bad)
			write(t, r.flash, a.String()+"\n")
			flash := pin(t, r.flash)
			if id := r.nodeID(); id != a || len(r.warned) != 1 {
				t.Errorf("id %v, want %v from flash; warnings %v", id, a, r.warned)
			}
			if got, _ := os.ReadFile(r.tmpfsFile() + ".bad"); string(got) != bad {
				t.Errorf("damaged tmpfs file not set aside: %q", got)
			}
			if read(t, r.tmpfsFile()) != a {
				t.Errorf("tmpfs not rewritten")
			}
			flash.check(t)
		})
		t.Run("flash "+strings.TrimSpace(bad), func(t *testing.T) {
			r := newRouter(t)
			write(t, r.tmpfsFile(), b.String()+"\n")
			write(t, r.flash, bad)
			if id := r.nodeID(); id != b || len(r.warned) != 1 {
				t.Errorf("id %v, want %v from tmpfs; warnings %v", id, b, r.warned)
			}
			if got, _ := os.ReadFile(r.flash + ".bad"); string(got) != bad {
				t.Errorf("damaged flash file not set aside: %q", got)
			}
			if read(t, r.flash) != b {
				t.Errorf("flash file not written with the id")
			}
		})
		t.Run("both "+strings.TrimSpace(bad), func(t *testing.T) {
			r := newRouter(t)
			write(t, r.tmpfsFile(), bad)
			write(t, r.flash, bad)
			if err := SaveState(r.state, State{Node: c.String()}); err != nil {
				t.Fatal(err)
			}
			if id := r.nodeID(); id != c || len(r.warned) != 2 {
				t.Errorf("id %v, want %v from the state copy; warnings %v", id, c, r.warned)
			}
			if read(t, r.tmpfsFile()) != c || read(t, r.flash) != c {
				t.Errorf("id not written to tmpfs and flash")
			}
		})
	}
	// A damaged state copy: a new id, a warning, and the file stays for
	// the daemon (which sets it aside when it restores the leases).
	for _, bad := range []string{"{", "[]", `{"version":1}`, `{"node":"0000000000000000"}`, `{"node":"xyz"}`, `{"node":7}`, "\x00\x01"} {
		t.Run("state "+bad, func(t *testing.T) {
			r := newRouter(t)
			write(t, r.state, bad)
			r.nodeID()
			if len(r.warned) != 1 {
				t.Errorf("warnings %v, want one", r.warned)
			}
			if got, _ := os.ReadFile(r.state); string(got) != bad {
				t.Errorf("state file changed: %q", got)
			}
			if read(t, r.tmpfsFile()).IsZero() || read(t, r.flash) != read(t, r.tmpfsFile()) {
				t.Errorf("new id not written")
			}
		})
	}
}

// Flash and tmpfs disagree (the flash file was put there by hand): the
// running id stays until the reboot, the flash file is not rewritten.
func TestNodeIDFlashDiffers(t *testing.T) {
	r := newRouter(t)
	a := wire.NodeID{0xa, 0, 0, 0, 0, 0, 0, 1}
	b := wire.NodeID{0xb, 0, 0, 0, 0, 0, 0, 1}
	write(t, r.tmpfsFile(), a.String()+"\n")
	write(t, r.flash, b.String()+"\n")
	flash := pin(t, r.flash)
	if id := r.nodeID(); id != a || len(r.warned) != 1 {
		t.Errorf("id %v, want %v; warnings %v", id, a, r.warned)
	}
	flash.check(t)
	r.reboot()
	if id := r.nodeID(); id != b {
		t.Errorf("after the reboot %v, want %v", id, b)
	}
}

// Flash that cannot be written (read-only, full, not a directory): the
// node runs with its id and says so.
func TestNodeIDFlashUnwritable(t *testing.T) {
	// Not even readable: a file where its directory should be.
	r := newRouter(t)
	r.state = ""
	write(t, filepath.Dir(r.flash), "a file where the directory should be")
	a := r.nodeID()
	if len(r.warned) != 1 || !strings.Contains(r.warned[0].Error(), r.flash) {
		t.Errorf("warnings %v", r.warned)
	}
	if read(t, r.tmpfsFile()) != a {
		t.Errorf("tmpfs not written")
	}
	// Readable (there is no file) but not writable, even for root.
	r = newRouter(t)
	r.flash = "/proc/self/ddhcpd-test/node_id"
	a = r.nodeID()
	if len(r.warned) != 1 || !strings.Contains(r.warned[0].Error(), "save node id to "+r.flash) {
		t.Errorf("warnings %v", r.warned)
	}
	if read(t, r.tmpfsFile()) != a {
		t.Errorf("tmpfs not written")
	}
}

// No flash at all (no -persist, no -node-id-file): tmpfs only, as before.
func TestNodeIDTmpfsAlone(t *testing.T) {
	r := newRouter(t)
	r.flash, r.state = "", ""
	a := r.nodeID()
	if b := r.nodeID(); b != a || len(r.warned) != 0 {
		t.Errorf("restart: %v != %v (%v)", b, a, r.warned)
	}
	r.reboot()
	if b := r.nodeID(); b == a {
		t.Errorf("id survived a reboot without flash")
	}
}

// writeOnce never replaces a file.
func TestWriteOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node_id")
	write(t, path, "theirs\n")
	if err := writeOnce(path, wire.NodeID{1}); err == nil {
		t.Errorf("writeOnce replaced a file")
	}
	if b, _ := os.ReadFile(path); string(b) != "theirs\n" {
		t.Errorf("content %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// C bug 1: the node id was never set, so every node sent zero.
func TestNodeIDNeverZero(t *testing.T) {
	// A source that gives zeros first: the id must still not be zero.
	src := bytes.NewReader(append(make([]byte, 24), 1, 2, 3, 4, 5, 6, 7, 8))
	id, err := NewNodeID(src)
	if err != nil || id.IsZero() {
		t.Fatalf("id %v %v", id, err)
	}
	if _, err := NewNodeID(bytes.NewReader(make([]byte, 1024))); err == nil {
		t.Error("all-zero source accepted")
	}
}
