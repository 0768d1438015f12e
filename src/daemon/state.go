package daemon

import (
	"errors"
	"net/netip"
	"path/filepath"
	"time"

	"ddhcpd/src/config"
	"ddhcpd/src/lease"
	"ddhcpd/src/node"
	"ddhcpd/src/statedir"
)

// StateFile is the name of the lease and block state in the state directory.
const StateFile = "state.json"

// stateWriter decides when the state is written: the state directory (tmpfs
// on a router) at most every StateInterval, the optional persistent copy (on
// flash) at most every PersistEvery so flash is not worn out.
type stateWriter struct {
	path, persist       string
	every, persistEvery time.Duration
	last, persistLast   time.Duration
	dirty, persistDirty bool

	// Encoding and writing (with fsync) happen on a goroutine, so a big
	// lease table never stalls the event loop: the loop hands over the
	// lease records that changed since its last job (O(changes), not
	// O(leases)), and a newer job is merged into one not yet written.
	// The writer keeps every record, encoded, in snap.
	jobs chan stateJob
	done chan struct{}
	snap statedir.Snapshot // owned by the writer goroutine, by the loop after stop
}

// writerPause is how long the state writer pauses every
// statedir.YieldEvery records; Go's timers make it up to a millisecond when
// nothing else happens.
const writerPause = 50 * time.Microsecond

type stateJob struct {
	st            statedir.State // without leases: they are in deltas
	now           time.Duration  // monotonic time of st, for the leases' remaining time
	deltas        []leaseDelta   // in order
	main, persist bool
}

// leaseDelta is one report of lease.Table.Changes.
type leaseDelta struct {
	changed []lease.Lease
	removed []netip.Addr
	full    bool
}

func newStateWriter(cfg config.Config) stateWriter {
	return stateWriter{
		path:         filepath.Join(cfg.StateDir, StateFile),
		persist:      cfg.Persist,
		every:        cfg.StateInterval,
		persistEvery: cfg.PersistEvery,
		last:         -cfg.StateInterval,
		persistLast:  -cfg.PersistEvery,
	}
}

func (s *stateWriter) due() time.Duration { return s.last + s.every }

// start runs the writer goroutine; errors are reported through report (on
// the writer goroutine: it must not touch loop state).
func (s *stateWriter) start(report func(string, error)) {
	s.jobs = make(chan stateJob, 1)
	s.done = make(chan struct{})
	// The loop comes first: with one CPU (GOMAXPROCS 1 on a router) a
	// big table would otherwise hold up DHCP replies for milliseconds.
	// The writer pauses rather than calling runtime.Gosched: the
	// scheduler runs any runnable goroutine before it looks for network
	// input, so after a Gosched the loop would still see no packets until
	// the writer is done (or sysmon polls, after 10 ms).
	s.snap.Yield = func() { time.Sleep(writerPause) }
	go func() {
		defer close(s.done)
		for j := range s.jobs {
			s.write(j, report)
		}
	}()
}

func (s *stateWriter) write(j stateJob, report func(string, error)) {
	for _, d := range j.deltas {
		s.snap.Apply(d.changed, d.removed, d.full)
	}
	if j.main {
		report(s.path, s.snap.Save(s.path, j.st, j.now))
	}
	if j.persist {
		report(s.persist, s.snap.Save(s.persist, j.st, j.now))
	}
}

// hand gives a snapshot to the writer, replacing one it has not started on.
func (s *stateWriter) hand(j stateJob) {
	for {
		select {
		case s.jobs <- j:
			return
		default:
		}
		select {
		case old := <-s.jobs:
			// Merge: the newer state goes to every file either asked
			// for, and the older changes come first.
			j.main, j.persist = j.main || old.main, j.persist || old.persist
			j.deltas = append(old.deltas, j.deltas...)
		default:
		}
	}
}

// stop waits for the writer to finish what it was given.
func (s *stateWriter) stop() {
	if s.jobs != nil {
		close(s.jobs)
		<-s.done
		s.jobs = nil
	}
}

// saveState writes the state when it changed and the interval allows, or
// always when final (at shutdown).
func (d *Daemon) saveState(final bool) {
	s := &d.state
	now := d.clock.now()
	if s.dirty {
		s.persistDirty = true
	}
	writeMain := s.dirty && (final || now >= s.due())
	writePersist := s.persist != "" && s.persistDirty && (final || now >= s.persistLast+s.persistEvery)
	if !writeMain && !writePersist {
		return
	}
	st := statedir.State{
		SavedAt: time.Now(),
		Node:    d.node.ID().String(),
		Pool:    d.cfg.Pool.Masked().String(),
		SizeExp: d.cfg.SizeExp,
		Blocks:  d.node.Engine().Owned(),
	}
	idx, lost := d.node.Leases().Blocks()
	for i, b := range idx {
		if lost[i] {
			st.Lost = append(st.Lost, b)
		}
	}
	changed, removed, full := d.node.Leases().Changes()
	job := stateJob{st: st, now: now, deltas: []leaseDelta{{changed, removed, full}}, main: writeMain, persist: writePersist}
	if writeMain {
		s.dirty, s.last = false, now
	}
	if writePersist {
		s.persistDirty, s.persistLast = false, now
	}
	if final || s.jobs == nil {
		// At shutdown: wait for the writer, then write synchronously.
		s.stop()
		s.write(job, d.stateReport)
		return
	}
	d.stats.stateHanded++
	s.hand(job)
}

// stateReport logs a write's outcome; it runs on the writer goroutine, so
// it only logs (the logger is safe for concurrent use).
func (d *Daemon) stateReport(path string, err error) {
	if err != nil {
		d.log.Error("state", "file", path, "err", err)
	}
}

// restore loads the state file (or the persistent copy when the state
// directory was wiped by a reboot) for the node to take back; nil when there
// is none to take.
func (d *Daemon) restore() *node.Saved {
	st, err := statedir.LoadState(d.state.path)
	from := d.state.path
	if errors.Is(err, statedir.ErrNoState) && d.state.persist != "" {
		st, err = statedir.LoadState(d.state.persist)
		from = d.state.persist
	}
	if errors.Is(err, statedir.ErrNoState) {
		return nil
	}
	if err != nil {
		d.stats.stateDamaged++
		d.log.Warn("state", "err", err)
		return nil
	}
	if st.Pool != d.cfg.Pool.Masked().String() || st.SizeExp != d.cfg.SizeExp {
		d.log.Warn("state file is for another pool; not restored", "file", from, "pool", st.Pool, "block_size_exp", st.SizeExp)
		return nil
	}
	// The wall clock may have stepped since the save (no RTC): never count
	// time backwards, which would shorten leases.
	age := max(time.Since(st.SavedAt), 0)
	ls, bad := statedir.Leases(d.clock.now(), age, st.Leases)
	return &node.Saved{From: from, Age: age, Leases: ls, Refused: bad, Blocks: st.Blocks}
}
