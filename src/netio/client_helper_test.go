package netio

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The namespace tests of the client side (client_ns_test.go) run this test
// binary under "ip netns exec" as a helper process (TestClientHelperProcess)
// that plays the server (a Clients), a DHCP client, a relay agent or another
// DHCP server, as told by commands on standard input.
//
// Output lines of the helper:
//
//	READY
//	PKT iface srcmac dstmac src dst broadcast len data   a ClientPacket
//	UDP name src dst len data                            a datagram on a UDP socket
//	CAP name srcmac dstmac src dst ttl len data verdict  a UDP frame seen by a capture;
//	                                                     verdict "ok" if ParseFrame and the
//	                                                     reference checksums accept it
//	ICMP name src dst type code                          an ICMP message seen by a capture
//	ID OK [detail]   or   ID ERR error
//
// "data" is the payload if it is short and printable, else "-".
//
// Commands ("ID" is a number echoed in the reply):
//
//	ID open IFACE,... [POLLMS]    open a Clients (POLLMS: netlink off, re-check period)
//	ID status                     -> ID OK name,index,up,mac,addr,open ...
//	ID wait IFACE open|closed     wait up to 4 s for the interface's state
//	ID stats                      -> ID OK frames=N received=N ...
//	ID addr IFACE                 -> ID OK address (IfaceAddr) or ID ERR
//	ID send IFACE IP PORT MAC|- SRC DATA   Send, direct
//	ID routed IFACE IP PORT SRC DATA       Send, routed
//	ID close                      -> ID OK goroutines base=N now=N
//	ID udplisten NAME ADDRPORT DEV|-       UDP socket, SO_BROADCAST, bound to DEV
//	ID udpsend NAME ADDRPORT DATA
//	ID capture NAME IFACE         AF_PACKET capture of received IPv4 frames
//	ID sendframe IFACE HEX        write a raw Ethernet frame
//	ID icmp ADDR                  send an ICMP echo request
const clientHelperEnv = "NETIO_CLIENT_HELPER"

// TestClientHelperProcess is the helper process; in a normal test run it
// does nothing.
func TestClientHelperProcess(t *testing.T) {
	if os.Getenv(clientHelperEnv) != "1" {
		return
	}
	h := &clientHelper{out: os.Stdout, udp: map[string]net.PacketConn{}}
	if err := h.main(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

type clientHelper struct {
	outMu sync.Mutex
	out   io.Writer

	clients  *Clients
	printers sync.WaitGroup
	base     int // goroutines before open
	udp      map[string]net.PacketConn
}

func (h *clientHelper) say(format string, args ...any) {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	fmt.Fprintf(h.out, format+"\n", args...)
}

func (h *clientHelper) main(stdin io.Reader) error {
	h.say("READY")
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		detail, err := h.command(f[1], f[2:])
		if err != nil {
			h.say("%s ERR %s", f[0], strings.ReplaceAll(err.Error(), "\n", " | "))
		} else {
			h.say("%s OK %s", f[0], detail)
		}
	}
	return sc.Err()
}

func printable(b []byte) string {
	if len(b) == 0 || len(b) > 64 {
		return "-"
	}
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return "-"
		}
	}
	return string(b)
}

