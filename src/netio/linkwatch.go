package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A linkWatcher keeps the sockets of a fixed set of interfaces in line with
// the interfaces' state: it opens them when an interface becomes usable and
// closes them when it becomes unusable, is re-created or otherwise no longer
// fits them. It checks the interfaces on every netlink link or address
// notification that concerns them and periodically, since notifications can
// be lost (the subscription breaks on a burst) or unavailable.
//
// The mesh and the client side each use one; a linkUser holds what differs
// between them: what makes an interface usable and which sockets, of type S,
// are opened on it. The watcher keeps the rest, and logs state changes only,
// so that an interface that stays unusable does not fill the log.
type linkWatcher[S linkSocks, I watchedIface[S]] struct {
	kind    string // "mesh" or "client", the start of log messages
	log     *slog.Logger
	recheck time.Duration // interval of the periodic check; 0 for DefaultRecheck
	poll    bool          // no netlink notifications: the periodic check only
	mu      *sync.Mutex   // the user's, under which shared state is written
	ifaces  []I
	user    linkUser[S, I]

	// The netlink subscriptions. A nil channel means "not subscribed"; the
	// periodic check then tries again.
	links     chan netlink.LinkUpdate
	linksDone chan struct{}
	addrs     chan netlink.AddrUpdate
	addrsDone chan struct{}
	failed    bool // last subscription attempt failed, to log once
}

// linkSocks are the sockets a user of a linkWatcher opens on one interface.
type linkSocks interface {
	close()
}

// watchedIface is a user's state of one interface, which embeds the part the
// watcher keeps.
type watchedIface[S linkSocks] interface {
	link() *linkIface[S]
}

// linkIface is the part of an interface's state that a linkWatcher keeps.
// Only the watcher goroutine (and the user's Open function before it starts
// the watcher) writes it; writes of fields that other goroutines read happen
// under the user's mutex.
type linkIface[S linkSocks] struct {
	name string

	// Result of the last probe, recorded by linkUser.probeIface.
	index int    // 0 if the interface does not exist
	up    bool   // IFF_UP and IFF_RUNNING (carrier)
	why   string // why the interface is not usable; empty if it is

	open      bool  // the user's sockets are open
	socks     S     // the sockets while open; the zero value while closed
	openIndex int   // interface index they are (were last) bound to
	openErr   error // last error opening them

	notReady string // last reason logged for not being usable, to log changes only
}

// takeSocks removes the sockets from the record and returns them, for the
// caller to close. The caller holds the mutex.
func (l *linkIface[S]) takeSocks() S {
	socks := l.socks
	var none S
	l.open, l.socks = false, none
	return socks
}

// linkUser is what differs between the users of a linkWatcher. The watcher
// calls it from one goroutine only.
type linkUser[S linkSocks, I watchedIface[S]] interface {
	// probeIface looks the interface up and records its state in ifc
	// under the mutex: index, up and why of the linkIface, and whatever
	// else the user needs to open sockets on it.
	probeIface(ifc I)
	// staleReason returns why the open sockets of ifc no longer fit the
	// state it was last probed in, or "" if they still do. The watcher
	// itself checks that the interface is still usable and has the same
	// index.
	staleReason(ifc I) string
	// openIface opens the sockets of ifc, which its last probe found
	// usable.
	openIface(ifc I) (S, error)
	// ifaceOpened is called once the sockets of ifc are open and on record.
	ifaceOpened(ifc I)
	// ifaceClosed is called once the sockets of ifc are closed, for reason.
	ifaceClosed(ifc I, reason string)
	// checked is called after every check of all interfaces.
	checked()
}

// checkIfaceNames checks the configured names of the interfaces a
// linkWatcher is to watch, of the given kind.
func checkIfaceNames(kind string, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("netio: no %s interfaces configured", kind)
	}
	for i, name := range names {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:%") || name == "." || name == ".." {
			return fmt.Errorf("netio: invalid %s interface name %q", kind, name)
		}
		if slices.Contains(names[:i], name) {
			return fmt.Errorf("netio: %s interface %s listed twice", kind, name)
		}
	}
	return nil
}

// start checks the interfaces once, so that the sockets of the interfaces
// that are usable already are open when it returns, and keeps checking them
// in a goroutine until ctx is done. Then it calls stopped.
func (w *linkWatcher[S, I]) start(ctx context.Context, stopped func()) {
	if w.recheck <= 0 {
		w.recheck = DefaultRecheck
	}
	// Subscribe before the first check, so that no change between the two
	// goes unnoticed.
	w.subscribe()
	w.check()
	go func() {
		w.run(ctx)
		stopped()
	}()
}

// closeAll closes the sockets of every interface, without logging: the
// user is going away. It calls closing under the mutex first, so that the
// user can mark itself closed in the same step.
func (w *linkWatcher[S, I]) closeAll(closing func()) {
	var socks []S
	w.mu.Lock()
	closing()
	for _, ifc := range w.ifaces {
		if l := ifc.link(); l.open {
			socks = append(socks, l.takeSocks())
		}
	}
	w.mu.Unlock()
	for _, s := range socks {
		s.close()
	}
}

