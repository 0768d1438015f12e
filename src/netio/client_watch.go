package netio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// clientIface is the state of one client interface. Only the watcher
// goroutine (and OpenClients before it starts the watcher) writes it; writes
// of fields that other goroutines read happen under Clients.mu.
type clientIface struct {
	name string

	// Result of the last probe.
	index int
	up    bool
	mac   net.HardwareAddr
	addr  netip.Addr
	why   string // why the interface is not usable; empty if it is

	sock    *clientSock // open sockets; nil while closed
	openErr error       // last error opening them

	notReady     string // last reason logged for not being usable, to log changes only
	warnedBridge bool   // logged that the interface is a bridge port
}

// clientWatcher holds the netlink subscriptions. A nil channel means "not
// subscribed"; the periodic check then tries again.
type clientWatcher struct {
	c         *Clients
	links     chan netlink.LinkUpdate
	linksDone chan struct{}
	addrs     chan netlink.AddrUpdate
	addrsDone chan struct{}
	failed    bool // last subscription attempt failed, to log once
}

// subscribe (re)subscribes to link and address changes where not subscribed.
func (w *clientWatcher) subscribe() {
	if w.c.poll {
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
			w.c.log.Warn("client: netlink subscription failed; checking interfaces periodically only",
				"err", err, "interval", w.c.recheck)
		}
		w.failed = true
	} else {
		w.failed = false
	}
}

// subscriptionError is called by the netlink library's goroutines. A receive
// error ends the subscription (its channel is closed), which run notices.
func (w *clientWatcher) subscriptionError(err error) {
	w.c.log.Debug("client: netlink subscription", "err", err)
}

// stop ends the subscriptions. The library's goroutines block sending on
// their channels, so those are drained until the library closes them.
func (w *clientWatcher) stop() {
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
func (c *Clients) run(ctx context.Context, w *clientWatcher) {
	defer c.shutdown(w)
	tick := time.NewTicker(c.recheck)
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
				c.reconcile()
			} else if c.relevantLink(u) {
				c.reconcile()
			}
		case u, ok := <-w.addrs:
			if !ok {
				close(w.addrsDone)
				w.addrs = nil
				w.subscribe()
				c.reconcile()
			} else if c.relevantIndex(u.LinkIndex) {
				c.reconcile()
			}
		case <-tick.C:
			w.subscribe()
			c.reconcile()
		}
	}
}

func (c *Clients) relevantLink(u netlink.LinkUpdate) bool {
	if u.Link == nil || u.Attrs() == nil {
		return true
	}
	a := u.Attrs()
	for _, ifc := range c.ifaces {
		if ifc.name == a.Name {
			return true
		}
	}
	return c.relevantIndex(a.Index)
}

func (c *Clients) relevantIndex(index int) bool {
	for _, ifc := range c.ifaces {
		if index == ifc.index || (ifc.sock != nil && index == ifc.sock.index) {
			return true
		}
	}
	return false
}

// shutdown closes everything once run returns.
func (c *Clients) shutdown(w *clientWatcher) {
	w.stop()
	c.mu.Lock()
	c.closed = true
	var socks []*clientSock
	for _, ifc := range c.ifaces {
		if ifc.sock != nil {
			socks = append(socks, ifc.sock)
		}
		ifc.sock = nil
	}
	c.mu.Unlock()
	for _, s := range socks {
		s.close()
	}
	c.readers.Wait()
	close(c.packets)
	close(c.done)
}

// reconcile brings the sockets of every interface in line with its state.
func (c *Clients) reconcile() {
	for _, ifc := range c.ifaces {
		c.reconcileIface(ifc)
	}
}

