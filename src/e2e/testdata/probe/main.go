// Command probe is a scriptable DHCP client for the end-to-end tests: one
// exchange per run, the answer printed as one JSON line. It speaks through
// nclient4's raw socket, so the interface needs no address.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

type result struct {
	Type    string             `json:"type"` // OFFER, ACK, NAK or none
	Yiaddr  string             `json:"yiaddr,omitempty"`
	Ciaddr  string             `json:"ciaddr,omitempty"`
	Server  string             `json:"server,omitempty"`
	Options map[string]string  `json:"options,omitempty"` // code -> hex
	Timing  map[string]float64 `json:"timing,omitempty"`  // renew-loop: microseconds
	Error   string             `json:"error,omitempty"`
}

func main() {
	iface := flag.String("i", "eth0", "interface")
	macFlag := flag.String("mac", "", "client MAC (default: the interface's)")
	cid := flag.String("cid", "", "client identifier, hex")
	prl := flag.String("prl", "", "parameter request list, comma separated codes")
	addr := flag.String("addr", "", "address (requested, ciaddr)")
	server := flag.String("server", "", "server identifier")
	state := flag.String("state", "selecting", "REQUEST state: selecting, initreboot, renew, rebind")
	timeout := flag.Duration("timeout", 2*time.Second, "how long to wait for an answer")
	flag.Parse()
	out := json.NewEncoder(os.Stdout)
	res, err := run(*iface, *macFlag, *cid, *prl, *addr, *server, *state, *timeout, flag.Args())
	if err != nil {
		res.Error = err.Error()
	}
	out.Encode(res)
}

func run(iface, macFlag, cid, prl, addr, server, state string, timeout time.Duration, args []string) (result, error) {
	if len(args) == 0 {
		return result{}, errors.New("no command")
	}
	var mods []dhcpv4.Modifier
	if cid != "" {
		b, err := hex.DecodeString(cid)
		if err != nil {
			return result{}, err
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClientIdentifier(b)))
	}
	if prl != "" {
		var codes []dhcpv4.OptionCode
		for _, f := range strings.Split(prl, ",") {
			n, _ := strconv.Atoi(f)
			codes = append(codes, dhcpv4.GenericOptionCode(n))
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptParameterRequestList(codes...)))
	}
	if args[0] == "raw" {
		return result{Type: "none"}, sendRaw(iface, args[1:])
	}
	if args[0] == "udp67" {
		return udp67(addr, timeout)
	}
	if args[0] == "load" {
		// load N DURATION EVERY: N clients lease, then renew every EVERY.
		n, _ := strconv.Atoi(args[1])
		d, err1 := time.ParseDuration(args[2])
		every, err2 := time.ParseDuration(args[3])
		if err := errors.Join(err1, err2); err != nil {
			return result{}, err
		}
		return load(iface, net.ParseIP(server).To4(), n, d, every)
	}
	if args[0] == "udp6" {
		// udp6 SRC DST PORT HEX: one datagram over IPv6 on the interface.
		return result{Type: "none"}, udp6(iface, args[1], args[2], args[3], args[4])
	}
	if args[0] == "flood" {
		// flood N DURATION: N DISCOVERs from random MACs, evenly spread.
		n, _ := strconv.Atoi(args[1])
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return result{}, err
		}
		return result{Type: "none"}, flood(iface, n, d)
	}
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(timeout), nclient4.WithRetry(1)}
	var hw net.HardwareAddr
	if macFlag != "" {
		var err error
		if hw, err = net.ParseMAC(macFlag); err != nil {
			return result{}, err
		}
		opts = append(opts, nclient4.WithHWAddr(hw))
	}
	c, err := nclient4.New(iface, opts...)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	hw = c.InterfaceAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 3*timeout)
	defer cancel()
	ip := net.ParseIP(addr).To4()
	sid := net.ParseIP(server).To4()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: 67}

	exchange := func(mt dhcpv4.MessageType, dest *net.UDPAddr, extra ...dhcpv4.Modifier) (result, error) {
		m, err := dhcpv4.New(append(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt)}, mods...), extra...)...)
		if err != nil {
			return result{}, err
		}
		reply, err := c.SendAndRead(ctx, dest, m, nclient4.IsMessageType(dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
		if err != nil {
			return result{Type: "none"}, nil
		}
		return describe(reply), nil
	}
	switch args[0] {
	case "dora":
		lease, err := c.Request(ctx, mods...)
		var nak *nclient4.ErrNak
		if errors.As(err, &nak) {
			return result{Type: "NAK"}, nil
		}
		if err != nil {
			return result{Type: "none"}, nil
		}
		return describe(lease.ACK), nil
	case "discover":
		extra := []dhcpv4.Modifier{}
		if ip != nil {
			extra = append(extra, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
		}
		return exchange(dhcpv4.MessageTypeDiscover, bcast, extra...)
	case "request":
		switch state {
		case "selecting":
			return exchange(dhcpv4.MessageTypeRequest, bcast, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
		case "initreboot":
			return exchange(dhcpv4.MessageTypeRequest, bcast, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
		case "renew":
			return exchange(dhcpv4.MessageTypeRequest, &net.UDPAddr{IP: sid, Port: 67}, dhcpv4.WithClientIP(ip))
		case "rebind":
			return exchange(dhcpv4.MessageTypeRequest, bcast, dhcpv4.WithClientIP(ip))
		}
		return result{}, fmt.Errorf("unknown state %q", state)
	case "renew-loop":
		// N unicast renewals of addr, each timed from send to answer.
		n, _ := strconv.Atoi(args[len(args)-1])
		var rtts []float64
		for range n {
			m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw),
				dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(ip)}, mods...)...)
			if err != nil {
				return result{}, err
			}
			t0 := time.Now()
			reply, err := c.SendAndRead(ctx, &net.UDPAddr{IP: sid, Port: 67}, m, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
			if err != nil || reply.MessageType() != dhcpv4.MessageTypeAck {
				continue
			}
			rtts = append(rtts, float64(time.Since(t0).Microseconds()))
			ctx, cancel = context.WithTimeout(context.Background(), 3*timeout)
			defer cancel()
		}
		if len(rtts) == 0 {
			return result{Type: "none"}, nil
		}
		slices.Sort(rtts)
		pct := func(p float64) float64 { return rtts[min(len(rtts)-1, int(p*float64(len(rtts))))] }
		return result{Type: "ACK", Timing: map[string]float64{"n": float64(len(rtts)), "p50": pct(0.5), "p99": pct(0.99), "max": rtts[len(rtts)-1]}}, nil
	case "inform":
		return exchange(dhcpv4.MessageTypeInform, bcast, dhcpv4.WithClientIP(ip))
	case "release", "decline":
		mt, extra := dhcpv4.MessageTypeRelease, []dhcpv4.Modifier{dhcpv4.WithClientIP(ip)}
		if args[0] == "decline" {
			mt, extra = dhcpv4.MessageTypeDecline, []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip))}
		}
		m, err := dhcpv4.New(append(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid))}, mods...), extra...)...)
		if err != nil {
			return result{}, err
		}
		// No answer is expected; wait briefly so the packet leaves.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		c.SendAndRead(short, bcast, m, nclient4.IsMessageType(dhcpv4.MessageTypeAck))
		return result{Type: "none"}, nil
	}
	return result{}, fmt.Errorf("unknown command %q", args[0])
}

