package store

import (
	"bytes"
	"testing"
)

func TestSetModes(t *testing.T) {
	type step struct {
		mode  Mode
		val   string
		cas   bool // use the CAS of the previous successful write
		bad   bool // use a wrong CAS
		want  Result
		value string // expected value after the step ("" with miss=true: absent)
		miss  bool
	}
	cases := map[string][]step{
		"set then set":          {{mode: ModeSet, val: "a", want: Stored, value: "a"}, {mode: ModeSet, val: "bb", want: Stored, value: "bb"}},
		"add on missing":        {{mode: ModeAdd, val: "a", want: Stored, value: "a"}},
		"add on existing":       {{mode: ModeSet, val: "a", want: Stored, value: "a"}, {mode: ModeAdd, val: "b", want: NotStored, value: "a"}},
		"replace on missing":    {{mode: ModeReplace, val: "a", want: NotStored, miss: true}},
		"replace on existing":   {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeReplace, val: "b", want: Stored, value: "b"}},
		"append on missing":     {{mode: ModeAppend, val: "a", want: NotStored, miss: true}},
		"prepend on missing":    {{mode: ModePrepend, val: "a", want: NotStored, miss: true}},
		"append":                {{mode: ModeSet, val: "abc", want: Stored}, {mode: ModeAppend, val: "def", want: Stored, value: "abcdef"}},
		"prepend":               {{mode: ModeSet, val: "abc", want: Stored}, {mode: ModePrepend, val: "xyz", want: Stored, value: "xyzabc"}},
		"cas match":             {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeSet, val: "b", cas: true, want: Stored, value: "b"}},
		"cas mismatch":          {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeSet, val: "b", bad: true, want: Exists, value: "a"}},
		"cas on missing":        {{mode: ModeSet, val: "b", bad: true, want: NotFound, miss: true}},
		"replace cas mismatch":  {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeReplace, val: "b", bad: true, want: Exists, value: "a"}},
		"append cas mismatch":   {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeAppend, val: "b", bad: true, want: Exists, value: "a"}},
		"append cas match":      {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeAppend, val: "b", cas: true, want: Stored, value: "ab"}},
		"append grows class":    {{mode: ModeSet, val: "a", want: Stored}, {mode: ModeAppend, val: string(bytes.Repeat([]byte("x"), 5000)), want: Stored, value: "a" + string(bytes.Repeat([]byte("x"), 5000))}},
		"prepend grows class":   {{mode: ModeSet, val: "a", want: Stored}, {mode: ModePrepend, val: string(bytes.Repeat([]byte("x"), 300)), want: Stored, value: string(bytes.Repeat([]byte("x"), 300)) + "a"}},
		"set shrinks class":     {{mode: ModeSet, val: string(bytes.Repeat([]byte("x"), 5000)), want: Stored}, {mode: ModeSet, val: "s", want: Stored, value: "s"}},
		"add with cas, missing": {{mode: ModeAdd, val: "a", bad: true, want: Stored, value: "a"}},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			var last uint64
			for i, st := range steps {
				opt := &SetOptions{Mode: st.mode, Flags: 7}
				if st.cas {
					opt.CAS = last
				}
				if st.bad {
					opt.CAS = last + 1000
				}
				res, it := s.Set([]byte("k"), []byte(st.val), opt)
				if res != st.want {
					t.Fatalf("step %d: got %v want %v", i, res, st.want)
				}
				if res == Stored {
					last = it.CAS
					if it.Size != len(st.value) && st.value != "" {
						t.Fatalf("step %d: size %d", i, it.Size)
					}
				}
				v, gr := get(s, "k")
				if st.miss {
					if gr != Miss {
						t.Fatalf("step %d: expected miss, got %q", i, v)
					}
					continue
				}
				if st.value != "" && v != st.value {
					t.Fatalf("step %d: value %q want %q", i, v, st.value)
				}
			}
			if st := s.Stats(); st.CurrItems > 1 {
				t.Fatalf("items %d", st.CurrItems)
			}
		})
	}
}

func TestAppendKeepsFlagsAndExptime(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	mustSet(t, s, "k", "a", &SetOptions{Flags: 42, Exptime: t0 + 100})
	res, it := s.Set([]byte("k"), []byte("b"), &SetOptions{Mode: ModeAppend, Flags: 1, Exptime: t0 + 5})
	if res != Stored || it.Flags != 42 || it.Exptime != t0+100 {
		t.Fatalf("%v %+v", res, it)
	}
}

