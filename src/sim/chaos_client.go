package sim

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"ddhcpd/src/node"
)

// Client timing (RFC 2131 §4.4.5 scaled down: the RFC's 60 s floor between
// retransmissions would leave one try per short lease).
const (
	chaosRetryMin    = 2 * time.Second  // least gap between renewal tries
	chaosSelectWait  = 2 * time.Second  // for the ACK of a SELECTING or INIT-REBOOT REQUEST
	chaosSelectTries = 3                // SELECTING or INIT-REBOOT REQUESTs before giving up
	chaosDiscoverMax = 16 * time.Second // DISCOVER backoff cap
)

type chaosClientState uint8

const (
	clAway       chaosClientState = iota // asleep or gone after a release
	clInit                               // DISCOVER until an OFFER comes
	clRequesting                         // SELECTING REQUEST sent
	clBound
	clRenewing  // unicast REQUEST to its router from T1
	clRebinding // broadcast REQUEST from T2
	clRebooting // INIT-REBOOT: broadcast REQUEST for its address after roaming or waking
)

func (s chaosClientState) String() string {
	return [...]string{"away", "init", "requesting", "bound", "renewing", "rebinding", "rebooting"}[s]
}

// chaosClient is a DHCP client: attached to one router at a time over a
// reliable link, it does DORA, renews at T1 by unicast to its router and
// retries, rebinds at T2 by broadcast, starts over with DISCOVER when its
// lease ends or on a NAK, verifies its lease with INIT-REBOOT after half
// of its roams and when it wakes up, and now and then releases its lease
// or sleeps without renewing.
type chaosClient struct {
	c      *chaosRun
	k      int
	hw     net.HardwareAddr
	id     []byte // option 61, for a third of the clients
	rng    *rand.Rand
	router int

	st     chaosClientState
	gen    int // timers of an earlier state do nothing
	xid    uint32
	sentAt time.Duration // last send of xid
	sid    net.IP
	offer  netip.Addr
	tries  int

	// The lease the client believes it holds, while holding.
	holding     bool
	addr, prev  netip.Addr
	end, t1, t2 time.Duration
	leaseGen    int
	attempts    []time.Duration // renewal tries for the current lease
	asleep      bool
	nakXid      uint32 // the NAK the deciding router explained last
	nakCause    string
	lastBad     time.Duration // (B): the last moment its service was not reachable
	// conflicted says that another client believed to hold the same
	// address while this one held it: a genuine conflict, after which
	// either may be refused.
	conflicted bool
}

func newChaosClient(c *chaosRun, k int) *chaosClient {
	cl := &chaosClient{
		c:   c,
		k:   k,
		hw:  net.HardwareAddr{0x02, 0xcc, byte(k >> 16), byte(k >> 8), byte(k), 0x01},
		rng: newRand(derive(c.sc.seed, streamChaosClient, uint64(k))),
	}
	if cl.rng.IntN(3) == 0 {
		cl.id = append([]byte{1}, cl.hw...)
	}
	c.byHW[[6]byte(cl.hw)] = cl
	return cl
}

func (cl *chaosClient) now() time.Duration { return cl.c.now() }

// after runs fn in d if the client is still in the same state then.
func (cl *chaosClient) after(d time.Duration, fn func()) {
	gen := cl.gen
	cl.c.net.At(cl.now()+d, func() {
		if cl.gen == gen {
			fn()
		}
	})
}

func (cl *chaosClient) enter(st chaosClientState) {
	cl.st = st
	cl.gen++
}

func (cl *chaosClient) exp(mean time.Duration) time.Duration {
	return time.Duration(cl.rng.ExpFloat64()*float64(mean)) + time.Millisecond
}

// start begins the client's life: DORA, and its habits.
func (cl *chaosClient) start() {
	cl.init(0)
	cl.roamLoop()
	cl.awayLoop()
}

func (cl *chaosClient) roamLoop() {
	cl.c.net.At(cl.now()+cl.exp(cl.c.sc.roamMean), func() {
		// Mostly to a router that is up: phones prefer a working one.
		n := cl.c.sc.nodes
		to := cl.rng.IntN(n)
		for range 3 {
			if cl.c.net.Up(to) {
				break
			}
			to = cl.rng.IntN(n)
		}
		cl.roam(to)
		cl.roamLoop()
	})
}

