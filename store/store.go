package store

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Store is a sharded, memory-bounded item store. All methods are safe for
// concurrent use.
type Store struct {
	cfg       Config
	geo       geometry
	chunkMask uint32
	seed      maphash.Seed
	mem       *arena // pages and index tables, off the Go heap
	file      []byte // the memory file's mapping (Open), nil with New

	coarse   atomic.Int64            // the default clock, unix seconds
	cas      atomic.Uint64           // last CAS handed out
	flush    atomic.Pointer[horizon] // the last flush_all, nil when none
	flushMu  sync.Mutex              // serializes FlushAll
	memLimit atomic.Int64
	maxPages atomic.Int64
	nPages   atomic.Int64 // pages allocated: in classes or in the pool
	poolLen  atomic.Int64 // len(pool), read without poolMu
	running  atomic.Bool
	// forgotten is the largest CAS of an item the store dropped by itself
	// (Forgotten).
	forgotten atomic.Uint64

	poolMu sync.Mutex
	pool   []uint32 // guarded by poolMu: allocated pages no class holds

	dir     []atomic.Pointer[pageBlock]
	classes []class
	shards  [numShards]shard
}

// shard is one lock domain: an index and the counters of its items.
type shard struct {
	mu sync.Mutex
	// Guarded by mu.
	idx        index
	items      int64
	bytes      int64
	totalItems int64
	getExpired int64
	getFlushed int64
	reclaimPos uint32

	_ [64]byte
}

// New returns an empty store sized by cfg. It allocates the index and page
// table but no pages, starts nothing and does no I/O.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := newGeometry(cfg)
	s := &Store{
		cfg:       cfg,
		geo:       g,
		chunkMask: 1<<g.chunkBits - 1,
		seed:      maphash.MakeSeed(),
		mem:       newArena(),
		dir:       make([]atomic.Pointer[pageBlock], g.maxPageID>>pageBlockBits+1),
		classes:   make([]class, len(g.chunkSizes)),
	}
	// The arena's memory is unmapped once the Store is unreachable; a
	// Store in use is always referenced by its caller.
	runtime.AddCleanup(s, (*arena).release, s.mem)
	s.coarse.Store(time.Now().Unix())
	s.memLimit.Store(cfg.MemoryLimit)
	s.maxPages.Store(cfg.MemoryLimit / int64(g.pageSize))
	for i, size := range g.chunkSizes {
		s.classes[i].size = size
		s.classes[i].perPage = g.pageSize / size
	}
	for i := range s.shards {
		s.shards[i].idx = newIndex(s.mem, minIndexSlots)
	}
	return s, nil
}

// Now returns the store's clock in unix seconds.
func (s *Store) Now() int64 {
	if s.cfg.Clock != nil {
		return s.cfg.Clock.Now()
	}
	return s.coarse.Load()
}

// MaxItemSize is the largest item the store takes (Config.MaxItemSize),
// header and key included: no value is larger.
func (s *Store) MaxItemSize() int { return s.cfg.MaxItemSize }

// Fits reports whether an item with this key and value length could ever
// be stored; when false, Set returns TooLarge.
func (s *Store) Fits(keyLen, valueLen int) bool {
	return keyLen <= maxKeyLen && valueLen >= 0 && itemSize(keyLen, valueLen) <= s.cfg.MaxItemSize
}

// PageSize returns the size of every page in bytes.
func (s *Store) PageSize() int { return s.geo.pageSize }

// SetMemoryLimit changes the page budget (memcached cache_memlimit).
// Growing takes effect at once; shrinking stops new pages from being
// allocated but frees none. Errors wrap ErrConfig.
func (s *Store) SetMemoryLimit(n int64) error {
	switch {
	case n < 2*int64(s.cfg.MaxItemSize):
		return fmt.Errorf("%w: memory limit %d below twice MaxItemSize %d", ErrConfig, n, s.cfg.MaxItemSize)
	case n/int64(s.geo.pageSize) > int64(s.geo.maxPageID):
		return fmt.Errorf("%w: memory limit %d needs more than %d pages", ErrConfig, n, s.geo.maxPageID)
	case s.file != nil && n/int64(s.geo.pageSize) > int64(len(s.file)/s.geo.pageSize):
		return fmt.Errorf("%w: memory limit %d above the memory file's %d bytes", ErrConfig, n, len(s.file))
	}
	s.memLimit.Store(n)
	s.maxPages.Store(n / int64(s.geo.pageSize))
	return nil
}

func (s *Store) hash(key []byte) uint64 { return maphash.Bytes(s.seed, key) }

// lock hashes key and locks its shard.
func (s *Store) lock(key []byte) (sh *shard, own int, h uint32) {
	full := s.hash(key)
	own = int(full >> shardShift)
	sh = &s.shards[own]
	sh.mu.Lock()
	return sh, own, uint32(full)
}