func (c *Clients) reconcileIface(ifc *clientIface) {
	r := clientProbe(ifc.name)
	c.mu.Lock()
	ifc.index, ifc.up, ifc.mac, ifc.addr, ifc.why = r.index, r.up, r.mac, r.addr, r.why
	c.mu.Unlock()

	if s := ifc.sock; s != nil {
		var reason string
		switch {
		case r.index == 0:
			reason = r.why
		case r.index != s.index:
			reason = fmt.Sprintf("interface re-created (index %d, was %d)", r.index, s.index)
		case r.why != "":
			reason = r.why
		case !bytes.Equal(r.mac, s.mac):
			// Frames must leave with the new address, and our own
			// frames are recognised by it.
			reason = fmt.Sprintf("MAC address changed to %s", r.mac)
		default:
			return // open and unchanged
		}
		c.closeIface(ifc, reason)
		if reason == r.why {
			ifc.notReady = r.why // logged just now
		}
	}

	if r.why != "" {
		if r.why != ifc.notReady {
			c.log.Info("client interface not usable, waiting", "iface", ifc.name, "reason", r.why)
			ifc.notReady = r.why
		}
		return
	}
	s, err := openClientSock(ifc.name, r.index, r.mac, c.filter)
	if err != nil {
		err = fmt.Errorf("netio: open client interface %s: %w", ifc.name, err)
		if ifc.openErr == nil || ifc.openErr.Error() != err.Error() {
			c.log.Warn("client interface: cannot open sockets, will retry", "iface", ifc.name, "err", err)
		}
		c.mu.Lock()
		ifc.openErr = err
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	ifc.sock, ifc.openErr = s, nil
	c.mu.Unlock()
	ifc.notReady = ""
	c.opens.Add(1)
	c.readers.Add(1)
	go c.read(s)
	c.log.Info("client interface open", "iface", ifc.name, "index", r.index, "mac", r.mac.String(), "addr", r.addr)
	if r.bridgePort && !ifc.warnedBridge {
		c.log.Warn("client interface is a bridge port: the frames it receives go to the bridge, so serve the bridge instead",
			"iface", ifc.name)
	}
	ifc.warnedBridge = r.bridgePort
}

// closeIface closes the sockets of an interface.
func (c *Clients) closeIface(ifc *clientIface, reason string) {
	c.mu.Lock()
	s := ifc.sock
	ifc.sock = nil
	c.mu.Unlock()
	s.close()
	c.log.Info("client interface closed", "iface", ifc.name, "reason", reason)
}

// clientProbeResult is the state of a client interface as the kernel
// reports it.
type clientProbeResult struct {
	index      int  // 0 if the interface does not exist
	up         bool // IFF_UP and IFF_RUNNING (carrier)
	mac        net.HardwareAddr
	addr       netip.Addr // first IPv4 address, zero if none
	bridgePort bool       // the interface is a port of a bridge
	why        string     // why the interface is not usable; empty if it is
}

// clientProbe looks up a client interface, its MAC address and its first
// IPv4 address. An interface is usable if it is an Ethernet interface, up
// and has carrier; it needs no IPv4 address.
func clientProbe(name string) clientProbeResult {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return clientProbeResult{why: "interface does not exist"}
		}
		return clientProbeResult{why: fmt.Sprintf("look up interface: %v", err)}
	}
	a := link.Attrs()
	r := clientProbeResult{index: a.Index, mac: slices.Clone(a.HardwareAddr)}
	adminUp := a.RawFlags&unix.IFF_UP != 0
	// IFF_RUNNING is the operational state: carrier on, or unknown for
	// virtual devices that do not report one.
	r.up = adminUp && a.RawFlags&unix.IFF_RUNNING != 0
	if a.MasterIndex != 0 {
		if m, err := netlink.LinkByIndex(a.MasterIndex); err == nil && m.Type() == "bridge" {
			r.bridgePort = true
		}
	}
	switch {
	case a.EncapType != "ether" || len(a.HardwareAddr) != 6:
		r.why = fmt.Sprintf("not an Ethernet interface (%s)", a.EncapType)
	case !adminUp:
		r.why = "link is down"
	case !r.up:
		r.why = "no carrier"
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		// Not fatal: the address is only the default server
		// identifier; the next check tries again.
		return r
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip.Unmap().Is4() {
			r.addr = ip.Unmap()
			break
		}
	}
	return r
}
