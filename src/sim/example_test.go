package sim_test

import (
	"fmt"
	"net/netip"
	"time"

	"ddhcpd/src/claim"
	"ddhcpd/src/sim"
)

// Ten nodes start at once, a partition splits them and heals; after two
// block timeouts without loss every node owns a block and every view agrees.
func Example() {
	net, err := sim.New(sim.Config{
		Nodes:   10,
		Pool:    netip.MustParsePrefix("10.116.224.0/20"),
		SizeExp: 2,
		Claim: claim.Config{
			SpareLeases:     2,
			BlockTimeout:    6 * time.Second,
			InquireInterval: 500 * time.Millisecond,
			LearningTime:    0,
		},
		LatencyMin: time.Millisecond,
		LatencyMax: 100 * time.Millisecond,
		Loss:       0.1,
		Seed:       42,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := net.StartAll(); err != nil {
		fmt.Println(err)
		return
	}
	net.RunFor(10 * time.Second)
	net.Partition([]int{0, 1, 2, 3}, []int{4, 5, 6, 7, 8, 9})
	net.RunFor(30 * time.Second)
	net.Heal()
	_ = net.SetLoss(0)
	net.RunFor(12 * time.Second)
	fmt.Println("invariants:", net.Check(), net.CheckSupply())
	fmt.Println("datagrams sent:", net.Total().Sent > 0)
	// Output:
	// invariants: <nil> <nil>
	// datagrams sent: true
}
