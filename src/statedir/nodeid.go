// Package statedir keeps the daemon's small persistent files: the node id
// and the lease and block state. Files are written atomically (write,
// fsync, rename) with mode 0600 and read defensively: a damaged file is set
// aside and reported, never fatal.
package statedir

import (
	"bytes"
	"encoding/json"
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

// IDFiles says where a node keeps its id.
type IDFiles struct {
	// Dir is the state directory (tmpfs on a router: gone after a
	// reboot); its node_id is read first and written whenever it is
	// missing or damaged.
	Dir string
	// Flash is a copy on flash that survives reboots ("" for none). It is
	// written once, when it does not exist (or was damaged), and never
	// rewritten: a valid file is only read.
	Flash string
	// Persist is the state copy on flash (-persist, "" for none); its
	// "node" is the id when neither Dir nor Flash has one, so a router
	// that kept its state on flash before it had Flash keeps its id.
	Persist string
}

// NodeID returns the node id: the one in f.Dir, else the one in f.Flash,
// else the one in the f.Persist state file, else a new random one. It
// writes the id to f.Dir when that file is missing or damaged, and to
// f.Flash when that one is. A damaged id file is renamed to NAME.bad and
// warn is told; so is an f.Flash that holds another id than f.Dir (the
// node uses the f.Dir one until the next reboot), and a failure to write
// f.Flash, which is not fatal: the node runs with the id it has.
func NodeID(f IDFiles, random io.Reader, warn func(error)) (wire.NodeID, error) {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return wire.NodeID{}, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(f.Dir, NodeIDFile)
	id, ok, err := readNodeID(path, warn)
	if err != nil {
		return id, err
	}
	var flashID wire.NodeID
	flashOK := false
	if f.Flash != "" {
		if flashID, flashOK, err = readNodeID(f.Flash, warn); err != nil {
			// Unreadable flash (an I/O error, a directory): run without it.
			warn(err)
			f.Flash = ""
		}
	}
	haveDir := ok
	switch {
	case ok:
	case flashOK:
		id, ok = flashID, true
	case f.Persist != "":
		id, err = persistedNodeID(f.Persist)
		switch {
		case err == nil:
			ok = true
		case !errors.Is(err, fs.ErrNotExist):
			warn(fmt.Errorf("node id from %s: %w", f.Persist, err))
		}
	}
	if !ok {
		if id, err = NewNodeID(random); err != nil {
			return id, err
		}
	}
	if !haveDir {
		if err := WriteFile(path, []byte(id.String()+"\n")); err != nil {
			return id, fmt.Errorf("save node id: %w", err)
		}
	}
	switch {
	case f.Flash == "":
	case !flashOK:
		if err := writeOnce(f.Flash, id); err != nil {
			warn(fmt.Errorf("save node id to %s: %w (the id lasts until the next reboot)", f.Flash, err))
		}
	case flashID != id:
		warn(fmt.Errorf("%s holds node id %v, %s holds %v: using %v until the next reboot, then %v (%s is never rewritten)",
			f.Flash, flashID, path, id, id, flashID, f.Flash))
	}
	return id, nil
}

// readNodeID reads an id file. A missing file is no id; a damaged one is
// renamed to PATH.bad and reported to warn; err is for a file that cannot
// be read or set aside.
func readNodeID(path string, warn func(error)) (id wire.NodeID, ok bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return id, false, nil
	case err != nil:
		return id, false, fmt.Errorf("read node id: %w", err)
	}
	id, perr := wire.ParseNodeID(string(bytes.TrimSpace(b)))
	if perr == nil && !id.IsZero() {
		return id, true, nil
	}
	if perr == nil {
		perr = errors.New("node id is zero")
	}
	if err := os.Rename(path, path+".bad"); err != nil {
		return wire.NodeID{}, false, fmt.Errorf("set aside damaged node id %s: %w", path, err)
	}
	warn(fmt.Errorf("%s: %w; set aside as %s.bad", path, perr, filepath.Base(path)))
	return wire.NodeID{}, false, nil
}

// writeOnce creates path with id, atomically; it never replaces a file
// (another writer's id wins).
func writeOnce(path string, id wire.NodeID) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(id.String() + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// A hard link fails if path exists, where a rename would replace it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// A file system without hard links: create it exclusively.
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = out.WriteString(id.String() + "\n")
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// persistedNodeID reads the "node" of a state file (SaveState, Snapshot)
// without reading the rest. Unlike LoadState it never sets the file aside:
// the daemon reads it again for the leases.
func persistedNodeID(path string) (wire.NodeID, error) {
	var id wire.NodeID
	f, err := os.Open(path)
	if err != nil {
		return id, err
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, MaxStateFile))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return id, errors.New("not a state file")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return id, fmt.Errorf("not a state file: %w", err)
		}
		if t != "node" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return id, fmt.Errorf("not a state file: %w", err)
			}
			continue
		}
		var s string
		if err := dec.Decode(&s); err != nil {
			return id, fmt.Errorf("node: %w", err)
		}
		if id, err = wire.ParseNodeID(s); err != nil {
			return id, err
		}
		if id.IsZero() {
			return id, errors.New("node id is zero")
		}
		return id, nil
	}
	return id, errors.New("no node id in it")
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
	return writeFileWith(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileWith is WriteFile with the content written by write, so a large
// file need not be held in memory.
func writeFileWith(path string, mode os.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
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
