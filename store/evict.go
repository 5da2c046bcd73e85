package store

import "runtime"

// noEvictScan bounds the hand's search for expired items under NoEvict,
// like memcached's short tail search, so a full store fails fast.
const noEvictScan = 64

// hand advances cl's CLOCK hand until it frees a chunk, and returns it. The
// caller holds cl.mu and the mutex of shard own. Items of other shards are
// examined only when their mutex is free (TryLock); busy reports that some
// were skipped for that reason.
func (s *Store) hand(cl *class, own int) (ref uint32, busy bool) {
	steps := 2*len(cl.pages)*cl.perPage + 1
	if s.cfg.NoEvict && steps > noEvictScan {
		steps = noEvictScan
	}
	now := s.Now()
	for ; steps > 0; steps-- {
		if cl.handPage >= len(cl.pages) {
			cl.handPage, cl.handChunk = 0, 0
		}
		pid := cl.pages[cl.handPage]
		if cl.handChunk >= cl.carved(pid) {
			cl.handChunk = 0
			cl.handPage++
			continue
		}
		r := s.ref(pid, cl.handChunk)
		if cl.handChunk++; cl.handChunk == cl.perPage {
			cl.handChunk = 0
			cl.handPage++
		}
		c := s.chunk(r)
		o := c.owner() - 1
		if o < 0 {
			continue
		}
		t := &s.shards[o]
		if o != own && !t.mu.TryLock() {
			busy = true
			continue
		}
		took := s.visit(cl, t, r, c, now)
		if o != own {
			t.mu.Unlock()
		}
		if took {
			cl.used-- // alloc counts it again
			return r, false
		}
	}
	return 0, busy
}

// visit applies one CLOCK step to item c of shard t (locked) and reports
// whether it was unlinked. Expired and flushed items go first and count as
// reclaimed; a visited item loses its bit and survives.
func (s *Store) visit(cl *class, t *shard, r uint32, c hdr, now int64) bool {
	if c.has(bitPinned) {
		return false
	}
	if exp := c.expired(now); exp || s.flushed(c, now) {
		if exp && !c.has(bitFetched) {
			cl.exUnfetch++
		}
		cl.reclaimed++
		s.unlink(t, r, c)
		return true
	}
	if s.cfg.NoEvict {
		return false
	}
	if c.cool() {
		return false
	}
	cl.evicted++
	cl.evictedAge = max(now-int64(c.atime()), 0)
	if !c.has(bitFetched) {
		cl.evUnfetch++
	}
	s.unlink(t, r, c)
	return true
}

// unlink removes item c (chunk r) from shard t's index and counters without
// freeing the chunk. t.mu must be held.
func (s *Store) unlink(t *shard, r uint32, c hdr) {
	h := uint32(s.hash(c.key()))
	if i, ok := t.idx.findRef(h, r); ok {
		t.idx.remove(i)
	}
	t.items--
	t.bytes -= int64(c.size() + memcachedItemOverhead)
}

