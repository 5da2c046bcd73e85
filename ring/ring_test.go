package ring

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustNew(t testing.TB, cfg Config, nodes []string) *Ring {
	t.Helper()
	r, err := New(cfg, nodes, 7)
	if err != nil {
		t.Fatalf("New(%v, %q): %v", cfg, nodes, err)
	}
	return r
}

func TestDeterminism(t *testing.T) {
	cases := map[string]struct {
		cfg   Config
		nodes []string
	}{
		"three":             {Config{}, []string{"a", "b", "c"}},
		"ten replicas 3":    {Config{Replicas: 3}, randomNames(rand.New(rand.NewPCG(1, 2)), 10)},
		"sixteen small":     {Config{Shards: 64}, randomNames(rand.New(rand.NewPCG(3, 4)), 16)},
		"tight load factor": {Config{LoadFactor: 1.0001, Replicas: 3}, randomNames(rand.New(rand.NewPCG(5, 6)), 7)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := mustNew(t, tc.cfg, tc.nodes)
			rng := rand.New(rand.NewPCG(9, 9))
			for range 5 {
				shuffled := slices.Clone(tc.nodes)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				got := mustNew(t, tc.cfg, shuffled)
				if !slices.Equal(got.owners, want.owners) || !slices.Equal(got.Nodes(), want.Nodes()) {
					t.Fatalf("order %q gave a different table", shuffled)
				}
				if d := Diff(want, got); len(d) != 0 {
					t.Fatalf("Diff of equal rings: %d moves", len(d))
				}
			}
		})
	}
}

func TestOwners(t *testing.T) {
	cases := map[string]struct {
		cfg      Config
		nodes    int
		wantReps int
	}{
		"default":                {Config{}, 5, 2},
		"replicas 3":             {Config{Replicas: 3}, 10, 3},
		"replicas capped":        {Config{Replicas: 5}, 3, 3},
		"replicas equal N":       {Config{Replicas: 4}, 4, 4},
		"single node":            {Config{Replicas: 3}, 1, 1},
		"two nodes":              {Config{}, 2, 2},
		"tight few shards":       {Config{Shards: 10, LoadFactor: 1.0001, Replicas: 3}, 4, 3},
		"more nodes than shards": {Config{Shards: 8}, 20, 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			nodes := randomNames(rand.New(rand.NewPCG(uint64(tc.nodes), 1)), tc.nodes)
			r := mustNew(t, tc.cfg, nodes)
			checkInvariants(t, r, tc.wantReps)
			if tc.nodes == 1 {
				for s := range r.NumShards() {
					if r.Primary(s) != nodes[0] {
						t.Fatalf("shard %d primary %q, want the only node", s, r.Primary(s))
					}
				}
			}
		})
	}
}

// checkInvariants verifies what every ring promises: reps distinct members
// per shard, primary first, caps honoured, Shards agreeing with Owners.
func checkInvariants(t testing.TB, r *Ring, reps int) {
	t.Helper()
	count := map[string]int{}
	prim := map[string]int{}
	for s := range r.NumShards() {
		o := r.Owners(s)
		if len(o) != reps {
			t.Fatalf("shard %d: %d owners, want %d", s, len(o), reps)
		}
		if cap(o) != len(o) {
			t.Fatalf("shard %d: owner slice has spare capacity", s)
		}
		if len(o) > 0 && r.Primary(s) != o[0] {
			t.Fatalf("shard %d: Primary %q != Owners[0] %q", s, r.Primary(s), o[0])
		}
		for i, n := range o {
			if _, ok := slices.BinarySearch(r.Nodes(), n); !ok {
				t.Fatalf("shard %d: owner %q is not a member", s, n)
			}
			if slices.Contains(o[:i], n) {
				t.Fatalf("shard %d: owner %q repeated in %q", s, n, o)
			}
			count[n]++
		}
		if len(o) > 0 {
			prim[o[0]]++
		}
	}
	n := len(r.Nodes())
	if n == 0 {
		return
	}
	pcap := slotCap(DefaultLoadFactor, r.NumShards(), n)
	for node, c := range prim {
		if c > pcap && reps < n {
			t.Errorf("%q holds %d primaries, cap %d", node, c, pcap)
		}
	}
	for _, node := range r.Nodes() {
		sh := r.Shards(node)
		if len(sh) != count[node] || !slices.IsSorted(sh) {
			t.Fatalf("Shards(%q): %d shards, Owners says %d", node, len(sh), count[node])
		}
	}
}

