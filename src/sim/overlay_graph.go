package sim

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Graph makers for overlay runs. Each returns the links of a connected graph
// on n nodes with every link on interface 0 of both ends; Interfaces spreads
// them over more interfaces. Node numbers are random with respect to the
// shape, since ids are drawn independently of them.

// TreeGraph is a random recursive tree: node i joins a random earlier node.
func TreeGraph(r *rand.Rand, n int) []Link {
	var ls []Link
	for i := 1; i < n; i++ {
		ls = append(ls, Link{A: r.IntN(i), B: i})
	}
	return ls
}

// SparseGraph is a random tree with random extra links until the average
// degree is about degree.
func SparseGraph(r *rand.Rand, n int, degree float64) []Link {
	ls := TreeGraph(r, n)
	return addEdges(r, n, ls, int(math.Round(degree*float64(n)/2)))
}

// DenseGraph is a random tree with each other pair linked with probability p.
func DenseGraph(r *rand.Rand, n int, p float64) []Link {
	ls := TreeGraph(r, n)
	have := edgeSet(ls)
	for i := range n {
		for j := i + 1; j < n; j++ {
			if !have[[2]int{i, j}] && r.Float64() < p {
				ls = append(ls, Link{A: i, B: j})
			}
		}
	}
	return ls
}

// GeometricGraph places nodes at random in a unit square and links those
// closer than the radius that gives about degree neighbours each, like
// radios; components are then joined by their closest pairs.
func GeometricGraph(r *rand.Rand, n int, degree float64) []Link {
	type pt struct{ x, y float64 }
	ps := make([]pt, n)
	for i := range ps {
		ps[i] = pt{r.Float64(), r.Float64()}
	}
	rad2 := degree / (math.Pi * float64(max(n-1, 1)))
	dist := func(i, j int) float64 {
		dx, dy := ps[i].x-ps[j].x, ps[i].y-ps[j].y
		return dx*dx + dy*dy
	}
	var ls []Link
	for i := range n {
		for j := i + 1; j < n; j++ {
			if dist(i, j) < rad2 {
				ls = append(ls, Link{A: i, B: j})
			}
		}
	}
	// Join components: repeatedly link the closest pair across the first
	// component and the rest.
	for {
		comp := components(n, ls)
		if len(comp) <= 1 {
			return ls
		}
		in := make([]bool, n)
		for _, i := range comp[0] {
			in[i] = true
		}
		best, bi, bj := math.Inf(1), -1, -1
		for _, i := range comp[0] {
			for j := range n {
				if !in[j] && dist(i, j) < best {
					best, bi, bj = dist(i, j), i, j
				}
			}
		}
		ls = append(ls, Link{A: bi, B: bj})
	}
}

// LineGraph is a path through the nodes in a random order: the deepest tree.
func LineGraph(r *rand.Rand, n int) []Link {
	p := r.Perm(n)
	var ls []Link
	for i := 1; i < n; i++ {
		ls = append(ls, Link{A: p[i-1], B: p[i]})
	}
	return ls
}

// RingGraph is a cycle through the nodes in a random order.
func RingGraph(r *rand.Rand, n int) []Link {
	p := r.Perm(n)
	var ls []Link
	for i := range n {
		if j := (i + 1) % n; n > 2 || j > i {
			ls = append(ls, Link{A: p[i], B: p[j]})
		}
	}
	return ls
}

// GridGraph is a w×h grid (w*h = n rounded up, extra nodes dropped) with
// nodes placed at random.
func GridGraph(r *rand.Rand, n int) []Link {
	w := max(1, int(math.Sqrt(float64(n))))
	p := r.Perm(n)
	var ls []Link
	for k := range n {
		if k%w != w-1 && k+1 < n {
			ls = append(ls, Link{A: p[k], B: p[k+1]})
		}
		if k+w < n {
			ls = append(ls, Link{A: p[k], B: p[k+w]})
		}
	}
	return ls
}

// Interfaces gives each node 1 or 2 mesh interfaces (2 with probability
// multi), puts each link end on a random interface of its node, and with
// probability parallel adds a second link over the other interfaces of two
// nodes that have two.
func Interfaces(r *rand.Rand, n int, ls []Link, multi, parallel float64) []Link {
	nif := make([]int, n)
	for i := range nif {
		nif[i] = 1
		if r.Float64() < multi {
			nif[i] = 2
		}
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		l.IfA, l.IfB = r.IntN(nif[l.A]), r.IntN(nif[l.B])
		out = append(out, l)
		if nif[l.A] == 2 && nif[l.B] == 2 && r.Float64() < parallel {
			out = append(out, Link{A: l.A, B: l.B, IfA: 1 - l.IfA, IfB: 1 - l.IfB})
		}
	}
	return out
}

func addEdges(r *rand.Rand, n int, ls []Link, want int) []Link {
	have := edgeSet(ls)
	for tries := 0; len(ls) < want && tries < 20*want; tries++ {
		i, j := r.IntN(n), r.IntN(n)
		if i == j {
			continue
		}
		i, j = min(i, j), max(i, j)
		if !have[[2]int{i, j}] {
			have[[2]int{i, j}] = true
			ls = append(ls, Link{A: i, B: j})
		}
	}
	return ls
}

func edgeSet(ls []Link) map[[2]int]bool {
	m := make(map[[2]int]bool, len(ls))
	for _, l := range ls {
		m[[2]int{min(l.A, l.B), max(l.A, l.B)}] = true
	}
	return m
}

// components of an undirected graph, each sorted, by smallest member.
func components(n int, ls []Link) [][]int {
	adj := make([][]int, n)
	for _, l := range ls {
		adj[l.A] = append(adj[l.A], l.B)
		adj[l.B] = append(adj[l.B], l.A)
	}
	seen := make([]bool, n)
	var out [][]int
	for s := range n {
		if seen[s] {
			continue
		}
		comp := []int{s}
		seen[s] = true
		for k := 0; k < len(comp); k++ {
			for _, j := range adj[comp[k]] {
				if !seen[j] {
					seen[j] = true
					comp = append(comp, j)
				}
			}
		}
		slices.Sort(comp)
		out = append(out, comp)
	}
	return out
}
