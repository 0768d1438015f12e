package netio

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// iface is the state of one mesh interface. Only the watcher goroutine (and
// OpenMesh before it starts the watcher) writes it; writes of fields that
// other goroutines read happen under Mesh.mu.
type iface struct {
	name string

	// Result of the last probe.
	index    int
	up       bool
	probedLL netip.Addr
	allLL    []netip.Addr // every usable link-local address

	// Open sockets, by local port; nil while closed.
	socks     map[uint16]*meshSock
	openIndex int        // interface index the sockets are bound to
	openLL    netip.Addr // link-local address when they were opened
	openErr   error      // last error opening them

	notReady string // last reason the interface was not usable, to log changes only
}

// watcher holds the netlink subscriptions. A nil channel means "not
// subscribed"; the periodic check then tries again.
type watcher struct {
	m         *Mesh
	links     chan netlink.LinkUpdate
	linksDone chan struct{}
	addrs     chan netlink.AddrUpdate
	addrsDone chan struct{}
	failed    bool // last subscription attempt failed, to log once
}

func (m *Mesh) newWatcher() *watcher { return &watcher{m: m} }

// subscribe (re)subscribes to link and address changes where not subscribed.
func (w *watcher) subscribe() {
	if w.m.poll {
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
			w.m.log.Warn("mesh: netlink subscription failed; checking interfaces periodically only",
				"err", err, "interval", w.m.recheck)
		}
		w.failed = true
	} else {
		w.failed = false
	}
}

// subscriptionError is called by the netlink library's goroutines. A receive
// error ends the subscription (its channel is closed), which run notices.
func (w *watcher) subscriptionError(err error) {
	w.m.log.Debug("mesh: netlink subscription", "err", err)
}

// stop ends the subscriptions. The library's goroutines block sending on
// their channels, so those are drained until the library closes them.
func (w *watcher) stop() {
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

// run is the watcher goroutine: it reconciles the interfaces on every
// relevant netlink notification and periodically, and tears everything down
// when ctx is done.
func (m *Mesh) run(ctx context.Context, w *watcher) {
	defer m.shutdown(w)
	tick := time.NewTicker(m.recheck)
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
				m.reconcile()
			} else if m.relevantLink(u) {
				m.reconcile()
			}
		case u, ok := <-w.addrs:
			if !ok {
				close(w.addrsDone)
				w.addrs = nil
				w.subscribe()
				m.reconcile()
			} else if m.relevantIndex(u.LinkIndex) {
				m.reconcile()
			}
		case <-tick.C:
			w.subscribe()
			m.reconcile()
		}
	}
}

func (m *Mesh) relevantLink(u netlink.LinkUpdate) bool {
	if u.Link == nil || u.Attrs() == nil {
		return true
	}
	a := u.Attrs()
	for _, ifc := range m.ifaces {
		if ifc.name == a.Name {
			return true
		}
	}
	return m.relevantIndex(a.Index)
}

func (m *Mesh) relevantIndex(index int) bool {
	for _, ifc := range m.ifaces {
		if index == ifc.index || (ifc.socks != nil && index == ifc.openIndex) {
			return true
		}
	}
	return false
}

// shutdown closes everything once run returns.
func (m *Mesh) shutdown(w *watcher) {
	w.stop()
	m.mu.Lock()
	m.closed = true
	var socks []*meshSock
	for _, ifc := range m.ifaces {
		for _, s := range ifc.socks {
			socks = append(socks, s)
		}
		ifc.socks = nil
	}
	m.mu.Unlock()
	for _, s := range socks {
		s.close()
	}
	m.readers.Wait()
	close(m.packets)
	close(m.events)
	close(m.done)
}

// reconcile brings the sockets of every interface in line with its state.
func (m *Mesh) reconcile() {
	for _, ifc := range m.ifaces {
		m.reconcileIface(ifc)
	}
	own := make(map[string][]netip.Addr, len(m.ifaces))
	for _, ifc := range m.ifaces {
		own[ifc.name] = ifc.allLL
	}
	m.own.Store(&own)
}

