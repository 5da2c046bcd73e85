package protocol

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func seed(f *testing.F) {
	for _, cases := range []map[string]parseCase{classicCases, metaCases} {
		for _, tc := range cases {
			if len(tc.in) < 4096 {
				f.Add([]byte(tc.in))
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		cmd, n, err := Parse(in)
		if n < 0 || n > len(in) {
			t.Fatalf("n = %d of %d", n, len(in))
		}
		var pe *Error
		switch {
		case err == nil:
			if cmd == nil || n == 0 {
				t.Fatalf("nil command or no progress: %v %d", cmd, n)
			}
		case errors.As(err, &pe):
			if n == 0 || pe.Reply == "" {
				t.Fatalf("error without progress: %q", pe.Reply)
			}
		case err == ErrIncomplete:
			if n != 0 {
				t.Fatalf("incomplete with n = %d", n)
			}
			// A complete command stays complete: appending cannot
			// make Parse consume less than... nothing to check.
		}
		if err == nil || pe != nil {
			// Parsing is a function of the consumed prefix only.
			cmd2, n2, err2 := Parse(in[:n])
			if n2 != n || show(cmd2) != show(cmd) || (err2 == nil) != (err == nil) {
				t.Fatalf("prefix parse differs: %d/%d %s/%s %v/%v", n2, n, show(cmd2), show(cmd), err2, err)
			}
		}
	})
}

func FuzzReader(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, whole := range []bool{true, false} {
			src := iotest.OneByteReader(strings.NewReader(string(in)))
			if whole {
				src = strings.NewReader(string(in))
			}
			r := NewReader(src, 64)
			for i := 0; i <= len(in); i++ {
				_, err := r.Next()
				if len(r.buf) > max(readChunk, 2*DefaultGetLineCap) {
					t.Fatalf("buffer %d", len(r.buf))
				}
				if r.Buffered() < 0 || r.start > r.end {
					t.Fatalf("bad state %d %d", r.start, r.end)
				}
				var pe *Error
				if err != nil && !errors.As(err, &pe) {
					break
				}
				if i == len(in) {
					t.Fatalf("more commands than bytes")
				}
			}
		}
	})
}
