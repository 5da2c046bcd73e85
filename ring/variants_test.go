package ring

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
)

// boundedRing is the placement this package did not choose, kept to
// reproduce the comparison in doc.go: Mirrokni et al.'s consistent hashing
// with bounded loads. Each member has vnodes points on a 64-bit circle;
// shards are taken in order 0..S-1, and each walks clockwise from its own
// point to the first member still under the cap ⌊c·mean⌋ (c = +Inf gives the
// plain ring). Replicas are the next distinct members on the walk, uncapped.
func boundedRing(vnodes int, c float64, reps int, shards int) placer {
	return func(nodes []string) ([]string, int) {
		nodes = slices.Sorted(slices.Values(nodes))
		type point struct {
			pos  uint64
			node int
		}
		var pts []point
		for i, n := range nodes {
			for v := range vnodes {
				pts = append(pts, point{xxh64([]byte(n + "#" + strconv.Itoa(v))), i})
			}
		}
		slices.SortFunc(pts, func(a, b point) int {
			if a.pos != b.pos {
				if a.pos < b.pos {
					return -1
				}
				return 1
			}
			return a.node - b.node
		})
		r := min(reps, len(nodes))
		limit := math.MaxInt
		if !math.IsInf(c, 1) {
			limit = slotCap(c, shards, len(nodes))
		}
		load := make([]int, len(nodes))
		owners := make([]string, shards*r)
		for s := range shards {
			seed := shardSeed(s)
			start, _ := slices.BinarySearchFunc(pts, seed, func(p point, t uint64) int {
				if p.pos < t {
					return -1
				}
				if p.pos > t {
					return 1
				}
				return 0
			})
			got := owners[s*r : s*r : (s+1)*r]
			for j := 0; len(got) < r; j++ {
				p := pts[(start+j)%len(pts)]
				name := nodes[p.node]
				if slices.Contains(got, name) {
					continue
				}
				if len(got) == 0 {
					if load[p.node] >= limit {
						continue
					}
					load[p.node]++
				}
				got = append(got, name)
			}
		}
		return owners, r
	}
}

// TestVariants logs the measurements recorded in doc.go. Run with
// go test -run Variants -v ./ring.
func TestVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement only")
	}
	variants := []struct {
		name string
		p    placer
	}{
		{"rendezvous+stable c=1.05 (chosen)", ringPlacer(Config{})},
		{"rendezvous, no cap", ringPlacer(Config{LoadFactor: 1e9})},
		{"ring 160 vnodes, no cap", boundedRing(160, math.Inf(1), 2, DefaultShards)},
		{"ring 1000 vnodes, no cap", boundedRing(1000, math.Inf(1), 2, DefaultShards)},
		{"ring 160 vnodes, bounded c=1.05", boundedRing(160, 1.05, 2, DefaultShards)},
		{"ring 1000 vnodes, bounded c=1.05", boundedRing(1000, 1.05, 2, DefaultShards)},
	}
	for _, v := range variants {
		for _, n := range qualityNs {
			t.Run(fmt.Sprintf("%s/N=%d", v.name, n), func(t *testing.T) {
				t.Log(measure(v.p, n, DefaultShards, 20, 1))
			})
		}
	}
}
