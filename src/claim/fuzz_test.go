package claim_test

import (
	"net/netip"
	"testing"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/wire"
)

// FuzzStep feeds any datagram through the decoder into an engine that owns
// blocks: nothing panics, out-of-pool indexes are counted, and an engine
// never holds more blocks than the pool has.
func FuzzStep(f *testing.F) {
	p := testPool(f, "10.0.128.0/24", 5)
	sw := swarmOf(p)
	add := func(m wire.Message) {
		m.Node, m.Swarm = id(200), sw
		b, _ := m.Encode()
		f.Add(b)
	}
	add(claimMsg(wire.Claim{Block: 3, Lifetime: 60}))
	add(claimMsg(wire.Claim{Block: 999999, Lifetime: 60})) // out of the pool
	add(claimMsg(wire.Claim{Block: 3, Lifetime: 0}))
	add(inquireMsg(1, 2, 3, 4294967295))
	// A count that does not match the length (the decoder refuses it).
	bad := []byte{0, 0, 0, 0, 0, 0, 0, 1, 10, 0, 128, 0, 24, 32, 1, 9, 0, 0, 0, 1, 0, 60, 0}
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := claim.New(baseConfig(id(9), p), p, newRand(1), 0)
		if err != nil {
			t.Fatal(err)
		}
		e.EndLearning(0)
		e.Want(0, 3)
		for now := time.Duration(0); now < 5*time.Second; now += 500 * time.Millisecond {
			e.Tick(now, nil)
			if m, err := wire.Decode(b); err == nil {
				e.Step(now, netip.MustParseAddr("fe80::1%bat0"), &m)
			}
		}
		if e.Tracked() > int(p.NumBlocks()) {
			t.Fatalf("tracks %d blocks of %d", e.Tracked(), p.NumBlocks())
		}
		for _, bi := range e.Blocks() {
			if bi.Index >= p.NumBlocks() {
				t.Fatalf("tracks block %d outside the pool", bi.Index)
			}
		}
	})
}
