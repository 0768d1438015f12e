package node

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"ddhcpd/src/claim"
	"ddhcpd/src/dhcp4"
	"ddhcpd/src/wire"
)

// A DISCOVER with no block to offer from is parked, and the engine is asked
// at once: the INQUIRE for a new block goes out with the same Ready. When
// the block becomes ours (its inquiries unanswered), the parked DISCOVERs
// are offered addresses in the Ready that announces the block.
func TestParkedDiscoverAnswered(t *testing.T) {
	h := newHarness(t)
	if owned := h.n.Engine().Owned(); len(owned) != 0 {
		t.Fatalf("the node owns %v before any client", owned)
	}
	r := h.client(time.Second, discover(t, mac(1), xid(1)), true)
	if len(r.Replies) != 0 {
		t.Fatalf("DISCOVER without a block answered: %+v", r.Replies)
	}
	if got := h.n.Counters().DHCPDrop[dhcp4.DropNothing]; got != 1 {
		t.Errorf("DHCPDrop[%s] = %d, want 1", dhcp4.DropNothing, got)
	}
	if h.n.Parked() != 1 {
		t.Errorf("Parked %d, want 1", h.n.Parked())
	}
	inq := ofCommand(decodeMesh(t, r), wire.CmdInquire)
	if len(inq) != 1 || len(inq[0].Inquiries) != 1 {
		t.Fatalf("INQUIREs with the dropped DISCOVER: %+v, want one for one block", inq)
	}
	block := inq[0].Inquiries[0]
	if got := h.n.Engine().Block(block).State; got != claim.Claiming {
		t.Errorf("block %d is %v, want claiming", block, got)
	}
	if next := h.n.Next(); next > 2*time.Second {
		t.Errorf("Next %v, want the next inquiry by 2s", next)
	}

	// A second client, and the first one's retransmission (parked once,
	// the newest copy kept).
	h.client(1500*time.Millisecond, discover(t, mac(2), xid(2)), true)
	h.client(1600*time.Millisecond, discover(t, mac(1), xid(3)), true)
	if h.n.Parked() != 2 {
		t.Errorf("Parked %d, want 2", h.n.Parked())
	}

	var inquiries []time.Duration
	var owned Ready
	h.runEach(4*time.Second, func(now time.Duration, r Ready) {
		for _, m := range ofCommand(decodeMesh(t, r), wire.CmdInquire) {
			if m.Inquiries[0] == block {
				inquiries = append(inquiries, now)
			}
		}
		if len(ourBlocks(r.Claims)) > 0 {
			owned = r
		} else if len(r.Replies) > 0 {
			t.Errorf("replies before the block is ours: %+v", r.Replies)
		}
	})
	if want := []time.Duration{2 * time.Second, 3 * time.Second}; !reflect.DeepEqual(inquiries, want) {
		t.Errorf("more INQUIREs for block %d at %v, want at %v (3 in all)", block, inquiries, want)
	}
	if got := ourBlocks(owned.Claims); len(got) != 1 || got[0] != block {
		t.Fatalf("blocks owned by 4s: %v, want %d", got, block)
	}
	claims := ofCommand(decodeMesh(t, owned), wire.CmdUpdateClaim)
	if len(claims) != 1 || claims[0].Claims[0].Block != block {
		t.Errorf("UPDATECLAIM when the block became ours: %+v", claims)
	}
	if len(owned.Replies) != 2 {
		t.Fatalf("%d replies with the block, want the 2 parked OFFERs", len(owned.Replies))
	}
	seen := map[netip.Addr]bool{}
	for i, want := range []struct {
		hw  byte
		xid dhcpv4.TransactionID
	}{{1, xid(3)}, {2, xid(2)}} {
		m := decodeReply(t, owned.Replies[i])
		a := yiaddr(m)
		if m.MessageType() != dhcpv4.MessageTypeOffer || m.ClientHWAddr.String() != mac(want.hw).String() || m.TransactionID != want.xid {
			t.Errorf("reply %d: %v to %v xid %v, want an OFFER to %v xid %v", i, m.MessageType(), m.ClientHWAddr, m.TransactionID, mac(want.hw), want.xid)
		}
		if b, _ := testPool(t).Block(a); b != block || seen[a] {
			t.Errorf("offered %v (block %d), want a fresh address of block %d", a, b, block)
		}
		seen[a] = true
	}
	if c := h.n.Counters(); c.DHCPParkedAnswered != 2 || c.DHCPTxType[dhcpv4.MessageTypeOffer] != 2 {
		t.Errorf("DHCPParkedAnswered %d, OFFERs %d; want 2, 2", c.DHCPParkedAnswered, c.DHCPTxType[dhcpv4.MessageTypeOffer])
	}
	if h.n.Parked() != 0 {
		t.Errorf("Parked %d after the replay, want 0", h.n.Parked())
	}
}

