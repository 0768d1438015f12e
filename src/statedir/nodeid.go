// Package statedir keeps the daemon's small persistent files: the node id
// now, the lease and block state later. Files are written atomically (write,
// fsync, rename) with mode 0600 and read defensively: a damaged file is set
// aside and reported, never fatal.
package statedir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"ddhcpd/src/wire"
)

// NodeIDFile is the name of the node id file inside the state directory.
const NodeIDFile = "node_id"

// NodeID returns the node id kept in dir, making and saving a new random one
// when there is none. A damaged file is renamed to node_id.bad and replaced,
// and warn is told what was wrong.
func NodeID(dir string, random io.Reader, warn func(error)) (wire.NodeID, error) {
	var id wire.NodeID
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return id, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, NodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, perr := wire.ParseNodeID(string(bytes.TrimSpace(b)))
		if perr == nil && !id.IsZero() {
			return id, nil
		}
		if perr == nil {
			perr = errors.New("node id is zero")
		}
		if err := os.Rename(path, path+".bad"); err != nil {
			return id, fmt.Errorf("set aside damaged node id %s: %w", path, err)
		}
		warn(fmt.Errorf("%s: %w; set aside as %s.bad and made a new id", path, perr, NodeIDFile))
	case !errors.Is(err, fs.ErrNotExist):
		return id, fmt.Errorf("read node id: %w", err)
	}
	if id, err = NewNodeID(random); err != nil {
		return id, err
	}
	if err := WriteFile(path, []byte(id.String()+"\n")); err != nil {
		return id, fmt.Errorf("save node id: %w", err)
	}
	return id, nil
}

// NewNodeID draws a random id that is never zero (C nodes send zero).
func NewNodeID(random io.Reader) (wire.NodeID, error) {
	var id wire.NodeID
	for range 16 {
		if _, err := io.ReadFull(random, id[:]); err != nil {
			return id, fmt.Errorf("random node id: %w", err)
		}
		if !id.IsZero() {
			return id, nil
		}
	}
	return id, errors.New("random node id: the random source keeps returning zeros")
}

// WriteFile replaces path atomically with data, mode 0600: a crash leaves
// either the old or the new file, never a torn one.
func WriteFile(path string, data []byte) error {
	return writeFileWith(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileWith is WriteFile with the content written by write, so a large
// file need not be held in memory.
func writeFileWith(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Persist the rename itself.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
