package statedir

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

func TestNodeIDPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	var warned []error
	warn := func(err error) { warned = append(warned, err) }
	a, err := NodeID(dir, rand.Reader, warn)
	if err != nil || len(warned) != 0 || a.IsZero() {
		t.Fatalf("first start: %v %v %v", a, warned, err)
	}
	b, err := NodeID(dir, rand.Reader, warn)
	if err != nil || b != a {
		t.Fatalf("restart: %v != %v (%v)", b, a, err)
	}
	st, err := os.Stat(filepath.Join(dir, NodeIDFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v", st.Mode(), err)
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

func TestDamagedNodeIDReplaced(t *testing.T) {
	for _, content := range []string{"garbage\n", "0000000000000000\n", ""} {
		dir := t.TempDir()
		path := filepath.Join(dir, NodeIDFile)
		os.WriteFile(path, []byte(content), 0o600)
		var warned []error
		id, err := NodeID(dir, rand.Reader, func(err error) { warned = append(warned, err) })
		if err != nil || len(warned) != 1 || id.IsZero() {
			t.Errorf("%q: id %v warnings %v err %v", content, id, warned, err)
		}
		if b, _ := os.ReadFile(path + ".bad"); string(b) != content {
			t.Errorf("%q: damaged file not set aside", content)
		}
	}
}
