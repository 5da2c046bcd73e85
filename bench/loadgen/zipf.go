package main

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// zipf draws ranks in [0, n) with P(rank i) = (i+1)^-s / zeta(n, s) for any
// s > 0, including the 0.99 that cache studies use and math/rand's Zipf
// (s > 1 only) cannot do. It is rejection-inversion (Hörmann and Derflinger,
// "Rejection-inversion to generate variates from monotone discrete
// distributions", 1996), as Apache Commons' RejectionInversionZipfSampler
// implements it: exact, O(1) per draw, no table. The Gray et al. method that
// YCSB uses is an approximation that over-draws ranks 2 and 3 by ~15% at
// s=0.99 (see zipf_test.go), which would flatter any cache.
//
// A zipf is read-only after construction and safe for concurrent use; each
// goroutine passes its own *rand.Rand.
type zipf struct {
	n       float64
	s       float64
	hX1     float64 // hIntegral(1.5) - 1
	hN      float64 // hIntegral(n + 0.5)
	squeeze float64 // accept without the second test when k - x <= squeeze
}

func newZipf(n uint64, s float64) *zipf {
	if n < 1 || s <= 0 {
		panic("loadgen: zipf needs n >= 1 and s > 0")
	}
	z := &zipf{n: float64(n), s: s}
	z.hX1 = z.hIntegral(1.5) - 1
	z.hN = z.hIntegral(z.n + 0.5)
	z.squeeze = 2 - z.hIntegralInverse(z.hIntegral(2.5)-z.h(2))
	return z
}

// rank returns a rank in [0, n); 0 is the most popular.
func (z *zipf) rank(r *rand.Rand) uint64 {
	for {
		u := z.hN + r.Float64()*(z.hX1-z.hN)
		x := z.hIntegralInverse(u)
		k := math.Floor(x + 0.5)
		k = max(1, min(k, z.n))
		if k-x <= z.squeeze || u >= z.hIntegral(k+0.5)-z.h(k) {
			return uint64(k) - 1
		}
	}
}

// h is the unnormalised mass x^-s.
func (z *zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

// hIntegral is an antiderivative of h: (x^(1-s) - 1) / (1-s), or log x at s=1.
func (z *zipf) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return helper2((1-z.s)*lx) * lx
}

func (z *zipf) hIntegralInverse(x float64) float64 {
	t := x * (1 - z.s)
	if t < -1 {
		t = -1 // rounding can push t just past -1
	}
	return math.Exp(helper1(t) * x)
}

// helper1 is log1p(x)/x, continuous at 0.
func helper1(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

// helper2 is expm1(x)/x, continuous at 0.
func helper2(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x*(1.0/3)*(1+0.25*x))
}

// zeta is the generalised harmonic number sum_{i=1..n} i^-s (tests use it).
func zeta(n uint64, s float64) float64 {
	var sum float64
	for i := uint64(1); i <= n; i++ {
		sum += math.Pow(float64(i), -s)
	}
	return sum
}

// scatter maps a rank to a key id with a bijection on [0, n), so the popular
// keys are spread over the key space instead of being k:0, k:1, ...; the
// multiplier is made coprime with n.
type scatter struct{ n, mul uint64 }

func newScatter(n uint64) scatter {
	mul := uint64(2654435761) % n
	for mul < 2 || gcd(mul, n) != 1 {
		mul++
	}
	return scatter{n: n, mul: mul}
}

func (s scatter) key(rank uint64) uint64 {
	hi, lo := bits.Mul64(rank, s.mul)
	return bits.Rem64(hi, lo, s.n)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
