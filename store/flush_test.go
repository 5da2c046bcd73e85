package store

import "testing"

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
