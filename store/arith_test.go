package store

import "testing"

func TestArith(t *testing.T) {
	cases := map[string]struct {
		val   string
		decr  bool
		delta uint64
		want  Result
		n     uint64
		after string
	}{
		"incr":                   {"10", false, 5, Stored, 15, "15"},
		"incr wraps":             {"18446744073709551615", false, 2, Stored, 1, "1                   "},
		"decr":                   {"10", true, 3, Stored, 7, "7 "},
		"decr pads with spaces":  {"10", true, 1, Stored, 9, "9 "},
		"decr floors at zero":    {"5", true, 10, Stored, 0, "0"},
		"incr grows":             {"99", false, 1, Stored, 100, "100"},
		"leading spaces":         {"  12", false, 1, Stored, 13, "13  "},
		"trailing space garbage": {"12 a", false, 1, Stored, 13, "13  "},
		"leading zeros, long":    {"0000000000000000000000012", false, 1, Stored, 13, "13                       "},
		"plus sign":              {"+5", false, 1, Stored, 6, "6 "},
		"minus zero":             {"-0", false, 1, Stored, 1, "1 "},
		"negative":               {"-5", false, 1, NonNumeric, 0, "-5"},
		"letters":                {"12a", false, 1, NonNumeric, 0, "12a"},
		"empty":                  {"", false, 1, NonNumeric, 0, ""},
		"overflow":               {"18446744073709551616", false, 1, NonNumeric, 0, "18446744073709551616"},
		"grows past class":       {"9", false, 18446744073709551600, Stored, 18446744073709551609, "18446744073709551609"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			before := mustSet(t, s, "n", tc.val, &SetOptions{Flags: 9})
			res, n, it := s.Arith([]byte("n"), &ArithOptions{Decr: tc.decr, Delta: tc.delta})
			if res != tc.want || n != tc.n {
				t.Fatalf("got %v %d", res, n)
			}
			if v, _ := get(s, "n"); v != tc.after {
				t.Fatalf("value %q want %q", v, tc.after)
			}
			if res == Stored && (it.CAS == before.CAS || it.Flags != 9) {
				t.Fatalf("item %+v", it)
			}
		})
	}
}

func TestArithMissCASVivify(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	if res, _, _ := s.Arith([]byte("x"), &ArithOptions{Delta: 1}); res != NotFound {
		t.Fatalf("miss: %v", res)
	}
	res, n, it := s.Arith([]byte("x"), &ArithOptions{Vivify: true, Initial: 42, VivifyExptime: t0 + 9})
	if res != Stored || n != 42 || it.Exptime != t0+9 || !it.Created {
		t.Fatalf("vivify: %v %d %+v", res, n, it)
	}
	if res, _, _ := s.Arith([]byte("x"), &ArithOptions{Delta: 1, CAS: it.CAS + 1}); res != Exists {
		t.Fatalf("cas mismatch: %v", res)
	}
	res, n, it2 := s.Arith([]byte("x"), &ArithOptions{Delta: 1, CAS: it.CAS, NewCAS: 777, Touch: true, Exptime: t0 + 99})
	// The CAS is the new one, the Exptime the one before the touch.
	if res != Stored || n != 43 || it2.CAS != 777 || it2.Exptime != t0+9 || it2.Created {
		t.Fatalf("cas match: %v %d %+v", res, n, it2)
	}
	if it3, _, _ := s.Get([]byte("x"), nil, nil); it3.Exptime != t0+99 {
		t.Fatalf("touch not applied: %+v", it3)
	}
}

// An incr rewritten in place keeps the item's bits; one that outgrows the
// value is a new item in memcached and starts without them.
func TestArithGrowDropsItemBits(t *testing.T) {
	tests := map[string]struct {
		value     string
		wantKept  bool
		wantValue string
	}{
		"in place": {value: "5", wantKept: true, wantValue: "6"},
		"grows":    {value: "9", wantKept: false, wantValue: "10"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			mustSet(t, s, "n", tc.value, &SetOptions{KeyBinary: true})
			s.Get([]byte("n"), nil, nil)
			if res, _, _ := s.Arith([]byte("n"), &ArithOptions{Delta: 1}); res != Stored {
				t.Fatalf("arith: %v", res)
			}
			it, v, _ := s.Get([]byte("n"), nil, nil)
			if string(v) != tc.wantValue || it.KeyBinary != tc.wantKept || it.Fetched != tc.wantKept {
				t.Fatalf("got %q %+v, want kept=%v", v, it, tc.wantKept)
			}
		})
	}
}
