package store

import (
	"bytes"
	"testing"
	"time"
)

// TestLostSince: an item the store drops by itself (expired, evicted,
// flushed) makes LostSince true up to its version; deletes and overwrites
// do not.
func TestLostSince(t *testing.T) {
	clk := newManualClock(1_800_000_000)
	s, err := New(Config{MemoryLimit: 4 << 20, Clock: clk, HybridCAS: true})
	if err != nil {
		t.Fatal(err)
	}
	a := mustSet(t, s, "a", "1", nil)
	mustSet(t, s, "a", "2", nil) // overwritten
	d := mustSet(t, s, "d", "1", nil)
	s.Delete([]byte("d"), nil)
	if s.LostSince(a.CAS) || s.LostSince(d.CAS) {
		t.Fatal("an overwrite or a delete counts as lost")
	}
	e := mustSet(t, s, "e", "1", &SetOptions{Exptime: clk.Now() + 1})
	clk.Advance(2)
	if _, res := get(s, "e"); res != Miss {
		t.Fatal(res)
	}
	if !s.LostSince(e.CAS) || s.LostSince(e.CAS+1) {
		t.Fatalf("expired at %d: LostSince(%d) %v, LostSince(+1) %v", e.CAS, e.CAS, s.LostSince(e.CAS), s.LostSince(e.CAS+1))
	}
	var last Item
	for i := 0; s.Stats().Evictions == 0; i++ {
		last = mustSet(t, s, string(key(i)), string(bytes.Repeat([]byte{'x'}, 1000)), nil)
	}
	if !s.LostSince(e.CAS + 1) {
		t.Fatal("an eviction newer than the expiry is not lost")
	}
	if s.LostSince(last.CAS + 1) {
		t.Fatal("lost past the newest write")
	}
	s.FlushAll(0)
	if !s.LostSince(last.CAS + 1) {
		t.Fatal("a flush_all after the last write is not lost")
	}
}

// TestLostSinceFlushAfterQuiet: a flush_all that runs a while after the
// last write is lost for a version taken between the two. The flush took
// the CAS after the last one handed out, seconds older than the flush
// when the store was quiet, and its live second is a second or two
// before it: a node restarted with its memory file, saved between the
// last write and the flush, got a delta instead of a full copy and kept
// flushed items (TestClusterWarmRestart).
func TestLostSinceFlushAfterQuiet(t *testing.T) {
	s, err := New(Config{MemoryLimit: 4 << 20, HybridCAS: true})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "a", "1", nil)
	time.Sleep(5 * time.Millisecond)
	since := uint64(time.Now().UnixMilli()) << 16
	time.Sleep(5 * time.Millisecond)
	if s.LostSince(since) {
		t.Fatal("lost before the flush")
	}
	s.FlushAll(0)
	if !s.LostSince(since) {
		t.Fatal("a flush_all after since is not lost since")
	}
	if _, res := get(s, "a"); res != Miss {
		t.Fatalf("a after the flush: %v", res)
	}
	b := mustSet(t, s, "b", "1", nil)
	if _, res := get(s, "b"); res != Hit {
		t.Fatalf("b, written after the flush: %v (CAS %d)", res, b.CAS)
	}
}
