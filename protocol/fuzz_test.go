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
	// Peer extensions (FuzzParse and FuzzReader also parse in peer mode).
	for _, in := range []string{
		"ms a 1 Y7 Z42 E9\r\nx\r\n", "md a Y5 Z6 q\r\n", "mg a Y1\r\n", "ma a Z1\r\n", "mg a A4096 v s f\r\n",
		"sd AQI=\r\n", "sd\r\n", "sd AQI\r\n", "sd A*I= x\r\n",
	} {
		f.Add([]byte(in))
	}
}

// parseAny parses in with or without the peer extensions, as Parse would
// (a rejected data block counts as consumed).
func parseAny(in []byte, peer bool) (Command, int, error) {
	if !peer {
		return Parse(in)
	}
	p := parser{getCap: DefaultGetLineCap, peer: true}
	cmd, n, swallow, err := p.parse(in)
	if err == ErrIncomplete {
		return nil, 0, err
	}
	if swallow > 0 {
		if len(in)-n < swallow {
			return nil, 0, ErrIncomplete
		}
		n += swallow
	}
	return cmd, n, err
}

func FuzzParse(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, peer := range []bool{false, true} {
			checkParse(t, in, peer)
		}
	})
}

func checkParse(t *testing.T, in []byte, peer bool) {
	t.Helper()
	cmd, n, err := parseAny(in, peer)
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
		cmd2, n2, err2 := parseAny(in[:n], peer)
		if n2 != n || show(cmd2) != show(cmd) || (err2 == nil) != (err == nil) {
			t.Fatalf("prefix parse differs (peer %v): %d/%d %s/%s %v/%v", peer, n2, n, show(cmd2), show(cmd), err2, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		for i, whole := range []bool{true, false, true} {
			src := iotest.OneByteReader(strings.NewReader(string(in)))
			if whole {
				src = strings.NewReader(string(in))
			}
			r := NewReader(src, 64)
			if i == 2 {
				r.AcceptPeerExtensions()
			}
			for i := 0; i <= len(in); i++ {
				_, err := r.Next()
				if len(r.buf) > readChunk {
					// Long get lines come in parts; data blocks of up to
					// 64 bytes fit: the buffer never grows.
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
