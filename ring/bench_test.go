package ring

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkNew times New and reports placement quality for each N over 20
// random member sets (4096 shards, Replicas 2, LoadFactor 1.05):
//
//	prim-max/mean   worst max/mean primaries per node
//	slots-max/mean  worst max/mean owner slots (primary + replica)
//	join-x / join-worst-x    primaries moved on one join ÷ shards/(N+1), mean and worst
//	leave-x / leave-worst-x  primaries moved on one leave ÷ shards/N, mean and worst
//	join-lists / leave-lists fraction of shards whose owner list changed
func BenchmarkNew(b *testing.B) {
	for _, n := range qualityNs {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			q := measure(ringPlacer(Config{}), n, DefaultShards, 20, 1)
			nodes := randomNames(rand.New(rand.NewPCG(2, 2)), n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(Config{}, nodes, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(q.primaryMax, "prim-max/mean")
			b.ReportMetric(q.slotMax, "slots-max/mean")
			b.ReportMetric(q.joinMean, "join-x")
			b.ReportMetric(q.joinWorst, "join-worst-x")
			b.ReportMetric(q.leaveMean, "leave-x")
			b.ReportMetric(q.leaveWorst, "leave-worst-x")
			b.ReportMetric(q.joinLists, "join-lists")
			b.ReportMetric(q.leaveLists, "leave-lists")
		})
	}
}

func BenchmarkShard(b *testing.B) {
	r, _ := New(Config{}, []string{"a", "b", "c"}, 1)
	for _, size := range []int{10, 40, 250} {
		key := make([]byte, size)
		for i := range key {
			key[i] = byte('a' + i%26)
		}
		b.Run(fmt.Sprintf("key=%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				_ = r.Shard(key)
			}
		})
	}
}

func BenchmarkOwners(b *testing.B) {
	r, _ := New(Config{}, randomNames(rand.New(rand.NewPCG(1, 1)), 16), 1)
	b.ReportAllocs()
	s := 0
	for b.Loop() {
		_ = r.Owners(s)
		s = (s + 1) & (DefaultShards - 1)
	}
}
