package peer

import (
	"testing"
)

// Benchmarks over loopback against an in-process shoal: allocs/op counts
// the server's allocations too (same process); both paths aim at 0.
func BenchmarkGet(b *testing.B) {
	c := newClient(b, Config{Addr: serveShoal(b, listen(b, "127.0.0.1:0"))})
	key, val := []byte("bench:key"), make([]byte, 100)
	if _, _, err := c.Set(bg, key, val, SetOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		buf := make([]byte, 0, 128)
		b.ReportAllocs()
		for b.Loop() {
			if _, found, err := c.Get(bg, key, GetOptions{Buf: buf}); !found || err != nil {
				b.Fatal(found, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 0, 128)
			for pb.Next() {
				if _, found, err := c.Get(bg, key, GetOptions{Buf: buf}); !found || err != nil {
					b.Fatal(found, err)
				}
			}
		})
	})
}

func BenchmarkSet(b *testing.B) {
	c := newClient(b, Config{Addr: serveShoal(b, listen(b, "127.0.0.1:0"))})
	key, val := []byte("bench:key"), make([]byte, 100)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res, _, err := c.Set(bg, key, val, SetOptions{TTL: 60}); res != OK || err != nil {
				b.Fatal(res, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res, _, err := c.Set(bg, key, val, SetOptions{TTL: 60}); res != OK || err != nil {
					b.Fatal(res, err)
				}
			}
		})
	})
}
