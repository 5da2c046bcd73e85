package store

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// page is one slab. data is set once, before any chunk of it is handed
// out; chunk and class change only when the page moves between classes,
// after every item in it is gone, so readers holding a shard mutex see
// stable values. They are atomics so Get can read them without the class
// mutex.
type page struct {
	data  []byte
	chunk atomic.Uint32 // chunk size in bytes
	class atomic.Int32
	// used counts the chunks holding items, guarded by the mutex of the
	// page's class. A page whose last item goes returns to the pool.
	used int32
}

const pageBlockBits = 10

// pageBlock groups pages so the page table can grow without moving.
type pageBlock [1 << pageBlockBits]page

// class is one size class: the pages carved into its chunk size, an
// intrusive free list threaded through free chunks, and a CLOCK hand.
type class struct {
	size    int // chunk size
	perPage int // chunks per page

	mu sync.Mutex
	// Guarded by mu.
	pages     []uint32 // page ids
	free      uint32   // free-list head (a chunk ref), 0 when empty
	carvePid  uint32   // page being carved, 0 when none
	carveNext int      // next uncarved chunk of carvePid
	nfree     int64
	used      int64
	tails     int64 // of used, the tail chunks of chunked items
	handPage  int
	handChunk int
	evicted   int64
	// evictedAge is the seconds since last access of the item evicted
	// last: under CLOCK the age of the items the hand is taking, which is
	// what memcached's "age" of an LRU tail tells an operator.
	evictedAge int64
	evUnfetch  int64 // evicted before any read
	rescued    int64 // items moved out of a page given to another class
	reclaimed  int64
	exUnfetch  int64 // expired before any read

	_ [64]byte // keep neighbouring class mutexes off one cache line
}

// page returns page id pid.
func (s *Store) page(pid uint32) *page {
	return &s.dir[pid>>pageBlockBits].Load()[pid&(1<<pageBlockBits-1)]
}

// chunk returns the bytes of chunk ref.
func (s *Store) chunk(ref uint32) hdr {
	p := s.page(ref >> s.geo.chunkBits)
	cs := int(p.chunk.Load())
	off := int(ref&s.chunkMask) * cs
	return hdr(p.data[off : off+cs : off+cs])
}

// classOf returns the class of the page holding ref.
func (s *Store) classOf(ref uint32) int {
	return int(s.page(ref >> s.geo.chunkBits).class.Load())
}

func (s *Store) ref(pid uint32, i int) uint32 { return pid<<s.geo.chunkBits | uint32(i) }

// Free chunks form a doubly linked list through their first eight bytes
// (next, then prev), so a page being stolen can unlink its free chunks in
// O(1) each.
func (s *Store) link32(ref uint32, off int) uint32 {
	c := s.chunk(ref)
	return uint32(c[off]) | uint32(c[off+1])<<8 | uint32(c[off+2])<<16 | uint32(c[off+3])<<24
}

