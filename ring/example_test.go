package ring_test

import (
	"fmt"

	"shoal/ring"
)

func Example() {
	cfg := ring.Config{Replicas: 2} // 4096 shards, load factor 1.05
	old, err := ring.New(cfg, []string{"cache-b", "cache-a", "cache-c"}, 41)
	if err != nil {
		panic(err)
	}
	r, err := ring.New(cfg, []string{"cache-a", "cache-b", "cache-c", "cache-d"}, 42)
	if err != nil {
		panic(err)
	}
	shard := r.Shard([]byte("user:1234"))
	owners := r.Owners(shard) // shared storage: read, never modify
	fmt.Println(len(owners), owners[0] == r.Primary(shard))
	fmt.Println(r.Nodes(), r.Epoch())

	moved := 0
	for _, m := range ring.Diff(old, r) {
		if m.From[0] != m.To[0] {
			moved++
		}
	}
	fmt.Println(moved > 0 && moved < r.NumShards()/3)
	// Output:
	// 2 true
	// [cache-a cache-b cache-c cache-d] 42
	// true
}
