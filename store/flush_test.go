package store

import (
	"sync/atomic"
	"testing"
)

func TestFlushAll(t *testing.T) {
	cases := map[string]struct {
		delay int64
		// each check: seconds after the flush, key, whether it must hit
		checks []flushCheck
	}{
		"immediate":                              {0, []flushCheck{{0, "old", false}, {0, "new", true}}},
		"one second (memcached flushes at once)": {1, []flushCheck{{0, "old", false}}},
		"delayed": {10, []flushCheck{
			{0, "old", true}, {8, "old", true}, {9, "old", false}, {9, "new", false}, {10, "later", true},
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, clk := newTestStore(t, Config{})
			mustSet(t, s, "old", "v", nil)
			s.FlushAll(tc.delay)
			mustSet(t, s, "new", "v", nil)
			base := clk.Now()
			laterSet := false
			for _, c := range tc.checks {
				clk.Set(base + c.after)
				if c.key == "later" && !laterSet {
					mustSet(t, s, "later", "v", nil)
					laterSet = true
				}
				if _, r := get(s, c.key); (r == Hit) != c.hit {
					t.Fatalf("%+v: got %v", c, r)
				}
			}
			if s.Stats().GetFlushed == 0 {
				t.Fatal("GetFlushed not counted")
			}
		})
	}
}

type flushCheck struct {
	after int64
	key   string
	hit   bool
}

func TestFlushSameSecondWrite(t *testing.T) {
	// Items written in the same second as flush_all 0 but after it survive;
	// those written before it do not, thanks to the CAS horizon.
	s, _ := newTestStore(t, Config{})
	mustSet(t, s, "a", "v", nil)
	s.FlushAll(0)
	mustSet(t, s, "b", "v", nil)
	if _, r := get(s, "a"); r != Miss {
		t.Fatal("a survived flush")
	}
	if _, r := get(s, "b"); r != Hit {
		t.Fatal("b lost")
	}
}

// hookClock is a manual clock that runs a function once, from inside the
// next Now call, before answering it: a way to put another operation
// between the moment a store method reads the clock and the rest of it.
type hookClock struct {
	manualClock
	hook atomic.Pointer[func()]
}

func (c *hookClock) Now() int64 {
	t := c.manualClock.Now()
	if f := c.hook.Swap(nil); f != nil {
		(*f)()
	}
	return t
}

func TestFlushRacingSetInNewSecond(t *testing.T) {
	// A set reads the clock (second T), the clock ticks, a flush_all from
	// another connection runs (second T+1), then the set takes its CAS and
	// stores. The set came after the flush: it must survive, although its
	// write time is not after the flush's second.
	clk := &hookClock{}
	clk.Set(t0)
	s, _ := newTestStore(t, Config{Clock: clk})
	mustSet(t, s, "old", "v", nil)
	flush := func() {
		clk.Advance(1)
		s.FlushAll(0)
	}
	clk.hook.Store(&flush)
	mustSet(t, s, "key", "v", nil)
	if clk.hook.Load() != nil {
		t.Fatal("the flush did not run inside the set")
	}
	if _, r := get(s, "key"); r != Hit {
		t.Fatalf("set after flush_all: %v", r)
	}
	if _, r := get(s, "old"); r != Miss {
		t.Fatalf("item written before flush_all: %v", r)
	}
}

func TestLookupCountsFlushedAndExpired(t *testing.T) {
	// memcached's do_item_get counts get_flushed / get_expired on every
	// lookup, writes included: "set k; flush_all; set k" counts one.
	ops := map[string]func(s *Store){
		"set":    func(s *Store) { s.Set([]byte("k"), []byte("w"), nil) },
		"add":    func(s *Store) { s.Set([]byte("k"), []byte("w"), &SetOptions{Mode: ModeAdd}) },
		"append": func(s *Store) { s.Set([]byte("k"), []byte("w"), &SetOptions{Mode: ModeAppend}) },
		"delete": func(s *Store) { s.Delete([]byte("k"), nil) },
		"touch":  func(s *Store) { s.Touch([]byte("k"), 0) },
		"incr":   func(s *Store) { s.Arith([]byte("k"), &ArithOptions{Delta: 1}) },
		"get":    func(s *Store) { s.Get([]byte("k"), nil, nil) },
		"get u":  func(s *Store) { s.Get([]byte("k"), &GetOptions{NoBump: true}, nil) },
		"cas":    func(s *Store) { s.Set([]byte("k"), []byte("w"), &SetOptions{CAS: 1}) },
	}
	for name, op := range ops {
		t.Run(name+" after flush_all", func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			mustSet(t, s, "k", "1", nil)
			s.FlushAll(0)
			op(s)
			if st := s.Stats(); st.GetFlushed != 1 || st.GetExpired != 0 || st.Reclaimed != 0 {
				t.Fatalf("%+v", st)
			}
		})
		t.Run(name+" after expiry", func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			mustSet(t, s, "k", "1", &SetOptions{Exptime: -1})
			op(s)
			if st := s.Stats(); st.GetExpired != 1 || st.ExpiredUnfetched != 0 || st.GetFlushed != 0 {
				t.Fatalf("%+v", st)
			}
		})
	}
}
