package server

import (
	"bufio"
	"testing"
)

// BenchmarkRoundTrip measures whole request/reply round trips over loopback
// TCP against an in-process server. allocs/op counts the server's
// allocations too (same process), so the hot paths must report 0.
func BenchmarkRoundTrip(b *testing.B) {
	cases := []struct {
		name  string
		req   string
		lines int // reply lines to read per iteration
	}{
		{"set+get", "set k 0 60 5\r\nhello\r\nget k\r\n", 4},
		{"gets", "gets k\r\n", 3},
		{"gat", "gat 60 k\r\n", 3},
		{"incr", "incr n 1\r\n", 1},
		{"ms+mg", "ms k 5 T60 F3\r\nhello\r\nmg k v t f c k O1 s\r\n", 3},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			addr := startShoal(b)
			nc := dial(b, addr)
			r := bufio.NewReader(nc)
			if _, err := nc.Write([]byte("set k 0 0 5\r\nhello\r\nset n 0 0 1\r\n0\r\n")); err != nil {
				b.Fatal(err)
			}
			for range 2 {
				r.ReadSlice('\n')
			}
			req := []byte(tc.req)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				for range tc.lines {
					if _, err := r.ReadSlice('\n'); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