// subscribe (re)subscribes to link and address changes where not subscribed.
func (w *linkWatcher[S, I]) subscribe() {
	if w.poll {
		return
	}
	var errs []error
	if w.links == nil {
		ch, done := make(chan netlink.LinkUpdate, 64), make(chan struct{})
		err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
			ErrorCallback: w.subscriptionError,
		})
		if err != nil {
			close(done)
			errs = append(errs, fmt.Errorf("netio: subscribe to link changes: %w", err))
		} else {
			w.links, w.linksDone = ch, done
		}
	}
	if w.addrs == nil {
		ch, done := make(chan netlink.AddrUpdate, 64), make(chan struct{})
		err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
			ErrorCallback: w.subscriptionError,
		})
		if err != nil {
			close(done)
			errs = append(errs, fmt.Errorf("netio: subscribe to address changes: %w", err))
		} else {
			w.addrs, w.addrsDone = ch, done
		}
	}
	if err := errors.Join(errs...); err != nil {
		if !w.failed {
			w.log.Warn(w.kind+": netlink subscription failed; checking interfaces periodically only",
				"err", err, "interval", w.recheck)
		}
		w.failed = true
	} else {
		w.failed = false
	}
}

// subscriptionError is called by the netlink library's goroutines. A receive
// error ends the subscription (its channel is closed), which run notices.
func (w *linkWatcher[S, I]) subscriptionError(err error) {
	w.log.Debug(w.kind+": netlink subscription", "err", err)
}

// stop ends the subscriptions. The library's goroutines block sending on
// their channels, so those are drained until the library closes them.
func (w *linkWatcher[S, I]) stop() {
	if w.links != nil {
		close(w.linksDone)
		for range w.links {
		}
		w.links = nil
	}
	if w.addrs != nil {
		close(w.addrsDone)
		for range w.addrs {
		}
		w.addrs = nil
	}
}

// run is the watcher goroutine: it checks the interfaces on every relevant
// netlink notification and periodically until ctx is done.
func (w *linkWatcher[S, I]) run(ctx context.Context) {
	defer w.stop()
	tick := time.NewTicker(w.recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-w.links:
			if !ok {
				// The subscription broke (e.g. ENOBUFS after a burst):
				// changes may have been missed.
				close(w.linksDone)
				w.links = nil
				w.subscribe()
				w.check()
			} else if w.relevantLink(u) {
				w.check()
			}
		case u, ok := <-w.addrs:
			if !ok {
				close(w.addrsDone)
				w.addrs = nil
				w.subscribe()
				w.check()
			} else if w.relevantIndex(u.LinkIndex) {
				w.check()
			}
		case <-tick.C:
			w.subscribe()
			w.check()
		}
	}
}

func (w *linkWatcher[S, I]) relevantLink(u netlink.LinkUpdate) bool {
	if u.Link == nil || u.Attrs() == nil {
		return true
	}
	a := u.Attrs()
	for _, ifc := range w.ifaces {
		if ifc.link().name == a.Name {
			return true
		}
	}
	return w.relevantIndex(a.Index)
}

func (w *linkWatcher[S, I]) relevantIndex(index int) bool {
	for _, ifc := range w.ifaces {
		l := ifc.link()
		if index == l.index || (l.open && index == l.openIndex) {
			return true
		}
	}
	return false
}

// check brings the sockets of every interface in line with its state.
func (w *linkWatcher[S, I]) check() {
	for _, ifc := range w.ifaces {
		w.checkIface(ifc)
	}
	w.user.checked()
}

func (w *linkWatcher[S, I]) checkIface(ifc I) {
	w.user.probeIface(ifc)
	l := ifc.link()

	if l.open {
		var reason string
		switch {
		case l.index == 0:
			reason = l.why
		case l.index != l.openIndex:
			reason = fmt.Sprintf("interface re-created (index %d, was %d)", l.index, l.openIndex)
		case l.why != "":
			reason = l.why
		default:
			if reason = w.user.staleReason(ifc); reason == "" {
				return // open and unchanged
			}
		}
		w.mu.Lock()
		socks := l.takeSocks()
		w.mu.Unlock()
		socks.close()
		w.log.Info(w.kind+" interface closed", "iface", l.name, "reason", reason)
		w.user.ifaceClosed(ifc, reason)
		if reason == l.why {
			l.notReady = l.why // logged just now
		}
	}

	if l.why != "" {
		if l.why != l.notReady {
			w.log.Info(w.kind+" interface not usable, waiting", "iface", l.name, "reason", l.why)
			l.notReady = l.why
		}
		return
	}
	socks, err := w.user.openIface(ifc)
	if err != nil {
		if l.openErr == nil || l.openErr.Error() != err.Error() {
			w.log.Warn(w.kind+" interface: cannot open sockets, will retry", "iface", l.name, "err", err)
		}
		w.mu.Lock()
		l.openErr = err
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	l.open, l.socks, l.openIndex, l.openErr = true, socks, l.index, nil
	w.mu.Unlock()
	l.notReady = ""
	w.user.ifaceOpened(ifc)
}

// lookupLink looks up an interface by name. If it does not exist or the
// lookup fails, it returns nil and why.
func lookupLink(name string) (netlink.Link, string) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, "interface does not exist"
		}
		return nil, fmt.Sprintf("look up interface: %v", err)
	}
	return link, ""
}

// linkDown returns why a link is not up, or "" if it is.
func linkDown(a *netlink.LinkAttrs) string {
	switch {
	case a.RawFlags&unix.IFF_UP == 0:
		return "link is down"
	case a.RawFlags&unix.IFF_RUNNING == 0:
		// IFF_RUNNING is the operational state: carrier on, or unknown
		// for virtual devices like bat0 that do not report one.
		return "no carrier"
	}
	return ""
}
