package server

import (
	"encoding/binary"
	"io"
	"testing"

	"shoal/protocol"
)

// BenchmarkBinaryRoundTrip is BenchmarkRoundTrip for the binary protocol:
// the get/set paths must report 0 allocs/op.
func BenchmarkBinaryRoundTrip(b *testing.B) {
	fl := u32s(0, 60)
	cases := []struct {
		name    string
		req     [][]byte
		replies int
	}{
		{"set+get", [][]byte{pkt(protocol.BinSet, "k", fl, "hello", 1, 0), pkt(protocol.BinGet, "k", "", "", 2, 0)}, 2},
		{"setq+getkq+noop", [][]byte{pkt(protocol.BinSetQ, "k", fl, "hello", 1, 0), pkt(protocol.BinGetKQ, "k", "", "", 2, 0), pkt(protocol.BinNoop, "", "", "", 3, 0)}, 2},
		{"gat", [][]byte{pkt(protocol.BinGAT, "k", u32s(60), "", 1, 0)}, 1},
		{"incr", [][]byte{pkt(protocol.BinIncrement, "n", arithExtras(1, 0, 0), "", 1, 0)}, 1},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			addr := startShoal(b)
			nc := dial(b, addr)
			var req []byte
			for _, p := range tc.req {
				req = append(req, p...)
			}
			buf := make([]byte, 64<<10)
			read := func(n int) {
				for range n {
					if _, err := io.ReadFull(nc, buf[:protocol.BinaryHeaderLen]); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(nc, buf[:binary.BigEndian.Uint32(buf[8:])]); err != nil {
						b.Fatal(err)
					}
				}
			}
			nc.Write(pkt(protocol.BinSet, "k", fl, "hello", 0, 0))
			nc.Write(pkt(protocol.BinSet, "n", fl, "0", 0, 0))
			read(2)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				read(tc.replies)
			}
		})
	}
}
