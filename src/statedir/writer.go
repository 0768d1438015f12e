package statedir

import (
	"net/netip"
	"time"

	"ddhcpd/src/lease"
)

// Writer encodes and writes state files (with fsync) on a goroutine of its
// own, so a big lease table never stalls the daemon's loop: the loop hands
// over the lease records that changed since its last job (O(changes), not
// O(leases)), and a newer job is merged into one not yet written. The
// writer keeps every record, encoded, in a Snapshot.
type Writer struct {
	jobs   chan Job
	done   chan struct{}
	snap   Snapshot // the goroutine's; the caller's after Stop
	report func(path string, err error)
	// stopped is set by Stop, on the caller's goroutine.
	stopped bool
}

// Job is one state to write.
type Job struct {
	State  State         // without leases: they are in Deltas
	Now    time.Duration // monotonic time of State, for the leases' remaining time
	Deltas []Delta       // in order
	// Main and Persist name the files to write; "" writes none.
	Main, Persist string
}

// Delta is one report of lease.Table.Changes.
type Delta struct {
	Changed []lease.Lease
	Removed []netip.Addr
	Full    bool
}

// writerPause is how long the writer pauses every YieldEvery records; Go's
// timers make it up to a millisecond when nothing else happens.
const writerPause = 50 * time.Microsecond

// StartWriter runs a writer; report gets every write's outcome on the
// writer's goroutine (it must not touch the caller's state).
func StartWriter(report func(path string, err error)) *Writer {
	w := &Writer{jobs: make(chan Job, 1), done: make(chan struct{}), report: report}
	// The loop comes first: with one CPU (GOMAXPROCS 1 on a router) a big
	// table would otherwise hold up DHCP replies for milliseconds. The
	// writer pauses rather than calling runtime.Gosched: the scheduler
	// runs any runnable goroutine before it looks for network input, so
	// after a Gosched the loop would still see no packets until the writer
	// is done (or sysmon polls, after 10 ms).
	w.snap.Yield = func() { time.Sleep(writerPause) }
	go func() {
		defer close(w.done)
		for j := range w.jobs {
			w.Write(j)
		}
	}()
	return w
}

// Write writes a job at once, on the caller's goroutine: for the writer's
// own loop, and for the last state after Stop.
func (w *Writer) Write(j Job) {
	for _, d := range j.Deltas {
		w.snap.Apply(d.Changed, d.Removed, d.Full)
	}
	for _, path := range []string{j.Main, j.Persist} {
		if path != "" {
			w.report(path, w.snap.Save(path, j.State, j.Now))
		}
	}
}

// Hand gives a job to the writer, merged with one it has not started on:
// the newer state goes to every file either asked for, the older changes
// first.
func (w *Writer) Hand(j Job) {
	for {
		select {
		case w.jobs <- j:
			return
		default:
		}
		select {
		case old := <-w.jobs:
			if j.Main == "" {
				j.Main = old.Main
			}
			if j.Persist == "" {
				j.Persist = old.Persist
			}
			j.Deltas = append(old.Deltas, j.Deltas...)
		default:
		}
	}
}

// Pending is the number of jobs handed over and not yet started.
func (w *Writer) Pending() int { return len(w.jobs) }

// Stop waits until the writer has written what it was given; Write may be
// called after it, Hand not. Stopping again does nothing.
func (w *Writer) Stop() {
	if !w.stopped {
		w.stopped = true
		close(w.jobs)
		<-w.done
	}
}