func (h *clientHelper) command(cmd string, args []string) (string, error) {
	port := func(s string) (uint16, error) {
		p, err := strconv.ParseUint(s, 10, 16)
		return uint16(p), err
	}
	switch {
	case cmd == "open" && (len(args) == 1 || len(args) == 2):
		if h.clients != nil {
			return "", errors.New("already open")
		}
		cfg := ClientConfig{
			Interfaces: strings.Split(args[0], ","),
			Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}
		if len(args) == 2 {
			ms, err := strconv.Atoi(args[1])
			if err != nil {
				return "", err
			}
			cfg.Recheck = time.Duration(ms) * time.Millisecond
			cfg.pollOnly = true
		}
		h.base = runtime.NumGoroutine()
		c, err := OpenClients(context.Background(), cfg)
		if err != nil {
			return "", err
		}
		h.clients = c
		h.printers.Add(1)
		go func() {
			defer h.printers.Done()
			for p := range c.Packets() {
				h.say("PKT %s %s %s %s %s %v %d %s", p.Iface, p.SrcMAC, p.DstMAC,
					netip.AddrPortFrom(p.SrcIP, p.SrcPort), netip.AddrPortFrom(p.DstIP, p.DstPort),
					p.Broadcast, len(p.Payload), printable(p.Payload))
			}
		}()
		return "", nil

	case cmd == "status" && h.clients != nil:
		var parts []string
		for _, st := range h.clients.Interfaces() {
			parts = append(parts, fmt.Sprintf("%s,%d,%v,%s,%s,%v", st.Name, st.Index, st.Up, st.MAC, st.Addr, st.Open))
		}
		return strings.Join(parts, " "), nil

	case cmd == "wait" && len(args) == 2 && h.clients != nil:
		want := args[1] == "open"
		var last ClientIfaceStatus
		for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, st := range h.clients.Interfaces() {
				if st.Name == args[0] {
					last = st
				}
			}
			if last.Open == want {
				return fmt.Sprintf("index=%d", last.Index), nil
			}
		}
		return "", fmt.Errorf("%s is not %s: %+v", args[0], args[1], last)

	case cmd == "stats" && h.clients != nil:
		s := h.clients.Stats()
		return fmt.Sprintf("frames=%d received=%d dropped=%d malformed=%d ignored=%d senderrors=%d readerrors=%d opens=%d",
			s.Frames, s.Received, s.Dropped, s.Malformed, s.Ignored, s.SendErrors, s.ReadErrors, s.Opens), nil

	case cmd == "addr" && len(args) == 1 && h.clients != nil:
		a, ok := h.clients.IfaceAddr(args[0])
		if !ok {
			return "", errors.New("no address")
		}
		return a.String(), nil

	case (cmd == "send" && len(args) == 6 || cmd == "routed" && len(args) == 5) && h.clients != nil:
		ip, err := netip.ParseAddr(args[1])
		if err != nil {
			return "", err
		}
		p, err := port(args[2])
		if err != nil {
			return "", err
		}
		d := Dest{Iface: args[0], IP: ip, Port: p, Routed: cmd == "routed"}
		rest := args[3:]
		if cmd == "send" {
			if args[3] != "-" {
				if d.MAC, err = net.ParseMAC(args[3]); err != nil {
					return "", err
				}
			}
			rest = args[4:]
		}
		src, err := netip.ParseAddr(rest[0])
		if err != nil {
			return "", err
		}
		return "", h.clients.Send(d, src, []byte(rest[1]))

	case cmd == "close" && h.clients != nil:
		if err := h.clients.Close(); err != nil {
			return "", err
		}
		h.printers.Wait()
		now := runtime.NumGoroutine()
		for deadline := time.Now().Add(2 * time.Second); now > h.base && time.Now().Before(deadline); now = runtime.NumGoroutine() {
			time.Sleep(10 * time.Millisecond)
		}
		if now > h.base {
			buf := make([]byte, 1<<16)
			return "", fmt.Errorf("goroutines base=%d now=%d\n%s", h.base, now, buf[:runtime.Stack(buf, true)])
		}
		return fmt.Sprintf("goroutines base=%d now=%d", h.base, now), nil

	case cmd == "udplisten" && len(args) == 3:
		return "", h.udpListen(args[0], args[1], args[2])

	case cmd == "udpsend" && len(args) == 3:
		c := h.udp[args[0]]
		if c == nil {
			return "", fmt.Errorf("no socket %s", args[0])
		}
		dst, err := netip.ParseAddrPort(args[1])
		if err != nil {
			return "", err
		}
		_, err = c.WriteTo([]byte(args[2]), net.UDPAddrFromAddrPort(dst))
		return "", err

	case cmd == "capture" && len(args) == 2:
		return "", h.capture(args[0], args[1])

	case cmd == "sendframe" && len(args) == 2:
		frame, err := hex.DecodeString(args[1])
		if err != nil {
			return "", err
		}
		return "", sendRawFrame(args[0], frame)

	case cmd == "icmp" && len(args) == 1:
		return "", sendEcho(args[0])
	}
	return "", fmt.Errorf("bad command %q %q", cmd, args)
}

// udpListen opens a UDP socket like a DHCP client or another DHCP server
// would, and prints what it receives.
func (h *clientHelper) udpListen(name, addr, dev string) error {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
			if serr == nil && dev != "-" {
				serr = unix.BindToDevice(int(fd), dev)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return err
	}
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		c.Close()
		return err
	}
	h.udp[name] = c
	go func() {
		buf := make([]byte, 2048)
		for {
			n, cm, src, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			dst := "?"
			if cm != nil {
				dst = cm.Dst.String()
			}
			h.say("UDP %s %s %s %d %s", name, src, dst, n, printable(buf[:n]))
		}
	}()
	return nil
}

// capture prints every IPv4/UDP and ICMP frame the interface receives,
// checking UDP frames with ParseFrame and with the reference checksums.
func (h *clientHelper) capture(name, ifname string) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, nil)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			frame := buf[:n]
			if len(frame) < 14+20 || frame[12] != 0x08 || frame[13] != 0x00 {
				continue
			}
			ip := frame[14:]
			switch ip[9] {
			case 1:
				ihl := int(ip[0]&0xf) * 4
				if len(ip) >= ihl+2 {
					h.say("ICMP %s %s %s %d %d", name, netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])), ip[ihl], ip[ihl+1])
				}
				continue
			case 17:
			default:
				continue
			}
			f, err := ParseFrame(frame)
			if err == nil {
				err = refCheckFrame(frame)
			}
			verdict := "ok"
			if err != nil {
				verdict = "bad:" + strings.ReplaceAll(err.Error(), " ", "_")
			}
			h.say("CAP %s %s %s %s %s %d %d %s %s", name, f.SrcMAC, f.DstMAC, f.Src, f.Dst, f.TTL,
				len(f.Payload), printable(f.Payload), verdict)
		}
	}()
	return nil
}

// sendRawFrame writes one frame on an interface from a packet socket that
// receives nothing.
func sendRawFrame(ifname string, frame []byte) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	none, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return err
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, &packet.Config{Filter: none})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[:6])})
	return err
}

// sendEcho sends an ICMP echo request through the kernel's stack.
func sendEcho(addr string) error {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	msg := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
	binary.BigEndian.PutUint16(msg[2:], checksumFold(checksumAdd(0, msg)))
	_, err = c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(addr)})
	return err
}
