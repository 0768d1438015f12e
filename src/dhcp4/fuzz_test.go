package dhcp4

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds arbitrary bytes through the request path as the daemon
// does (parse, decide, encode the reply): it must never panic, and every
// reply must encode to a parsable message of at least 300 bytes.
func FuzzHandle(f *testing.F) {
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease,
		dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeInform} {
		m, _ := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0, 1}), dhcpv4.WithMessageType(mt),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP{10, 0, 0, 20})),
			dhcpv4.WithClientIP(net.IP{10, 0, 0, 21}))
		f.Add(m.ToBytes())
	}
	// The C ddhcpd's crash input: PAD bytes between options.
	pad := make([]byte, 240)
	pad[0], pad[1], pad[2] = 1, 1, 6
	copy(pad[28:], []byte{2, 0, 0, 0, 0, 1})
	copy(pad[236:], []byte{99, 130, 83, 99})
	f.Add(append(pad, 53, 1, 1, 0, 0, 0, 0, 61, 7, 1, 2, 0, 0, 0, 0, 1, 255))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEnv(t)
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		for i := range 2 { // twice: the second sees the first's lease
			d := e.s.Handle(time.Duration(i)*time.Second, Request{Msg: m, Iface: "c0", SrcMAC: m.ClientHWAddr})
			if d.Action != Reply {
				continue
			}
			out := Encode(d.Reply)
			if len(out) < 300 {
				t.Fatalf("reply of %d bytes", len(out))
			}
			if _, err := dhcpv4.FromBytes(out); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
		}
	})
}
