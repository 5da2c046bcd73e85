package ring

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// A placer builds an owner table (shards*reps names, primary first) for a
// member set. New is one; variants_test.go holds the alternatives measured.
type placer func(nodes []string) (owners []string, reps int)

func ringPlacer(cfg Config) placer {
	return func(nodes []string) ([]string, int) {
		r, err := New(cfg, nodes, 0)
		if err != nil {
			panic(err)
		}
		return r.owners, r.reps
	}
}

// quality summarises a placer over many random member sets.
type quality struct {
	primaryMax   float64 // worst max/mean primaries per node
	slotMax      float64 // worst max/mean owner slots per node
	joinWorst    float64 // worst (primaries moved on a join) / (shards/(N+1))
	joinMean     float64
	leaveWorst   float64 // worst (primaries moved on a leave) / (shards/N)
	leaveMean    float64
	joinLists    float64 // mean owner lists changed on a join, / shards
	leaveLists   float64
	joinSlotMove float64 // mean owner slots gained by a new holder on a join / ideal (reps·shards/(N+1))
}

func (q quality) String() string {
	return fmt.Sprintf("prim max/mean %.4f slots %.4f | join %.3f (mean %.3f) lists %.3f slotmove %.3f | leave %.3f (mean %.3f) lists %.3f",
		q.primaryMax, q.slotMax, q.joinWorst, q.joinMean, q.joinLists, q.joinSlotMove, q.leaveWorst, q.leaveMean, q.leaveLists)
}

// randomNames returns n distinct names shaped like real ones.
func randomNames(rng *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		name := fmt.Sprintf("cache-%x.shoal.internal:%d", rng.Uint32(), 11000+rng.IntN(1000))
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

func loads(owners []string, reps int, primaryOnly bool) map[string]int {
	m := map[string]int{}
	for i, o := range owners {
		if primaryOnly && i%reps != 0 {
			continue
		}
		m[o]++
	}
	return m
}

func maxOverMean(owners []string, reps, nodes int, primaryOnly bool) float64 {
	l := loads(owners, reps, primaryOnly)
	hi, total := 0, 0
	for _, v := range l {
		hi = max(hi, v)
		total += v
	}
	return float64(hi) / (float64(total) / float64(nodes))
}

// changes counts shards whose primary differs, shards whose owner list
// differs, and owner slots newly held (an owner of the shard after that was
// not one before).
func changes(a, b []string, ra, rb, shards int) (prim, lists, slots int) {
	for s := 0; s < shards; s++ {
		oa, ob := a[s*ra:(s+1)*ra], b[s*rb:(s+1)*rb]
		if oa[0] != ob[0] {
			prim++
		}
		if !slices.Equal(oa, ob) {
			lists++
		}
		for _, o := range ob {
			if !slices.Contains(oa, o) {
				slots++
			}
		}
	}
	return
}

func measure(p placer, n, shards, sets int, seed uint64) quality {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	var q quality
	for range sets {
		names := randomNames(rng, n+1)
		base := names[:n] // names[n] joins
		ob, rb := p(base)
		q.primaryMax = max(q.primaryMax, maxOverMean(ob, rb, n, true))
		q.slotMax = max(q.slotMax, maxOverMean(ob, rb, n, false))

		oj, rj := p(names)
		prim, lists, slots := changes(ob, oj, rb, rj, shards)
		r := float64(prim) / (float64(shards) / float64(n+1))
		q.joinWorst = max(q.joinWorst, r)
		q.joinMean += r / float64(sets)
		q.joinLists += float64(lists) / float64(shards) / float64(sets)
		q.joinSlotMove += float64(slots) / (float64(rj*shards) / float64(n+1)) / float64(sets)

		gone := rng.IntN(n)
		rest := slices.Delete(slices.Clone(base), gone, gone+1)
		ol, rl := p(rest)
		prim, lists, _ = changes(ob, ol, rb, rl, shards)
		r = float64(prim) / (float64(shards) / float64(n))
		q.leaveWorst = max(q.leaveWorst, r)
		q.leaveMean += r / float64(sets)
		q.leaveLists += float64(lists) / float64(shards) / float64(sets)
	}
	return q
}

var qualityNs = []int{3, 5, 10, 16}

// TestPlacementQuality guards the targets of design.md over random member
// sets: primaries max/mean ≤ 1.05 always; primaries moved on one join or
// leave ≤ 1.1× the ideal on average. The worst set is only held to 1.2×:
// at N ≥ 10 single sets reach 1.10–1.15× (see doc.go), a known shortfall.
func TestPlacementQuality(t *testing.T) {
	sets := 20
	if testing.Short() {
		sets = 5
	}
	for _, n := range qualityNs {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			q := measure(ringPlacer(Config{}), n, DefaultShards, sets, 1)
			t.Log(q)
			if q.primaryMax > 1.05 || q.slotMax > 1.05 {
				t.Errorf("max/mean primaries %.4f, slots %.4f > 1.05", q.primaryMax, q.slotMax)
			}
			if q.joinMean > 1.1 || q.leaveMean > 1.1 {
				t.Errorf("mean moved on join %.3f, leave %.3f > 1.1× ideal", q.joinMean, q.leaveMean)
			}
			if q.joinWorst > 1.2 || q.leaveWorst > 1.2 {
				t.Errorf("worst moved on join %.3f, leave %.3f > 1.2× ideal", q.joinWorst, q.leaveWorst)
			}
		})
	}
}