func (cl *chaosClient) awayLoop() {
	cl.c.net.At(cl.now()+cl.exp(cl.c.sc.awayMean), func() {
		cl.away()
		cl.awayLoop()
	})
}

// init starts DORA after d.
func (cl *chaosClient) init(d time.Duration) {
	cl.enter(clInit)
	cl.tries = 0
	cl.after(d, cl.discover)
}

func (cl *chaosClient) discover() {
	cl.xid = cl.rng.Uint32()
	var opts []dhcpv4.Option
	if cl.prev.IsValid() {
		opts = append(opts, dhcpv4.OptRequestedIPAddress(net.IP(cl.prev.AsSlice())))
	}
	cl.send(dhcpv4.MessageTypeDiscover, netip.Addr{}, true, opts...)
	cl.tries++
	wait := min(chaosDiscoverMax, time.Second<<min(cl.tries, 5))
	wait += time.Duration(cl.rng.Int64N(int64(time.Second)))
	cl.after(wait, cl.discover)
}

func (cl *chaosClient) selectOffer() {
	cl.send(dhcpv4.MessageTypeRequest, netip.Addr{}, true,
		dhcpv4.OptServerIdentifier(cl.sid), dhcpv4.OptRequestedIPAddress(net.IP(cl.offer.AsSlice())))
	cl.tries++
	cl.after(chaosSelectWait, func() {
		if cl.tries < chaosSelectTries {
			cl.selectOffer()
		} else {
			cl.c.count("client.select_timeout")
			cl.init(0)
		}
	})
}

// renew sends the RENEWING REQUEST (unicast, to the router the client is
// on) and its retries until T2.
func (cl *chaosClient) renew() {
	if cl.st != clRenewing {
		cl.enter(clRenewing)
		cl.xid = cl.rng.Uint32()
	}
	cl.attempt()
	cl.send(dhcpv4.MessageTypeRequest, cl.addr, false)
	next := max((cl.t2-cl.now())/2, chaosRetryMin)
	if cl.now()+next >= cl.t2 {
		cl.after(cl.t2-cl.now(), cl.rebind)
	} else {
		cl.after(next, cl.renew)
	}
}

// rebind broadcasts the REBINDING REQUEST until the lease ends.
func (cl *chaosClient) rebind() {
	if cl.st != clRebinding {
		cl.enter(clRebinding)
		cl.xid = cl.rng.Uint32()
	}
	cl.attempt()
	cl.send(dhcpv4.MessageTypeRequest, cl.addr, true)
	if next := max((cl.end-cl.now())/2, chaosRetryMin); cl.now()+next < cl.end {
		cl.after(next, cl.rebind)
	}
}

// reboot verifies the lease with INIT-REBOOT; without an answer the client
// goes on using it (RFC 2131 §3.2).
func (cl *chaosClient) reboot() {
	cl.enter(clRebooting)
	cl.xid = cl.rng.Uint32()
	cl.tries = 0
	cl.sendReboot()
}

func (cl *chaosClient) sendReboot() {
	cl.attempt()
	cl.send(dhcpv4.MessageTypeRequest, netip.Addr{}, true, dhcpv4.OptRequestedIPAddress(net.IP(cl.addr.AsSlice())))
	cl.tries++
	cl.after(chaosSelectWait, func() {
		if cl.tries < chaosSelectTries {
			cl.sendReboot()
			return
		}
		cl.c.count("client.reboot_unanswered")
		cl.resume()
	})
}

// resume goes back to where the lease's times say the client is.
func (cl *chaosClient) resume() {
	switch now := cl.now(); {
	case now < cl.t1:
		cl.enter(clBound)
		cl.after(cl.t1-now, cl.renew)
	case now < cl.t2:
		cl.renew()
	default:
		cl.rebind()
	}
}

// roam moves the client to router `to`.
func (cl *chaosClient) roam(to int) {
	if to == cl.router {
		return
	}
	cl.c.count("client.roam")
	cl.c.tracef("client %d roams n%d -> n%d (%s)", cl.k, cl.router, to, cl.st)
	cl.router = to
	switch cl.st {
	case clInit, clRequesting:
		cl.init(0)
	case clBound, clRenewing, clRebinding:
		if cl.rng.IntN(2) == 0 {
			cl.c.count("client.roam_reboot")
			cl.reboot()
		}
	}
}

