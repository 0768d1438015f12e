package sim

// pauseTicks takes node i's tick out of the queue while the chaos run
// stalls it; resumeTicks puts it back, due now, so that the node's first
// Tick covers the whole gap. Nothing else may step the node meanwhile (the
// reach function cuts it off from the mesh; the chaos run gives it no
// client packet and calls no Act), since a step would move the tick.
func (n *Network) pauseTicks(i int) {
	if nd := n.nodes[i]; nd.up && nd.tick != nil {
		n.unqueue(nd.tick)
	}
}

func (n *Network) resumeTicks(i int) {
	if nd := n.nodes[i]; nd.up && nd.tick != nil && nd.tick.index < 0 {
		n.push(nd.tick, n.now)
	}
}
