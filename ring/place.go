package ring

import "math"

// place computes the owner table: owners[s*reps+k] is the index (into the
// sorted member list) of the k-th owner of shard s.
//
// Each shard ranks the members by rendezvous score, and each member ranks the
// shards by the same score. Owners are chosen one position at a time (primary,
// then first replica, ...); for position k every member may hold at most
// slotCap(c, (k+1)·shards, n) slots in positions 0..k. Within a position the
// assignment is the stable matching of shards to capped members, found by
// deferred acceptance: a shard proposes to its best member that is not yet
// one of its owners, and a full member keeps the shards it scores highest,
// rejecting the lowest, which then propose to their next member.
//
// Because both sides rank by the same pair score, the stable matching is
// unique: it does not depend on the order in which shards propose, and it
// equals the greedy "take pairs in descending score" assignment. That is what
// keeps movement low: a member that is over its cap always sheds the same
// shards (its lowest-scored ones), so a join or leave only disturbs the
// shards it directly gains or loses plus a short chain of cap overflows.
func place(shards, reps int, c float64, hashes []uint64) []int32 {
	n := len(hashes)
	owners := make([]int32, shards*reps)
	if n == 0 || reps == 0 {
		return owners
	}
	seeds := make([]uint64, shards)
	for s := range seeds {
		seeds[s] = shardSeed(s)
	}
	slots := make([]int, n) // slots held in positions decided so far
	held := make([]minHeap, n)
	cur := make([]cand, shards)
	queue := make([]int32, 0, shards)
	var exhausted []int32

	for k := 0; k < reps; k++ {
		limit := slotCap(c, (k+1)*shards, n)
		for i := range held {
			held[i] = held[i][:0]
		}
		queue = queue[:0]
		for s := shards - 1; s >= 0; s-- { // popped from the end: shard 0 first
			cur[s] = cand{idx: -1}
			queue = append(queue, int32(s))
		}
		exhausted = exhausted[:0]
		for len(queue) > 0 {
			s := int(queue[len(queue)-1])
			queue = queue[:len(queue)-1]
			next, ok := nextCand(cur[s], seeds[s], hashes, owners[s*reps:s*reps+k])
			if !ok {
				exhausted = append(exhausted, int32(s))
				continue
			}
			cur[s] = next
			room := limit - slots[next.idx]
			h := &held[next.idx]
			e := entry{score: next.score, shard: int32(s)}
			switch {
			case len(*h) < room:
				h.push(e)
			case room > 0 && e.beats((*h)[0]):
				queue = append(queue, (*h)[0].shard)
				h.replaceMin(e)
			default:
				queue = append(queue, int32(s))
			}
		}
		for i := range held {
			for _, e := range held[i] {
				owners[int(e.shard)*reps+k] = int32(i)
			}
			slots[i] += len(held[i])
		}
		// Only when the caps cannot be met (members ≈ replicas) does a shard
		// run out of members; it then goes to its least-loaded eligible
		// member, ties to the better score. Shards are visited in a fixed
		// order, so this stays deterministic.
		for j := len(exhausted) - 1; j >= 0; j-- {
			s := int(exhausted[j])
			prev := owners[s*reps : s*reps+k]
			best := cand{idx: -1}
			for i, hh := range hashes {
				if contains(prev, int32(i)) {
					continue
				}
				c := cand{score: score(seeds[s], hh), idx: i}
				if best.idx < 0 || slots[i] < slots[best.idx] ||
					slots[i] == slots[best.idx] && c.before(best) {
					best = c
				}
			}
			owners[s*reps+k] = int32(best.idx)
			slots[best.idx]++
		}
	}
	return owners
}

// slotCap is the most slots one of n members may hold out of total: the
// bounded-load cap ⌊c·mean⌋, never below ⌈mean⌉ so that the shards always fit.
// The floor (rather than ⌈c·mean⌉) keeps max/mean ≤ c exactly.
func slotCap(c float64, total, n int) int {
	mean := float64(total) / float64(n)
	lo := (total + n - 1) / n
	capped := int(math.Floor(c * mean))
	return max(lo, capped)
}

// cand is a shard's current choice of member; idx -1 means none yet.
type cand struct {
	score uint64
	idx   int
}

// before reports whether a ranks ahead of b in a shard's preference order:
// higher score first, ties (practically never) to the lower member index.
func (a cand) before(b cand) bool {
	return a.score > b.score || a.score == b.score && a.idx < b.idx
}

// nextCand returns the best member ranked after cur that is not in skip.
// It rescans all members instead of keeping sorted preference lists: few
// shards are ever rejected, so this is cheaper than sorting S lists.
func nextCand(cur cand, seed uint64, hashes []uint64, skip []int32) (cand, bool) {
	best := cand{idx: -1}
	for i, h := range hashes {
		c := cand{score: score(seed, h), idx: i}
		if cur.idx >= 0 && !cur.before(c) {
			continue
		}
		if best.idx >= 0 && !c.before(best) {
			continue
		}
		if contains(skip, int32(i)) {
			continue
		}
		best = c
	}
	return best, best.idx >= 0
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// entry is a shard held by a member, ranked by the member's score for it.
type entry struct {
	score uint64
	shard int32
}

// beats reports whether a member prefers a over b: higher score, ties to the
// lower shard number.
func (a entry) beats(b entry) bool {
	return a.score > b.score || a.score == b.score && a.shard < b.shard
}

// minHeap keeps a member's held shards with the least preferred at [0].
type minHeap []entry

func (h *minHeap) push(e entry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[p].beats(s[i]) {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h minHeap) replaceMin(e entry) {
	h[0] = e
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[l].beats(h[r]) {
			m = r
		}
		if !h[i].beats(h[m]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
