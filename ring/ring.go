package ring

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Defaults for the zero values of Config.
const (
	DefaultShards     = 4096
	DefaultReplicas   = 2
	DefaultLoadFactor = 1.05
	DefaultVNodes     = 1
)

// MaxShards bounds Config.Shards; a shard number must fit an int32.
const MaxShards = 1 << 24

var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("ring: invalid config")
	// ErrDuplicate reports a member listed twice.
	ErrDuplicate = errors.New("ring: duplicate node")
	// ErrEmptyName reports a member with an empty name.
	ErrEmptyName = errors.New("ring: empty node name")
)

// Config sets the shape of a ring. Every node of a cluster must use the same
// Config, or they will compute different tables.
type Config struct {
	// Shards is the number of shards keys hash to. It is fixed for the life
	// of a cluster: changing it remaps every key. 0 means DefaultShards.
	Shards int
	// VNodes is the number of virtual nodes per member. Placement is by
	// rendezvous hashing, where every member already competes for every
	// shard, so virtual nodes would add cost without evening anything out
	// (see doc.go for the measurements); the only accepted values are 0 and
	// 1, both meaning one. The field exists so a cluster config written for
	// a ring-based placement is rejected rather than silently ignored.
	VNodes int
	// Replicas is the number of owners per shard, primary included; it is
	// capped at the number of members. 0 means DefaultReplicas.
	Replicas int
	// LoadFactor is the bounded-load factor c ≥ 1: no member holds more
	// than ⌊c·mean⌋ primaries (or ⌈mean⌉ if that is larger), and likewise for
	// the first k owner positions taken together. Closer to 1 balances
	// better and moves more shards on a membership change. 0 means
	// DefaultLoadFactor.
	LoadFactor float64
}

// Validate reports whether c is usable, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Shards < 0 || c.Shards > MaxShards:
		return fmt.Errorf("%w: shards %d not in [0, %d]", ErrConfig, c.Shards, MaxShards)
	case c.VNodes < 0 || c.VNodes > 1:
		return fmt.Errorf("%w: vnodes %d: rendezvous placement takes 0 or 1", ErrConfig, c.VNodes)
	case c.Replicas < 0:
		return fmt.Errorf("%w: replicas %d < 0", ErrConfig, c.Replicas)
	case math.IsNaN(c.LoadFactor) || math.IsInf(c.LoadFactor, 0) ||
		c.LoadFactor != 0 && c.LoadFactor < 1:
		return fmt.Errorf("%w: load factor %v: want 0 or a finite value ≥ 1", ErrConfig, c.LoadFactor)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.VNodes == 0 {
		c.VNodes = DefaultVNodes
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = DefaultLoadFactor
	}
	return c
}

// Ring is an immutable owner table for one membership snapshot. It is safe
// for concurrent use; a membership change builds a new Ring.
type Ring struct {
	epoch  int64
	shards int
	reps   int      // owners per shard: min(Replicas, len(nodes))
	nodes  []string // sorted
	owners []string // owners[s*reps : (s+1)*reps], primary first
}

// New computes the owner table for the members nodes (any order) at epoch.
// The result is a pure function of cfg and the set of names: every process
// that calls New with the same inputs gets the same table. The epoch is only
// carried along. An empty member list gives a ring in which no shard has an
// owner.
func New(cfg Config, nodes []string, epoch int64) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sorted := slices.Clone(nodes)
	slices.Sort(sorted)
	for i, n := range sorted {
		if n == "" {
			return nil, ErrEmptyName
		}
		if i > 0 && sorted[i-1] == n {
			return nil, fmt.Errorf("%w: %q", ErrDuplicate, n)
		}
	}
	reps := min(cfg.Replicas, len(sorted))
	hashes := make([]uint64, len(sorted))
	for i, n := range sorted {
		hashes[i] = xxh64([]byte(n))
	}
	idx := place(cfg.Shards, reps, cfg.LoadFactor, hashes)
	owners := make([]string, len(idx))
	for i, j := range idx {
		owners[i] = sorted[j]
	}
	return &Ring{epoch: epoch, shards: cfg.Shards, reps: reps, nodes: sorted, owners: owners}, nil
}

// Epoch returns the membership epoch the ring was built for.
func (r *Ring) Epoch() int64 { return r.epoch }

// Nodes returns the members in sorted order. Callers must not modify it.
func (r *Ring) Nodes() []string { return r.nodes[:len(r.nodes):len(r.nodes)] }

// NumShards returns the number of shards.
func (r *Ring) NumShards() int { return r.shards }

// Shard maps a key to its shard with XXH64 (seed 0) and a multiply-shift
// reduction. It is stable across processes, versions and machines, and
// allocates nothing.
func (r *Ring) Shard(key []byte) int {
	return reduce(xxh64(key), r.shards)
}

// Owners returns the owners of shard, primary first, then replicas, all
// distinct; it is empty when the ring has no members. The slice is the ring's
// own storage, shared by every caller: do not modify it. Its capacity ends at
// its length, so append copies. It panics if shard is out of range.
func (r *Ring) Owners(shard int) []string {
	if shard < 0 || shard >= r.shards {
		panic(fmt.Sprintf("ring: shard %d out of range [0, %d)", shard, r.shards))
	}
	lo, hi := shard*r.reps, (shard+1)*r.reps
	return r.owners[lo:hi:hi]
}

// Primary returns the first owner of shard, or "" if the ring is empty.
func (r *Ring) Primary(shard int) string {
	o := r.Owners(shard)
	if len(o) == 0 {
		return ""
	}
	return o[0]
}

// Shards returns, in increasing order, the shards that node owns in any
// position; nil if node is not a member.
func (r *Ring) Shards(node string) []int {
	if _, ok := slices.BinarySearch(r.nodes, node); !ok {
		return nil
	}
	var out []int
	for s := 0; s < r.shards; s++ {
		if slices.Contains(r.Owners(s), node) {
			out = append(out, s)
		}
	}
	return out
}

// Move is a shard whose owner list changed, with the lists before and after.
// From and To share storage with the rings: do not modify them.
type Move struct {
	Shard    int
	From, To []string
}

// Diff returns, in shard order, the shards whose owner list (members or
// order) differs between a and b. A nil ring counts as one with no members,
// so Diff(nil, r) lists every shard r assigns. Rings with different shard
// counts hash keys differently and are not comparable; Diff then treats
// shards missing from one side as ownerless.
func Diff(a, b *Ring) []Move {
	n := 0
	if a != nil {
		n = a.shards
	}
	if b != nil {
		n = max(n, b.shards)
	}
	var moves []Move
	for s := 0; s < n; s++ {
		from, to := a.ownersOrNil(s), b.ownersOrNil(s)
		if !slices.Equal(from, to) {
			moves = append(moves, Move{Shard: s, From: from, To: to})
		}
	}
	return moves
}

func (r *Ring) ownersOrNil(s int) []string {
	if r == nil || s >= r.shards || r.reps == 0 {
		return nil
	}
	return r.Owners(s)
}
