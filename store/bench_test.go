package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// benchKeys keys stay cache resident, so the benchmarks measure the code
// path; BenchmarkGetLarge shows the DRAM-bound case.
const benchKeys = 1 << 12

func benchStore(b *testing.B) *Store {
	s, err := New(Config{MemoryLimit: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	for i := 0; i < benchKeys; i++ {
		s.Set(key(i), val, nil)
	}
	return s
}

// benchKeySet returns the stored keys in a shuffled order, so that access
// order does not follow the order of the chunks in memory.
func benchKeySet() [][]byte {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = key(i)
	}
	r := rand.New(rand.NewPCG(1, 1))
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	keys := benchKeySet()
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, dst, _ = s.Get(keys[i&(benchKeys-1)], nil, dst[:0])
	}
}

// BenchmarkGetLarge reads 1M items in random order: every Get misses the
// CPU caches (index slot, chunk), so it measures memory latency.
func BenchmarkGetLarge(b *testing.B) {
	const n = 1 << 20
	s, _ := New(Config{MemoryLimit: 512 << 20})
	val := make([]byte, 100)
	keys := make([]byte, 0, n*12)
	for i := 0; i < n; i++ {
		k := key(i)
		s.Set(k, val, nil)
		keys = append(keys, k...)
		keys = append(keys, make([]byte, 12-len(k))...)
	}
	r := rand.New(rand.NewPCG(2, 2))
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		i := r.IntN(n) * 12
		k := keys[i : i+12]
		for k[len(k)-1] == 0 {
			k = k[:len(k)-1]
		}
		_, dst, _ = s.Get(k, nil, dst[:0])
	}
}

func BenchmarkSet(b *testing.B) {
	s := benchStore(b)
	keys := benchKeySet()
	val := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Set(keys[i&(benchKeys-1)], val, nil)
	}
}

// BenchmarkSetEvict writes ever new keys into a full store, so every Set
// runs the CLOCK hand.
func BenchmarkSetEvict(b *testing.B) {
	s, _ := New(Config{MemoryLimit: 8 << 20})
	val := make([]byte, 100)
	k := make([]byte, 0, 32)
	for i := 0; i < 200_000; i++ {
		s.Set(key(i), val, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k = append(k[:0], "evict:"...)
		k = append(k, byte(i), byte(i>>8), byte(i>>16), byte(i>>24))
		s.Set(k, val, nil)
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s := benchStore(b)
	keys := benchKeySet()
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64 // spreads goroutines over the key space
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 256)
		i := int(next.Add(benchKeys / 3))
		for pb.Next() {
			_, dst, _ = s.Get(keys[i&(benchKeys-1)], nil, dst[:0])
			i++
		}
	})
}

func BenchmarkMixedParallel(b *testing.B) {
	s := benchStore(b)
	keys := benchKeySet()
	val := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64 // spreads goroutines over the key space
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 256)
		i := int(next.Add(benchKeys / 3))
		for pb.Next() {
			k := keys[i&(benchKeys-1)]
			if i%10 == 0 {
				s.Set(k, val, nil)
			} else {
				_, dst, _ = s.Get(k, nil, dst[:0])
			}
			i++
		}
	})
}

func TestGetSetDoNotAllocate(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	k, val := []byte("some-key"), make([]byte, 100)
	s.Set(k, val, nil)
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(1000, func() { _, dst, _ = s.Get(k, nil, dst[:0]) }); n != 0 {
		t.Fatalf("Get allocates %v", n)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Set(k, val, nil) }); n != 0 {
		t.Fatalf("Set allocates %v", n)
	}
	opt := &SetOptions{Mode: ModeAppend}
	if n := testing.AllocsPerRun(1000, func() { s.Set(k, val[:1], opt); s.Set(k, val, nil) }); n != 0 {
		t.Fatalf("append allocates %v", n)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Arith([]byte("n"), &ArithOptions{Vivify: true, Delta: 1}) }); n != 0 {
		t.Fatalf("Arith allocates %v", n)
	}
}

// fillItems returns a store holding n items of 100 bytes.
func fillItems(tb testing.TB, n int) *Store {
	tb.Helper()
	s, err := New(Config{MemoryLimit: int64(n)*160 + 64<<20})
	if err != nil {
		tb.Fatal(err)
	}
	val := make([]byte, 100)
	for i := range n {
		if r, _ := s.Set(key(i), val, nil); r != Stored {
			tb.Fatalf("set %d: %v", i, r)
		}
	}
	return s
}

// heapInUse is the Go heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestHeapFlat shows why GC cost does not grow with the items held: pages
// and index live off the Go heap, so a million items add (almost) nothing
// for the collector to track.
func TestHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million items")
	}
	base := heapInUse()
	s := fillItems(t, 1_000_000)
	grown := heapInUse()
	runtime.KeepAlive(s)
	t.Logf("Go heap in use: %d KiB before, %d KiB with 1e6 items", base>>10, grown>>10)
	// The page table and per-class bookkeeping are on the heap: a few
	// hundred KiB, against ~150 MiB of items.
	if grown > base+4<<20 {
		t.Fatalf("Go heap grew by %d KiB for 1e6 items", (grown-base)>>10)
	}
}

// BenchmarkGCWithItems reports the time of a forced collection while the
// store holds 1M and 10M items; flat means GC cost is independent of the
// items held (the 1M vs 10M check).
func BenchmarkGCWithItems(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("items=%dM", n/1_000_000), func(b *testing.B) {
			s := fillItems(b, n)
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(s)
		})
	}
}
