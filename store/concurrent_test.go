package store

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"shoal/internal/testutil"
)

// TestConcurrent hammers shared and private keys from several goroutines
// while the store evicts, steals and automoves pages and reclaims; run it
// with -race.
// Every value read must be one some writer stored for that key.
func TestConcurrent(t *testing.T) {
	t.Run("small", func(t *testing.T) {
		hammer(t, Config{MemoryLimit: 4 << 20, MaxItemSize: 256 << 10}, 100_000)
	})
	// Chunked items: heads and tails evicted, moved and freed together.
	t.Run("chunked", func(t *testing.T) {
		hammer(t, Config{MemoryLimit: 8 << 20}, 600_000)
	})
}

// hammer runs the workload of TestConcurrent; one write in 50 is big bytes.
func hammer(t *testing.T, cfg Config, big int) {
	s, clk := newTestStore(t, cfg)
	const workers = 6
	// The full hammer (20000 operations a worker, ~7 s of both cores
	// alone, 20 s beside other packages) is a soak: SHOAL_TEST_LONG=1,
	// as in CI. By default a quarter of it, the same mix of operations.
	iters := 5000
	switch {
	case testutil.LongOn():
		iters = 20000
	case testing.Short():
		iters = 2000
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var dst []byte
			for i := 0; i < iters; i++ {
				var k []byte
				if r.IntN(2) == 0 {
					k = key(r.IntN(50)) // shared
				} else {
					k = strconv.AppendInt([]byte("w"+strconv.Itoa(w)+":"), int64(r.IntN(5000)), 10)
				}
				switch op := r.IntN(10); {
				case op < 4:
					var it Item
					var res Result
					it, dst, res = s.Get(k, nil, dst[:0])
					if res == Hit && !valid(k, dst) {
						t.Errorf("key %s: corrupt value %q (%+v)", k, dst, it)
						return
					}
				case op < 7:
					n := 1 + r.IntN(3000)
					if r.IntN(50) == 0 {
						n = big + r.IntN(big/2) // other classes, page stealing
					}
					s.Set(k, value(k, n), &SetOptions{Exptime: clk.Now() + int64(r.IntN(5))})
				case op < 8:
					s.Delete(k, nil)
				case op < 9:
					s.Touch(k, 0)
				default:
					s.Arith(k, &ArithOptions{Delta: 1})
				}
				if w == 0 && i%1000 == 0 {
					clk.Advance(1)
					s.reclaim()
					s.automove()
				}
			}
		}(w)
	}
	wg.Wait()
	st := s.Stats()
	if st.Pages*st.PageSize > cfg.MemoryLimit {
		t.Fatalf("over limit: %+v", st)
	}
	var items int64
	for _, c := range st.Classes {
		items += c.Items
	}
	if items != st.CurrItems {
		t.Fatalf("class items %d != CurrItems %d", items, st.CurrItems)
	}
	t.Logf("items %d evictions %d reclaimed %d pages %d", st.CurrItems, st.Evictions, st.Reclaimed, st.Pages)
}

// value is n bytes derived from the key so readers can check integrity.
func value(k []byte, n int) []byte {
	v := bytes.Repeat(k, n/len(k)+1)[:n]
	return v
}

// valid accepts values written by value() and incr results on them.
func valid(k, v []byte) bool {
	if len(v) == 0 {
		return true
	}
	if bytes.Equal(v, value(k, len(v))) {
		return true
	}
	_, ok := parseUint(v)
	return ok
}
