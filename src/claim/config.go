package claim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"ddhcpd/src/wire"
)

// Config holds the engine's settings. Zero durations and counts take the
// defaults of DefaultConfig when passed through WithDefaults.
type Config struct {
	Node  wire.NodeID
	Swarm wire.Swarm // as put on the wire; must agree with the pool

	SpareLeases      int           // free addresses to keep in owned blocks
	BlockTimeout     time.Duration // lifetime we announce for our claims
	TentativeTimeout time.Duration // how long an inquired block stays off limits
	InquireInterval  time.Duration // spacing of our INQUIREs for a block
	Inquiries        int           // INQUIREs without objection before a block is ours
	RefreshFactor    int           // refresh claims when 1/RefreshFactor of the lifetime has passed
	NeedlessTimeout  time.Duration // unused surplus block is released after this
	LearningTime     time.Duration // no claiming before this has passed since start
	TickInterval     time.Duration // housekeeping cadence (spare and needless checks)
	MaxBlocks        int           // owned plus claiming blocks at most; 0 means AutoMaxBlocks, -1 no cap
	// AnnounceGap limits how often one block is announced in answer to
	// inquiries and conflicts, so a flood of inquiries cannot make us flood.
	AnnounceGap time.Duration
	// SyncQuiet ends learning early (fast join): once a SYNC was sent, the
	// table quiet for this long means every node has re-announced. Zero
	// turns fast join off (learning lasts LearningTime, as with C nodes).
	SyncQuiet time.Duration
	// SyncJitter spreads the re-announcements that answer a SYNC.
	SyncJitter time.Duration
}

// Defaults. The block timeout, tentative timeout, refresh factor, inquiry
// count and needless timeout are the C ddhcpd's.
const (
	DefaultSpareLeases      = 2
	DefaultBlockTimeout     = 60 * time.Second
	DefaultTentativeTimeout = 15 * time.Second
	DefaultInquireInterval  = time.Second
	DefaultInquiries        = 3
	DefaultRefreshFactor    = 4
	DefaultNeedlessTimeout  = 300 * time.Second
	DefaultTickInterval     = time.Second
	DefaultAnnounceGap      = 250 * time.Millisecond
	DefaultSyncQuiet        = 2 * time.Second
	DefaultSyncJitter       = 500 * time.Millisecond
)

// WithDefaults fills unset fields. SpareLeases and LearningTime are taken as
// given (zero is meaningful for both); LearningTime < 0 means "the block
// timeout", the C default.
func (c Config) WithDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.BlockTimeout, DefaultBlockTimeout)
	set(&c.TentativeTimeout, DefaultTentativeTimeout)
	set(&c.InquireInterval, DefaultInquireInterval)
	set(&c.NeedlessTimeout, DefaultNeedlessTimeout)
	set(&c.TickInterval, DefaultTickInterval)
	set(&c.AnnounceGap, DefaultAnnounceGap)
	set(&c.SyncJitter, DefaultSyncJitter)
	if c.Inquiries == 0 {
		c.Inquiries = DefaultInquiries
	}
	if c.RefreshFactor == 0 {
		c.RefreshFactor = DefaultRefreshFactor
	}
	if c.LearningTime < 0 {
		c.LearningTime = c.BlockTimeout
	}
	return c
}

// Validate reports the first setting that cannot work, naming it.
func (c Config) Validate() error {
	var errs []error
	if c.Node.IsZero() {
		errs = append(errs, errors.New("node id is zero (C nodes send zero; ours must be random)"))
	}
	if c.SpareLeases < 0 {
		errs = append(errs, fmt.Errorf("spare leases %d: must not be negative", c.SpareLeases))
	}
	if c.BlockTimeout < time.Second || c.BlockTimeout > math.MaxUint16*time.Second {
		errs = append(errs, fmt.Errorf("block timeout %v: must be 1s..%ds (it travels as 16-bit seconds)", c.BlockTimeout, math.MaxUint16))
	}
	if c.BlockTimeout%time.Second != 0 {
		errs = append(errs, fmt.Errorf("block timeout %v: must be whole seconds", c.BlockTimeout))
	}
	if c.TentativeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("tentative timeout %v: must be positive", c.TentativeTimeout))
	}
	if c.InquireInterval <= 0 {
		errs = append(errs, fmt.Errorf("inquire interval %v: must be positive", c.InquireInterval))
	}
	// One inquiry in flight protects nothing against a node that starts
	// (or a partition that heals) meanwhile.
	if c.Inquiries < 2 {
		errs = append(errs, fmt.Errorf("inquiries %d: must be at least 2", c.Inquiries))
	}
	// An owner answers an inquiry at most AnnounceGap late (it may have just
	// announced the block); the inquiry window must leave room for that and
	// for the round trip, or the inquirer takes a block that is owned.
	if window := time.Duration(c.Inquiries) * c.InquireInterval; c.Inquiries >= 2 && window < 4*c.AnnounceGap {
		errs = append(errs, fmt.Errorf("inquiry window %d × %v is shorter than 4 × the announce gap %v", c.Inquiries, c.InquireInterval, c.AnnounceGap))
	}
	if c.RefreshFactor < 2 {
		errs = append(errs, fmt.Errorf("refresh factor %d: must be at least 2", c.RefreshFactor))
	}
	if c.TickInterval <= 0 || c.NeedlessTimeout < 0 || c.LearningTime < 0 || c.AnnounceGap < 0 {
		errs = append(errs, errors.New("tick interval must be positive; needless timeout, learning time and announce gap must not be negative"))
	}
	if c.MaxBlocks < -1 {
		errs = append(errs, fmt.Errorf("max blocks %d: want -1 (no cap), 0 (automatic) or a count", c.MaxBlocks))
	}
	return errors.Join(errs...)
}

// AutoCapAddresses is what the automatic cap lets a node hold: enough for a
// busy router's clients, far below a pool a DISCOVER flood could drain.
const AutoCapAddresses = 256

// AutoMaxBlocks is the default cap on blocks owned or being claimed: room
// for AutoCapAddresses addresses (or four times the spare leases, if more),
// but never more than half the pool, so a DHCP starvation attack with random
// MACs cannot make one node claim the whole pool. Operators of routers with
// more clients raise it with -max-blocks.
func AutoMaxBlocks(spare, blockSize int, numBlocks uint32) int {
	addrs := max(AutoCapAddresses, 4*spare)
	n := (addrs + blockSize - 1) / blockSize
	return max(1, min(n, int(numBlocks/2)))
}
