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

// steal moves one page from the class with the most pages to class ci,
// evicting the items in it (memcached's slab rebalancing). The caller holds
// the mutex of shard own and no class mutex. It gives up, returning false,
// when an item in the page is pinned or its shard is busy.
func (s *Store) steal(own, ci int) bool {
	victim, most := -1, 0
	for i := range s.classes {
		if i == ci {
			continue
		}
		d := &s.classes[i]
		d.mu.Lock()
		if n := len(d.pages); n > most {
			victim, most = i, n
		}
		d.mu.Unlock()
	}
	if victim < 0 {
		return false
	}
	d := &s.classes[victim]
	d.mu.Lock()
	if len(d.pages) == 0 {
		d.mu.Unlock()
		return false
	}
	pi := d.handPage
	if pi >= len(d.pages) {
		pi = 0
	}
	pid := d.pages[pi]
	now := s.Now()
	carved := d.carved(pid)
	// Free chunks leave the list first, so that only evicted ones need
	// handling should the steal be abandoned half way.
	for i := 0; i < carved; i++ {
		if r := s.ref(pid, i); s.chunk(r).owner() == 0 {
			s.unfree(d, r)
			s.chunk(r).setOwner(0xff) // taken: not free, not in use
		}
	}
	for i := 0; i < carved; i++ {
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
			s.abandonSteal(d, pid, carved)
			d.mu.Unlock()
			runtime.Gosched()
			return false
		}
		pinned := c.has(bitPinned)
		if !pinned {
			exp := c.expired(now)
			switch {
			case exp || s.flushed(c, now):
				d.reclaimed++
				if exp && !c.has(bitFetched) {
					d.exUnfetch++
				}
			default:
				d.evicted++
				if !c.has(bitFetched) {
					d.evUnfetch++
				}
			}
			s.unlink(t, r, c)
		}
		if o != own {
			t.mu.Unlock()
		}
		if pinned {
			s.abandonSteal(d, pid, carved)
			d.mu.Unlock()
			return false
		}
		c.setOwner(0xff)
		d.used--
	}
	if d.carvePid == pid {
		d.carvePid = 0
	}
	last := len(d.pages) - 1
	d.pages[pi] = d.pages[last]
	d.pages = d.pages[:last]
	if d.handPage == pi {
		d.handChunk = 0
	}
	d.mu.Unlock()

	cl := &s.classes[ci]
	cl.mu.Lock()
	s.addPage(cl, ci, pid)
	cl.mu.Unlock()
	return true
}

// abandonSteal puts the chunks of page pid that steal already took back on
// d's free list. d.mu must be held.
func (s *Store) abandonSteal(d *class, pid uint32, carved int) {
	for i := 0; i < carved; i++ {
		if r := s.ref(pid, i); s.chunk(r).owner() == 0xff {
			s.push(d, r)
		}
	}
}