// find returns the live item under key in shard sh (locked). Expired and
// flushed items met on the way are freed and counted as GetExpired /
// GetFlushed whatever the command, as memcached's do_item_get does for
// every lookup (a set or a delete of a flushed key counts too). Unlike the
// CLOCK hand and the reclaimer, a lookup does not count ExpiredUnfetched:
// memcached counts that only where it reclaims memory.
func (s *Store) find(sh *shard, h uint32, key []byte, now int64) (uint32, hdr, bool) {
	x := &sh.idx
	for i := x.home(h); ; i = x.next(i) {
		e := x.slots[i]
		if e == 0 {
			return 0, nil, false
		}
		if slotHash(e) != h {
			continue
		}
		ref := slotRef(e)
		c := s.chunk(ref)
		if !bytes.Equal(c.key(), key) {
			continue
		}
		if s.flushed(c, now) {
			sh.getFlushed++
			s.forget(c)
			s.release(sh, i, ref, c, false, false)
			return 0, nil, false
		}
		if c.expired(now) {
			sh.getExpired++
			s.forget(c)
			s.release(sh, i, ref, c, false, false)
			return 0, nil, false
		}
		return ref, c, true
	}
}

// release unlinks the item in slot i and frees its chunk. sh.mu is held.
func (s *Store) release(sh *shard, i, ref uint32, c hdr, expiredUnfetched, reclaimed bool) {
	sh.idx.remove(i)
	sh.items--
	sh.bytes -= int64(c.size() + memcachedItemOverhead)
	s.freeChunk(ref, expiredUnfetched, reclaimed)
}

// forget records that item c goes without a delete or an overwrite.
func (s *Store) forget(c hdr) {
	cas := c.cas()
	for old := s.forgotten.Load(); cas > old && !s.forgotten.CompareAndSwap(old, cas); old = s.forgotten.Load() {
	}
}

// LostSince reports whether the store dropped by itself (evicted, expired,
// flushed; not deleted, not overwritten) an item of version since or
// newer, or ran a flush_all that does, so that the items it holds with a
// CAS of since or more are not everything written since. A copy of the
// cache from before since (a node restarted from its memory file) may then
// hold an older value of a key this store no longer has, which only a full
// copy corrects. Versions are HybridCAS readings.
func (s *Store) LostSince(since uint64) bool {
	if s.forgotten.Load() >= since {
		return true
	}
	hz := s.flush.Load()
	return hz != nil && (hz.cas >= since || uint64(hz.live)*1000<<16 >= since)
}

// releaseRef is release for an item whose slot is not known.
func (s *Store) releaseRef(sh *shard, h, ref uint32, c hdr) {
	if i, ok := sh.idx.findRef(h, ref); ok {
		s.release(sh, i, ref, c, false, false)
	}
}

// link adds a freshly written item to shard sh (locked).
func (s *Store) link(sh *shard, h, ref uint32, c hdr) {
	sh.idx.insert(h, ref)
	sh.items++
	sh.totalItems++
	sh.bytes += int64(c.size() + memcachedItemOverhead)
}

// newCAS returns want, or a fresh unique CAS when want is zero.
//
// An explicit CAS (a replica applying its primary's write) also moves the
// counter past it, so a CAS this store hands out later is never one a
// client may still hold for an older version of the item.
func (s *Store) newCAS(want uint64) uint64 {
	if s.cfg.NoCAS {
		return 0
	}
	if want == 0 && s.cfg.HybridCAS {
		return s.hybridCAS()
	}
	if want == 0 {
		return s.cas.Add(1)
	}
	for {
		cur := s.cas.Load()
		if cur >= want || s.cas.CompareAndSwap(cur, want) {
			return want
		}
	}
}

// Stamp returns a fresh CAS when want is zero (the version of a delete,
// which leaves no item to carry one), else moves the store's counter past
// want (a delete made elsewhere with that version) and returns it: a CAS
// the store hands out later orders after it.
func (s *Store) Stamp(want uint64) uint64 { return s.newCAS(want) }

// hybridCAS is the next hybrid logical clock reading (Config.HybridCAS):
// the wall clock in milliseconds, shifted past a 16-bit counter, or one
// more than the last CAS when that is ahead (a write in the same
// millisecond, a CAS from a peer whose clock runs ahead, or a clock that
// stepped back). One vDSO clock read per write, and only in a cluster.
func (s *Store) hybridCAS() uint64 {
	wall := uint64(time.Now().UnixMilli()) << 16
	for {
		cur := s.cas.Load()
		next := max(cur+1, wall)
		if s.cas.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// resize makes item c (chunk ref, shard sh locked) hold vlen value bytes,
// keeping its header, key and the first min(old, vlen) value bytes. It
// stays in its chunk when the size class allows, else it moves to a new
// chunk (the old one is pinned meanwhile so the hand cannot take it).
func (s *Store) resize(sh *shard, own int, h, ref uint32, c hdr, vlen int) (uint32, hdr, bool) {
	old := c.size()
	size := itemSize(c.klen(), vlen)
	ci := s.geo.classFor(size)
	if ci < 0 {
		return 0, nil, false
	}
	if ci == s.classOf(ref) {
		c.setVlen(vlen)
		sh.bytes += int64(size - old)
		return ref, c, true
	}
	c.set(bitPinned)
	nref, nc, ok := s.alloc(own, ci)
	c.clear(bitPinned)
	if !ok {
		return 0, nil, false
	}
	copy(nc[:offOwner], c[:offOwner])
	copy(nc[hdrSize:], c[hdrSize:hdrSize+c.klen()+min(c.vlen(), vlen)])
	nc.setVlen(vlen)
	// Same key, same hash: swap the reference in place.
	i, _ := sh.idx.findRef(h, ref)
	sh.idx.slots[i] = uint64(h)<<32 | uint64(nref)
	sh.bytes += int64(size - old)
	s.freeChunk(ref, false, false)
	return nref, nc, true
}
