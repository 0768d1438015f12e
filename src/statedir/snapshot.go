package statedir

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"ddhcpd/src/lease"
)

// Snapshot keeps the leases of the state file between writes, each record
// encoded once, when it changes. The event loop hands over only what
// changed (lease.Table.Changes), and a write costs a copy per record
// rather than a conversion and JSON encoding of the whole table: with
// thousands of leases that encoding was most of the daemon's work besides
// the packets. The file is the one SaveState writes, so LoadState reads it.
// Memory: some 200 bytes per record (its JSON and the map entry).
//
// A Snapshot is not safe for concurrent use: the state writer owns it.
type Snapshot struct {
	// Yield, if set, is called every YieldEvery records that Apply or
	// Save handle: the writer lets the event loop run meanwhile, which
	// on a router's single CPU would otherwise wait for the whole table
	// to be encoded.
	Yield func()

	recs    map[uint32]snapRecord // by IPv4 address
	order   []uint32              // the keys of recs, sorted; stale when reorder is set
	reorder bool
	scratch []byte
}

// YieldEvery is how many records Apply and Save handle between calls of
// Snapshot.Yield: about 0.2 ms of work on a PC, a few on a router.
const YieldEvery = 1024

// step counts one record handled and yields every YieldEvery.
func (s *Snapshot) step(i int) {
	if s.Yield != nil && i%YieldEvery == YieldEvery-1 {
		s.Yield()
	}
}

type snapRecord struct {
	head    string        // the record's JSON up to the remaining time's value
	expires time.Duration // monotonic end of the record's time
}

// Apply brings the snapshot up to date with what lease.Table.Changes
// reported: removed addresses are dropped first, then changed records
// replace their address's record; a full report replaces everything.
func (s *Snapshot) Apply(changed []lease.Lease, removed []netip.Addr, full bool) {
	if s.recs == nil || full {
		s.recs = make(map[uint32]snapRecord, len(changed))
		s.reorder = true
	}
	for _, a := range removed {
		if k, ok := key(a); ok {
			delete(s.recs, k)
			s.reorder = true
		}
	}
	var b []byte
	for i, l := range changed {
		s.step(i)
		k, ok := key(l.Addr)
		if !ok {
			continue // the table holds IPv4 addresses only
		}
		if _, present := s.recs[k]; !present {
			s.reorder = true
		}
		b = appendRecordHead(b[:0], l)
		s.recs[k] = snapRecord{head: string(b), expires: l.Expires}
	}
}

// Len is the number of records.
func (s *Snapshot) Len() int { return len(s.recs) }

func key(a netip.Addr) (uint32, bool) {
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:]), true
}

// Save writes the state file to path atomically with mode 0600, as
// SaveState does: the header fields of st (its Leases are ignored) and the
// snapshot's records, with their remaining time at monotonic time now. It
// streams the file, so a large table is not held in memory twice.
func (s *Snapshot) Save(path string, st State, now time.Duration) error {
	saved, err := json.Marshal(st.SavedAt) // fails for a year JSON cannot hold
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	err = writeFileWith(path, 0o600, func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 64<<10)
		s.write(w, st, saved, now)
		return w.Flush()
	})
	if err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	return nil
}

// write writes the file's content; errors stay in w until its Flush.
func (s *Snapshot) write(w *bufio.Writer, st State, saved []byte, now time.Duration) {
	if s.reorder {
		s.order = s.order[:0]
		for k := range s.recs {
			s.order = append(s.order, k)
		}
		slices.Sort(s.order)
		s.reorder = false
	}
	b := append(s.scratch[:0], `{"version":`...)
	b = strconv.AppendInt(b, StateVersion, 10)
	b = append(b, `,"saved_at":`...)
	b = append(b, saved...)
	b = append(b, `,"node":`...)
	b = appendString(b, st.Node)
	b = append(b, `,"pool":`...)
	b = appendString(b, st.Pool)
	b = append(b, `,"block_size_exp":`...)
	b = strconv.AppendUint(b, uint64(st.SizeExp), 10)
	b = append(b, `,"blocks":`...)
	b = appendBlocks(b, st.Blocks)
	if len(st.Lost) > 0 {
		b = append(b, `,"lost_blocks":`...)
		b = appendBlocks(b, st.Lost)
	}
	b = append(b, `,"leases":[`...)
	w.Write(b)
	for i, k := range s.order {
		s.step(i)
		b = b[:0]
		if i > 0 {
			b = append(b, ',')
		}
		r := s.recs[k]
		b = append(b, r.head...)
		b = appendSeconds(b, r.expires-now)
		b = append(b, '}')
		w.Write(b)
	}
	w.WriteString("]}\n")
	s.scratch = b[:0]
}

// appendRecordHead appends l as a Record (see Records) in JSON, without
// the remaining time's value and the closing brace.
func appendRecordHead(b []byte, l lease.Lease) []byte {
	b = append(b, `{"addr":"`...)
	b = l.Addr.AppendTo(b)
	b = append(b, `","state":`...)
	b = appendString(b, l.State.String())
	if l.Client != "" {
		b = append(b, `,"client":`...)
		b = appendString(b, string(l.Client))
	}
	if len(l.ClientID) > 0 {
		b = append(b, `,"client_id":"`...)
		b = hex.AppendEncode(b, l.ClientID)
		b = append(b, '"')
	}
	if len(l.HW) > 0 {
		// As net.HardwareAddr.String: lower-case hex pairs and colons.
		b = append(b, `,"hw":"`...)
		for i, x := range l.HW {
			if i > 0 {
				b = append(b, ':')
			}
			b = hex.AppendEncode(b, []byte{x})
		}
		b = append(b, '"')
	}
	if l.Hostname != "" {
		b = append(b, `,"hostname":`...)
		b = appendString(b, l.Hostname)
	}
	if l.Granted != 0 {
		b = append(b, `,"granted":`...)
		b = appendSeconds(b, l.Granted)
	}
	return append(b, `,"remaining":`...)
}

// appendSeconds appends d in seconds as a JSON number.
func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', -1, 64)
}

// appendString appends s as a JSON string, as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Escapes, HTML-safe characters, invalid UTF-8: rare
			// (host names, client keys are hex).
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendBlocks(b []byte, blocks []uint32) []byte {
	if blocks == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range blocks {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return append(b, ']')
}
