// Package tomb remembers recent deletes with their version, so that a late
// copy of a deleted key cannot bring it back.
//
// In a cluster every write carries a version (the store's hybrid-clock
// CAS) and every copy made elsewhere is applied only over an older one. A
// delete leaves no item to carry its version, so the version is kept here,
// for a while, as a tombstone: a copy of the key older than the tombstone
// is refused, and a hand-back of the deletes a node served while it stood
// in for another (cluster's hints) reads them here.
//
// Memory is bounded: a Table holds at most Config.MaxBytes of tombstones
// and forgets each after Config.TTL, the oldest first when full. A copy
// that arrives later than that can resurrect its key; Stats counts the
// tombstones forgotten early for lack of room.
package tomb

import (
	"hash/maphash"
	"sync"
	"time"
)

// Config bounds a Table. The zero value of each field means its default.
type Config struct {
	// MaxBytes bounds the memory held: key length plus Overhead for
	// every delete recorded within TTL (a key deleted twice counts twice). Zero means 1 MiB.
	MaxBytes int64
	// TTL is how long a tombstone is kept. Zero means one minute.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Overhead is what a tombstone costs besides its key, in bytes (map entry,
// queue entry, string header): the unit MaxBytes counts in.
const Overhead = 96

const stripes = 64

// Table is a bounded, expiring map from key to the version of its latest
// delete. Safe for concurrent use.
type Table struct {
	cfg  Config
	seed maphash.Seed
	// locks serialize, per key, applying a copy against recording a
	// delete (Lock).
	locks [stripes]sync.Mutex

	mu      sync.Mutex
	m       map[string]rec
	q       []queued // FIFO by time put; q[head:] is live
	head    int
	bytes   int64
	seq     uint64
	evicted uint64 // forgotten before TTL for lack of room
	forgot  uint64 // the largest version forgotten
}

type rec struct {
	cas uint64
	seq uint64 // the queue entry that expires it
}

type queued struct {
	key string
	seq uint64
	at  time.Time
}

// New returns an empty Table.
func New(cfg Config) *Table {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.TTL <= 0 {
		cfg.TTL = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Table{cfg: cfg, seed: maphash.MakeSeed(), m: make(map[string]rec)}
}

// Lock locks key's stripe and returns it, for the caller to unlock: the
// caller applies a copy of key (checking Covers first) or records and
// applies a delete of key while holding it, so that the two never
// interleave. (The mutex rather than its Unlock method value: that would
// allocate on every copy applied.)
func (t *Table) Lock(key []byte) *sync.Mutex {
	mu := &t.locks[maphash.Bytes(t.seed, key)%stripes]
	mu.Lock()
	return mu
}

// Put records a delete of key at version cas; a tombstone already held
// for key keeps the larger version (and is kept from now on).
func (t *Table) Put(key []byte, cas uint64) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	k := string(key)
	if old, had := t.m[k]; had && old.cas > cas {
		cas = old.cas
	}
	t.bytes += int64(len(k) + Overhead) // its queue entry: each Put's counts
	t.seq++
	t.m[k] = rec{cas: cas, seq: t.seq}
	t.q = append(t.q, queued{key: k, seq: t.seq, at: now})
	for t.bytes > t.cfg.MaxBytes && t.head < len(t.q) {
		if t.pop() {
			t.evicted++
		}
	}
}

// Covers reports whether a delete of key at a version of cas or more is
// remembered: a copy of key with that CAS is older than it.
func (t *Table) Covers(key []byte, cas uint64) bool {
	d := t.Get(key)
	return d != 0 && d >= cas
}

// Get returns the version of the remembered delete of key, or 0.
func (t *Table) Get(key []byte) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.cfg.Now())
	return t.m[string(key)].cas
}

// Range calls fn for each tombstone whose version is since or more, until
// fn returns false. fn must not call t's methods; key is valid only
// during the call.
func (t *Table) Range(since uint64, fn func(key []byte, cas uint64) bool) {
	t.mu.Lock()
	type kv struct {
		k string
		c uint64
	}
	var hits []kv
	for k, r := range t.m {
		if r.cas >= since {
			hits = append(hits, kv{k, r.cas})
		}
	}
	t.mu.Unlock()
	for _, h := range hits {
		if !fn([]byte(h.k), h.c) {
			return
		}
	}
}

// Stats reports the tombstones held, the bytes MaxBytes counts, and how many were forgotten before their TTL for lack of room.
func (t *Table) Stats() (n int, bytes int64, evicted uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m), t.bytes, t.evicted
}

// expire forgets the tombstones older than TTL; t.mu is held.
func (t *Table) expire(now time.Time) {
	for t.head < len(t.q) && now.Sub(t.q[t.head].at) >= t.cfg.TTL {
		t.pop()
	}
}

// pop removes the oldest queue entry and, when it is still its key's
// latest, the tombstone; it reports whether a tombstone went. t.mu is held.
func (t *Table) pop() bool {
	e := t.q[t.head]
	t.q[t.head] = queued{}
	t.head++
	if t.head > len(t.q)/2 && t.head > 64 { // compact: the queue stays O(live)
		t.q = append(t.q[:0], t.q[t.head:]...)
		t.head = 0
	}
	t.bytes -= int64(len(e.key) + Overhead)
	r, ok := t.m[e.key]
	if !ok || r.seq != e.seq {
		return false // a later Put of the key renewed it
	}
	delete(t.m, e.key)
	t.forgot = max(t.forgot, r.cas)
	return true
}

// Forgotten returns the largest version of a tombstone forgotten so far
// (its TTL passed, or for lack of room), 0 when none: every delete with a
// larger version that was put is still remembered.
func (t *Table) Forgotten() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.cfg.Now())
	return t.forgot
}
