package store

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// rangeAll collects every item Range visits, failing on a key seen twice.
func rangeAll(t testing.TB, s *Store) map[string]rangeSeen {
	t.Helper()
	got := make(map[string]rangeSeen)
	s.Range(func(k []byte, it Item, v []byte) bool {
		if _, dup := got[string(k)]; dup {
			t.Errorf("key %q visited twice", k)
		}
		got[string(k)] = rangeSeen{it: it, val: string(v)}
		return true
	})
	return got
}

type rangeSeen struct {
	it  Item
	val string
}

func TestRange(t *testing.T) {
	s, clk := newTestStore(t, Config{MemoryLimit: 256 << 20, NoEvict: true})
	for i := range 100 {
		mustSet(t, s, "flushed:"+strconv.Itoa(i), "x", nil)
	}
	s.FlushAll(0)
	want := make(map[string]rangeSeen)
	for i := range 3000 {
		k := "live:" + strconv.Itoa(i)
		n := 1 + i%700
		if i%1000 == 0 {
			n = 200 << 10 // larger than a batch: a batch holds at least one item
		}
		v := string(value([]byte(k), n))
		it := mustSet(t, s, k, v, &SetOptions{Flags: uint32(i), Exptime: t0 + 100})
		want[k] = rangeSeen{it: it, val: v}
	}
	for i := range 200 {
		mustSet(t, s, "expired:"+strconv.Itoa(i), "x", &SetOptions{Exptime: t0 + 5})
	}
	clk.Advance(10)

	got := rangeAll(t, s)
	if len(got) != len(want) {
		t.Errorf("visited %d items, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s not visited", k)
		case g.val != w.val:
			t.Errorf("%s: value of %d bytes, want %d", k, len(g.val), len(w.val))
		case g.it.Flags != w.it.Flags || g.it.CAS != w.it.CAS || g.it.Exptime != t0+100 || g.it.Size != len(w.val):
			t.Errorf("%s: item %+v, stored %+v", k, g.it, w.it)
		}
	}
}

// TestRangeReadOnly: a dump must not make items look recently used, nor
// free the expired items it skips (that is the reader's and reclaimer's
// job, and is counted by them).
func TestRangeReadOnly(t *testing.T) {
	s, clk := newTestStore(t, Config{})
	mustSet(t, s, "a", "1", nil)
	mustSet(t, s, "e", "1", &SetOptions{Exptime: t0 + 1})
	clk.Advance(5)
	before := s.Stats()
	n := 0
	s.Range(func([]byte, Item, []byte) bool { n++; return true })
	if n != 1 {
		t.Fatalf("visited %d, want 1", n)
	}
	if after := s.Stats(); after.CurrItems != before.CurrItems {
		t.Errorf("items %d after Range, %d before", after.CurrItems, before.CurrItems)
	}
	it, _, res := s.Get([]byte("a"), nil, nil)
	if res != Hit || it.Fetched || it.LastAccess != t0 {
		t.Errorf("after Range: %v %+v, want unfetched, last access t0", res, it)
	}
	sh := &s.shards[s.hash([]byte("a"))>>shardShift]
	sh.mu.Lock()
	_, c, _ := s.find(sh, uint32(s.hash([]byte("a"))), []byte("a"), s.Now())
	freq := c.bits() & freqMask
	sh.mu.Unlock()
	if freq != 1<<freqShift { // the Get above, only
		t.Errorf("CLOCK count %d after Range and one Get, want 1", freq>>freqShift)
	}
}

func TestRangeStop(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	for i := range 1000 {
		mustSet(t, s, strconv.Itoa(i), "v", nil)
	}
	n := 0
	s.Range(func([]byte, Item, []byte) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("fn called %d times after returning false at 10", n)
	}
}

// TestRangeCallback: fn runs with no lock held, so it may use the store,
// even on the shard being visited.
func TestRangeCallback(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	for i := range 500 {
		mustSet(t, s, strconv.Itoa(i), "v", nil)
	}
	n := 0
	s.Range(func(k []byte, _ Item, _ []byte) bool {
		n++
		s.Delete(k, nil)
		s.Set(append([]byte("new:"), k...), k, nil)
		return true
	})
	if n < 500 {
		t.Fatalf("visited %d of the 500 items present throughout", n)
	}
}

// TestRangeConcurrent: while writers churn their own keys (sets that move
// items between size classes, deletes), every key left alone is
// visited exactly once per Range, and every value seen is one a writer
// stored. Run with -race.
func TestRangeConcurrent(t *testing.T) {
	// Room enough that no stable key is evicted.
	s, _ := newTestStore(t, Config{MemoryLimit: 256 << 20})
	const stable = 2000
	for i := range stable {
		k := "stable:" + strconv.Itoa(i)
		mustSet(t, s, k, string(value([]byte(k), 50)), nil)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := []byte("hot:" + strconv.Itoa(w) + ":" + strconv.Itoa(i%300))
				if i%7 == 0 {
					s.Delete(k, nil)
					continue
				}
				s.Set(k, value(k, 1+(i*37)%3000), nil)
			}
		}()
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for range rounds {
		seen := make(map[string]int)
		s.Range(func(k []byte, it Item, v []byte) bool {
			seen[string(k)]++
			if !bytes.Equal(v, value(k, len(v))) || it.Size != len(v) {
				t.Errorf("key %s: corrupt value of %d bytes (%+v)", k, len(v), it)
			}
			return true
		})
		for k, n := range seen {
			if n != 1 {
				t.Errorf("key %s visited %d times", k, n)
			}
		}
		for i := range stable {
			if seen["stable:"+strconv.Itoa(i)] != 1 {
				t.Fatalf("stable:%d visited %d times", i, seen["stable:"+strconv.Itoa(i)])
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

// BenchmarkRange visits benchKeys items of 100 bytes per op.
func BenchmarkRange(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s.Range(func([]byte, Item, []byte) bool { n++; return true })
	}
	if n == 0 {
		b.Fatal("nothing visited")
	}
}
