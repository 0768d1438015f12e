package netio

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// clientIface is the state of one client interface. Only the watcher
// goroutine (and OpenClients before it starts the watcher) writes it; writes
// of fields that other goroutines read happen under Clients.mu.
type clientIface struct {
	linkIface[*clientSock]

	// Result of the last probe.
	mac        net.HardwareAddr
	addr       netip.Addr
	bridgePort bool

	warnedBridge bool // logged that the interface is a bridge port
}

func (ifc *clientIface) link() *linkIface[*clientSock] { return &ifc.linkIface }

// shutdown closes everything once the watcher has stopped.
func (c *Clients) shutdown(w *linkWatcher[*clientSock, *clientIface]) {
	w.closeAll(func() { c.closed = true })
	c.readers.Wait()
	close(c.packets)
	close(c.done)
}

// checked does nothing: nothing of the client side depends on all
// interfaces at once.
func (c *Clients) checked() {}

// probeIface probes a client interface.
func (c *Clients) probeIface(ifc *clientIface) {
	r := clientProbe(ifc.name)
	c.mu.Lock()
	ifc.index, ifc.up, ifc.why, ifc.mac, ifc.addr, ifc.bridgePort = r.index, r.up, r.why, r.mac, r.addr, r.bridgePort
	c.mu.Unlock()
}

// staleReason reports a change of the MAC address: frames must leave with
// the new address, and our own frames are recognised by it.
func (c *Clients) staleReason(ifc *clientIface) string {
	if !bytes.Equal(ifc.mac, ifc.socks.mac) {
		return fmt.Sprintf("MAC address changed to %s", ifc.mac)
	}
	return ""
}

// openIface opens the sockets of a client interface.
func (c *Clients) openIface(ifc *clientIface) (*clientSock, error) {
	s, err := openClientSock(ifc.name, ifc.index, ifc.mac, c.filter)
	if err != nil {
		return nil, fmt.Errorf("netio: open client interface %s: %w", ifc.name, err)
	}
	return s, nil
}

// ifaceOpened starts the reader of a client interface's new sockets.
func (c *Clients) ifaceOpened(ifc *clientIface) {
	s := ifc.socks
	c.opens.Add(1)
	c.readers.Add(1)
	go c.read(s)
	c.log.Info("client interface open", "iface", ifc.name, "index", s.index, "mac", s.mac.String(), "addr", ifc.addr)
	if ifc.bridgePort && !ifc.warnedBridge {
		c.log.Warn("client interface is a bridge port: the frames it receives go to the bridge, so serve the bridge instead",
			"iface", ifc.name)
	}
	ifc.warnedBridge = ifc.bridgePort
}

// ifaceClosed does nothing: the client side has no interface events.
func (c *Clients) ifaceClosed(*clientIface, string) {}

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
	link, why := lookupLink(name)
	if link == nil {
		return clientProbeResult{why: why}
	}
	a := link.Attrs()
	down := linkDown(a)
	r := clientProbeResult{index: a.Index, up: down == "", mac: slices.Clone(a.HardwareAddr)}
	if a.MasterIndex != 0 {
		if m, err := netlink.LinkByIndex(a.MasterIndex); err == nil && m.Type() == "bridge" {
			r.bridgePort = true
		}
	}
	switch {
	case a.EncapType != "ether" || len(a.HardwareAddr) != 6:
		r.why = fmt.Sprintf("not an Ethernet interface (%s)", a.EncapType)
	case down != "":
		r.why = down
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