// steal moves one page from another class to class ci (memcached's slab
// rebalancing), for a class that owns no page once the budget is spent and
// the pool is empty. The caller holds the mutex of shard own and no class
// mutex.
//
// The victim is the class with the most free chunks, counted in pages,
// skipping class avoid; failing any free chunk, the class with the most
// pages. Its page with the fewest items goes. Each item in that page moves
// to a free chunk of the same class while there is one (memcached's
// "rescue"), and is evicted otherwise, so a page moves without losing an
// item whenever its class has room for them elsewhere.
//
// It returns the victim class (-1 when no class has a page to give) and
// false when it gave up: an item in the page was pinned, or its shard busy.
func (s *Store) steal(own, ci, avoid int) (int, bool) {
	victim := s.pickVictim(ci, avoid)
	if victim < 0 {
		return -1, false
	}
	d := &s.classes[victim]
	d.mu.Lock()
	if len(d.pages) == 0 {
		d.mu.Unlock()
		return victim, false
	}
	pid := d.pages[0]
	for _, q := range d.pages[1:] {
		if s.page(q).used < s.page(pid).used {
			pid = q
		}
	}
	if d.carvePid == pid {
		// Uncarved chunks become free ones, so that every chunk of the
		// page is either free or in use below.
		for ; d.carveNext < d.perPage; d.carveNext++ {
			s.push(d, s.ref(pid, d.carveNext))
		}
		d.carvePid = 0
	}
	now := s.Now()
	// Free chunks leave the list first, so that only the page's items
	// remain to be handled and a rescue cannot land in this page.
	for i := 0; i < d.perPage; i++ {
		if r := s.ref(pid, i); s.chunk(r).owner() == 0 {
			s.unfree(d, r)
			s.chunk(r).setOwner(0xff) // taken: not free, not in use
		}
	}
	for i := 0; i < d.perPage; i++ {
		r := s.ref(pid, i)
		c := s.chunk(r)
		o := c.owner() - 1
		if o == 0xff-1 {
			continue
		}
		if o < 0 {
			panic("store: free chunk in a page being stolen")
		}
		t := &s.shards[o]
		if o != own && !t.mu.TryLock() {
			s.abandonSteal(d, pid)
			d.mu.Unlock()
			runtime.Gosched()
			return victim, false
		}
		pinned := c.has(bitPinned)
		if !pinned {
			s.vacate(d, t, o, r, c, now)
		}
		if o != own {
			t.mu.Unlock()
		}
		if pinned {
			s.abandonSteal(d, pid)
			d.mu.Unlock()
			return victim, false
		}
		c.setOwner(0xff)
		s.page(pid).used--
	}
	s.dropPage(d, pid)
	d.mu.Unlock()

	cl := &s.classes[ci]
	cl.mu.Lock()
	s.addPage(cl, ci, pid)
	cl.mu.Unlock()
	return victim, true
}

// pickVictim returns the class steal takes a page from, or -1.
func (s *Store) pickVictim(ci, avoid int) int {
	victim, most, free := -1, 0, int64(0)
	for i := range s.classes {
		if i == ci || i == avoid {
			continue
		}
		d := &s.classes[i]
		d.mu.Lock()
		n, f := len(d.pages), (d.nfree+d.uncarved())*int64(d.size)
		d.mu.Unlock()
		switch {
		case n == 0:
		case f > free:
			victim, most, free = i, n, f
		case free == 0 && n > most:
			victim, most = i, n
		}
	}
	return victim
}

// vacate empties chunk r (item c of shard t, locked) of a page being
// stolen from class d (locked): the item moves to a free chunk of d when
// there is one, else it is evicted, or reclaimed when expired or flushed.
func (s *Store) vacate(d *class, t *shard, o int, r uint32, c hdr, now int64) {
	exp := c.expired(now)
	if !exp && !s.flushed(c, now) {
		if nr := s.pop(d); nr != 0 {
			nc := s.chunk(nr)
			copy(nc[:offOwner], c[:offOwner])
			copy(nc[hdrSize:], c[hdrSize:c.size()])
			nc.setOwner(o + 1)
			s.page(nr>>s.geo.chunkBits).used++
			h := uint32(s.hash(c.key()))
			if i, ok := t.idx.findRef(h, r); ok {
				t.idx.slots[i] = uint64(h)<<32 | uint64(nr)
			}
			d.rescued++
			return
		}
		d.evicted++
		if !c.has(bitFetched) {
			d.evUnfetch++
		}
	} else {
		d.reclaimed++
		if exp && !c.has(bitFetched) {
			d.exUnfetch++
		}
	}
	s.unlink(t, r, c)
	d.used--
}

// abandonSteal puts the chunks of page pid that steal already took back on
// d's free list. d.mu must be held.
func (s *Store) abandonSteal(d *class, pid uint32) {
	for i := 0; i < d.perPage; i++ {
		if r := s.ref(pid, i); s.chunk(r).owner() == 0xff {
			s.push(d, r)
		}
	}
}
