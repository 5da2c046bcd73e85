package store

// Set writes value under key with the semantics of opt.Mode (nil opt is a
// plain set), following memcached's do_store_item:
//
//   - add on a live item: NotStored (the item's access time is refreshed);
//   - set/replace with a CAS: Exists on mismatch, NotFound when missing;
//     with Invalidate and a CAS older than the item's, the value is stored
//     but marked stale, keeping the item's TTL and win token;
//   - replace, append, prepend on a missing item: NotStored (append and
//     prepend create it with Vivify);
//   - append/prepend keep the old flags and exptime; a CAS must match.
//
// The value is copied. Set returns TooLarge when the item can never fit and
// NoMemory when no chunk can be found; a failed plain set also drops the old
// item so that no stale value survives, as memcached does. Steady-state Set
// does not allocate.
func (s *Store) Set(key, value []byte, opt *SetOptions) (Result, Item) {
	var o SetOptions
	if opt != nil {
		o = *opt
	}
	if !s.Fits(len(key), len(value)) {
		return TooLarge, Item{}
	}
	now := s.Now()
	sh, own, h := s.lock(key)
	defer sh.mu.Unlock()
	ref, c, found := s.find(sh, h, key, now)

	if !found {
		switch {
		case (o.Mode == ModeSet || o.Mode == ModeReplace) && o.CAS != 0:
			return NotFound, Item{}
		case o.Mode == ModeReplace:
			return NotStored, Item{}
		case (o.Mode == ModeAppend || o.Mode == ModePrepend) && !o.Vivify:
			return NotStored, Item{}
		}
		return s.create(sh, own, h, key, value, o.Flags, o.Exptime, s.newCAS(o.NewCAS), keyBits(&o), now)
	}

	if o.Newer && o.NewCAS != 0 && c.cas() > o.NewCAS {
		return NotStored, c.describe()
	}
	switch o.Mode {
	case ModeAdd:
		c.setAtime(now)
		return NotStored, c.describe()
	case ModeAppend, ModePrepend:
		if o.CAS != 0 && o.CAS != c.cas() {
			return Exists, c.describe()
		}
		return s.combine(sh, own, h, ref, c, value, o.Mode == ModePrepend, s.newCAS(o.NewCAS), now)
	}

	// set or replace, maybe with CAS.
	exptime, bits := o.Exptime, keyBits(&o)
	if o.CAS != 0 && o.CAS != c.cas() {
		if !o.Invalidate || o.CAS > c.cas() {
			return Exists, c.describe()
		}
		exptime = int64(c.exptime())
		bits |= bitStale | c.bits()&bitTokenSent
	}
	cas := s.newCAS(o.NewCAS)
	size := itemSize(len(key), len(value))
	if ci := s.geo.classFor(size); ci == s.classOf(ref) && !c.has(bitPiece) && s.geo.tailClass(len(key), len(value)) < 0 {
		// Same size class: overwrite in place; readers hold the same lock.
		oldSize := c.size()
		c.init(key, len(value), o.Flags, exptime, cas, now)
		c.set(bits)
		copy(c.value(), value)
		sh.totalItems++
		sh.bytes += int64(size - oldSize)
		return Stored, c.describe()
	}
	s.releaseRef(sh, h, ref, c)
	return s.create(sh, own, h, key, value, o.Flags, exptime, cas, bits, now)
}

// keyBits is the header bits a write sets from the key's encoding.
func keyBits(o *SetOptions) uint8 {
	if o.KeyBinary {
		return bitKeyBinary
	}
	return 0
}

// create stores a new item; key is absent from shard sh (locked).
func (s *Store) create(sh *shard, own int, h uint32, key, value []byte, flags uint32, exptime int64, cas uint64, bits uint8, now int64) (Result, Item) {
	if !s.Fits(len(key), len(value)) {
		return TooLarge, Item{}
	}
	ref, c, ok := s.newItem(own, key, len(value), flags, exptime, cas, now)
	if !ok {
		return NoMemory, Item{}
	}
	c.set(bits)
	s.writeValue(c, value)
	s.link(sh, h, ref, c)
	return Stored, c.describe()
}

// combine appends or prepends value to item c, keeping its flags and
// exptime. memcached builds a new item for the result, so the old item's
// fetched, stale, win-token and base64-key bits are dropped. An item that
// would outgrow MaxItemSize is NotStored, as in memcached, where the larger
// allocation fails.
func (s *Store) combine(sh *shard, own int, h, ref uint32, c hdr, value []byte, prepend bool, cas uint64, now int64) (Result, Item) {
	oldLen := c.vlen()
	n := oldLen + len(value)
	if !s.Fits(c.klen(), n) {
		return NotStored, c.describe()
	}
	if c.has(bitPiece) || s.geo.tailClass(c.klen(), n) >= 0 {
		return s.combineChunked(sh, own, h, ref, c, value, prepend, cas, now)
	}
	ref, c, ok := s.resize(sh, own, h, ref, c, n)
	if !ok {
		return NoMemory, Item{}
	}
	v := c.value()
	if prepend {
		copy(v[len(value):], v[:oldLen])
		copy(v, value)
	} else {
		copy(v[oldLen:], value)
	}
	c.clear(bitsNewItem)
	c.setCAS(cas)
	c.setStime(now)
	c.setAtime(now)
	sh.totalItems++
	return Stored, c.describe()
}

// combineChunked is combine for an item that is or becomes chunked: the
// value is rebuilt in a temporary buffer (this path allocates) and written
// to a new item, which replaces the old one only once it exists, so that a
// failed allocation leaves the old item.
func (s *Store) combineChunked(sh *shard, own int, h, ref uint32, c hdr, value []byte, prepend bool, cas uint64, now int64) (Result, Item) {
	n := c.vlen() + len(value)
	buf := make([]byte, 0, n)
	if prepend {
		buf = s.appendValue(append(buf, value...), c)
	} else {
		buf = append(s.appendValue(buf, c), value...)
	}
	c.set(bitPinned) // the hand and page stealing leave it meanwhile
	nref, nc, ok := s.newItem(own, c.key(), n, c.flags(), int64(c.exptime()), cas, now)
	c.clear(bitPinned)
	if !ok {
		return NoMemory, Item{}
	}
	s.writeValue(nc, buf)
	// Same key, same hash: swap the reference in place.
	i, _ := sh.idx.findRef(h, ref)
	sh.idx.slots[i] = uint64(h)<<32 | uint64(nref)
	sh.bytes += int64(nc.size() - c.size())
	s.freeChunk(ref, false, false)
	sh.totalItems++
	return Stored, nc.describe()
}