func TestAppendVivify(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	res, _ := s.Set([]byte("k"), []byte("a"), &SetOptions{Mode: ModeAppend, Vivify: true, Flags: 3})
	if v, _ := get(s, "k"); res != Stored || v != "a" {
		t.Fatalf("%v %q", res, v)
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxItemSize: 2048, MemoryLimit: 4 << 20})
	cases := map[string]struct {
		klen, vlen int
		fits       bool
	}{
		"small":          {10, 100, true},
		"exactly max":    {10, 2048 - hdrSize - 10, true},
		"one over":       {10, 2048 - hdrSize - 9, false},
		"key over 250":   {251, 1, false},
		"key at 250":     {250, 1, true},
		"negative value": {1, -1, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := s.Fits(tc.klen, tc.vlen); got != tc.fits {
				t.Fatalf("Fits = %v", got)
			}
			if tc.vlen < 0 {
				return
			}
			res, _ := s.Set(bytes.Repeat([]byte("k"), tc.klen), make([]byte, tc.vlen), nil)
			if (res == Stored) != tc.fits || (!tc.fits && res != TooLarge) {
				t.Fatalf("Set = %v", res)
			}
		})
	}
	// append past the limit is NotStored, as in memcached.
	mustSet(t, s, "a", string(make([]byte, 1500)), nil)
	if res, _ := s.Set([]byte("a"), make([]byte, 1000), &SetOptions{Mode: ModeAppend}); res != NotStored {
		t.Fatalf("big append: %v", res)
	}
}

func TestCASUnique(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	seen := map[uint64]bool{}
	for i := 0; i < 1000; i++ {
		it := mustSet(t, s, string(key(i%10)), "v", nil)
		if seen[it.CAS] || it.CAS == 0 {
			t.Fatalf("CAS %d reused", it.CAS)
		}
		seen[it.CAS] = true
	}
	// NewCAS overrides.
	if it := mustSet(t, s, "x", "v", &SetOptions{NewCAS: 99}); it.CAS != 99 {
		t.Fatalf("NewCAS ignored: %d", it.CAS)
	}
	// touch keeps the CAS; gets reports it.
	it := mustSet(t, s, "t", "v", nil)
	if res, tit := s.Touch([]byte("t"), t0+50); res != Touched || tit.CAS != it.CAS {
		t.Fatalf("touch changed CAS: %v %d %d", res, tit.CAS, it.CAS)
	}
	if git, _, _ := s.Get([]byte("t"), nil, nil); git.CAS != it.CAS || git.Exptime != t0+50 {
		t.Fatalf("after touch: %+v", git)
	}
}

