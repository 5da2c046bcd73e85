package tomb

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCoversAndExpires(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	tb := New(Config{TTL: 10 * time.Second, Now: c.Now})
	tb.Put([]byte("k"), 50)
	tb.Put([]byte("k"), 40) // an older delete arriving late keeps the newer version
	for cas, want := range map[uint64]bool{49: true, 50: true, 51: false} {
		if got := tb.Covers([]byte("k"), cas); got != want {
			t.Errorf("Covers(k, %d) = %v, want %v", cas, got, want)
		}
	}
	if tb.Covers([]byte("other"), 1) {
		t.Error("a key never deleted is covered")
	}
	c.add(9 * time.Second)
	tb.Put([]byte("j"), 70)
	if !tb.Covers([]byte("k"), 50) {
		t.Error("forgotten before its TTL")
	}
	c.add(2 * time.Second) // k put 11 s ago (renewed at 1000 s too), j 2 s ago
	if tb.Covers([]byte("k"), 50) || !tb.Covers([]byte("j"), 70) {
		t.Errorf("after TTL: k covered %v (want false), j covered %v (want true)", tb.Covers([]byte("k"), 50), tb.Covers([]byte("j"), 70))
	}
	if n, _, ev := tb.Stats(); n != 1 || ev != 0 {
		t.Errorf("Stats = %d held, %d evicted; want 1, 0", n, ev)
	}
}

// TestBounded: whatever is deleted, and however often, the table holds at
// most MaxBytes; the oldest go first and are counted.
func TestBounded(t *testing.T) {
	const max = 64 << 10
	tb := New(Config{MaxBytes: max, TTL: time.Hour})
	for i := range 100_000 {
		tb.Put(fmt.Appendf(nil, "key-%d", i%3000), uint64(i+1)) // the same keys again and again
		if _, b, _ := tb.Stats(); b > max {
			t.Fatalf("after %d puts: %d bytes held, limit %d", i+1, b, max)
		}
	}
	n, b, ev := tb.Stats()
	if n == 0 || ev == 0 || b > max {
		t.Fatalf("held %d (%d bytes), evicted %d: want some held, some evicted, bytes ≤ %d", n, b, ev, max)
	}
	if !tb.Covers([]byte("key-999"), 100_000) { // the last put: i = 99_999
		t.Fatal("the latest delete is not remembered")
	}
	if len(tb.q)-tb.head > max/Overhead {
		t.Fatalf("queue holds %d entries for a %d-byte limit", len(tb.q)-tb.head, max)
	}
}

// TestForgotten: Forgotten is the newest version forgotten, by TTL or for
// lack of room, and a renewed tombstone's old queue entry forgets nothing.
func TestForgotten(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	tb := New(Config{TTL: 10 * time.Second, MaxBytes: 3 * (1 + Overhead), Now: c.Now})
	tb.Put([]byte("a"), 5)
	tb.Put([]byte("b"), 9)
	if f := tb.Forgotten(); f != 0 {
		t.Fatalf("Forgotten = %d with nothing forgotten", f)
	}
	c.add(5 * time.Second)
	tb.Put([]byte("a"), 7) // renewed: its first entry's expiry forgets nothing
	c.add(6 * time.Second) // b's TTL passed, a's renewal has not
	if f := tb.Forgotten(); f != 9 {
		t.Fatalf("Forgotten = %d after b expired, want 9", f)
	}
	for i, k := range []string{"x", "y", "z"} { // room for three: a goes
		tb.Put([]byte(k), uint64(3+i))
	}
	if f := tb.Forgotten(); f != 9 || tb.Covers([]byte("a"), 7) {
		t.Fatalf("Forgotten = %d (want 9, the larger), a covered %v", f, tb.Covers([]byte("a"), 7))
	}
}

func TestRangeSince(t *testing.T) {
	tb := New(Config{})
	for i := range 10 {
		tb.Put(fmt.Appendf(nil, "k%d", i), uint64(100+i))
	}
	got := map[string]uint64{}
	tb.Range(105, func(k []byte, cas uint64) bool { got[string(k)] = cas; return true })
	if len(got) != 5 || got["k5"] != 105 || got["k9"] != 109 {
		t.Fatalf("Range(105) = %v, want k5..k9", got)
	}
}

// TestLockSerializes: a copy checked and applied under Lock never
// interleaves with a delete recorded under Lock.
func TestLockSerializes(t *testing.T) {
	tb := New(Config{})
	key := []byte("k")
	var held, bad int
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				mu := tb.Lock(key)
				held++
				if held != 1 {
					bad++
				}
				held--
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if bad != 0 {
		t.Fatalf("%d overlapping holders", bad)
	}
}
