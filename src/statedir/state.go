package statedir

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"time"

	"ddhcpd/src/lease"
)

// StateVersion is the version of the state file format.
const StateVersion = 1

// MaxStateFile bounds what is read: a file larger than this is damaged.
const MaxStateFile = 16 << 20

// State is what survives a restart: the blocks we owned and the leases.
// Times are remaining durations at SavedAt (wall clock), since monotonic time
// does not survive a restart.
type State struct {
	Version int       `json:"version"`
	SavedAt time.Time `json:"saved_at"`
	Node    string    `json:"node"`
	Pool    string    `json:"pool"`
	SizeExp uint8     `json:"block_size_exp"`
	Blocks  []uint32  `json:"blocks"`
	Lost    []uint32  `json:"lost_blocks,omitempty"`
	Leases  []Record  `json:"leases"`
}

// Record is one lease in the state file.
type Record struct {
	Addr      string  `json:"addr"`
	State     string  `json:"state"`
	Client    string  `json:"client,omitempty"`
	ClientID  string  `json:"client_id,omitempty"` // hex
	HW        string  `json:"hw,omitempty"`
	Hostname  string  `json:"hostname,omitempty"`
	Remaining float64 `json:"remaining"` // seconds left at SavedAt
	Granted   float64 `json:"granted,omitempty"`
}

// Records converts lease records for saving at monotonic time now.
func Records(now time.Duration, ls []lease.Lease) []Record {
	out := make([]Record, 0, len(ls))
	for _, l := range ls {
		r := Record{
			Addr:      l.Addr.String(),
			State:     l.State.String(),
			Client:    string(l.Client),
			Hostname:  l.Hostname,
			Remaining: (l.Expires - now).Seconds(),
			Granted:   l.Granted.Seconds(),
		}
		if len(l.ClientID) > 0 {
			r.ClientID = hex.EncodeToString(l.ClientID)
		}
		if len(l.HW) > 0 {
			r.HW = l.HW.String()
		}
		out = append(out, r)
	}
	return out
}

// Leases converts saved records back for monotonic time now, given how long
// ago (wall clock) they were saved. Records that are damaged or whose time
// ran out meanwhile are left out and counted.
func Leases(now, elapsed time.Duration, rs []Record) (out []lease.Lease, bad int) {
	states := map[string]lease.State{}
	for s := lease.Offered; s <= lease.Reclaimed; s++ {
		states[s.String()] = s
	}
	for _, r := range rs {
		a, err := netip.ParseAddr(r.Addr)
		st, ok := states[r.State]
		if err != nil || !a.Is4() || !ok || r.Remaining != r.Remaining || r.Remaining > 1e9 || r.Remaining < -1e9 {
			bad++
			continue
		}
		l := lease.Lease{
			Addr:     a,
			State:    st,
			Client:   lease.ClientKey(r.Client),
			Hostname: r.Hostname,
			Expires:  now + time.Duration(r.Remaining*float64(time.Second)) - elapsed,
			Granted:  time.Duration(r.Granted * float64(time.Second)),
		}
		if r.ClientID != "" {
			if l.ClientID, err = hex.DecodeString(r.ClientID); err != nil {
				bad++
				continue
			}
		}
		if r.HW != "" {
			if l.HW, err = net.ParseMAC(r.HW); err != nil {
				bad++
				continue
			}
		}
		if l.Expires <= now && st != lease.Assigned {
			continue // an offer, probation or affinity that ran out
		}
		out = append(out, l)
	}
	return out, bad
}

// SaveState writes the state file atomically with mode 0600.
func SaveState(path string, s State) error {
	s.Version = StateVersion
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	return nil
}

// ErrNoState means there is no state file yet.
var ErrNoState = errors.New("no state file")

// LoadState reads a state file defensively. A file that cannot be read as a
// state of this version is renamed to PATH.bad and reported; the caller
// starts empty. It never panics on any content.
func LoadState(path string) (State, error) {
	var s State
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, ErrNoState
	}
	if err != nil {
		return s, fmt.Errorf("read state: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s, fmt.Errorf("read state: %w", err)
	}
	var bad error
	if st.Size() > MaxStateFile {
		bad = fmt.Errorf("%d bytes, more than %d", st.Size(), MaxStateFile)
	} else if err := json.NewDecoder(f).Decode(&s); err != nil {
		bad = err
	} else if s.Version != StateVersion {
		bad = fmt.Errorf("version %d, want %d", s.Version, StateVersion)
	}
	if bad != nil {
		os.Rename(path, path+".bad")
		return State{}, fmt.Errorf("state file %s is damaged (%v); set aside as %s.bad, starting without it", path, bad, path)
	}
	return s, nil
}
