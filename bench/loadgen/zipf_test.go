package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The sampler must match the zipf probability mass 1/(i+1)^s / zeta(n, s)
// for the head ranks, where almost all of a cache's hits come from.
func TestZipfMatchesMass(t *testing.T) {
	cases := map[string]struct {
		n     uint64
		theta float64
	}{
		"s=0.99 n=1e4": {10_000, 0.99},
		"s=0.5 n=1e3":  {1_000, 0.5},
		"s=0.8 n=1e5":  {100_000, 0.8},
		"s=1 n=1e3":    {1_000, 1},
		"s=1.2 n=1e6":  {1_000_000, 1.2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			z := newZipf(tc.n, tc.theta)
			zn := zeta(tc.n, tc.theta)
			r := rand.New(rand.NewPCG(1, 2))
			const draws = 2_000_000
			counts := make([]int, 10)
			// The body matters too: the share of draws below rank n/100.
			cut := tc.n / 100
			below := 0
			for range draws {
				k := z.rank(r)
				if k >= tc.n {
					t.Fatalf("rank %d out of [0, %d)", k, tc.n)
				}
				if k < cut {
					below++
				}
				if k < uint64(len(counts)) {
					counts[k]++
				}
			}
			want := zeta(cut, tc.theta) / zn
			if got := float64(below) / draws; math.Abs(got-want) > 5*math.Sqrt(want*(1-want)/draws) {
				t.Errorf("P(rank < %d) = %.5f, want %.5f", cut, got, want)
			}
			for i, c := range counts {
				want := math.Pow(float64(i+1), -tc.theta) / zn
				got := float64(c) / draws
				// Rejection-inversion is exact: allow 5 standard deviations.
				if math.Abs(got-want) > 5*math.Sqrt(want/draws) {
					t.Errorf("P(rank %d) = %.5f, want %.5f", i, got, want)
				}
			}
		})
	}
}

func TestScatterIsBijection(t *testing.T) {
	for _, n := range []uint64{2, 7, 1000, 4096, 1_000_003} {
		s := newScatter(n)
		seen := make([]bool, n)
		for i := range n {
			k := s.key(i)
			if k >= n || seen[k] {
				t.Fatalf("n=%d: rank %d maps to %d, out of range or repeated", n, i, k)
			}
			seen[k] = true
		}
	}
}

func BenchmarkZipfRank(b *testing.B) {
	z := newZipf(1_000_000, 0.99)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		_ = z.rank(r)
	}
}
