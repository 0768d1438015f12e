package daemon

import (
	"errors"
	"path/filepath"
	"time"

	"ddhcpd/src/config"
	"ddhcpd/src/node"
	"ddhcpd/src/statedir"
)

// StateFile is the name of the lease and block state in the state directory.
const StateFile = "state.json"

// stateWriter decides when the state is written: the state directory (tmpfs
// on a router) at most every StateInterval, the optional persistent copy (on
// flash) at most every PersistEvery so flash is not worn out. The writing
// itself is a statedir.Writer's, on its own goroutine.
type stateWriter struct {
	path, persist       string
	every, persistEvery time.Duration
	last, persistLast   time.Duration
	dirty, persistDirty bool
	w                   *statedir.Writer // nil until start and after stop
	report              func(path string, err error)
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

// start runs the writer; errors are reported through report (on the
// writer's goroutine: it must not touch loop state).
func (s *stateWriter) start(report func(string, error)) {
	s.report = report
	s.w = statedir.StartWriter(report)
}

// stop waits for the writer to finish what it was given.
func (s *stateWriter) stop() {
	if s.w != nil {
		s.w.Stop()
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
	job := statedir.Job{State: st, Now: now, Deltas: []statedir.Delta{{Changed: changed, Removed: removed, Full: full}}}
	if writeMain {
		job.Main = s.path
		s.dirty, s.last = false, now
	}
	if writePersist {
		job.Persist = s.persist
		s.persistDirty, s.persistLast = false, now
	}
	if final || s.w == nil {
		// At shutdown: wait for the writer, then write synchronously.
		if s.w == nil {
			s.w = statedir.StartWriter(d.stateReport)
		}
		s.stop()
		s.w.Write(job)
		return
	}
	d.stats.stateHanded++
	s.w.Hand(job)
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
