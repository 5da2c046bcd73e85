package ring

import (
	"encoding/binary"
	"math/bits"
)

// The hashes below are part of the cluster's wire contract: every node, in
// every version, must map a key to the same shard and a shard to the same
// preference order, so they are fixed algorithms with fixed seeds
// (hash/maphash would differ per process). TestHashGolden pins them.

const (
	prime1 uint64 = 11400714785074694791
	prime2 uint64 = 14029467366897019727
	prime3 uint64 = 1609587929392839161
	prime4 uint64 = 9650029242287828579
	prime5 uint64 = 2870177450012600261
)

// xxh64 is XXH64 with seed 0, written out here because the module takes no
// dependencies for the ring. It allocates nothing.
func xxh64(b []byte) uint64 {
	n := len(b)
	var h uint64
	if n >= 32 {
		v1 := prime1
		v1 += prime2 // wraps; as a constant expression it would not compile
		v2 := prime2
		var v3 uint64
		var v4 uint64
		v4 -= prime1
		for len(b) >= 32 {
			v1 = xxRound(v1, binary.LittleEndian.Uint64(b[0:8]))
			v2 = xxRound(v2, binary.LittleEndian.Uint64(b[8:16]))
			v3 = xxRound(v3, binary.LittleEndian.Uint64(b[16:24]))
			v4 = xxRound(v4, binary.LittleEndian.Uint64(b[24:32]))
			b = b[32:]
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMerge(h, v1)
		h = xxMerge(h, v2)
		h = xxMerge(h, v3)
		h = xxMerge(h, v4)
	} else {
		h = prime5
	}
	h += uint64(n)
	for ; len(b) >= 8; b = b[8:] {
		h ^= xxRound(0, binary.LittleEndian.Uint64(b[:8]))
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
	}
	if len(b) >= 4 {
		h ^= uint64(binary.LittleEndian.Uint32(b[:4])) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		b = b[4:]
	}
	for _, c := range b {
		h ^= uint64(c) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

func xxRound(acc, in uint64) uint64 {
	acc += in * prime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime1
}

func xxMerge(acc, v uint64) uint64 {
	acc ^= xxRound(0, v)
	return acc*prime1 + prime4
}

// mix64 is the splitmix64 finalizer: a bijection with full avalanche, used to
// derive independent-looking scores from (shard, node) pairs.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// shardSeed spreads shard numbers over 64 bits before they meet a node hash.
func shardSeed(shard int) uint64 {
	return mix64(uint64(shard)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019)
}

// score is the rendezvous weight of a (shard, node) pair: both the shard's
// preference among nodes and the node's preference among shards.
func score(seed, nodeHash uint64) uint64 {
	return mix64(seed ^ nodeHash)
}

// reduce maps a uniform 64-bit hash onto [0, n) without a division and
// without the bias of the low bits (Lemire's multiply-shift).
func reduce(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}
