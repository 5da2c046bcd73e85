package store

import (
	"bytes"
	"fmt"
	"testing"
)

// largeValue is a value of n bytes that differs per i, so a piece copied to
// the wrong place or cut at the wrong offset shows.
func largeValue(i, n int) []byte {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte('a' + (i+j*7)%26)
	}
	return v
}

// TestLargeItemsFill is issue 14's bug 2: at -m 48, 100 sets of 589,824 B
// left 47 items when each took a whole 1 MiB page; memcached keeps 85 by
// storing such an item as a half-page head chunk plus a tail chunk.
func TestLargeItemsFill(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 48 << 20})
	const n = 589824
	for i := 0; i < 100; i++ {
		k := []byte(fmt.Sprintf("large%d", i))
		if res, _ := s.Set(k, largeValue(i, n), nil); res != Stored {
			t.Fatalf("set %d: %v", i, res)
		}
	}
	st := s.Stats()
	t.Logf("%d items, %d bytes, %d pages", st.CurrItems, st.Bytes, st.Pages)
	if st.CurrItems < 80 {
		t.Fatalf("%d items of %d B at -m 48, want at least 80 (memcached 85)", st.CurrItems, n)
	}
	// The newest items are intact, byte for byte.
	var dst []byte
	for i := 99; i >= 100-int(st.CurrItems); i-- {
		k := []byte(fmt.Sprintf("large%d", i))
		_, got, res := s.Get(k, nil, dst[:0])
		if res != Hit || !bytes.Equal(got, largeValue(i, n)) {
			t.Fatalf("get %s: %v, %d bytes, equal=%v", k, res, len(got), bytes.Equal(got, largeValue(i, n)))
		}
		dst = got
	}
}

// checkChunks fails when the class counts disagree with the items held:
// every class's items sum to CurrItems and, with no item left, no chunk is
// in use (a lost tail would stay in use).
func checkChunks(t *testing.T, s *Store) {
	t.Helper()
	st := s.Stats()
	var items, used int64
	for _, c := range st.Classes {
		items += c.Items
		used += c.UsedChunks
	}
	if items != st.CurrItems {
		t.Fatalf("class items %d != CurrItems %d", items, st.CurrItems)
	}
	if st.CurrItems == 0 && used != 0 {
		t.Fatalf("no items but %d chunks in use", used)
	}
}

