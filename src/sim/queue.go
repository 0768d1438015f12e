package sim

import (
	"container/heap"
	"net/netip"
	"time"
)

type eventKind uint8

const (
	evTick   eventKind = iota + 1 // a node's housekeeping
	evCast                        // the next copy of a datagram reaches a receiver
	evAction                      // a scheduled call, such as a fault
)

// event is one entry of the queue. Events run in order of time, then of
// insertion (seq), so ties break the same way in every run.
type event struct {
	at    time.Duration
	seq   uint64
	index int // position in the queue, -1 when not queued
	kind  eventKind
	node  int        // evTick
	cast  *multicast // evCast
	fn    func()     // evAction
}

// multicast is one datagram on its way to its receivers (one for a
// unicast). It stays in the queue as a single event that is due at its
// earliest pending copy, instead of one event per receiver, so the queue
// stays as small as the number of datagrams in flight even with a thousand
// nodes.
type multicast struct {
	from    int
	port    uint16 // destination port
	srcPort uint16
	relayed bool // unicast
	data    []byte
	rx      []copyTo // sorted by time, then receiver
	next    int      // first copy not yet delivered
}

// copyTo is one copy of a datagram for one receiver, on one link. Life is
// the life of the receiver the copy can reach: the current one if the
// receiver was up at sending time, else the next. A copy for an earlier life
// is lost with the crash, even if the node is up again when it arrives.
type copyTo struct {
	at    time.Duration
	to    int
	life  int
	link  int        // -1 on the one broadcast domain
	iface int        // receiver's interface
	src   netip.Addr // sender's address on that link, zone = receiver's interface
}

// queue is a binary heap of events.
type queue []*event

func (q queue) Len() int { return len(q) }

func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}

func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *queue) Push(x any) {
	e := x.(*event)
	e.index = len(*q)
	*q = append(*q, e)
}

func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}

// push queues e at time at with a fresh sequence number.
func (n *Network) push(e *event, at time.Duration) {
	e.at, e.seq = at, n.seq
	n.seq++
	heap.Push(&n.q, e)
}

// move changes the time of a queued event. A moved event counts as inserted
// now, so it runs after events queued earlier for the same instant.
func (n *Network) move(e *event, at time.Duration) {
	if e.at == at {
		return
	}
	e.at, e.seq = at, n.seq
	n.seq++
	heap.Fix(&n.q, e.index)
}

// unqueue removes e if it is queued.
func (n *Network) unqueue(e *event) {
	if e.index >= 0 {
		heap.Remove(&n.q, e.index)
	}
}
