package dhcp4

import (
	"time"

	"ddhcpd/src/lease"
)

// Admission limits what clients the server has no record of can take, so a
// flood of DISCOVERs from random MACs (DHCP starvation) cannot make the node
// hold its whole range in offers or claim block after block:
//
//   - first DISCOVERs of unknown clients draw from a token bucket (Rate per
//     second, Burst at once);
//   - a client seen recently (it retransmits, as real clients do, while a
//     random-MAC flood rarely repeats a MAC) is let through without a token;
//   - any one client is answered at most once per MinInterval.
//
// Clients with a lease record (renewals, returning clients) are never
// limited. Memory is bounded: at most Remember clients are tracked.
type Admission struct {
	Rate        float64
	Burst       float64
	MinInterval time.Duration
	Recent      time.Duration // how long a client counts as seen
	Remember    int

	tokens float64
	last   time.Duration
	seen   map[lease.ClientKey]time.Duration // last answer or attempt
	order  []lease.ClientKey                 // FIFO for eviction
}

// Admission defaults.
const (
	DefaultAdmitRate     = 20
	DefaultAdmitBurst    = 40
	DefaultAdmitInterval = time.Second
	DefaultAdmitRecent   = 60 * time.Second
	DefaultAdmitRemember = 4096
)

// NewAdmission returns an admission control with the defaults.
func NewAdmission() *Admission {
	return &Admission{Rate: DefaultAdmitRate, Burst: DefaultAdmitBurst, MinInterval: DefaultAdmitInterval,
		Recent: DefaultAdmitRecent, Remember: DefaultAdmitRemember, tokens: DefaultAdmitBurst}
}

// Reasons an unknown client's DISCOVER is not answered.
const (
	DropRateLimited = "rate_limited"
	DropTooSoon     = "client_too_fast"
	DropReserve     = "reserve_kept" // the last free addresses are kept for known and repeating clients
)

// Admit decides whether an unknown client's DISCOVER gets an answer now. It
// returns "" or the reason it does not, and whether the client was seen
// recently (a repeat, so more likely a real client than a flood).
func (a *Admission) Admit(now time.Duration, key lease.ClientKey) (why string, repeat bool) {
	if a.seen == nil {
		a.seen = make(map[lease.ClientKey]time.Duration)
	}
	a.tokens = min(a.Burst, a.tokens+(now-a.last).Seconds()*a.Rate)
	a.last = now
	if at, ok := a.seen[key]; ok && now-at <= a.Recent {
		if now-at < a.MinInterval {
			return DropTooSoon, true
		}
		a.seen[key] = now
		return "", true
	}
	a.remember(key, now)
	if a.tokens < 1 {
		return DropRateLimited, false
	}
	a.tokens--
	return "", false
}

func (a *Admission) remember(key lease.ClientKey, now time.Duration) {
	if _, ok := a.seen[key]; !ok {
		for len(a.order) >= a.Remember {
			delete(a.seen, a.order[0])
			a.order = a.order[1:]
		}
		a.order = append(a.order, key)
	}
	a.seen[key] = now
}

// Tracked is the number of clients remembered.
func (a *Admission) Tracked() int { return len(a.seen) }