func TestChunkedItemOperations(t *testing.T) {
	s, clk := newTestStore(t, Config{MemoryLimit: 16 << 20})
	big := largeValue(1, 600<<10)
	mustSet(t, s, "a", string(big), nil)
	if v, r := get(s, "a"); r != Hit || v != string(big) {
		t.Fatalf("get: %v, %d bytes", r, len(v))
	}
	// append and prepend on a chunked item.
	if r, _ := s.Set([]byte("a"), []byte("tail"), &SetOptions{Mode: ModeAppend}); r != Stored {
		t.Fatalf("append: %v", r)
	}
	if r, _ := s.Set([]byte("a"), []byte("head"), &SetOptions{Mode: ModePrepend}); r != Stored {
		t.Fatalf("prepend: %v", r)
	}
	if v, _ := get(s, "a"); v != "head"+string(big)+"tail" {
		t.Fatalf("after append and prepend: %d bytes", len(v))
	}
	// An item that grows into a chunked one by append.
	half := largeValue(2, 500<<10)
	mustSet(t, s, "b", string(half), nil)
	more := largeValue(3, 100<<10)
	if r, _ := s.Set([]byte("b"), more, &SetOptions{Mode: ModeAppend}); r != Stored {
		t.Fatalf("append grows: %v", r)
	}
	if v, _ := get(s, "b"); v != string(half)+string(more) {
		t.Fatalf("grown: %d bytes", len(v))
	}
	// incr on a chunked item is non-numeric, as any long value.
	if r, _, _ := s.Arith([]byte("b"), &ArithOptions{Delta: 1}); r != NonNumeric {
		t.Fatalf("incr: %v", r)
	}
	// CAS: a stale one fails, the current one replaces.
	it := mustSet(t, s, "c", string(big), nil)
	if r, _ := s.Set([]byte("c"), []byte("x"), &SetOptions{CAS: it.CAS + 100}); r != Exists {
		t.Fatalf("bad cas: %v", r)
	}
	if r, _ := s.Set([]byte("c"), []byte("x"), &SetOptions{CAS: it.CAS}); r != Stored {
		t.Fatalf("cas: %v", r)
	}
	if v, _ := get(s, "c"); v != "x" {
		t.Fatalf("c = %q", v)
	}
	// A chunked item overwritten by a smaller one in the head's class.
	mustSet(t, s, "d", string(big), nil)
	mid := largeValue(4, 400<<10)
	mustSet(t, s, "d", string(mid), nil)
	if v, _ := get(s, "d"); v != string(mid) {
		t.Fatalf("d: %d bytes", len(v))
	}
	mustSet(t, s, "d", string(big), nil)
	mustSet(t, s, "d", string(largeValue(5, 700<<10)), nil)
	if v, _ := get(s, "d"); v != string(largeValue(5, 700<<10)) {
		t.Fatalf("d: %d bytes", len(v))
	}
	checkChunks(t, s)
	// Range sees whole values.
	seen := 0
	s.Range(func(k []byte, it Item, v []byte) bool {
		if string(k) == "a" {
			seen++
			if string(v) != "head"+string(big)+"tail" || it.Size != len(v) {
				t.Errorf("range a: %d bytes", len(v))
			}
		}
		return true
	})
	if seen != 1 {
		t.Fatalf("range saw a %d times", seen)
	}
	// Expiry and delete free both pieces.
	mustSet(t, s, "e", string(big), &SetOptions{Exptime: clk.Now() + 1})
	clk.Advance(2)
	if _, r := get(s, "e"); r != Miss {
		t.Fatalf("expired: %v", r)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if r, _ := s.Delete([]byte(k), nil); r != Deleted {
			t.Fatalf("delete %s: %v", k, r)
		}
	}
	checkChunks(t, s)
	if st := s.Stats(); st.PoolPages != st.Pages {
		t.Fatalf("empty store keeps pages: %d of %d in the pool", st.PoolPages, st.Pages)
	}
}

func TestChunkedFlush(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 16 << 20})
	for i := 0; i < 10; i++ {
		mustSet(t, s, string(key(i)), string(largeValue(i, 550<<10)), nil)
	}
	s.FlushAll(0)
	for i := 0; i < 10; i++ {
		if _, r := get(s, string(key(i))); r != Miss {
			t.Fatalf("after flush: %v", r)
		}
	}
	checkChunks(t, s)
	// The flushed memory is reused by new items.
	for i := 0; i < 40; i++ {
		mustSet(t, s, string(key(100+i)), string(largeValue(i, 550<<10)), nil)
	}
	for i := 39; i > 30; i-- {
		if v, r := get(s, string(key(100+i))); r != Hit || v != string(largeValue(i, 550<<10)) {
			t.Fatalf("key %d: %v", i, r)
		}
	}
	checkChunks(t, s)
}

// TestChunkedEvictionAndSteal mixes chunked and small items in a store
// that must evict and move pages between classes; every hit must be the
// value last written, and the class counts must add up.
func TestChunkedEvictionAndSteal(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 8 << 20})
	sizes := []int{560 << 10, 700 << 10, 100, 3000, 900 << 10, 40 << 10}
	last := map[string]int{}
	for i := 0; i < 400; i++ {
		k := string(key(i % 37))
		n := sizes[i%len(sizes)]
		if r, _ := s.Set([]byte(k), largeValue(i, n), nil); r != Stored {
			t.Fatalf("set %d (%d B): %v", i, n, r)
		}
		last[k] = i
		if i%5 == 0 {
			s.automove()
		}
		if i%20 != 19 {
			continue
		}
		for k2, j := range last {
			// NoBump: the check must not make every item hot.
			_, v, r := s.Get([]byte(k2), &GetOptions{NoBump: true}, nil)
			if r == Hit && string(v) != string(largeValue(j, sizes[j%len(sizes)])) {
				t.Fatalf("step %d: %s holds a wrong value (%d bytes)", i, k2, len(v))
			}
		}
	}
	checkChunks(t, s)
	st := s.Stats()
	if st.Evictions == 0 {
		t.Fatalf("no eviction: %+v", st)
	}
	t.Logf("items %d evictions %d rescued %d", st.CurrItems, st.Evictions, st.Rescued)
}

