package store

import (
	"bytes"
	"strconv"
	"testing"
)

func TestGrowingItemLeavesNoPagesBehind(t *testing.T) {
	// Issue 14: an item grown by 1,000 appends walks through ~100 size
	// classes at -m 64 (64 pages); every class it passed kept a page it no
	// longer used, and a prepend on a nearly empty store then failed.
	s, _ := newTestStore(t, Config{MemoryLimit: 64 << 20})
	mustSet(t, s, "appender", "0123456789", nil)
	x := bytes.Repeat([]byte("x"), 10)
	for i := 0; i < 1000; i++ {
		v := append(strconv.AppendInt(nil, int64(i), 10), x...)
		if res, _ := s.Set([]byte("appender"), v, &SetOptions{Mode: ModeAppend}); res != Stored {
			t.Fatalf("append %d: %v", i, res)
		}
	}
	mustSet(t, s, "k", "0123456789", nil)
	if res, _ := s.Set([]byte("k"), []byte("abcdefghijk"), &SetOptions{Mode: ModePrepend}); res != Stored {
		t.Fatalf("prepend: %v (%d pages)", res, s.Stats().Pages)
	}
	if v, _ := get(s, "k"); v != "abcdefghijk0123456789" {
		t.Fatalf("k = %q", v)
	}
	if st := s.Stats(); st.Evictions != 0 {
		t.Fatalf("evicted %d items from a nearly empty store", st.Evictions)
	}
}

func TestStealRescuesItems(t *testing.T) {
	// A class whose pages are half empty, but none wholly, gives a page to
	// a class that has none without losing an item: the page's items move
	// to the class's free chunks.
	const limit = 4 << 20 // four pages
	s, _ := newTestStore(t, Config{MemoryLimit: limit})
	small := bytes.Repeat([]byte("s"), 100)
	n := 0
	for ; s.Stats().Pages < 3 || n%2 == 1; n++ {
		mustSet(t, s, string(key(n)), string(small), nil)
	}
	for i := 0; i < n; i += 2 {
		s.Delete(key(i), nil)
	}
	// The fourth page: an item that fills a page is not chunked.
	big := bytes.Repeat([]byte("b"), s.PageSize()-hdrSize-len("big"))
	mustSet(t, s, "big", string(big), nil)
	if st := s.Stats(); st.Pages != 4 || st.PoolPages != 0 {
		t.Fatalf("setup: %+v", st)
	}
	// A third class: the budget is spent and the pool empty.
	mid := bytes.Repeat([]byte("m"), 10<<10)
	mustSet(t, s, "mid", string(mid), nil)
	st := s.Stats()
	if st.Evictions != 0 || st.Rescued == 0 {
		t.Fatalf("evictions %d, rescued %d", st.Evictions, st.Rescued)
	}
	for i := 1; i < n; i += 2 {
		if v, r := get(s, string(key(i))); r != Hit || v != string(small) {
			t.Fatalf("key %d after the steal: %v %q", i, r, v)
		}
	}
	for _, k := range []string{"big", "mid"} {
		if _, r := get(s, k); r != Hit {
			t.Fatalf("%s: %v", k, r)
		}
	}
}

func TestEmptyPageReturnsToPool(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 8 << 20})
	mustSet(t, s, "a", "v", nil)
	if st := s.Stats(); st.Pages != 1 || st.PoolPages != 0 {
		t.Fatalf("after set: %+v", st)
	}
	s.Delete([]byte("a"), nil)
	if st := s.Stats(); st.PoolPages != 1 || len(st.Classes) != 0 {
		t.Fatalf("after delete: pool %d, classes %+v", st.PoolPages, st.Classes)
	}
	// Another class takes the pooled page instead of a new one.
	mustSet(t, s, "b", string(bytes.Repeat([]byte("v"), 5000)), nil)
	if st := s.Stats(); st.Pages != 1 || st.PoolPages != 0 {
		t.Fatalf("after set b: %+v", st)
	}
}

func TestAutomoveLendsFreeMemory(t *testing.T) {
	// A class that owns a page and fills it takes memory from another
	// class's free chunks (through the pool) instead of evicting its own
	// items, once automove has run.
	const limit = 8 << 20
	s, _ := newTestStore(t, Config{MemoryLimit: limit})
	big := bytes.Repeat([]byte("b"), 2000)
	mustSet(t, s, "big0", string(big), nil) // class B owns a page
	small := bytes.Repeat([]byte("s"), 100)
	n := 0
	for ; s.Stats().Pages < limit>>20 || n%4 != 0; n++ {
		mustSet(t, s, string(key(n)), string(small), nil)
	}
	for i := 0; i < n; i++ {
		if i%4 != 0 {
			s.Delete(key(i), nil)
		}
	}
	if moved := s.automove(); moved == 0 {
		t.Fatalf("automove moved nothing: %+v", s.Stats())
	}
	for s.automove() > 0 {
	}
	st := s.Stats()
	if st.PoolPages < 3 || st.Evictions != 0 {
		t.Fatalf("after automove: pool %d, evictions %d", st.PoolPages, st.Evictions)
	}
	// Class B grows into the pool: more than one page of big items.
	perPage := int(st.PageSize) / (hdrSize + 4 + len(big))
	for i := 1; i < 2*perPage; i++ {
		mustSet(t, s, "big"+strconv.Itoa(i), string(big), nil)
	}
	if st := s.Stats(); st.Evictions != 0 {
		t.Fatalf("class B evicted %d items while memory was free", st.Evictions)
	}
	for i := 0; i < n; i += 4 {
		if v, r := get(s, string(key(i))); r != Hit || v != string(small) {
			t.Fatalf("key %d: %v", i, r)
		}
	}
	for i := 0; i < 2*perPage; i++ {
		if _, r := get(s, "big"+strconv.Itoa(i)); r != Hit {
			t.Fatalf("big%d: %v", i, r)
		}
	}
}
