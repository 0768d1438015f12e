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
	"container/heap"
	"encoding/hex"
	"hash/fnv"
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
	busy int  // addresses held (see Lease.Holds)
}

// Table is the lease table of one node.
type Table struct {
	pool     *pool.Pool
	blocks   map[uint32]*block
	live     []uint32 // blocks we serve (not lost), sorted; rebuilt when blocks change
	byAddr   map[netip.Addr]*Lease
	byClient map[ClientKey]*Lease
	hosts    map[ClientKey]netip.Addr // host reservations
	hostAddr map[netip.Addr]ClientKey
	timers   leaseHeap // every record, by Expires
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
	// Records restored before the block was ours count again.
	for i := range t.pool.BlockSize() {
		if l := t.byAddr[t.pool.Addr(idx, i)]; l != nil && l.Holds() {
			b.busy++
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
	for idx, b := range t.blocks {
		if !b.lost {
			t.live = append(t.live, idx)
		}
	}
	slices.Sort(t.live)
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
	return t.pool.Usable(idx) - b.busy - t.hostsIn(idx)
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
	return b != nil && b.busy > 0
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
	// Rare path: a client that sent a client id once and not now (or the
	// reverse). Records are few (the addresses of our blocks).
	for _, l := range t.byClient {
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
	var fallback netip.Addr
	for i := range live {
		idx := live[(start+i)%len(live)]
		for j := range size {
			a := t.pool.Addr(idx, (off+j)%size)
			if !t.AvailableFor(a, c) {
				continue
			}
			if l := t.byAddr[a]; l == nil || l.belongs(c) {
				return a, true
			}
			if !fallback.IsValid() {
				fallback = a
			}
		}
	}
	return fallback, fallback.IsValid()
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
	}
	l := t.byAddr[a]
	if l == nil {
		l = &Lease{Addr: a, heapIdx: -1}
		t.byAddr[a] = l
	}
	if l.Client != c.Key {
		t.unbind(l)
	}
	l.Client, l.ClientID, l.HW = c.Key, slices.Clone(c.ID), slices.Clone(c.HW)
	if c.Hostname != "" {
		l.Hostname = c.Hostname
	}
	t.byClient[c.Key] = l
	return l
}

// unbind removes a record from its client's index (the record stays).
func (t *Table) unbind(l *Lease) {
	if l.Client != "" && t.byClient[l.Client] == l {
		delete(t.byClient, l.Client)
	}
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
			out = append(out, *l)
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
	rec.heapIdx = -1
	rec.State = 0
	t.byAddr[rec.Addr] = &rec
	if rec.Client != "" {
		t.byClient[rec.Client] = &rec
	}
	t.setState(&rec, l.State)
	t.setExpiry(&rec, l.Expires)
	return true
}

// Leases returns a copy of every record, by address.
func (t *Table) Leases() []Lease {
	out := make([]Lease, 0, len(t.byAddr))
	for _, l := range t.byAddr {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Len is the number of records.
func (t *Table) Len() int { return len(t.byAddr) }

func (t *Table) remove(l *Lease) {
	t.setState(l, 0)
	t.unbind(l)
	if l.heapIdx >= 0 {
		heap.Remove(&t.timers, l.heapIdx)
	}
	delete(t.byAddr, l.Addr)
}

// setState changes a record's state and keeps the block's busy count.
func (t *Table) setState(l *Lease, s State) {
	was := l.Holds()
	l.State = s
	now := l.Holds()
	if was == now {
		return
	}
	idx, ok := t.pool.Block(l.Addr)
	if !ok {
		return
	}
	if b := t.blocks[idx]; b != nil {
		if now {
			b.busy++
		} else {
			b.busy--
		}
	}
}

func (t *Table) setExpiry(l *Lease, at time.Duration) {
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