// TestChunkedSteal empties pages of the head and tail classes into another
// class: heads and tails move (rescue), and references follow them.
func TestChunkedSteal(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 16 << 20})
	const n = 540 << 10 // tails of ~16 KiB
	i := 0
	for ; s.Stats().Pages < 16; i++ {
		mustSet(t, s, string(key(i)), string(largeValue(i, n)), nil)
	}
	for j := 0; j < i; j += 2 {
		s.Delete(key(j), nil)
	}
	// Move pages to the pool, then fill another class.
	s.automove()
	for j := 0; j < 200; j++ {
		mustSet(t, s, fmt.Sprintf("small%d", j), string(largeValue(j, 20<<10)), nil)
	}
	for j := 1; j < i; j += 2 {
		v, r := get(s, string(key(j)))
		if r == Hit && v != string(largeValue(j, n)) {
			t.Fatalf("key %d: wrong value after pages moved", j)
		}
	}
	checkChunks(t, s)
	if st := s.Stats(); st.Rescued == 0 {
		t.Fatalf("nothing rescued: %+v", st)
	}
}

// TestChunkedGeometries checks chunked items where the page is not 1 MiB:
// larger for -I 2m, smaller for a tiny memory limit.
func TestChunkedGeometries(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		size int
	}{
		{Config{MemoryLimit: 64 << 20, MaxItemSize: 2 << 20}, 1500 << 10},
		{Config{MemoryLimit: 1 << 20, MaxItemSize: 512 << 10}, 300 << 10},
	} {
		s, _ := newTestStore(t, tc.cfg)
		for i := 0; i < 20; i++ {
			mustSet(t, s, string(key(i)), string(largeValue(i, tc.size)), nil)
		}
		if v, r := get(s, string(key(19))); r != Hit || v != string(largeValue(19, tc.size)) {
			t.Fatalf("%+v: get: %v, %d bytes", tc.cfg, r, len(v))
		}
		checkChunks(t, s)
		heads := int64(0)
		for _, c := range s.Stats().Classes {
			if c.ChunkSize == s.PageSize()/2 {
				heads = c.UsedChunks
			}
		}
		if heads == 0 {
			t.Fatalf("%+v: no head chunk in use", tc.cfg)
		}
		if st := s.Stats(); st.Bytes > tc.cfg.MemoryLimit || st.Pages*st.PageSize > tc.cfg.MemoryLimit {
			t.Fatalf("%+v: over the limit: %+v", tc.cfg, st)
		}
	}
}

// TestTailClassHandEvicts fills a tail class with tails while the head
// class has a free chunk: the tail class's hand must evict an item through
// its tail (head freed with it) rather than fail.
func TestTailClassHandEvicts(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 4 << 20}) // four pages
	const n = 800 << 10                                   // ~295 KiB tails, three a page
	for _, k := range []string{"ka", "kb", "kc"} {
		mustSet(t, s, k, string(largeValue(int(k[1]), n)), nil)
	}
	mustSet(t, s, "small", "x", nil) // the fourth page: the budget is spent
	if st := s.Stats(); st.Pages != 4 || st.PoolPages != 0 {
		t.Fatalf("setup: %+v", st)
	}
	mustSet(t, s, "kd", string(largeValue('d', n)), nil)
	st := s.Stats()
	if st.Evictions != 1 {
		t.Fatalf("evictions %d, want 1", st.Evictions)
	}
	hits := 0
	for _, k := range []string{"ka", "kb", "kc", "kd"} {
		v, r := get(s, k)
		if r == Hit {
			hits++
			if v != string(largeValue(int(k[1]), n)) {
				t.Fatalf("%s: wrong value", k)
			}
		}
	}
	if hits != 3 {
		t.Fatalf("%d of 4 large items left, want 3", hits)
	}
	if _, r := get(s, "small"); r != Hit {
		t.Fatalf("small: %v", r)
	}
	checkChunks(t, s)
}
