// Package lease keeps the leases of the blocks this node serves: who holds
// which address, in which state, until when. It is pure: time is the
// monotonic time.Duration the caller passes in.
//
// States follow Kea's lease life cycle: an address is offered (held for the
// offer lifetime), assigned, expired once its lifetime passes (still held
// until reclaimed), declined (on probation), released or reclaimed. Released
// and reclaimed records stay as affinity, so a returning client gets its old
// address back, but the address is free for anybody.
//
// Memory is bounded by the addresses of the blocks served: at most one record
// per address.
package lease

import (
	"cmp"
	"container/heap"
	"encoding/hex"
	"hash/fnv"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"time"

	"ddhcpd/src/pool"
)

// State of a lease record.
type State uint8

// Lease states.
const (
	Offered   State = iota + 1 // held for a client between OFFER and REQUEST
	Assigned                   // leased; expired once Expires has passed
	Declined                   // a client found the address in use; on probation until Expires
	Released                   // given back by its client; free, kept for affinity
	Reclaimed                  // expired and reclaimed; free, kept for affinity
)

var stateNames = [...]string{"", "offered", "assigned", "declined", "released", "reclaimed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// ClientKey identifies a client: its client identifier (option 61) when it
// sends one, else its hardware address.
type ClientKey string

// KeyOf returns the key for a client.
func KeyOf(clientID []byte, chaddr net.HardwareAddr) ClientKey {
	if len(clientID) > 0 {
		return ClientKey("id:" + hex.EncodeToString(clientID))
	}
	return ClientKey("hw:" + hex.EncodeToString(chaddr))
}

// Client is what a request tells about its sender.
type Client struct {
	Key      ClientKey
	ID       []byte           // option 61, may be empty
	HW       net.HardwareAddr // chaddr
	Hostname string
}

// Lease is one address's record.
type Lease struct {
	Addr     netip.Addr
	Client   ClientKey // empty for declined addresses
	ClientID []byte
	HW       net.HardwareAddr
	Hostname string
	State    State
	Expires  time.Duration // end of the offer, lease or probation
	Granted  time.Duration // lease time last granted
	Xid      uint32        // of the offer

	heapIdx int
	hwNext  *Lease // next record bound to a client with the same HW (Table.byHW)
	dirty   bool   // listed in Table.changed
	gone    bool   // removed from the table
}

// Holds reports whether the address is unavailable to other clients at now:
// offered or assigned and not yet reclaimed, or declined and on probation.
// An assigned lease past its end still holds the address until it is
// reclaimed, so reclamation is the single place where addresses come back.
func (l *Lease) Holds() bool {
	switch l.State {
	case Offered, Assigned, Declined:
		return true
	}
	return false
}

// Expired reports whether the lease's time has run out.
func (l *Lease) Expired(now time.Duration) bool { return l.Expires <= now }

// belongs is Kea's rule for matching a lease to a client: same client id, or
// the same hardware address when either side has no client id.
func (l *Lease) belongs(c Client) bool {
	if l.Client == c.Key {
		return true
	}
	if (len(l.ClientID) == 0 || len(c.ID) == 0) && len(l.HW) > 0 && slices.Equal(l.HW, c.HW) {
		return true
	}
	return false
}

type block struct {
	idx  uint32
	lost bool // another node took it: no new leases, existing ones forwarded
	// Bitmaps of the block's addresses (bit i is address i), so Pick finds
	// the candidates of a block with a few word operations instead of a
	// map lookup per address. Blocks have at most 128 addresses.
	rec      bitmap // a record exists
	held     bitmap // the record holds the address (Lease.Holds)
	reserved bitmap // reserved in the pool: never leased
}

// busy is the number of addresses held (see Lease.Holds).
func (b *block) busy() int { return b.held.count() }

// bitmap is a set of address positions in a block.
type bitmap [2]uint64

func (m *bitmap) set(i int, on bool) {
	if on {
		m[i>>6] |= 1 << (i & 63)
	} else {
		m[i>>6] &^= 1 << (i & 63)
	}
}

func (m bitmap) has(i int) bool { return m[i>>6]&(1<<(i&63)) != 0 }

func (m bitmap) count() int { return bits.OnesCount64(m[0]) + bits.OnesCount64(m[1]) }

// next is the first position at or after i in m, or -1.
func (m bitmap) next(i int) int {
	for w := i >> 6; w < len(m); w++ {
		word := m[w]
		if w == i>>6 {
			word &= ^uint64(0) << (i & 63)
		}
		if word != 0 {
			return w<<6 | bits.TrailingZeros64(word)
		}
	}
	return -1
}

// andNot is m without the positions of o.
func (m bitmap) andNot(o bitmap) bitmap { return bitmap{m[0] &^ o[0], m[1] &^ o[1]} }

// firstBits is the set of positions 0..n-1.
func firstBits(n int) bitmap {
	var m bitmap
	for i := range n {
		m.set(i, true)
	}
	return m
}

// Table is the lease table of one node.
type Table struct {
	pool     *pool.Pool
	blocks   map[uint32]*block
	live     []*block // blocks we serve (not lost), by index; rebuilt when blocks change
	byAddr   map[netip.Addr]*Lease
	byClient map[ClientKey]*Lease
	// byHW chains the records of byClient by hardware address (through
	// Lease.hwNext), so a client that changed or dropped its client
	// identifier is matched to its record without a walk over all records:
	// every new client takes that path.
	byHW     map[string]*Lease
	hosts    map[ClientKey]netip.Addr // host reservations
	hostAddr map[netip.Addr]ClientKey
	timers   leaseHeap // every record, by Expires
	// Records changed since the last Changes call, for the state file
	// writer; tracking starts with the first call.
	changed  []*Lease
	tracking bool
	allDirty bool // too many changes went uncollected: the next Changes is full
	// HoldReclaimed is how long released and reclaimed records are kept
	// for affinity.
	HoldReclaimed time.Duration
}

// NewTable makes an empty table for pool p.
func NewTable(p *pool.Pool) *Table {
	return &Table{
		pool:          p,
		blocks:        make(map[uint32]*block),
		byAddr:        make(map[netip.Addr]*Lease),
		byClient:      make(map[ClientKey]*Lease),
		byHW:          make(map[string]*Lease),
		hosts:         make(map[ClientKey]netip.Addr),
		hostAddr:      make(map[netip.Addr]ClientKey),
		HoldReclaimed: time.Hour,
	}
}

// Pool returns the pool of the table.
func (t *Table) Pool() *pool.Pool { return t.pool }

// Reserve adds a host reservation: client key -> address.
func (t *Table) Reserve(key ClientKey, a netip.Addr) {
	if old, ok := t.hosts[key]; ok {
		delete(t.hostAddr, old)
	}
	t.hosts[key] = a
	t.hostAddr[a] = key
}

// Reservation returns the address reserved for a client.
func (t *Table) Reservation(key ClientKey) (netip.Addr, bool) {
	a, ok := t.hosts[key]
	return a, ok
}

// ReservedFor reports whom an address is reserved for.
func (t *Table) ReservedFor(a netip.Addr) (ClientKey, bool) {
	k, ok := t.hostAddr[a]
	return k, ok
}

// AddBlock starts serving a block (it became ours).
func (t *Table) AddBlock(idx uint32) {
	defer t.rebuildLive()
	if b := t.blocks[idx]; b != nil {
		b.lost = false
		return
	}
	b := &block{idx: idx}
	t.blocks[idx] = b
	for i := range t.pool.BlockSize() {
		a := t.pool.Addr(idx, i)
		b.reserved.set(i, t.pool.Reserved(a))
		// Records restored before the block was ours count again.
		if l := t.byAddr[a]; l != nil {
			b.rec.set(i, true)
			b.held.set(i, l.Holds())
		}
	}
}

// LoseBlock marks a block as taken by another node: its leases stay, so
// their renewals can be forwarded, but nothing new is handed out from it.
func (t *Table) LoseBlock(idx uint32) {
	if b := t.blocks[idx]; b != nil {
		b.lost = true
	}
	t.rebuildLive()
}

// rebuildLive keeps the sorted list of served blocks that Pick walks, so a
// new client costs no allocation or sort (blocks change rarely).
func (t *Table) rebuildLive() {
	t.live = t.live[:0]
	for _, b := range t.blocks {
		if !b.lost {
			t.live = append(t.live, b)
		}
	}
	slices.SortFunc(t.live, func(a, b *block) int { return cmp.Compare(a.idx, b.idx) })
}

// DropBlock forgets a block and its records (a released needless block).
func (t *Table) DropBlock(idx uint32) {
	if t.blocks[idx] == nil {
		return
	}
	for i := range t.pool.BlockSize() {
		if l := t.byAddr[t.pool.Addr(idx, i)]; l != nil {
			t.remove(l)
		}
	}
	delete(t.blocks, idx)
	t.rebuildLive()
}

// Serving reports whether idx is one of our live (not lost) blocks.
func (t *Table) Serving(idx uint32) bool {
	b := t.blocks[idx]
	return b != nil && !b.lost
}

// Known reports whether the table holds idx at all (ours or lost).
func (t *Table) Known(idx uint32) bool { return t.blocks[idx] != nil }

// Blocks lists the blocks in the table by index, with whether each is lost.
func (t *Table) Blocks() (idx []uint32, lost []bool) {
	for i := range t.blocks {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		lost = append(lost, t.blocks[i].lost)
	}
	return idx, lost
}

// Free is the number of addresses of block idx that can still be handed out
// (claim.Usage). Reserved addresses and addresses reserved for a host do not
// count.
func (t *Table) Free(idx uint32) int {
	b := t.blocks[idx]
	if b == nil || b.lost {
		return 0
	}
	return t.pool.Usable(idx) - b.busy() - t.hostsIn(idx)
}

func (t *Table) hostsIn(idx uint32) int {
	if len(t.hostAddr) == 0 {
		return 0
	}
	n := 0
	for i := range t.pool.BlockSize() {
		a := t.pool.Addr(idx, i)
		if _, ok := t.hostAddr[a]; ok && !t.pool.Reserved(a) {
			if l := t.byAddr[a]; l == nil || !l.Holds() {
				n++
			}
		}
	}
	return n
}

// FreeTotal is the number of addresses that can be handed out in all our
// live blocks.
func (t *Table) FreeTotal() int {
	n := 0
	for idx := range t.blocks {
		n += t.Free(idx)
	}
	return n
}

// Active reports whether any address of block idx is held (claim.Usage).
func (t *Table) Active(idx uint32) bool {
	b := t.blocks[idx]
	return b != nil && b.busy() > 0
}

// At returns the record of address a, if any.
func (t *Table) At(a netip.Addr) *Lease { return t.byAddr[a] }

// Current returns the client's lease record (any state): by client key
// first, then by hardware address among records that belong to it.
func (t *Table) Current(c Client) *Lease {
	if l := t.byClient[c.Key]; l != nil {
		return l
	}
	if len(c.HW) == 0 {
		return nil
	}
	// A client that sent a client id once and not now (or the reverse):
	// only records with its hardware address can belong to it. Of several,
	// the one bound last wins.
	for l := t.byHW[string(c.HW)]; l != nil; l = l.hwNext {
		if l.belongs(c) {
			return l
		}
	}
	return nil
}

// AvailableFor reports whether address a may be given to client c now: it
// lies in one of our live blocks, is not reserved (nor reserved for another
// host), and is not held by another client.
func (t *Table) AvailableFor(a netip.Addr, c Client) bool {
	idx, ok := t.pool.Block(a)
	if !ok || !t.Serving(idx) || t.pool.Reserved(a) {
		return false
	}
	if k, ok := t.hostAddr[a]; ok && k != c.Key {
		return false
	}
	l := t.byAddr[a]
	return l == nil || !l.Holds() || l.belongs(c)
}

// Pick chooses an address for a new client: its stable "home" address (a
// hash of its key into the pool) when that is free here, so a client tends to
// get the same address on any node serving that block; else the first free
// address probing our blocks from a hash-chosen start. Free and never-used
// addresses are preferred over released or reclaimed ones that another
// client may come back for.
//
// The probe order is fixed by the hash: blocks from a hash-chosen one on, in
// each block the addresses from a hash-chosen offset on, wrapping. The
// blocks' bitmaps give the candidates, so a probe costs a map lookup only
// for an address that can be taken, and a full table costs a few word
// operations per block.
func (t *Table) Pick(c Client) (netip.Addr, bool) {
	h := fnv.New64a()
	h.Write([]byte(c.Key))
	sum := h.Sum64()
	size := t.pool.BlockSize()
	home := t.pool.Addr(uint32(sum%uint64(t.pool.NumBlocks())), int((sum>>32)%uint64(size)))
	if t.fresh(home, c) {
		return home, true
	}
	live := t.live
	if len(live) == 0 {
		return netip.Addr{}, false
	}
	start, off := int(sum%uint64(len(live))), int((sum>>32)%uint64(size))
	own := t.belonging(c)
	all := firstBits(size)
	// A fresh address has no record, or one of the client's own.
	if a, ok := t.probe(live, start, off, own, func(b *block) bitmap { return all.andNot(b.rec) },
		func(a netip.Addr) bool { return t.fresh(a, c) }); ok {
		return a, true
	}
	// Else the first available one: not held by another client.
	return t.probe(live, start, off, own, func(b *block) bitmap { return all.andNot(b.held) },
		func(a netip.Addr) bool { return t.AvailableFor(a, c) })
}

// probe walks the blocks from live[start] and each block's addresses from
// off, wrapping, and returns the first address among the candidates of its
// block (cand, the client's own records and no reserved address) that ok
// accepts.
func (t *Table) probe(live []*block, start, off int, own []netip.Addr, cand func(*block) bitmap, ok func(netip.Addr) bool) (netip.Addr, bool) {
	for i := range live {
		b := live[(start+i)%len(live)]
		m := cand(b)
		for _, a := range own {
			if idx, in := t.pool.Block(a); in && idx == b.idx {
				m.set(t.pool.Index(a), true)
			}
		}
		m = m.andNot(b.reserved)
		for p := m.next(off); p >= 0; p = m.next(p + 1) {
			if a := t.pool.Addr(b.idx, p); ok(a) {
				return a, true
			}
		}
		for p := m.next(0); p >= 0 && p < off; p = m.next(p + 1) {
			if a := t.pool.Addr(b.idx, p); ok(a) {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// belonging lists the addresses of the records that belong to c (see
// Lease.belongs): its own, and those of its hardware address when one side
// has no client id. Records without a client carry no identity, so these
// are all.
func (t *Table) belonging(c Client) []netip.Addr {
	var own []netip.Addr
	if l := t.byClient[c.Key]; l != nil {
		own = append(own, l.Addr)
	}
	if len(c.HW) > 0 {
		for l := t.byHW[string(c.HW)]; l != nil; l = l.hwNext {
			if l.Client != c.Key && l.belongs(c) {
				own = append(own, l.Addr)
			}
		}
	}
	return own
}

// fresh reports whether a is available and carries no other client's affinity.
func (t *Table) fresh(a netip.Addr, c Client) bool {
	if !t.AvailableFor(a, c) {
		return false
	}
	l := t.byAddr[a]
	return l == nil || l.belongs(c)
}

// Offer holds address a for client c until now+hold.
func (t *Table) Offer(now time.Duration, c Client, a netip.Addr, xid uint32, hold time.Duration) *Lease {
	l := t.claimAddr(c, a)
	if l.State == Assigned && !l.Expired(now) {
		// Offering a client its own live lease changes nothing.
		return l
	}
	t.setState(l, Offered)
	l.Xid = xid
	t.setExpiry(l, now+hold)
	return l
}

// Assign leases a to c for d. Any other record of the client is released:
// one lease per client.
func (t *Table) Assign(now time.Duration, c Client, a netip.Addr, d time.Duration) *Lease {
	l := t.claimAddr(c, a)
	t.setState(l, Assigned)
	l.Granted = d
	t.setExpiry(l, now+d)
	return l
}

// claimAddr returns a's record bound to client c, creating it, moving the
// client off any other address, and taking the address from a former
// client's affinity.
func (t *Table) claimAddr(c Client, a netip.Addr) *Lease {
	if old := t.Current(c); old != nil && old.Addr != a {
		// One lease per client (Kea 35): the old address is freed and
		// no longer remembers the client.
		if old.Holds() && old.State != Declined {
			t.setState(old, Released)
		}
		t.unbind(old)
		old.Client, old.ClientID, old.HW, old.Hostname = "", nil, nil, ""
		t.touch(old)
	}
	l := t.byAddr[a]
	if l == nil {
		l = &Lease{Addr: a, heapIdx: -1}
		t.add(l)
	}
	t.touch(l)
	if l.Client != c.Key || !slices.Equal(l.HW, c.HW) {
		t.unbind(l)
		l.Client, l.HW = c.Key, slices.Clone(c.HW)
		t.bind(l)
	}
	if !slices.Equal(l.ClientID, c.ID) {
		l.ClientID = slices.Clone(c.ID)
	}
	if c.Hostname != "" {
		l.Hostname = c.Hostname
	}
	return l
}

// bind enters a record in its client's indexes.
func (t *Table) bind(l *Lease) {
	t.byClient[l.Client] = l
	if len(l.HW) > 0 {
		k := string(l.HW)
		l.hwNext = t.byHW[k]
		t.byHW[k] = l
	}
}

// unbind removes a record from its client's indexes (the record stays).
func (t *Table) unbind(l *Lease) {
	if l.Client == "" || t.byClient[l.Client] != l {
		return
	}
	delete(t.byClient, l.Client)
	if len(l.HW) == 0 {
		return
	}
	// The chain holds the records of one hardware address: one, or a few
	// for a client that changed its client identifier.
	k := string(l.HW)
	head := t.byHW[k]
	if head == l {
		if l.hwNext == nil {
			delete(t.byHW, k)
		} else {
			t.byHW[k] = l.hwNext
		}
	} else {
		for p := head; p != nil; p = p.hwNext {
			if p.hwNext == l {
				p.hwNext = l.hwNext
				break
			}
		}
	}
	l.hwNext = nil
}

// Release frees c's lease on a (RELEASE). It reports whether the lease
// existed and belonged to c.
func (t *Table) Release(now time.Duration, c Client, a netip.Addr) bool {
	l := t.byAddr[a]
	if l == nil || !l.belongs(c) || (l.State != Assigned && l.State != Offered) {
		return false
	}
	t.setState(l, Released)
	t.setExpiry(l, now+t.HoldReclaimed)
	return true
}

// Decline puts a on probation for d after c reported it in use (DECLINE). Only
// the client holding an unexpired lease on a can decline it, so a client
// cannot drain the pool with declines.
func (t *Table) Decline(now time.Duration, c Client, a netip.Addr, d time.Duration) bool {
	l := t.byAddr[a]
	if l == nil || !l.belongs(c) || (l.State != Assigned && l.State != Offered) || l.Expired(now) {
		return false
	}
	t.unbind(l)
	l.Client, l.ClientID, l.HW, l.Hostname = "", nil, nil, ""
	t.touch(l)
	t.setState(l, Declined)
	t.setExpiry(l, now+d)
	return true
}

// CancelOffer frees an address offered to c (c chose another server).
func (t *Table) CancelOffer(c Client) bool {
	l := t.Current(c)
	if l == nil || l.State != Offered {
		return false
	}
	t.remove(l)
	return true
}

// Reclaim processes at most max records whose time has run out: expired
// offers are dropped, expired assignments become reclaimed (free, kept for
// affinity), declined addresses leave probation, and affinity records past
// the hold time are dropped. It returns the assignments it reclaimed.
func (t *Table) Reclaim(now time.Duration, max int) []Lease {
	var out []Lease
	for n := 0; n < max && len(t.timers) > 0 && t.timers[0].Expires <= now; n++ {
		l := t.timers[0]
		switch l.State {
		case Assigned:
			t.setState(l, Reclaimed)
			t.setExpiry(l, now+t.HoldReclaimed)
			out = append(out, export(l))
		default: // offers, probation, affinity records
			t.remove(l)
		}
	}
	return out
}

// NextExpiry is when Reclaim next has work, and false if never.
func (t *Table) NextExpiry() (time.Duration, bool) {
	if len(t.timers) == 0 {
		return 0, false
	}
	return t.timers[0].Expires, true
}

// Insert puts a record back (from the state file). Records outside the
// pool, on reserved addresses, or for an address or client already present
// are refused.
func (t *Table) Insert(l Lease) bool {
	if !t.pool.Contains(l.Addr) || t.pool.Reserved(l.Addr) || t.byAddr[l.Addr] != nil || l.State < Offered || l.State > Reclaimed {
		return false
	}
	if l.Client != "" && t.byClient[l.Client] != nil {
		return false
	}
	rec := l
	rec.heapIdx, rec.hwNext, rec.dirty, rec.gone = -1, nil, false, false
	rec.State = 0
	if rec.Client == "" {
		// A record without a client carries no identity, as Decline
		// leaves it: nobody's hardware address matches it.
		rec.ClientID, rec.HW, rec.Hostname = nil, nil, ""
	}
	t.add(&rec)
	t.touch(&rec)
	if rec.Client != "" {
		t.bind(&rec)
	}
	t.setState(&rec, l.State)
	t.setExpiry(&rec, l.Expires)
	return true
}

// Leases returns a copy of every record, by address.
func (t *Table) Leases() []Lease {
	out := make([]Lease, 0, len(t.byAddr))
	for _, l := range t.byAddr {
		out = append(out, export(l))
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Len is the number of records.
func (t *Table) Len() int { return len(t.byAddr) }

// add enters a new record.
func (t *Table) add(l *Lease) {
	t.byAddr[l.Addr] = l
	if b, i := t.blockAt(l.Addr); b != nil {
		b.rec.set(i, true)
	}
}

// remove drops a record; setState lists it, so Changes reports it gone.
func (t *Table) remove(l *Lease) {
	t.setState(l, 0)
	l.gone = true
	t.unbind(l)
	if l.heapIdx >= 0 {
		heap.Remove(&t.timers, l.heapIdx)
	}
	delete(t.byAddr, l.Addr)
	if b, i := t.blockAt(l.Addr); b != nil {
		b.rec.set(i, false)
	}
}

// blockAt returns the block of a, if we have it, and a's position in it.
func (t *Table) blockAt(a netip.Addr) (*block, int) {
	idx, ok := t.pool.Block(a)
	if !ok {
		return nil, 0
	}
	return t.blocks[idx], t.pool.Index(a)
}

// setState changes a record's state and keeps the block's held bitmap.
func (t *Table) setState(l *Lease, s State) {
	t.touch(l)
	was := l.Holds()
	l.State = s
	now := l.Holds()
	if was == now {
		return
	}
	if b, i := t.blockAt(l.Addr); b != nil {
		b.held.set(i, now)
	}
}

func (t *Table) setExpiry(l *Lease, at time.Duration) {
	t.touch(l)
	l.Expires = at
	if l.heapIdx >= 0 {
		heap.Fix(&t.timers, l.heapIdx)
	} else {
		heap.Push(&t.timers, l)
	}
}

type leaseHeap []*Lease

func (h leaseHeap) Len() int { return len(h) }
func (h leaseHeap) Less(i, j int) bool {
	if h[i].Expires != h[j].Expires {
		return h[i].Expires < h[j].Expires
	}
	return h[i].Addr.Less(h[j].Addr)
}
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*Lease)
	l.heapIdx = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.heapIdx = -1
	*h = old[:len(old)-1]
	return l
}

// touch lists a changed record for Changes.
func (t *Table) touch(l *Lease) {
	if !t.tracking || t.allDirty || l.dirty {
		return
	}
	l.dirty = true
	t.changed = append(t.changed, l)
	// Bounded: when nobody collects the changes for long (offers come and
	// go, but no lease event asks for a write), the list is dropped and
	// the next Changes reports every record.
	if len(t.changed) > 2*len(t.byAddr)+1024 {
		t.allDirty = true
		t.changed = nil
		for _, r := range t.byAddr {
			r.dirty = false
		}
	}
}

// Changes reports what changed since the previous call: copies of the
// records that changed, and the addresses whose record is gone. An address
// whose record went and that got a new one is in both: removals come first.
// With full set, changed holds every record and removed is empty: the
// first call (tracking starts with it), and when too many changes went
// uncollected. It lets the state file be kept up to date in O(changes) on
// the caller's side.
func (t *Table) Changes() (changed []Lease, removed []netip.Addr, full bool) {
	if !t.tracking || t.allDirty {
		t.tracking, t.allDirty = true, false
		changed = make([]Lease, 0, len(t.byAddr))
		for _, l := range t.byAddr {
			l.dirty = false
			changed = append(changed, export(l))
		}
		clear(t.changed)
		t.changed = t.changed[:0]
		return changed, nil, true
	}
	changed = make([]Lease, 0, len(t.changed))
	for _, l := range t.changed {
		l.dirty = false // each record is listed once
		if l.gone {
			removed = append(removed, l.Addr)
		} else {
			changed = append(changed, export(l))
		}
	}
	clear(t.changed)
	t.changed = t.changed[:0]
	return changed, removed, false
}

// export copies a record without the table's links.
func export(l *Lease) Lease {
	c := *l
	c.heapIdx, c.hwNext, c.dirty, c.gone = -1, nil, false, false
	return c
}
