package overlay

import (
	"hash/fnv"
	"time"

	"ddhcpd/src/wire"
)

// Dedup remembers the claim messages a node has relayed, so that an INQUIRE
// or UPDATECLAIM that reaches it twice (a copy, or over two tree edges while
// the tree changes) is passed on once. A key is remembered for Window from
// its first sighting, and at most Max keys are kept: the oldest go first, so
// memory stays bounded whatever arrives.
//
// The window must be shorter than the period at which a node repeats the
// same message (the claim refresh, 15 s by default), or the repetition is
// taken for a copy.
type Dedup struct {
	window time.Duration
	max    int
	seen   map[uint64]time.Duration
	fifo   []dedupEntry // in order of first sighting
	head   int
}

type dedupEntry struct {
	key uint64
	at  time.Duration
}

// Dedup defaults.
const (
	DefaultDedupWindow = 5 * time.Second
	DefaultDedupMax    = 4096
)

// NewDedup makes a Dedup; zero or negative arguments take the defaults.
func NewDedup(window time.Duration, max int) *Dedup {
	if window <= 0 {
		window = DefaultDedupWindow
	}
	if max <= 0 {
		max = DefaultDedupMax
	}
	return &Dedup{window: window, max: max, seen: make(map[uint64]time.Duration)}
}

// Seen reports whether key was seen within the window before now, and
// records it if not.
func (d *Dedup) Seen(now time.Duration, key uint64) bool {
	d.expire(now)
	if _, ok := d.seen[key]; ok {
		return true
	}
	for len(d.seen) >= d.max {
		d.pop()
	}
	d.seen[key] = now
	d.fifo = append(d.fifo, dedupEntry{key, now})
	return false
}

// Len is the number of keys remembered.
func (d *Dedup) Len() int { return len(d.seen) }

func (d *Dedup) expire(now time.Duration) {
	for d.head < len(d.fifo) && now-d.fifo[d.head].at >= d.window {
		d.pop()
	}
}

func (d *Dedup) pop() {
	e := d.fifo[d.head]
	d.fifo[d.head] = dedupEntry{}
	d.head++
	if at, ok := d.seen[e.key]; ok && at == e.at {
		delete(d.seen, e.key)
	}
	// Reuse the slice once the dead front is half of it.
	if d.head > 64 && d.head*2 >= len(d.fifo) {
		d.fifo = append(d.fifo[:0], d.fifo[d.head:]...)
		d.head = 0
	}
}

// DedupKey is the key of a claim message: its original sender, its command
// and its payload (FNV-1a, 64 bits).
func DedupKey(sender wire.NodeID, cmd uint8, payload []byte) uint64 {
	h := fnv.New64a()
	h.Write(sender[:])
	h.Write([]byte{cmd})
	h.Write(payload)
	return h.Sum64()
}