func TestEmpty(t *testing.T) {
	for name, nodes := range map[string][]string{"nil": nil, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			r := mustNew(t, Config{Shards: 16}, nodes)
			for s := range 16 {
				if len(r.Owners(s)) != 0 || r.Primary(s) != "" {
					t.Fatalf("shard %d has owners %q", s, r.Owners(s))
				}
			}
			if r.Shards("a") != nil || len(r.Nodes()) != 0 || r.Epoch() != 7 {
				t.Fatal("empty ring reports members")
			}
			if r.Shard([]byte("k")) >= 16 {
				t.Fatal("shard out of range")
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	cases := map[string]struct {
		cfg   Config
		nodes []string
		want  error
	}{
		"duplicate":           {Config{}, []string{"a", "b", "a"}, ErrDuplicate},
		"empty name":          {Config{}, []string{"a", ""}, ErrEmptyName},
		"negative shards":     {Config{Shards: -1}, nil, ErrConfig},
		"too many shards":     {Config{Shards: MaxShards + 1}, nil, ErrConfig},
		"negative replicas":   {Config{Replicas: -1}, nil, ErrConfig},
		"vnodes":              {Config{VNodes: 160}, nil, ErrConfig},
		"load factor below 1": {Config{LoadFactor: 0.9}, nil, ErrConfig},
		"load factor NaN":     {Config{LoadFactor: math.NaN()}, nil, ErrConfig},
		"load factor Inf":     {Config{LoadFactor: math.Inf(1)}, nil, ErrConfig},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.nodes, 1); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	base := []string{"n1", "n2", "n3", "n4"}
	a := mustNew(t, Config{Shards: 256}, base)
	cases := map[string]*Ring{
		"same":  mustNew(t, Config{Shards: 256}, base),
		"join":  mustNew(t, Config{Shards: 256}, append(slices.Clone(base), "n5")),
		"leave": mustNew(t, Config{Shards: 256}, base[1:]),
		"empty": mustNew(t, Config{Shards: 256}, nil),
		"nil":   nil,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			moves := Diff(a, b)
			i := 0
			for s := range 256 {
				to := b.ownersOrNil(s)
				if slices.Equal(a.Owners(s), to) {
					continue
				}
				if i >= len(moves) {
					t.Fatalf("shard %d changed but Diff stopped", s)
				}
				m := moves[i]
				if m.Shard != s || !slices.Equal(m.From, a.Owners(s)) || !slices.Equal(m.To, to) {
					t.Fatalf("move %d = %+v, want shard %d %q -> %q", i, m, s, a.Owners(s), to)
				}
				i++
			}
			if i != len(moves) {
				t.Fatalf("Diff returned %d moves, want %d", len(moves), i)
			}
			if name == "same" && len(moves) != 0 || name != "same" && len(moves) == 0 {
				t.Fatalf("%d moves", len(moves))
			}
		})
	}
	if got := Diff(nil, a); len(got) != 256 || got[0].From != nil {
		t.Fatalf("Diff(nil, a): %d moves", len(got))
	}
}

// TestHashGolden pins the key→shard hash and the placement: if either
// changes, nodes running different versions would disagree on owners.
func TestHashGolden(t *testing.T) {
	xx := map[string]uint64{
		"":    0xef46db3751d8e999, // XXH64 reference vectors
		"a":   0xd24ec4f1a98c6e5b,
		"abc": 0x44bc2cf5ad770999,
	}
	for in, want := range xx {
		if got := xxh64([]byte(in)); got != want {
			t.Errorf("xxh64(%q) = %#x, want %#x", in, got, want)
		}
	}
	r := mustNew(t, Config{}, []string{"alpha", "bravo", "charlie"})
	shards := map[string]int{
		"":          3828,
		"foo":       827,
		"user:1234": 3963,
		"a-much-longer-key-that-takes-the-32-byte-path": 977,
	}
	for key, want := range shards {
		if got := r.Shard([]byte(key)); got != want {
			t.Errorf("Shard(%q) = %d, want %d", key, got, want)
		}
	}
	owners := map[int]string{0: "[alpha charlie]", 1: "[charlie alpha]", 4095: "[charlie alpha]"}
	for s, want := range owners {
		if got := fmt.Sprint(r.Owners(s)); got != want {
			t.Errorf("Owners(%d) = %s, want %s", s, got, want)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	r := mustNew(t, Config{}, []string{"a", "b", "c"})
	key := []byte("some:key:1234567890")
	if n := testing.AllocsPerRun(100, func() { _ = r.Owners(r.Shard(key)) }); n != 0 {
		t.Fatalf("Shard+Owners: %v allocs", n)
	}
}

func FuzzRing(f *testing.F) {
	f.Add(uint8(3), uint8(2), uint16(64), []byte("key"), uint64(1))
	f.Add(uint8(0), uint8(0), uint16(0), []byte(""), uint64(2))
	f.Add(uint8(17), uint8(5), uint16(7), []byte("x"), uint64(3))
	f.Fuzz(func(t *testing.T, n, reps uint8, shards uint16, key []byte, seed uint64) {
		nodes := randomNames(rand.New(rand.NewPCG(seed, 0)), int(n%40))
		cfg := Config{Shards: int(shards % 2048), Replicas: int(reps % 6)}
		r := mustNew(t, cfg, nodes)
		s := r.Shard(key)
		if s < 0 || s >= r.NumShards() {
			t.Fatalf("Shard = %d of %d", s, r.NumShards())
		}
		want := min(cfg.withDefaults().Replicas, len(nodes))
		checkInvariants(t, r, want)
	})
}