func (m *Mesh) reconcileIface(ifc *iface) {
	r := probe(ifc.name, ifc.openLL)
	m.mu.Lock()
	ifc.index, ifc.up, ifc.probedLL, ifc.allLL = r.index, r.up, r.ll, r.all
	m.mu.Unlock()

	if ifc.socks != nil {
		var reason string
		switch {
		case r.index == 0:
			reason = r.why
		case r.index != ifc.openIndex:
			reason = fmt.Sprintf("interface re-created (index %d, was %d)", r.index, ifc.openIndex)
		case r.why != "":
			reason = r.why
		case r.ll != ifc.openLL:
			reason = fmt.Sprintf("link-local address changed to %s", r.ll)
		default:
			return // open and unchanged
		}
		m.closeIface(ifc, reason)
		if reason == r.why {
			ifc.notReady = r.why // logged just now
		}
	}

	if r.why != "" {
		if r.why != ifc.notReady {
			m.log.Info("mesh interface not usable, waiting", "iface", ifc.name, "reason", r.why)
			ifc.notReady = r.why
		}
		return
	}
	socks, err := m.openSocks(ifc.name, r.index)
	if err != nil {
		if ifc.openErr == nil || ifc.openErr.Error() != err.Error() {
			m.log.Warn("mesh interface: cannot open sockets, will retry", "iface", ifc.name, "err", err)
		}
		m.mu.Lock()
		ifc.openErr = err
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	ifc.socks, ifc.openIndex, ifc.openLL, ifc.openErr = socks, r.index, r.ll, nil
	m.mu.Unlock()
	ifc.notReady = ""
	m.opens.Add(1)
	for _, s := range socks {
		m.readers.Add(1)
		go m.read(s)
	}
	m.log.Info("mesh interface open", "iface", ifc.name, "index", r.index, "addr", r.ll, "ports", m.ports)
	m.event(IfaceEvent{Iface: ifc.name, Open: true, Index: r.index, LinkLocal: r.ll})
}

// closeIface closes the sockets of an interface.
func (m *Mesh) closeIface(ifc *iface, reason string) {
	m.mu.Lock()
	socks := ifc.socks
	ifc.socks = nil
	m.mu.Unlock()
	for _, s := range socks {
		s.close()
	}
	m.log.Info("mesh interface closed", "iface", ifc.name, "reason", reason)
	m.event(IfaceEvent{Iface: ifc.name, Open: false, Index: ifc.openIndex, LinkLocal: ifc.openLL, Reason: reason})
}

// openSocks opens one socket per configured port on an interface, or none.
func (m *Mesh) openSocks(ifname string, index int) (map[uint16]*meshSock, error) {
	socks := make(map[uint16]*meshSock, len(m.ports))
	for _, port := range m.ports {
		s, err := openSock(ifname, index, port, port != UnicastPort)
		if err != nil {
			for _, s := range socks {
				s.close()
			}
			return nil, fmt.Errorf("netio: open %s port %d: %w", ifname, port, err)
		}
		socks[port] = s
	}
	return socks, nil
}

// probeResult is the state of an interface as the kernel reports it.
type probeResult struct {
	index int          // 0 if the interface does not exist
	up    bool         // IFF_UP and IFF_RUNNING (carrier)
	ll    netip.Addr   // usable link-local address
	all   []netip.Addr // all usable link-local addresses
	why   string       // why the interface is not usable; empty if it is
}

// probe looks up an interface and its link-local address. prefer is kept as
// the address if it is still usable, so that a second address appearing
// does not count as a change.
func probe(name string, prefer netip.Addr) probeResult {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return probeResult{why: "interface does not exist"}
		}
		return probeResult{why: fmt.Sprintf("look up interface: %v", err)}
	}
	a := link.Attrs()
	r := probeResult{index: a.Index}
	adminUp := a.RawFlags&unix.IFF_UP != 0
	// IFF_RUNNING is the operational state: carrier on (or unknown, as for
	// virtual devices like bat0 that do not report one).
	r.up = adminUp && a.RawFlags&unix.IFF_RUNNING != 0
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		r.why = fmt.Sprintf("list addresses: %v", err)
		return r
	}
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok || !ip.Is6() || !ip.IsLinkLocalUnicast() {
			continue
		}
		// A tentative address cannot be used as a source until duplicate
		// address detection has finished; a duplicate never.
		if ad.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		r.all = append(r.all, ip)
		if !r.ll.IsValid() || ip == prefer {
			r.ll = ip
		}
	}
	switch {
	case !adminUp:
		r.why = "link is down"
	case !r.up:
		r.why = "no carrier"
	case !r.ll.IsValid():
		r.why = "no usable IPv6 link-local address yet"
	}
	return r
}
