package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"ddhcpd/src/control"
	"ddhcpd/src/wire"
)

// TestMeshSpoofing: on the mesh, a datagram that carries the router's own
// node id (a spoof, or a state directory copied between routers) and one
// from a source that is not link-local are dropped and counted; neither
// changes the router's blocks.
func TestMeshSpoofing(t *testing.T) {
	m := newMeshLab(t, []string{"r1"}, "-L", "-inquire-interval", "400ms")
	r1 := m.start("r1")
	eventually(t, 10*time.Second, "r1 owns a block", func() error {
		if len(r1.owns(t)) == 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	owned := r1.owns(t)
	// An attacker on the mesh link.
	x := m.lab.NS("x")
	m.lab.Veth(x, "eth0", m.hub, "mx")
	m.hub.SetMaster("mx", "br0")
	x.AddAddr("eth0", "2001:db8::99/64")
	x.WaitLinkLocal("eth0", 5*time.Second)
	time.Sleep(500 * time.Millisecond) // the global address's DAD is off; let routes settle

	var st control.Status
	if err := control.Call(r1.sock, "status", nil, &st); err != nil {
		t.Fatal(err)
	}
	own, err := wire.ParseNodeID(st.Node)
	if err != nil {
		t.Fatal(err)
	}
	pool := wire.Swarm{Prefix: mustAddr("10.0.0.0"), PrefixLen: 24, BlockSize: 8}
	// A claim with r1's own id for r1's block, and one from a higher id
	// sent from a global source: either would take the block if accepted.
	spoof := wire.Message{Header: wire.Header{Node: own, Swarm: pool, Command: wire.CmdUpdateClaim},
		Claims: []wire.Claim{{Block: owned[0], Lifetime: 60}}}
	higher := spoof
	higher.Node = wire.NodeID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, c := range []struct {
		src string
		msg wire.Message
	}{{":", spoof}, {"2001:db8::99", higher}} {
		b, err := c.msg.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out, err := x.Run(context.Background(), m.probe, "-i", "eth0", "udp6", c.src, "ff02::1234", "1234", hex.EncodeToString(b))
		if err != nil {
			t.Fatalf("send: %v %s", err, out)
		}
	}
	eventually(t, 5*time.Second, "both dropped and counted", func() error {
		s := r1.stats(t)
		if s["drop.own_id"] < 1 || s["drop.not_link_local"] < 1 {
			return fmt.Errorf("%v", s)
		}
		return nil
	})
	if got := r1.owns(t); len(got) != len(owned) || got[0] != owned[0] {
		t.Errorf("blocks changed: %v, had %v", got, owned)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