// away releases the lease and leaves, or sleeps without renewing; the
// client comes back a while later.
func (cl *chaosClient) away() {
	if cl.st == clAway {
		return
	}
	if cl.holding && cl.rng.IntN(2) == 0 {
		cl.c.count("client.release")
		cl.send(dhcpv4.MessageTypeRelease, cl.addr, false, dhcpv4.OptServerIdentifier(cl.sid))
		cl.unbind()
	} else {
		cl.c.count("client.sleep")
		cl.asleep = true
	}
	cl.enter(clAway)
	cl.after(cl.exp(cl.c.sc.idleMean), cl.wake)
}

func (cl *chaosClient) wake() {
	cl.asleep = false
	if cl.holding {
		cl.reboot()
		return
	}
	cl.init(0)
}

// attempt notes a try to keep the lease, and whether its service was
// reachable then (invariant B).
func (cl *chaosClient) attempt() {
	cl.sentAt = cl.now()
	cl.attempts = append(cl.attempts, cl.now())
	if cl.c.reachable(cl) {
		cl.c.count("client.tries_reachable")
	} else {
		cl.c.count("client.tries_unreachable")
		cl.lastBad = cl.now()
	}
}

// send puts a message on the client's link, to the router it is on now.
func (cl *chaosClient) send(mt dhcpv4.MessageType, ciaddr netip.Addr, bcast bool, opts ...dhcpv4.Option) {
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		ClientHWAddr:  cl.hw,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       dhcpv4.Options{},
	}
	binary.BigEndian.PutUint32(m.TransactionID[:], cl.xid)
	src := netip.IPv4Unspecified()
	if ciaddr.IsValid() {
		m.ClientIPAddr = net.IP(ciaddr.AsSlice())
		src = ciaddr
	}
	m.UpdateOption(dhcpv4.OptMessageType(mt))
	if cl.id != nil {
		m.UpdateOption(dhcpv4.OptClientIdentifier(cl.id))
	}
	for _, o := range opts {
		m.UpdateOption(o)
	}
	p := node.ClientPacket{Iface: chaosClientIface, SrcIP: src, SrcMAC: cl.hw, Broadcast: bcast, Payload: m.ToBytes()}
	i := cl.router
	cl.c.net.At(cl.now()+chaosLinkDelay(cl.rng), func() { cl.c.fromClient(i, p, m) })
}

// chaosClientIface is the routers' interface to their clients.
const chaosClientIface = "client0"

// chaosLinkDelay is how long a packet takes over a client link: up to
// chaosLinkMax.
func chaosLinkDelay(r *rand.Rand) time.Duration {
	return 200*time.Microsecond + time.Duration(r.Int64N(int64(2*time.Millisecond)))
}

const chaosLinkMax = 2200 * time.Microsecond

// fromClient steps node i with a packet its client sent (m, as sent), as
// the daemon steps its node with what a client socket read. A router that
// is down or stalled does not hear it.
func (c *chaosRun) fromClient(i int, p node.ClientPacket, m *dhcpv4.DHCPv4) {
	if !c.live(i) {
		c.count("dhcp.unheard_router_down")
		return
	}
	a := reqAddr(m)
	c.tracef("n%d <- %v %v xid %08x from %v", i, m.MessageType(), a, xidOfMsg(m), m.ClientHWAddr)
	ask := &chaosAsk{node: i, msg: m}
	if a.IsValid() {
		l := c.net.Node(i).Leases().At(a)
		ask.held = l != nil && l.Holds()
	}
	c.asking = ask
	c.net.Client(i, p)
	c.asking = nil
}

// reply carries a DHCP reply of node i down its client link: to the client
// with the destination's MAC, or to every client on the link when
// broadcast. A client that has moved on by the time it arrives misses it.
func (c *chaosRun) reply(i int, r node.Reply) {
	m, err := dhcpv4.FromBytes(r.Data)
	if err != nil {
		c.bad.addf("at %v: n%d sends a reply nobody can parse: %v", c.now(), i, err)
		return
	}
	c.tracef("n%d -> %v %v xid %08x to %v", i, m.MessageType(), m.YourIPAddr, xidOfMsg(m), m.ClientHWAddr)
	c.noteLocal(i, m)
	if r.Dest.MAC == nil {
		for _, cl := range c.clients {
			if cl.router == i {
				c.toClient(i, cl, m)
			}
		}
		return
	}
	var cl *chaosClient
	if len(r.Dest.MAC) == 6 {
		cl = c.byHW[[6]byte(r.Dest.MAC)]
	}
	if cl == nil {
		c.bad.addf("at %v: n%d answers an unknown client %v", c.now(), i, r.Dest.MAC)
		return
	}
	c.toClient(i, cl, m)
}

