package store

import "testing"

func TestVivifyWin(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	opt := &GetOptions{Vivify: true, VivifyExptime: t0 + 30}
	it, v, res := s.Get([]byte("k"), opt, nil)
	if res != Hit || !it.Win || !it.Created || it.TokenSent || len(v) != 0 || it.Exptime != t0+30 {
		t.Fatalf("first: %v %+v", res, it)
	}
	it, _, res = s.Get([]byte("k"), opt, nil)
	if res != Hit || it.Win || it.Created || !it.TokenSent {
		t.Fatalf("second: %v %+v", res, it)
	}
	// The winner sets the value; the token is gone.
	mustSet(t, s, "k", "real", nil)
	it, v, _ = s.Get([]byte("k"), opt, nil)
	if it.Win || it.TokenSent || string(v) != "real" {
		t.Fatalf("after set: %+v %q", it, v)
	}
}

func TestRecacheBelow(t *testing.T) {
	s, clk := newTestStore(t, Config{})
	mustSet(t, s, "k", "v", &SetOptions{Exptime: t0 + 100})
	opt := &GetOptions{RecacheBelow: 30}
	if it, _, _ := s.Get([]byte("k"), opt, nil); it.Win {
		t.Fatal("win with 100s left")
	}
	clk.Advance(80)
	if it, _, _ := s.Get([]byte("k"), opt, nil); !it.Win || it.TokenSent {
		t.Fatalf("first below threshold: %+v", it)
	}
	if it, _, _ := s.Get([]byte("k"), opt, nil); it.Win || !it.TokenSent {
		t.Fatalf("second below threshold: %+v", it)
	}
}

func TestInvalidate(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	orig := mustSet(t, s, "k", "v1", &SetOptions{Exptime: t0 + 100})
	res, d := s.Delete([]byte("k"), &DeleteOptions{Invalidate: true, Touch: true, Exptime: t0 + 30})
	if res != Deleted || !d.Stale || d.CAS == orig.CAS || d.Exptime != t0+30 {
		t.Fatalf("md I: %v %+v", res, d)
	}
	it, v, _ := s.Get([]byte("k"), nil, nil)
	if !it.Stale || !it.Win || string(v) != "v1" {
		t.Fatalf("first reader: %+v %q", it, v)
	}
	it, _, _ = s.Get([]byte("k"), nil, nil)
	if !it.Stale || it.Win || !it.TokenSent {
		t.Fatalf("second reader: %+v", it)
	}
	// A write with the old CAS and Invalidate stores but stays stale.
	res, st := s.Set([]byte("k"), []byte("v2"), &SetOptions{CAS: orig.CAS, Invalidate: true, Exptime: t0 + 999})
	if res != Stored || !st.Stale || st.Exptime != t0+30 || !st.TokenSent {
		t.Fatalf("ms I with old CAS: %v %+v", res, st)
	}
	// Without Invalidate the old CAS is a mismatch.
	if res, _ := s.Set([]byte("k"), []byte("v3"), &SetOptions{CAS: orig.CAS}); res != Exists {
		t.Fatalf("ms with old CAS: %v", res)
	}
	// A plain set clears staleness.
	mustSet(t, s, "k", "v4", nil)
	if it, _, _ := s.Get([]byte("k"), nil, nil); it.Stale || it.Win {
		t.Fatalf("after set: %+v", it)
	}
}
