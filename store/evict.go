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
		var took, skipped bool
		switch {
		case c.has(bitPiece) && !s.isHeadClass(cl):
			if took, skipped = s.visitTail(t, c, now); took {
				cl.tails--
			}
		case c.has(bitPiece):
			tail := c.tailRef()
			if took = s.visit(cl, t, r, c, now); took {
				s.freeTail(tail)
			}
		default:
			took = s.visit(cl, t, r, c, now)
		}
		if o != own {
			t.mu.Unlock()
		}
		if skipped {
			busy = true
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
	s.noteEvicted(r, c)
	cl.evicted++
	cl.evictedAge = max(now-int64(c.atime()), 0)
	if !c.has(bitFetched) {
		cl.evUnfetch++
	}
	s.unlink(t, r, c)
	return true
}

// visitTail applies the CLOCK step of tail chunk c (shard t locked) to its
// head, and reports whether the item was unlinked, its head freed and the
// tail left to the caller. The caller holds the tail's class mutex, so the
// head class is only TryLocked; busy reports that it was not free.
func (s *Store) visitTail(t *shard, c hdr, now int64) (took, busy bool) {
	hcl := &s.classes[s.geo.head]
	if !hcl.mu.TryLock() {
		return false, true
	}
	head := c.headRef()
	if took = s.visit(hcl, t, head, s.chunk(head), now); took {
		s.putChunk(hcl, head)
	}
	hcl.mu.Unlock()
	return took, false
}

// unlink removes item c (chunk r) from shard t's index and counters without
// freeing the chunk. t.mu must be held.
func (s *Store) unlink(t *shard, r uint32, c hdr) {
	s.forget(c) // the hand and page stealing: evicted, expired or flushed
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
	pid, ok := s.emptyPage(d, own, true)
	d.mu.Unlock()
	if !ok {
		return victim, false
	}
	cl := &s.classes[ci]
	cl.mu.Lock()
	s.addPage(cl, ci, pid)
	cl.mu.Unlock()
	return victim, true
}

// emptyPage takes the page of class d with the fewest items out of d and
// returns it, owned by no class. Each of its items moves to a free chunk
// of d; with evict, an item that finds none is evicted, without, the page
// stays. It also gives up, leaving the page in d, when an item is pinned
// or its shard (other than own, which the caller holds; -1 for none) is
// busy. d.mu must be held.
func (s *Store) emptyPage(d *class, own int, evict bool) (uint32, bool) {
	if len(d.pages) == 0 {
		return 0, false
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
			panic("store: free chunk in a page being emptied")
		}
		t := &s.shards[o]
		if o != own && !t.mu.TryLock() {
			s.abandonSteal(d, pid)
			runtime.Gosched()
			return 0, false
		}
		done := !c.has(bitPinned) && s.vacate(d, t, o, r, c, now, evict)
		if o != own {
			t.mu.Unlock()
		}
		if !done {
			s.abandonSteal(d, pid)
			return 0, false
		}
		c.setOwner(0xff)
		s.page(pid).used--
	}
	s.dropPage(d, pid)
	return pid, true
}

// automoveSlack is how many pages' worth of free chunks a class keeps
// before automove takes a page from it: memcached's automover waits for
// more than two, so that a class does not give a page back only to ask
// for one at its next burst of writes.
const automoveSlack = 2

// automove gives the pool a page from each class whose free chunks fill
// more than automoveSlack pages, moving the page's items to other free
// chunks of the class and evicting none. It runs only once the budget is
// spent (until then a class needing memory gets a new page), so that a
// class that already owns pages takes free memory from the pool instead of
// evicting its own items while another class sits on free chunks
// (memcached's slab automover). Run calls it on the reclaimer's tick; it
// returns the pages moved.
func (s *Store) automove() int {
	if s.nPages.Load() < s.maxPages.Load() {
		return 0
	}
	moved := 0
	for i := range s.classes {
		d := &s.classes[i]
		d.mu.Lock()
		if d.nfree+d.uncarved() > int64(automoveSlack*d.perPage) {
			if pid, ok := s.emptyPage(d, -1, false); ok {
				s.poolPage(pid)
				moved++
			}
		}
		d.mu.Unlock()
	}
	return moved
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
// emptied in class d (locked): an expired or flushed item is reclaimed, a
// live one moves to a free chunk of d when there is one, else it is
// evicted when evict is set. It reports whether the chunk is now empty.
func (s *Store) vacate(d *class, t *shard, o int, r uint32, c hdr, now int64, evict bool) bool {
	if c.has(bitPiece) && !s.isHeadClass(d) {
		return s.vacateTail(d, t, o, r, c, now, evict)
	}
	exp := c.expired(now)
	if !exp && !s.flushed(c, now) {
		if s.moveChunk(d, t, o, r, c) {
			d.rescued++
			return true
		}
		if !evict {
			return false
		}
		s.noteEvicted(r, c)
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
	if c.has(bitPiece) {
		s.freeTail(c.tailRef())
	}
	return true
}

// vacateTail is vacate for a tail chunk: it moves to a free chunk of d, else,
// with evict, its item goes (head freed, the tail chunk left empty) when the
// head class mutex is free (TryLock: d.mu is held) and the head not pinned.
func (s *Store) vacateTail(d *class, t *shard, o int, r uint32, c hdr, now int64, evict bool) bool {
	if s.moveChunk(d, t, o, r, c) {
		d.rescued++
		return true
	}
	if !evict {
		return false
	}
	head := c.headRef()
	hc := s.chunk(head)
	if hc.has(bitPinned) {
		return false
	}
	hcl := &s.classes[s.geo.head]
	if !hcl.mu.TryLock() {
		return false
	}
	if hc.expired(now) || s.flushed(hc, now) {
		hcl.reclaimed++
	} else {
		s.noteEvicted(head, hc)
		hcl.evicted++
		if !hc.has(bitFetched) {
			hcl.evUnfetch++
		}
	}
	s.unlink(t, head, hc)
	s.putChunk(hcl, head)
	hcl.mu.Unlock()
	d.used--
	d.tails--
	return true
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