func TestDelete(t *testing.T) {
	cases := map[string]struct {
		present bool
		opt     func(cas uint64) *DeleteOptions
		want    Result
		gone    bool
	}{
		"plain":        {true, func(uint64) *DeleteOptions { return nil }, Deleted, true},
		"missing":      {false, func(uint64) *DeleteOptions { return nil }, NotFound, true},
		"cas match":    {true, func(c uint64) *DeleteOptions { return &DeleteOptions{CAS: c} }, Deleted, true},
		"cas mismatch": {true, func(c uint64) *DeleteOptions { return &DeleteOptions{CAS: c + 1} }, Exists, false},
		"invalidate":   {true, func(uint64) *DeleteOptions { return &DeleteOptions{Invalidate: true} }, Deleted, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			var cas uint64
			if tc.present {
				cas = mustSet(t, s, "k", "v", nil).CAS
			}
			res, _ := s.Delete([]byte("k"), tc.opt(cas))
			if res != tc.want {
				t.Fatalf("got %v", res)
			}
			if _, r := get(s, "k"); (r == Miss) != tc.gone {
				t.Fatalf("after delete: %v", r)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	cases := map[string]struct {
		exptime int64
		advance int64
		hit     bool
	}{
		"never":             {0, 1 << 20, true},
		"future":            {t0 + 10, 9, true},
		"at exptime":        {t0 + 10, 10, false},
		"past":              {t0 + 10, 11, false},
		"already expired":   {t0 - 1, 0, false},
		"negative, expired": {-1, 0, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, clk := newTestStore(t, Config{})
			mustSet(t, s, "k", "v", &SetOptions{Exptime: tc.exptime})
			clk.Advance(tc.advance)
			if _, r := get(s, "k"); (r == Hit) != tc.hit {
				t.Fatalf("got %v", r)
			}
			// memcached counts expired_unfetched only where it reclaims
			// memory (LRU tail, crawler), never on a lookup.
			st := s.Stats()
			if !tc.hit && (st.GetExpired != 1 || st.CurrItems != 0 || st.ExpiredUnfetched != 0) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestGetTouchAndNoBump(t *testing.T) {
	s, clk := newTestStore(t, Config{})
	mustSet(t, s, "k", "v", nil)
	clk.Advance(5)
	it, _, _ := s.Get([]byte("k"), &GetOptions{NoBump: true}, nil)
	if it.Fetched || it.LastAccess != t0 {
		t.Fatalf("first: %+v", it)
	}
	// Get describes the item before this access: the old Exptime.
	it, _, _ = s.Get([]byte("k"), &GetOptions{Touch: true, Exptime: t0 + 7}, nil)
	if it.Fetched || it.Exptime != 0 {
		t.Fatalf("gat: %+v", it)
	}
	clk.Advance(1)
	it, _, _ = s.Get([]byte("k"), nil, nil)
	if !it.Fetched || it.LastAccess != t0+5 {
		t.Fatalf("second: %+v", it)
	}
	clk.Advance(1)
	if _, r := get(s, "k"); r != Miss {
		t.Fatal("gat exptime not applied")
	}
}

func TestBytesStat(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	mustSet(t, s, "0123456789", string(make([]byte, 100)), nil)
	if got, want := s.Stats().Bytes, int64(hdrSize+10+100+2); got != want {
		t.Fatalf("Bytes %d want %d", got, want)
	}
	s.Delete([]byte("0123456789"), nil)
	if st := s.Stats(); st.Bytes != 0 || st.CurrItems != 0 || st.TotalItems != 1 {
		t.Fatalf("%+v", st)
	}
}

// SetOptions.KeyBinary marks the item a write allocates; append and prepend
// build a new item in memcached, which starts unmarked, unfetched and not
// stale.
func TestSetKeyBinary(t *testing.T) {
	tests := map[string]struct {
		second *SetOptions
		want   bool
	}{
		"set with b":        {second: &SetOptions{KeyBinary: true}, want: true},
		"set without b":     {second: &SetOptions{}, want: false},
		"append with b":     {second: &SetOptions{Mode: ModeAppend, KeyBinary: true}, want: false},
		"prepend without b": {second: &SetOptions{Mode: ModePrepend}, want: false},
		"add refused":       {second: &SetOptions{Mode: ModeAdd}, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			mustSet(t, s, "k", "v", &SetOptions{KeyBinary: true})
			s.Set([]byte("k"), []byte("w"), tc.second)
			it, _, _ := s.Get([]byte("k"), nil, nil)
			if it.KeyBinary != tc.want {
				t.Fatalf("KeyBinary = %v, want %v", it.KeyBinary, tc.want)
			}
		})
	}
}

func TestAppendDropsFetchedAndStale(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	mustSet(t, s, "k", "a", &SetOptions{Exptime: t0 + 100})
	s.Delete([]byte("k"), &DeleteOptions{Invalidate: true})
	s.Get([]byte("k"), nil, nil) // wins the token, marks fetched
	if res, _ := s.Set([]byte("k"), []byte("b"), &SetOptions{Mode: ModeAppend}); res != Stored {
		t.Fatalf("append: %v", res)
	}
	it, v, _ := s.Get([]byte("k"), nil, nil)
	if string(v) != "ab" || it.Fetched || it.Stale || it.TokenSent || it.Win || it.Exptime != t0+100 {
		t.Fatalf("after append: %q %+v", v, it)
	}
}

// TestExplicitCASRaisesCounter: after a write with an explicit CAS (a
// replicated one), the next CAS the store picks is larger, so a token a
// client got from the primary can never match a newer version here.
func TestExplicitCASRaisesCounter(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if r, it := s.Set([]byte("k"), []byte("a"), &SetOptions{NewCAS: 1_000_000}); r != Stored || it.CAS != 1_000_000 {
		t.Fatalf("explicit CAS: %v %d", r, it.CAS)
	}
	_, it := s.Set([]byte("k"), []byte("b"), &SetOptions{})
	if it.CAS <= 1_000_000 {
		t.Fatalf("CAS after an explicit 1000000 is %d", it.CAS)
	}
	// A smaller explicit CAS does not move the counter back.
	s.Set([]byte("j"), []byte("c"), &SetOptions{NewCAS: 5})
	if _, it2 := s.Set([]byte("k"), []byte("d"), &SetOptions{}); it2.CAS <= it.CAS {
		t.Fatalf("CAS went back: %d after %d", it2.CAS, it.CAS)
	}
}
