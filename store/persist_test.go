package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// snapshotOf returns every live item with its value, by key.
func snapshotOf(s *Store) map[string]string {
	m := map[string]string{}
	s.Range(func(key []byte, it Item, val []byte) bool {
		m[string(key)] = fmt.Sprintf("f%d e%d c%d %q", it.Flags, it.Exptime, it.CAS, val)
		return true
	})
	return m
}

func openTest(t *testing.T, cfg Config, path string) (*Store, Restored) {
	t.Helper()
	s, r, err := Open(cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

// TestWarmRestart: what a Save leaves in the memory file comes back, item
// for item, with the page accounting and CAS order of before, and the
// restored store takes writes, deletes and evictions as a fresh one.
func TestWarmRestart(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		t.Run(fmt.Sprintf("hybrid=%v", hybrid), func(t *testing.T) {
			clk := newManualClock(1_800_000_000)
			cfg := Config{MemoryLimit: 32 << 20, Clock: clk, HybridCAS: hybrid}
			path := filepath.Join(t.TempDir(), "mem")
			s, r := openTest(t, cfg, path)
			if r.Items != 0 || r.Clean != "no metadata save file" {
				t.Fatalf("first open: %+v", r)
			}
			big := bytes.Repeat([]byte("L"), 600<<10) // chunked: head and tail
			for i := range 3000 {
				v := strings.Repeat(string(rune('a'+i%26)), i%7*90)
				mustSet(t, s, fmt.Sprint("k", i), v, &SetOptions{Flags: uint32(i), Exptime: int64(i % 3 * 1_900_000_000)})
			}
			for i := range 4 {
				if res, _ := s.Set([]byte(fmt.Sprint("big", i)), big[i:], nil); res != Stored {
					t.Fatal(res)
				}
			}
			// Growth through the classes and frees leave free chunks and
			// pooled pages behind.
			for i := range 200 {
				s.Set([]byte("grow"), bytes.Repeat([]byte{'g'}, 10), &SetOptions{Mode: ModeAppend, Vivify: true})
				s.Delete([]byte(fmt.Sprint("k", i*7)), nil)
			}
			mustSet(t, s, "gone", "soon", &SetOptions{Exptime: clk.Now() + 5})
			want, before := snapshotOf(s), s.Stats()
			if _, ok := want["big3"]; !ok || before.Evictions != 0 {
				t.Fatalf("%d evictions before the save", before.Evictions)
			}
			lastCAS := s.cas.Load()
			if err := s.Save(path); err != nil {
				t.Fatal(err)
			}

			clk.Advance(10) // "gone" expires while the node is down
			s2, r := openTest(t, cfg, path)
			if r.Clean != "" || r.Items != before.CurrItems || r.Saved != 1_800_000_000 {
				t.Fatalf("restore: %+v, want %d items", r, before.CurrItems)
			}
			if _, err := os.Stat(path + ".meta"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("metadata left after the restore: %v", err)
			}
			delete(want, "gone")
			got := snapshotOf(s2)
			if len(got) != len(want) {
				t.Fatalf("%d items restored, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s: %s, want %s", k, got[k], v)
				}
			}
			after := s2.Stats()
			if after.Pages != before.Pages || after.PoolPages != before.PoolPages || after.Bytes != before.Bytes {
				t.Fatalf("accounting: pages %d/%d pool %d/%d bytes %d/%d", after.Pages, before.Pages, after.PoolPages, before.PoolPages, after.Bytes, before.Bytes)
			}
			for ci, c := range after.Classes {
				if b := before.Classes[ci]; c.Pages != b.Pages || c.Items != b.Items {
					t.Fatalf("class %d: %+v, before %+v", ci, c, b)
				}
			}
			it := mustSet(t, s2, "new", "v", nil)
			if it.CAS <= lastCAS {
				t.Fatalf("CAS %d after a restore, last before %d", it.CAS, lastCAS)
			}
			if res, _ := s2.Delete([]byte("big1"), nil); res != Deleted {
				t.Fatal(res)
			}
			// Fill far past the limit: the hand evicts restored items too.
			for i := range 80000 {
				if res, _ := s2.Set(key(i), bytes.Repeat([]byte{'x'}, 500), nil); res != Stored {
					t.Fatalf("set after restore: %v", res)
				}
			}
			if st := s2.Stats(); st.Evictions == 0 || st.Pages > cfg.MemoryLimit/int64(s2.PageSize()) {
				t.Fatalf("after filling: %d evictions, %d pages", st.Evictions, st.Pages)
			}
		})
	}
}