// A parked DISCOVER is forgotten after a few seconds: the client has sent
// another by then, and an OFFER for an old transaction is useless.
func TestParkedDiscoverExpires(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Claim.LearningTime = 10 * time.Second })
	r := h.client(time.Second, discover(t, mac(1), xid(1)), true)
	if len(r.Replies) != 0 || h.n.Parked() != 1 {
		t.Fatalf("while learning: %d replies, %d parked; want 0, 1", len(r.Replies), h.n.Parked())
	}
	if next := h.n.Next(); next > 5*time.Second+time.Nanosecond {
		t.Errorf("Next %v, want the parked DISCOVER's expiry by 5s", next)
	}
	h.run(5 * time.Second)
	if h.n.Parked() != 1 {
		t.Errorf("Parked %d at 5s, want 1 (4s old)", h.n.Parked())
	}
	h.run(5*time.Second + time.Nanosecond)
	if h.n.Parked() != 0 {
		t.Errorf("Parked %d after 4s, want 0", h.n.Parked())
	}
	// The client's demand outlives it: a block is claimed after learning,
	// but nobody is offered anything.
	rs := h.run(15 * time.Second)
	if len(ourBlocks(claimEvents(rs...))) == 0 {
		t.Error("no block claimed after learning for the client that asked")
	}
	if got := replies(rs...); len(got) != 0 || h.n.Counters().DHCPParkedAnswered != 0 {
		t.Errorf("expired DISCOVER answered: %d replies", len(got))
	}
}

// Parking is bounded.
func TestParkedBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Claim.LearningTime = 10 * time.Second })
	for i := range maxParked + 10 {
		h.client(time.Second, discover(t, mac(byte(i)), xid(byte(i))), true)
	}
	if h.n.Parked() != maxParked {
		t.Errorf("Parked %d, want %d", h.n.Parked(), maxParked)
	}
}

// Only a DISCOVER that got nothing is parked, not a REQUEST.
func TestRequestNotParked(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Claim.LearningTime = 10 * time.Second })
	a := testPool(t).Addr(4, 1)
	h.client(time.Second, selecting(t, mac(1), xid(1), a), true)
	if h.n.Parked() != 0 {
		t.Errorf("Parked %d after a REQUEST, want 0", h.n.Parked())
	}
}

// The age bound of parked DISCOVERs holds however late the driver ticks: a
// block that becomes ours in a late tick is not offered to a DISCOVER
// parked longer ago than parkedAge.
func TestParkedDiscoverNotReplayedWhenStale(t *testing.T) {
	h := newHarness(t)
	h.client(time.Second, discover(t, mac(1), xid(1)), true) // INQUIRE 1
	h.tick(2 * time.Second)                                  // INQUIRE 2
	h.tick(3 * time.Second)                                  // INQUIRE 3
	// The driver is late: the block becomes ours only at 5.5s, when the
	// DISCOVER is 4.5s old.
	r := h.tick(5500 * time.Millisecond)
	if len(ourBlocks(r.Claims)) != 1 {
		t.Fatalf("no block owned at 5.5s: %+v", r.Claims)
	}
	if len(r.Replies) != 0 || h.n.Counters().DHCPParkedAnswered != 0 {
		t.Errorf("a DISCOVER parked %v ago was answered: %d replies", 4500*time.Millisecond, len(r.Replies))
	}
	if h.n.Parked() != 0 {
		t.Errorf("Parked %d, want 0", h.n.Parked())
	}
}
