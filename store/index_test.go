package store

import (
	"math/rand/v2"
	"testing"
)

// TestIndexAgainstMap drives insert/remove with colliding hashes and
// checks every entry stays reachable after backward-shift deletion.
func TestIndexAgainstMap(t *testing.T) {
	cases := map[string]func(r *rand.Rand) uint32{
		"spread":    func(r *rand.Rand) uint32 { return r.Uint32() },
		"colliding": func(r *rand.Rand) uint32 { return r.Uint32N(16) * 2654435761 },
		// Homes in the last slots: probe chains wrap around to slot 0.
		"wrapping": func(r *rand.Rand) uint32 { return ^r.Uint32N(1 << 20) },
	}
	for name, hash := range cases {
		t.Run(name, func(t *testing.T) {
			x := newIndex(newArena(), minIndexSlots)
			model := map[uint32]uint32{} // ref -> hash
			r := rand.New(rand.NewPCG(1, 2))
			next := uint32(1)
			for i := 0; i < 20000; i++ {
				if r.IntN(3) > 0 || len(model) == 0 {
					h := hash(r)
					x.insert(h, next)
					model[next] = h
					next++
				} else {
					for ref, h := range model {
						slot, ok := x.findRef(h, ref)
						if !ok {
							t.Fatalf("ref %d lost", ref)
						}
						x.remove(slot)
						delete(model, ref)
						break
					}
				}
				if i%1000 == 0 {
					for ref, h := range model {
						if _, ok := x.findRef(h, ref); !ok {
							t.Fatalf("step %d: ref %d unreachable", i, ref)
						}
					}
				}
			}
			if x.count != len(model) {
				t.Fatalf("count %d, model %d", x.count, len(model))
			}
		})
	}
}
