package dhcp4

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/lease"
	"ddhcpd/src/pool"
)

// benchFill is how many new clients arrive before the table starts afresh:
// the shape of scripts/bench-dhcp.sh's new-client runs (a fresh server,
// up to some thousand clients), and it keeps the pool from running out.
const benchFill = 8192

// benchServer is a node serving 10.0.0.0/16 in 510 blocks of 128, less
// 10.0.255.0/24, as in scripts/bench-dhcp.sh.
func benchServer(b *testing.B) *Server {
	b.Helper()
	p, err := pool.New(netip.MustParsePrefix("10.0.0.0/16"), 7, []pool.Range{
		{First: netip.MustParseAddr("10.0.255.0"), Last: netip.MustParseAddr("10.0.255.255")}})
	if err != nil {
		b.Fatal(err)
	}
	tab := lease.NewTable(p)
	loc := map[uint32]Location{}
	for i := range uint32(510) {
		tab.AddBlock(i)
		loc[i] = Location{Kind: Ours}
	}
	s, err := New(Config{ServerID: netip.MustParseAddr("10.0.255.254"), LeaseTime: time.Hour,
		Options: []Option{{Code: 3, Data: []byte{10, 0, 255, 254}}}}, tab, &fakeBlocks{loc: loc})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// rawRequest appends to buf a relayed DHCP message as perfdhcp sends it:
// giaddr 10.0.255.1, one hop, chaddr from n, a parameter request list, and
// for a REQUEST the server identifier and requested address.
func rawRequest(buf []byte, mt dhcpv4.MessageType, n uint32, req netip.Addr) []byte {
	var hdr [236]byte
	hdr[0], hdr[1], hdr[2], hdr[3] = 1, 1, 6, 1
	binary.BigEndian.PutUint32(hdr[4:], n)
	copy(hdr[24:28], []byte{10, 0, 255, 1})
	hdr[28], hdr[29] = 0x02, 0x42
	binary.BigEndian.PutUint32(hdr[30:], n)
	b := append(buf[:0], hdr[:]...)
	b = append(b, 99, 130, 83, 99, 53, 1, byte(mt), 55, 4, 1, 3, 6, 15)
	if mt == dhcpv4.MessageTypeRequest {
		b = append(b, 54, 4, 10, 0, 255, 254, 50, 4)
		b = append(b, req.AsSlice()...)
	}
	return append(b, 255)
}

// BenchmarkNewClient is the new-client path of the daemon without its
// sockets: every iteration is a new client's DISCOVER and REQUEST, parsed
// from bytes, decided, and the OFFER and ACK encoded. The lease table
// starts afresh every benchFill clients.
func BenchmarkNewClient(b *testing.B) {
	var s *Server
	var buf []byte
	now := time.Second
	b.ReportAllocs()
	for i := range b.N {
		if i%benchFill == 0 {
			b.StopTimer()
			s = benchServer(b)
			b.StartTimer()
		}
		now += 100 * time.Microsecond
		n := uint32(i)
		buf = rawRequest(buf, dhcpv4.MessageTypeDiscover, n, netip.Addr{})
		m, err := dhcpv4.FromBytes(buf)
		if err != nil {
			b.Fatal(err)
		}
		off := s.Handle(now, Request{Msg: m, Iface: "c0"})
		if off.Action != Reply {
			b.Fatalf("client %d: DISCOVER: %+v", i, off)
		}
		Encode(off.Reply)
		a, _ := netip.AddrFromSlice(off.Reply.YourIPAddr.To4())
		buf = rawRequest(buf, dhcpv4.MessageTypeRequest, n, a)
		if m, err = dhcpv4.FromBytes(buf); err != nil {
			b.Fatal(err)
		}
		ack := s.Handle(now, Request{Msg: m, Iface: "c0"})
		if ack.Action != Reply || ack.Reply.MessageType() != dhcpv4.MessageTypeAck {
			b.Fatalf("client %d: REQUEST for %v: %+v", i, a, ack)
		}
		Encode(ack.Reply)
	}
}
