package store

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"
)

func TestEvictionKeepsLimitAndHotKeys(t *testing.T) {
	const limit = 4 << 20
	s, _ := newTestStore(t, Config{MemoryLimit: limit})
	val := bytes.Repeat([]byte("v"), 100)
	const hot = 200
	for i := 0; i < hot; i++ {
		mustSet(t, s, string(key(i)), string(val), nil)
	}
	written := hot * (hdrSize + 10 + len(val))
	var dst []byte
	for i := hot; written < 10*limit; i++ {
		if res, _ := s.Set(key(i), val, nil); res != Stored {
			t.Fatalf("set %d: %v", i, res)
		}
		written += hdrSize + len(key(i)) + len(val)
		if i%500 == 0 {
			for h := 0; h < hot; h++ {
				_, dst, _ = s.Get(key(h), nil, dst[:0])
			}
		}
	}
	st := s.Stats()
	if st.Pages*st.PageSize > limit {
		t.Fatalf("pages %d x %d over limit %d", st.Pages, st.PageSize, limit)
	}
	if st.Evictions == 0 || st.EvictedUnfetched == 0 {
		t.Fatalf("no evictions: %+v", st)
	}
	hotHits, coldHits := 0, 0
	for i := 0; i < hot; i++ {
		if _, r := get(s, string(key(i))); r == Hit {
			hotHits++
		}
		if _, r := get(s, string(key(hot+i))); r == Hit {
			coldHits++
		}
	}
	t.Logf("hot survivors %d/%d, early cold survivors %d/%d, items %d, evictions %d", hotHits, hot, coldHits, hot, st.CurrItems, st.Evictions)
	if hotHits < hot*9/10 || coldHits > hot/10 {
		t.Fatalf("CLOCK did not favour hot keys: hot %d cold %d", hotHits, coldHits)
	}
}

func TestNoEvict(t *testing.T) {
	s, clk := newTestStore(t, Config{MemoryLimit: 2 << 20, NoEvict: true})
	val := make([]byte, 1000)
	var res Result
	n := 0
	for ; n < 10000; n++ {
		if res, _ = s.Set(key(n), val, &SetOptions{Exptime: t0 + 10}); res != Stored {
			break
		}
	}
	if res != NoMemory {
		t.Fatalf("got %v after %d items", res, n)
	}
	if st := s.Stats(); st.Evictions != 0 || st.CurrItems != int64(n) {
		t.Fatalf("%+v", st)
	}
	// Expired items are still reclaimed under NoEvict.
	clk.Advance(10)
	if res, _ := s.Set(key(n), val, nil); res != Stored {
		t.Fatalf("after expiry: %v", res)
	}
	if st := s.Stats(); st.Reclaimed == 0 {
		t.Fatalf("no reclaim: %+v", st)
	}
}

func TestSlabRebalance(t *testing.T) {
	const limit = 4 << 20
	s, _ := newTestStore(t, Config{MemoryLimit: limit})
	small := make([]byte, 20)
	for i := 0; i < 200000; i++ {
		if res, _ := s.Set(key(i), small, nil); res != Stored {
			t.Fatalf("small %d: %v", i, res)
		}
	}
	big := make([]byte, 100_000)
	for i := 0; i < 50; i++ {
		if res, _ := s.Set([]byte("big"+string(key(i))), big, nil); res != Stored {
			t.Fatalf("big %d: %v", i, res)
		}
	}
	st := s.Stats()
	if st.Pages*st.PageSize > limit {
		t.Fatalf("over limit: %d pages", st.Pages)
	}
	classes := 0
	for _, c := range st.Classes {
		if c.Pages > 0 {
			classes++
		}
	}
	if classes < 2 {
		t.Fatalf("big items got no page: %+v", st.Classes)
	}
	// And the other way: small items can take pages back.
	for i := 0; i < 1000; i++ {
		if res, _ := s.Set([]byte("tiny"+string(key(i))), []byte("x"), nil); res != Stored {
			t.Fatalf("tiny %d: %v", i, res)
		}
	}
}

func TestReclaimByRun(t *testing.T) {
	s, clk := newTestStore(t, Config{ReclaimInterval: 1})
	for i := 0; i < 5000; i++ {
		exp := int64(0)
		if i%2 == 0 {
			exp = t0 + 10
		}
		s.Set(key(i), []byte("v"), &SetOptions{Exptime: exp})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	clk.Advance(10)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if st.CurrItems == 2500 {
			if st.Reclaimed != 2500 || st.ExpiredUnfetched != 2500 || st.GetExpired != 0 {
				t.Fatalf("%+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reclaimer left %d items", st.CurrItems)
		}
		runtime.Gosched()
	}
	if err := s.Run(context.Background()); err != ErrRunning {
		t.Fatalf("second Run: %v", err)
	}
}

// TestHitCountSaturates checks the CLOCK counter: hits add up to freqMax,
// each pass of the hand takes one, and the other item bits are untouched.
func TestHitCountSaturates(t *testing.T) {
	c := make(hdr, hdrSize+1)
	c.set(bitFetched | bitKeyBinary)
	for range freqMax + 5 {
		c.hit()
	}
	passes := 0
	for c.cool() {
		passes++
	}
	if passes != freqMax {
		t.Fatalf("item survived %d passes after many hits, want %d", passes, freqMax)
	}
	if !c.has(bitFetched) || !c.has(bitKeyBinary) || c.has(bitStale) {
		t.Fatalf("counter changed other bits: %08b", c.bits())
	}
	c.hit()
	if !c.cool() || c.cool() {
		t.Fatal("one hit must buy exactly one pass")
	}
}
