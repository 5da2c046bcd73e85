package store

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// manualClock is a Clock that moves only when a test says so.
type manualClock struct{ t atomic.Int64 }

func newManualClock(t int64) *manualClock {
	c := &manualClock{}
	c.t.Store(t)
	return c
}

func (c *manualClock) Now() int64      { return c.t.Load() }
func (c *manualClock) Advance(d int64) { c.t.Add(d) }
func (c *manualClock) Set(t int64)     { c.t.Store(t) }

const t0 = 1_700_000_000

// newTestStore returns a store on a manual clock at t0.
func newTestStore(t testing.TB, cfg Config) (*Store, *manualClock) {
	t.Helper()
	clk := newManualClock(t0)
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func mustSet(t testing.TB, s *Store, key, val string, opt *SetOptions) Item {
	t.Helper()
	res, it := s.Set([]byte(key), []byte(val), opt)
	if res != Stored {
		t.Fatalf("set %q: %v", key, res)
	}
	return it
}

func get(s *Store, key string) (string, Result) {
	_, v, res := s.Get([]byte(key), nil, nil)
	return string(v), res
}
func key(i int) []byte { return strconv.AppendInt([]byte("key:"), int64(i), 10) }
