package netio

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// iface is the state of one mesh interface. Only the watcher goroutine (and
// OpenMesh before it starts the watcher) writes it; writes of fields that
// other goroutines read happen under Mesh.mu.
type iface struct {
	linkIface[meshSocks]

	// Result of the last probe.
	probedLL netip.Addr
	allLL    []netip.Addr // every usable link-local address

	openLL netip.Addr // link-local address when the sockets were opened
}

func (ifc *iface) link() *linkIface[meshSocks] { return &ifc.linkIface }

// meshSocks are the sockets of one mesh interface, by local port.
type meshSocks map[uint16]*meshSock

func (socks meshSocks) close() {
	for _, s := range socks {
		s.close()
	}
}

// shutdown closes everything once the watcher has stopped.
func (m *Mesh) shutdown(w *linkWatcher[meshSocks, *iface]) {
	w.closeAll(func() { m.closed = true })
	m.readers.Wait()
	close(m.packets)
	close(m.events)
	close(m.done)
}

// checked publishes the link-local addresses of every interface for the
// readers.
func (m *Mesh) checked() {
	own := make(map[string][]netip.Addr, len(m.ifaces))
	for _, ifc := range m.ifaces {
		own[ifc.name] = ifc.allLL
	}
	m.own.Store(&own)
}

// probeIface probes a mesh interface. The link-local address the sockets
// were opened on is preferred, so that a second address appearing does not
// count as a change.
func (m *Mesh) probeIface(ifc *iface) {
	r := probe(ifc.name, ifc.openLL)
	m.mu.Lock()
	ifc.index, ifc.up, ifc.why, ifc.probedLL, ifc.allLL = r.index, r.up, r.why, r.ll, r.all
	m.mu.Unlock()
}

// staleReason reports a change of the link-local address: the sockets are
// re-opened so that they send from the new one.
func (m *Mesh) staleReason(ifc *iface) string {
	if ifc.probedLL != ifc.openLL {
		return fmt.Sprintf("link-local address changed to %s", ifc.probedLL)
	}
	return ""
}

// openIface opens one socket per configured port on a mesh interface.
func (m *Mesh) openIface(ifc *iface) (meshSocks, error) {
	return m.openSocks(ifc.name, ifc.index)
}

// ifaceOpened starts the readers of a mesh interface's new sockets.
func (m *Mesh) ifaceOpened(ifc *iface) {
	ifc.openLL = ifc.probedLL
	m.opens.Add(1)
	for _, s := range ifc.socks {
		m.readers.Add(1)
		go m.read(s)
	}
	m.log.Info("mesh interface open", "iface", ifc.name, "index", ifc.openIndex, "addr", ifc.openLL, "ports", m.ports)
	m.event(IfaceEvent{Iface: ifc.name, Open: true, Index: ifc.openIndex, LinkLocal: ifc.openLL})
}

// ifaceClosed reports that the sockets of a mesh interface were closed.
func (m *Mesh) ifaceClosed(ifc *iface, reason string) {
	m.event(IfaceEvent{Iface: ifc.name, Open: false, Index: ifc.openIndex, LinkLocal: ifc.openLL, Reason: reason})
}

// openSocks opens one socket per configured port on an interface, or none.
func (m *Mesh) openSocks(ifname string, index int) (meshSocks, error) {
	socks := make(meshSocks, len(m.ports))
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

// probe looks up a mesh interface and its link-local address. prefer is
// kept as the address if it is still usable.
func probe(name string, prefer netip.Addr) probeResult {
	link, why := lookupLink(name)
	if link == nil {
		return probeResult{why: why}
	}
	a := link.Attrs()
	down := linkDown(a)
	r := probeResult{index: a.Index, up: down == ""}
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
	case down != "":
		r.why = down
	case !r.ll.IsValid():
		r.why = "no usable IPv6 link-local address yet"
	}
	return r
}