func (s *Store) setLink32(ref uint32, off int, v uint32) {
	c := s.chunk(ref)
	c[off], c[off+1], c[off+2], c[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// push puts a free chunk on cl's list. cl.mu must be held.
func (s *Store) push(cl *class, ref uint32) {
	s.chunk(ref).setOwner(0)
	s.setLink32(ref, 0, cl.free)
	s.setLink32(ref, 4, 0)
	if cl.free != 0 {
		s.setLink32(cl.free, 4, ref)
	}
	cl.free = ref
	cl.nfree++
}

// unfree removes a free chunk from cl's list. cl.mu must be held.
func (s *Store) unfree(cl *class, ref uint32) {
	next, prev := s.link32(ref, 0), s.link32(ref, 4)
	if prev == 0 {
		cl.free = next
	} else {
		s.setLink32(prev, 0, next)
	}
	if next != 0 {
		s.setLink32(next, 4, prev)
	}
	cl.nfree--
}

// pop takes a free chunk, else the next uncarved chunk of the page being
// carved, else returns 0. cl.mu must be held.
func (s *Store) pop(cl *class) uint32 {
	if ref := cl.free; ref != 0 {
		s.unfree(cl, ref)
		return ref
	}
	if cl.carvePid != 0 {
		ref := s.ref(cl.carvePid, cl.carveNext)
		if cl.carveNext++; cl.carveNext == cl.perPage {
			cl.carvePid = 0
		}
		return ref
	}
	return 0
}

// uncarved returns how many chunks of the page being carved remain.
func (cl *class) uncarved() int64 {
	if cl.carvePid == 0 {
		return 0
	}
	return int64(cl.perPage - cl.carveNext)
}

// carved returns how many chunks of page pid hold items or sit on the free
// list; the rest have never been handed out. cl.mu must be held.
func (cl *class) carved(pid uint32) int {
	if pid == cl.carvePid {
		return cl.carveNext
	}
	return cl.perPage
}

// takePage returns a page that belongs to no class: one from the pool of
// pages that classes gave back, else a new one while the budget allows.
func (s *Store) takePage() (uint32, bool) {
	if s.poolLen.Load() > 0 {
		s.poolMu.Lock()
		if n := len(s.pool); n > 0 {
			pid := s.pool[n-1]
			s.pool = s.pool[:n-1]
			s.poolLen.Store(int64(n - 1))
			s.poolMu.Unlock()
			return pid, true
		}
		s.poolMu.Unlock()
	}
	for {
		n := s.nPages.Load()
		if n >= s.maxPages.Load() || n >= int64(s.geo.maxPageID) {
			return 0, false
		}
		if s.nPages.CompareAndSwap(n, n+1) {
			pid := uint32(n + 1)
			s.newPage(pid)
			return pid, true
		}
	}
}

// poolPage puts page pid, which belongs to no class now, in the pool.
func (s *Store) poolPage(pid uint32) {
	s.poolMu.Lock()
	s.pool = append(s.pool, pid)
	s.poolLen.Store(int64(len(s.pool)))
	s.poolMu.Unlock()
}

// newPage allocates the memory of page pid.
func (s *Store) newPage(pid uint32) {
	slot := &s.dir[pid>>pageBlockBits]
	if slot.Load() == nil {
		slot.CompareAndSwap(nil, new(pageBlock))
	}
	ps := s.geo.pageSize
	if s.file != nil {
		// Page pid is always at the same place in the memory file, so a
		// restored chunk reference names the same bytes (persist.go).
		off := int(pid-1) * ps
		s.page(pid).data = s.file[off : off+ps : off+ps]
		return
	}
	s.page(pid).data = s.mem.bytes(ps)
}

// addPage gives page pid to class ci and carves it. cl.mu must be held.
func (s *Store) addPage(cl *class, ci int, pid uint32) {
	p := s.page(pid)
	p.chunk.Store(uint32(cl.size))
	p.class.Store(int32(ci))
	p.used = 0
	cl.pages = append(cl.pages, pid)
	// Another goroutine may have given this class a page meanwhile; its
	// uncarved rest goes to the free list so that only one page is carved.
	for ; cl.carvePid != 0 && cl.carveNext < cl.perPage; cl.carveNext++ {
		s.push(cl, s.ref(cl.carvePid, cl.carveNext))
	}
	// Chunks are handed out lazily, in address order, once the free list
	// is empty; a class asks for a page only then.
	cl.carvePid, cl.carveNext = pid, 0
}

// alloc returns a chunk of class ci for an item of shard own, whose mutex
// the caller holds. The chunk's owner byte is set; everything else is the
// caller's to write. It fails when the budget is spent and nothing can be
// evicted (or NoEvict forbids it).
func (s *Store) alloc(own, ci int) (uint32, hdr, bool) {
	cl := &s.classes[ci]
	avoid := -1 // a class whose page could not be taken last attempt
	for attempt := 0; attempt < 8; attempt++ {
		cl.mu.Lock()
		ref := s.pop(cl)
		if ref == 0 {
			if pid, ok := s.takePage(); ok {
				s.addPage(cl, ci, pid)
				ref = s.pop(cl)
			}
		}
		if ref != 0 {
			s.page(ref>>s.geo.chunkBits).used++
		}
		busy := false
		if ref == 0 && len(cl.pages) > 0 {
			ref, busy = s.hand(cl, own) // the chunk stays in use
		}
		if ref != 0 {
			c := s.chunk(ref)
			c.setOwner(own + 1)
			cl.used++
			cl.mu.Unlock()
			return ref, c, true
		}
		hasPages := len(cl.pages) > 0
		cl.mu.Unlock()
		switch {
		case busy:
			// Another shard held a victim; let it finish, then retry.
			runtime.Gosched()
		case s.cfg.NoEvict || hasPages:
			return 0, nil, false
		}
		v, ok := s.steal(own, ci, avoid)
		switch {
		case ok:
		case v < 0 && !s.anyPages(ci):
			return 0, nil, false // nothing to steal from
		default:
			// A victim held a pinned item, or its shard was busy: try
			// another class next time.
			avoid = v
		}
	}
	return 0, nil, false
}

// freeChunk returns ref to its class, and the tail of a chunked item with
// it. The caller holds the mutex of the shard that owned the item and has
// unlinked it.
func (s *Store) freeChunk(ref uint32, expiredUnfetched, reclaimed bool) {
	var tail uint32
	if c := s.chunk(ref); c.has(bitPiece) {
		tail = c.tailRef()
	}
	cl := &s.classes[s.classOf(ref)]
	cl.mu.Lock()
	if expiredUnfetched {
		cl.exUnfetch++
	}
	if reclaimed {
		cl.reclaimed++
	}
	s.putChunk(cl, ref)
	cl.mu.Unlock()
	if tail != 0 {
		s.freeTail(tail)
	}
}

// putChunk puts chunk ref, no longer in use, on cl's free list, and the
// page in the pool when that was its last chunk in use. cl.mu must be held.
func (s *Store) putChunk(cl *class, ref uint32) {
	s.push(cl, ref)
	cl.used--
	pid := ref >> s.geo.chunkBits
	p := s.page(pid)
	if p.used--; p.used == 0 {
		s.releasePage(cl, pid)
	}
}

// releasePage gives the empty page pid of class cl back to the pool, so
// that a class an item only passed through (an append walks through the
// size classes) keeps no memory it does not use. cl.mu must be held.
func (s *Store) releasePage(cl *class, pid uint32) {
	for i := 0; i < cl.carved(pid); i++ {
		s.unfree(cl, s.ref(pid, i))
	}
	if cl.carvePid == pid {
		cl.carvePid = 0
	}
	s.dropPage(cl, pid)
	s.poolPage(pid)
}

// dropPage removes page pid from cl's page list. cl.mu must be held.
func (s *Store) dropPage(cl *class, pid uint32) {
	for pi, q := range cl.pages {
		if q != pid {
			continue
		}
		last := len(cl.pages) - 1
		cl.pages[pi] = cl.pages[last]
		cl.pages = cl.pages[:last]
		if cl.handPage == pi {
			cl.handChunk = 0
		}
		return
	}
}

// anyPages reports whether some class other than ci owns a page.
func (s *Store) anyPages(ci int) bool {
	for i := range s.classes {
		if i == ci {
			continue
		}
		cl := &s.classes[i]
		cl.mu.Lock()
		n := len(cl.pages)
		cl.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}