func describe(m *dhcpv4.DHCPv4) result {
	r := result{Type: m.MessageType().String(), Options: map[string]string{}}
	if m.MessageType() == dhcpv4.MessageTypeNak {
		r.Type = "NAK"
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeOffer:
		r.Type = "OFFER"
	case dhcpv4.MessageTypeAck:
		r.Type = "ACK"
	}
	if m.YourIPAddr != nil && !m.YourIPAddr.IsUnspecified() {
		r.Yiaddr = m.YourIPAddr.String()
	}
	if m.ClientIPAddr != nil && !m.ClientIPAddr.IsUnspecified() {
		r.Ciaddr = m.ClientIPAddr.String()
	}
	if s := m.ServerIdentifier(); s != nil {
		r.Server = s.String()
	}
	for code, v := range m.Options {
		r.Options[strconv.Itoa(int(code))] = hex.EncodeToString(v)
	}
	return r
}

// sendRaw sends hex payloads as UDP broadcasts from port 68 to 67.
func sendRaw(iface string, payloads []string) error {
	conn, err := nclient4.NewRawUDPConn(iface, 68)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, p := range payloads {
		b, err := hex.DecodeString(p)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(b, &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
			return err
		}
	}
	return nil
}

// udp67 sends a datagram to ADDR:67 from a connected UDP socket and waits:
// an ICMP port unreachable shows as "refused", silence as "none".
func udp67(addr string, timeout time.Duration) (result, error) {
	c, err := net.Dial("udp4", net.JoinHostPort(addr, "67"))
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("not dhcp")); err != nil {
		return result{}, err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	_, err = c.Read(make([]byte, 64))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return result{Type: "none"}, nil
	case err != nil && strings.Contains(err.Error(), "refused"):
		return result{Type: "refused"}, nil
	}
	return result{Type: "answer"}, err
}

