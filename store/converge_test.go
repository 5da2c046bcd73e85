package store

import (
	"testing"
	"time"
)

// TestSetNewer: a copy applied with Newer replaces only an older item.
func TestSetNewer(t *testing.T) {
	cases := map[string]struct {
		have   uint64 // CAS of the item held; 0: none
		copy   uint64
		want   Result
		result string
	}{
		"missing":   {copy: 50, want: Stored, result: "copy"},
		"older":     {have: 40, copy: 50, want: Stored, result: "copy"},
		"same":      {have: 50, copy: 50, want: Stored, result: "copy"},
		"newer one": {have: 60, copy: 50, want: NotStored, result: "held"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			if c.have != 0 {
				s.Set([]byte("k"), []byte("held"), &SetOptions{NewCAS: c.have})
			}
			res, _ := s.Set([]byte("k"), []byte("copy"), &SetOptions{NewCAS: c.copy, Newer: true})
			if res != c.want {
				t.Fatalf("Set = %v, want %v", res, c.want)
			}
			_, val, _ := s.Get([]byte("k"), nil, nil)
			if string(val) != c.result {
				t.Fatalf("value %q, want %q", val, c.result)
			}
		})
	}
}

// TestHybridCAS: CASes follow the wall clock in milliseconds, increase
// strictly, and pass any CAS applied from elsewhere.
func TestHybridCAS(t *testing.T) {
	s, _ := newTestStore(t, Config{HybridCAS: true})
	before := uint64(time.Now().UnixMilli()) << 16
	_, a := s.Set([]byte("a"), []byte("1"), nil)
	_, b := s.Set([]byte("a"), []byte("2"), nil)
	after := uint64(time.Now().UnixMilli()+1) << 16
	if a.CAS < before || a.CAS >= after || b.CAS <= a.CAS || b.CAS >= after {
		t.Fatalf("CAS %d then %d, want in [%d, %d) and increasing", a.CAS, b.CAS, before, after)
	}
	ahead := after + 1<<30 // a peer whose clock runs ahead
	s.Set([]byte("b"), []byte("x"), &SetOptions{NewCAS: ahead})
	if _, c := s.Set([]byte("a"), []byte("3"), nil); c.CAS <= ahead {
		t.Fatalf("CAS %d after applying %d, want above it", c.CAS, ahead)
	}
}

// TestDeleteBefore: a delete of version d removes only an item older than
// d; Stamp orders later writes after a version witnessed from elsewhere.
func TestDeleteBefore(t *testing.T) {
	cases := map[string]struct {
		have uint64
		want Result
		left bool
	}{
		"older item": {have: 40, want: Deleted},
		"newer item": {have: 60, want: NotFound, left: true},
		"same":       {have: 50, want: NotFound, left: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{HybridCAS: true})
			s.Set([]byte("k"), []byte("v"), &SetOptions{NewCAS: c.have})
			res, _ := s.Delete([]byte("k"), &DeleteOptions{Before: 50})
			_, _, got := s.Get([]byte("k"), nil, nil)
			if res != c.want || (got == Hit) != c.left {
				t.Fatalf("Delete = %v, item left %v; want %v, %v", res, got == Hit, c.want, c.left)
			}
		})
	}
	s, _ := newTestStore(t, Config{HybridCAS: true})
	ahead := uint64(time.Now().UnixMilli()+60_000) << 16
	if got := s.Stamp(ahead); got != ahead {
		t.Fatalf("Stamp(%d) = %d", ahead, got)
	}
	if fresh := s.Stamp(0); fresh <= ahead {
		t.Fatalf("Stamp(0) = %d after witnessing %d, want above", fresh, ahead)
	}
	if _, it := s.Set([]byte("k"), []byte("v"), nil); it.CAS <= ahead {
		t.Fatalf("set after witnessing %d got CAS %d", ahead, it.CAS)
	}
}
