package store

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg Config
		ok  bool
	}{
		"zero is memcached defaults": {Config{}, true},
		"negative memory":            {Config{MemoryLimit: -1}, false},
		"item size too small":        {Config{MaxItemSize: 1023}, false},
		"item size too big":          {Config{MemoryLimit: 4 << 30, MaxItemSize: 1<<30 + 1}, false},
		"item size over half memory": {Config{MemoryLimit: 8 << 20, MaxItemSize: 4<<20 + 1}, false},
		"item size at half memory":   {Config{MemoryLimit: 8 << 20, MaxItemSize: 4 << 20}, true},
		"tiny memory":                {Config{MemoryLimit: 2048, MaxItemSize: 1024}, true},
		"bad growth factor":          {Config{GrowthFactor: 1}, false},
		"too many pages":             {Config{MemoryLimit: 1 << 40}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			if _, nerr := New(tc.cfg); (nerr == nil) != tc.ok {
				t.Fatalf("New() = %v, want ok=%v", nerr, tc.ok)
			}
		})
	}
}

func TestGeometry(t *testing.T) {
	g := newGeometry(Config{}.withDefaults())
	if g.pageSize != 1<<20 {
		t.Fatalf("page size %d", g.pageSize)
	}
	if g.chunkSizes[0] != minChunkSize || g.chunkSizes[len(g.chunkSizes)-1] != g.pageSize {
		t.Fatalf("classes %v", g.chunkSizes)
	}
	for i := 1; i < len(g.chunkSizes); i++ {
		if g.chunkSizes[i]%8 != 0 || g.chunkSizes[i] <= g.chunkSizes[i-1] {
			t.Fatalf("class %d size %d after %d", i, g.chunkSizes[i], g.chunkSizes[i-1])
		}
	}
	for _, size := range []int{1, 48, 49, 1000, 1 << 19, 1 << 20} {
		ci := g.classFor(size)
		if ci < 0 || g.chunkSizes[ci] < size || (ci > 0 && g.chunkSizes[ci-1] >= size) {
			t.Fatalf("classFor(%d) = %d", size, ci)
		}
	}
	if g.classFor(1<<20+1) != -1 {
		t.Fatal("oversized item got a class")
	}
}

func TestSetMemoryLimit(t *testing.T) {
	s, _ := newTestStore(t, Config{MemoryLimit: 4 << 20})
	if err := s.SetMemoryLimit(1024); !errors.Is(err, ErrConfig) {
		t.Fatalf("tiny limit: %v", err)
	}
	if err := s.SetMemoryLimit(8 << 20); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().LimitMaxbytes; got != 8<<20 {
		t.Fatalf("LimitMaxbytes %d", got)
	}
	// Growing lets the store use the new pages without evicting.
	val := make([]byte, 1000)
	for i := 0; i < 7000; i++ {
		s.Set(key(i), val, nil)
	}
	st := s.Stats()
	if st.Pages > 8 || st.Evictions != 0 || st.CurrItems != 7000 {
		t.Fatalf("pages %d evictions %d items %d", st.Pages, st.Evictions, st.CurrItems)
	}
}
