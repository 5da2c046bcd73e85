package store

import "encoding/binary"

// Chunked items (memcached's slab_chunk_max). The largest class below the
// page size holds half a page; an item larger than that, whose rest fits a
// smaller class, is a head chunk of that class plus one tail chunk of the
// class that fits the rest, so a 576 KiB value takes 576 KiB and a little,
// not a whole 1 MiB page. An item too large for that takes a page-sized
// chunk as before.
//
// The head is an ordinary item header, key and the first part of the
// value, with bitPiece set and the tail's chunk reference in the chunk's
// last four bytes. The tail has a 32-byte header of its own: bytes 0..3
// hold the head's reference, the bits byte is exactly bitPiece, the owner
// byte is the item's shard; the rest of the value follows at offset 32.
// bitPiece in a chunk of the head class marks a head, in any other class a
// tail. Only heads are in the index; both pieces are guarded by the item's
// shard mutex, and the tail goes with the head.
//
// Lock order: the head class before the tail's class (always a smaller
// one). Code holding a tail's class mutex only TryLocks the head class.

const tailRefSize = 4

// tailRef returns the tail of head chunk h.
func (h hdr) tailRef() uint32 { return binary.LittleEndian.Uint32(h[len(h)-tailRefSize:]) }

func (h hdr) setTailRef(r uint32) { binary.LittleEndian.PutUint32(h[len(h)-tailRefSize:], r) }

// headRef returns the head of tail chunk h.
func (h hdr) headRef() uint32 { return binary.LittleEndian.Uint32(h[0:]) }

func (h hdr) setHeadRef(r uint32) { binary.LittleEndian.PutUint32(h[0:], r) }

// tailClass returns the class of the tail of an item with a klen-byte key
// and a vlen-byte value, or -1 when the item is not chunked.
func (g *geometry) tailClass(klen, vlen int) int {
	if g.head < 1 {
		return -1
	}
	hs := g.chunkSizes[g.head]
	if itemSize(klen, vlen) <= hs {
		return -1
	}
	rest := vlen - (hs - hdrSize - klen - tailRefSize)
	tc := g.classFor(hdrSize + rest)
	if tc < 0 || tc >= g.head {
		return -1
	}
	return tc
}

// isHeadClass reports whether cl is the class of head chunks.
func (s *Store) isHeadClass(cl *class) bool { return cl == &s.classes[s.geo.head] }

// split returns the value bytes of item c held in its head chunk, and the
// value bytes held in its tail (nil when c is not chunked).
func (s *Store) split(c hdr) (first, rest []byte) {
	if !c.has(bitPiece) {
		return c.value(), nil
	}
	k := hdrSize + c.klen()
	first = c[k : len(c)-tailRefSize]
	t := s.chunk(c.tailRef())
	return first, t[hdrSize : hdrSize+c.vlen()-len(first)]
}

// appendValue appends the value of item c to dst.
func (s *Store) appendValue(dst []byte, c hdr) []byte {
	first, rest := s.split(c)
	return append(append(dst, first...), rest...)
}

// writeValue copies v, of c's value length, into item c.
func (s *Store) writeValue(c hdr, v []byte) {
	first, rest := s.split(c)
	n := copy(first, v)
	copy(rest, v[n:])
}

// newItem allocates the chunks of an item for shard own (whose mutex the
// caller holds) and writes its header and key; the value is the caller's
// to write (writeValue).
func (s *Store) newItem(own int, key []byte, vlen int, flags uint32, exptime int64, cas uint64, now int64) (uint32, hdr, bool) {
	tc := s.geo.tailClass(len(key), vlen)
	if tc < 0 {
		ref, c, ok := s.alloc(own, s.geo.classFor(itemSize(len(key), vlen)))
		if ok {
			c.init(key, vlen, flags, exptime, cas, now)
		}
		return ref, c, ok
	}
	ref, c, ok := s.alloc(own, s.geo.head)
	if !ok {
		return 0, nil, false
	}
	c.init(key, vlen, flags, exptime, cas, now)
	// Pinned while the tail is found: the hand and page stealing leave it.
	c.set(bitPinned)
	tref, t, ok := s.alloc(own, tc)
	if !ok {
		c.clear(bitPinned)
		s.freeChunk(ref, false, false)
		return 0, nil, false
	}
	t.setHeadRef(ref)
	t[offBits] = bitPiece
	tcl := &s.classes[tc]
	tcl.mu.Lock()
	tcl.tails++
	tcl.mu.Unlock()
	c.setTailRef(tref)
	c.clear(bitPinned)
	c.set(bitPiece)
	return ref, c, true
}

// freeTail returns tail chunk ref to its class. The caller holds the item's
// shard mutex and may hold the head class mutex, not the tail's.
func (s *Store) freeTail(ref uint32) {
	cl := &s.classes[s.classOf(ref)]
	cl.mu.Lock()
	cl.tails--
	s.putChunk(cl, ref)
	cl.mu.Unlock()
}

// moveChunk copies chunk r of class d (locked) to a free chunk of d for
// shard o (locked), fixing the reference that names it: the index slot of
// an item, the head's tail reference of a tail, the tail's head reference
// of a head. It returns false when d has no free chunk.
func (s *Store) moveChunk(d *class, t *shard, o int, r uint32, c hdr) bool {
	nr := s.pop(d)
	if nr == 0 {
		return false
	}
	nc := s.chunk(nr)
	copy(nc[:offOwner], c[:offOwner])
	nc[offOwner+1] = c[offOwner+1]
	if c.has(bitPiece) {
		copy(nc[hdrSize:], c[hdrSize:])
	} else {
		copy(nc[hdrSize:], c[hdrSize:c.size()])
	}
	nc.setOwner(o + 1)
	s.page(nr>>s.geo.chunkBits).used++
	if c.has(bitPiece) && !s.isHeadClass(d) {
		s.chunk(c.headRef()).setTailRef(nr)
		return true
	}
	if c.has(bitPiece) {
		s.chunk(c.tailRef()).setHeadRef(nr)
	}
	h := uint32(s.hash(c.key()))
	if i, ok := t.idx.findRef(h, r); ok {
		t.idx.slots[i] = uint64(h)<<32 | uint64(nr)
	}
	return true
}