// flood sends n DISCOVERs, each from a new random MAC, spread over d.
func flood(iface string, n int, d time.Duration) error {
	conn, err := nclient4.NewRawUDPConn(iface, 68)
	if err != nil {
		return err
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: 67}
	start := time.Now()
	for i := range n {
		hw := make(net.HardwareAddr, 6)
		rand.Read(hw)
		hw[0] = hw[0]&0xfe | 0x02 // unicast, locally administered
		m, err := dhcpv4.NewDiscovery(hw)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(m.ToBytes(), dst); err != nil {
			return err
		}
		if wait := time.Duration(i+1)*d/time.Duration(n) - time.Since(start); wait > 0 {
			time.Sleep(wait)
		}
	}
	return nil
}

// udp6 sends the hex payload from src (":" for any) to dst:port on iface.
func udp6(iface, src, dst, port, payload string) error {
	b, err := hex.DecodeString(payload)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	laddr := &net.UDPAddr{IP: net.IPv6unspecified}
	if src != ":" {
		laddr.IP = net.ParseIP(src)
	}
	if laddr.IP.IsLinkLocalUnicast() {
		laddr.Zone = iface
	}
	c, err := net.ListenUDP("udp6", laddr)
	if err != nil {
		return err
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.ParseIP(dst), Port: p}
	if to.IP.IsLinkLocalMulticast() || to.IP.IsLinkLocalUnicast() {
		to.Zone = iface
	}
	_, err = c.WriteToUDP(b, to)
	return err
}

// xchg sends DHCP messages on a raw connection and hands each reply to the
// waiter with the same transaction id (nclient4's client drops replies whose
// chaddr is not the interface's MAC, and simulated clients have their own).
type xchg struct {
	conn    net.PacketConn
	mu      sync.Mutex
	waiting map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
}

func (x *xchg) read() {
	buf := make([]byte, 1500)
	for {
		n, _, err := x.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		x.mu.Lock()
		ch := x.waiting[m.TransactionID]
		x.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

// do sends m to dst and waits for a reply of one of the types, retrying.
func (x *xchg) do(m *dhcpv4.DHCPv4, dst *net.UDPAddr, types ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	ch := make(chan *dhcpv4.DHCPv4, 4)
	x.mu.Lock()
	x.waiting[m.TransactionID] = ch
	x.mu.Unlock()
	defer func() { x.mu.Lock(); delete(x.waiting, m.TransactionID); x.mu.Unlock() }()
	for range 3 {
		if _, err := x.conn.WriteTo(m.ToBytes(), dst); err != nil {
			return nil, err
		}
		deadline := time.After(2 * time.Second)
	wait:
		for {
			select {
			case r := <-ch:
				if slices.Contains(types, r.MessageType()) {
					return r, nil
				}
			case <-deadline:
				break wait
			}
		}
	}
	return nil, errors.New("no answer")
}

// load runs n simulated clients (distinct MACs) on one raw socket for d:
// each leases an address, then renews it by unicast every interval.
func load(iface string, server net.IP, n int, d, every time.Duration) (result, error) {
	conn, err := nclient4.NewRawUDPConn(iface, 68)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	x := &xchg{conn: conn, waiting: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
	go x.read()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: 67}
	var mu sync.Mutex
	count := map[string]float64{}
	add := func(k string) { mu.Lock(); count[k]++; mu.Unlock() }
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hw := net.HardwareAddr{0x02, 0x1d, 0, byte(i >> 16), byte(i >> 8), byte(i)}
			// Spread the start over the first interval.
			time.Sleep(time.Duration(i) * every / time.Duration(n))
			// Like a real client, keep trying until leased (each try is
			// three DISCOVERs 2 s apart).
			var ack *dhcpv4.DHCPv4
			for try := 0; ack == nil; try++ {
				if try == 10 || time.Now().After(end) {
					add("lease_failed")
					return
				}
				if try > 0 {
					add("lease_retry")
				}
				disc, _ := dhcpv4.NewDiscovery(hw)
				offer, err := x.do(disc, bcast, dhcpv4.MessageTypeOffer)
				if err != nil {
					continue
				}
				req, _ := dhcpv4.NewRequestFromOffer(offer)
				r, err := x.do(req, bcast, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
				if err == nil && r.MessageType() == dhcpv4.MessageTypeAck {
					ack = r
				}
			}
			add("leased")
			addr := ack.YourIPAddr
			for {
				if time.Until(end) < every {
					return
				}
				time.Sleep(every)
				m, err := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(addr))
				if err != nil {
					return
				}
				add("renew_sent")
				r, err := x.do(m, &net.UDPAddr{IP: server, Port: 67}, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
				switch {
				case err != nil:
					add("renew_lost")
				case r.MessageType() == dhcpv4.MessageTypeNak:
					add("renew_nak")
				case !r.YourIPAddr.Equal(addr):
					add("renew_other_address")
				default:
					add("renew_ack")
				}
			}
		}()
	}
	wg.Wait()
	return result{Type: "ACK", Timing: count}, nil
}
