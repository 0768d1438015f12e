package daemon

import (
	"bytes"
	"ddhcpd/src/statedir"
	"time"
)

// The lease file (-leasefile, UCI "leasefile") lists the active leases in
// dnsmasq's lease file format, one per line,
//
//	<expiry, Unix seconds> <MAC> <IPv4 address> <hostname or *> <client id or *>
//
// the MAC and the client id as lower-case hex bytes joined by ":", as
// dnsmasq writes /tmp/dhcp.leases. OpenWrt's LuCI reads that format for its
// "Active DHCP Leases" (rpcd-mod-luci's getDHCPLeases). Only assigned leases
// whose time has not run out are listed: dnsmasq records a lease on its ACK,
// not its offer.
//
// The file is a view, not state: it is rewritten in full (a temporary file
// renamed over it) at most every leaseFileEvery after the lease table
// changed, once at start, and again when the wall clock steps (a router
// without RTC setting its clock by NTP), since the expiry times are wall
// times. The writing happens on a goroutine; the loop only renders.

// leaseFileEvery is the least time between two writes of the lease file.
const leaseFileEvery = 2 * time.Second

// leaseFile is the loop's side of the lease file; nil without one.
type leaseFile struct {
	path  string
	dirty bool
	last  time.Duration // monotonic time of the last write handed over
	base  time.Time     // the wall time at monotonic 0 the last write used
	jobs  chan []byte
	done  chan struct{}
}

// leaseFileWriter is the writer goroutine's side.
type leaseFileWriter struct {
	path    string
	wrote   bool   // the file holds written
	written []byte // what the file holds
	failed  string // the last error, logged once
}

// startLeaseFile starts the lease file writer when one is configured.
func (d *Daemon) startLeaseFile() {
	if d.cfg.LeaseFile == "" {
		return
	}
	lf := &leaseFile{
		path:  d.cfg.LeaseFile,
		dirty: true, // a file left from an earlier run is replaced at once
		last:  -leaseFileEvery,
		jobs:  make(chan []byte, 1),
		done:  make(chan struct{}),
	}
	d.leaseFile = lf
	w := &leaseFileWriter{path: lf.path}
	go func() {
		defer close(lf.done)
		for content := range lf.jobs {
			d.writeLeaseFile(w, content)
		}
	}()
}

// leaseFileChanged notes that the lease table changed.
func (d *Daemon) leaseFileChanged() {
	if d.leaseFile != nil {
		d.leaseFile.dirty = true
	}
}

// leaseFileDue is when the lease file is to be written next, if it is.
func (d *Daemon) leaseFileDue() (time.Duration, bool) {
	lf := d.leaseFile
	if lf == nil || !lf.dirty {
		return 0, false
	}
	return lf.last + leaseFileEvery, true
}

// saveLeaseFile hands the lease file to the writer when it is out of date
// and the interval allows, or whenever it is out of date when final.
func (d *Daemon) saveLeaseFile(final bool) {
	lf := d.leaseFile
	if lf == nil {
		return
	}
	now := d.clock.now()
	base := time.Now().Round(0).Add(-now) // the wall clock as it is now
	if step := base.Sub(lf.base); step > time.Second || step < -time.Second {
		lf.dirty = true
	}
	if !lf.dirty || !final && now < lf.last+leaseFileEvery {
		return
	}
	lf.dirty, lf.last, lf.base = false, now, base
	content := statedir.DNSMasqLeases(d.node.Leases().Leases(), now, base)
	for {
		select {
		case lf.jobs <- content:
			return
		default:
		}
		select {
		case <-lf.jobs: // not started on: this one is newer
		default:
		}
	}
}

// stopLeaseFile waits for the writer to finish what it was given.
func (d *Daemon) stopLeaseFile() {
	if lf := d.leaseFile; lf != nil && lf.jobs != nil {
		close(lf.jobs)
		<-lf.done
		lf.jobs = nil
	}
}

// writeLeaseFile replaces the file with content (on the writer goroutine),
// unless it holds that already.
func (d *Daemon) writeLeaseFile(w *leaseFileWriter, content []byte) {
	if w.wrote && bytes.Equal(content, w.written) {
		return
	}
	err := statedir.WriteShared(w.path, content)
	switch {
	case err != nil && err.Error() != w.failed:
		w.failed = err.Error()
		d.log.Error("lease file", "file", w.path, "err", err)
	case err == nil && w.failed != "":
		w.failed = ""
		d.log.Info("lease file written again", "file", w.path)
	}
	if err == nil {
		w.wrote, w.written = true, content
	}
}
