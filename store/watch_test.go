package store

import (
	"bytes"
	"testing"
)

func TestEvictedHook(t *testing.T) {
	var got []string
	var classes []int
	fetched := 0
	cfg := Config{MemoryLimit: 2 << 20}
	cfg.Evicted = func(key []byte, it Item, class int) {
		got = append(got, string(key))
		classes = append(classes, class)
		if it.Fetched {
			fetched++
		}
		if it.Size != 100 {
			t.Errorf("evicted %q: size %d, want 100", key, it.Size)
		}
	}
	s, _ := newTestStore(t, cfg)
	val := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < 50000; i++ {
		if res, _ := s.Set(key(i), val, nil); res != Stored {
			t.Fatalf("set %d: %v", i, res)
		}
	}
	st := s.Stats()
	if int64(len(got)) != st.Evictions || len(got) == 0 {
		t.Fatalf("hook saw %d evictions, stats %d", len(got), st.Evictions)
	}
	want := s.ClassID(len(key(0)), len(val))
	for i, c := range classes {
		if c != want {
			t.Fatalf("eviction %d (%q): class %d, want %d", i, got[i], c, want)
		}
	}
	if got[0] != string(key(0)) || fetched != 0 {
		t.Fatalf("first evicted %q (fetched %d), want %q", got[0], fetched, key(0))
	}
}

func TestPeek(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	if _, ok := s.Peek([]byte("a")); ok {
		t.Fatal("peeked a missing key")
	}
	mustSet(t, s, "a", "hello", nil)
	n, ok := s.Peek([]byte("a"))
	if !ok || n != 5 {
		t.Fatalf("peek: %d %v", n, ok)
	}
	if it, _, _ := s.Get([]byte("a"), &GetOptions{NoBump: true}, nil); it.Fetched {
		t.Fatal("peek marked the item fetched")
	}
}

func TestClassID(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	if res, _ := s.Set([]byte("k"), []byte("v"), nil); res != Stored {
		t.Fatal(res)
	}
	id := s.ClassID(1, 1)
	for _, cl := range s.Stats().Classes {
		if cl.Items == 1 && cl.ID != id {
			t.Fatalf("item lives in class %d, ClassID says %d", cl.ID, id)
		}
	}
	if s.ClassID(1, 2<<20) != 0 {
		t.Fatal("an item that cannot fit has a class")
	}
}