// TestWarmRestartClean: the cache starts empty, with memcached's reasons,
// when there is no metadata (no Save: a crash), when the metadata was
// used once already, and when the settings that shape the pages changed.
func TestWarmRestartClean(t *testing.T) {
	cfg := Config{MemoryLimit: 8 << 20}
	saved := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "mem")
		s, _ := openTest(t, cfg, path)
		mustSet(t, s, "k", "v", nil)
		if err := s.Save(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := map[string]struct {
		cfg   Config
		setup func(t *testing.T, path string)
		why   string
	}{
		"same settings":   {cfg: cfg},
		"memory limit":    {cfg: Config{MemoryLimit: 16 << 20}, why: "memory limit changed"},
		"item size limit": {cfg: Config{MemoryLimit: 8 << 20, MaxItemSize: 512 << 10}, why: "item size limit changed"},
		"growth factor":   {cfg: Config{MemoryLimit: 8 << 20, GrowthFactor: 1.25}, why: "slab sizes changed"},
		"cluster":         {cfg: Config{MemoryLimit: 8 << 20, HybridCAS: true}, why: "CAS mode changed (standalone and cluster)"},
		"restored once": {cfg: cfg, why: "no metadata save file", setup: func(t *testing.T, path string) {
			s, _ := openTest(t, cfg, path) // restores, deletes the metadata,
			s.mem.release()                // and "crashes"
		}},
		"corrupt metadata": {cfg: cfg, why: "metadata corrupt", setup: func(t *testing.T, path string) {
			os.WriteFile(path+".meta", []byte("{"), 0600)
		}},
		"file replaced": {cfg: cfg, why: "memory file size changed", setup: func(t *testing.T, path string) {
			os.Truncate(path, 4<<20)
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := saved(t)
			if tc.setup != nil {
				tc.setup(t, path)
			}
			s, r := openTest(t, tc.cfg, path)
			v, res := get(s, "k")
			switch {
			case tc.why == "":
				if r.Items != 1 || v != "v" {
					t.Fatalf("restore: %+v, get %q %v", r, v, res)
				}
			case !strings.HasPrefix(r.Clean, tc.why) || r.Items != 0 || res != Miss:
				t.Fatalf("got %+v and get %v, want a clean start for %q", r, res, tc.why)
			}
		})
	}
}

// TestWarmRestartFlush: a flush_all before the stop still hides what it
// flushed after the restart, and a write after it is kept.
func TestWarmRestartFlush(t *testing.T) {
	for _, delay := range []int64{0, 100} {
		t.Run(fmt.Sprint("delay=", delay), func(t *testing.T) {
			clk := newManualClock(1_800_000_000)
			cfg := Config{MemoryLimit: 8 << 20, Clock: clk}
			path := filepath.Join(t.TempDir(), "mem")
			s, _ := openTest(t, cfg, path)
			mustSet(t, s, "old", "1", nil)
			s.FlushAll(delay)
			clk.Advance(1)
			mustSet(t, s, "new", "2", nil)
			if err := s.Save(path); err != nil {
				t.Fatal(err)
			}
			clk.Advance(delay)
			s2, _ := openTest(t, cfg, path)
			if _, res := get(s2, "old"); res != Miss {
				t.Fatalf("flushed item back: %v", res)
			}
			if _, res := get(s2, "new"); (res == Hit) != (delay == 0) {
				t.Fatalf("item written after the flush: %v", res)
			}
		})
	}
}

// TestMemoryFileLimit: the memory limit cannot grow past the file, a
// second store cannot open a file in use, and a store made by New has
// nothing to save.
func TestMemoryFileLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mem")
	s, _ := openTest(t, Config{MemoryLimit: 8 << 20}, path)
	if err := s.SetMemoryLimit(16 << 20); !errors.Is(err, ErrConfig) {
		t.Fatalf("grow past the file: %v", err)
	}
	if err := s.SetMemoryLimit(4 << 20); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(Config{MemoryLimit: 8 << 20}, path); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("a second store on the same file: %v", err)
	}
	runtime.KeepAlive(s)
	n, _ := New(Config{})
	if err := n.Save(path); !errors.Is(err, ErrNoFile) {
		t.Fatalf("Save without a file: %v", err)
	}
}