func (c *chaosRun) toClient(i int, cl *chaosClient, m *dhcpv4.DHCPv4) {
	c.net.At(c.now()+chaosLinkDelay(c.hosts[i].link), func() {
		switch {
		case !bytes.Equal(m.ClientHWAddr, cl.hw):
			// Another client's broadcast.
		case cl.router != i:
			c.count("client.reply_missed_roamed")
		default:
			cl.receive(m)
		}
	})
}

// receive handles a reply meant for the client.
func (cl *chaosClient) receive(m *dhcpv4.DHCPv4) {
	c := cl.c
	if xidOfMsg(m) != cl.xid {
		c.count("client.stale_reply")
		return
	}
	a, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
	switch m.MessageType() {
	case dhcpv4.MessageTypeOffer:
		if cl.st != clInit || !a.IsValid() {
			return
		}
		cl.offer, cl.sid = a, m.ServerIdentifier()
		cl.enter(clRequesting)
		cl.tries = 0
		cl.selectOffer()
	case dhcpv4.MessageTypeAck:
		switch cl.st {
		case clRequesting:
			if a != cl.offer {
				c.bad.addf("at %v: client %d asked for %v, got an ACK for %v", c.now(), cl.k, cl.offer, a)
			}
			c.count("client.bound")
		case clRenewing, clRebinding, clRebooting:
			if a != cl.addr {
				c.bad.addf("at %v: client %d renewed %v, got an ACK for %v", c.now(), cl.k, cl.addr, a)
				return
			}
			c.count("client.kept_" + cl.st.String())
		default:
			return
		}
		cl.bind(a, m)
	case dhcpv4.MessageTypeNak:
		switch cl.st {
		case clRequesting:
			c.count("client.nak_selecting")
			cl.init(time.Second)
		case clRenewing, clRebinding, clRebooting:
			cause := "unexplained"
			if cl.nakXid == cl.xid {
				cause = cl.nakCause
			}
			c.judgeLoss(cl, "nak", cause)
			cl.unbind()
			cl.init(500 * time.Millisecond)
		}
	}
}

// bind takes the lease an ACK grants.
func (cl *chaosClient) bind(a netip.Addr, m *dhcpv4.DHCPv4) {
	c := cl.c
	now := cl.now()
	l := m.IPAddressLeaseTime(0)
	if l <= 0 {
		c.bad.addf("at %v: client %d got an ACK without lease time", now, cl.k)
		return
	}
	t1 := m.IPAddressRenewalTime(l / 2)
	t2 := m.IPAddressRebindingTime(l * 7 / 8)
	if a != cl.addr || !cl.holding {
		cl.conflicted = false
	}
	c.bindLease(cl, a, now+l)
	cl.holding, cl.addr, cl.prev = true, a, a
	cl.end, cl.t1, cl.t2 = now+l, now+t1, now+t2
	cl.sid = m.ServerIdentifier()
	cl.attempts = cl.attempts[:0]
	cl.leaseGen++
	gen := cl.leaseGen
	c.net.At(cl.end, func() {
		if cl.holding && cl.leaseGen == gen {
			cl.expire()
		}
	})
	cl.enter(clBound)
	cl.after(cl.t1-now, cl.renew)
	c.tracef("client %d bound %v until %v via n%d", cl.k, a, cl.end, cl.router)
}

// expire is the end of the lease the client held.
func (cl *chaosClient) expire() {
	c := cl.c
	switch {
	case cl.asleep || cl.st == clAway:
		c.count("client.expired_asleep")
	case cl.st == clRenewing || cl.st == clRebinding || cl.st == clRebooting:
		c.judgeLoss(cl, "expired", "")
	default:
		c.count("client.expired_" + cl.st.String())
	}
	cl.unbind()
	if cl.st != clAway {
		cl.init(0)
	}
}

// unbind gives up the lease the client held.
func (cl *chaosClient) unbind() {
	if !cl.holding {
		return
	}
	cl.c.unbindLease(cl)
	cl.holding = false
	cl.leaseGen++
}
