package store

// Get looks key up and appends its value to dst. A nil opt is a plain get.
// It returns Hit with the item as it was before this access (LastAccess,
// Fetched, and Exptime before opt.Touch), or Miss. With opt.Vivify a miss
// creates an empty item and returns Hit with Created and Win set. Get does
// not allocate.
func (s *Store) Get(key []byte, opt *GetOptions, dst []byte) (Item, []byte, Result) {
	var o GetOptions
	if opt != nil {
		o = *opt
	}
	now := s.Now()
	sh, own, h := s.lock(key)
	ref, c, ok := s.find(sh, h, key, now)
	if !ok {
		var it Item
		res := Miss
		if o.Vivify && s.Fits(len(key), 0) {
			it, res = s.vivify(sh, own, h, key, o.VivifyExptime, now)
		}
		sh.mu.Unlock()
		return it, dst, res
	}
	_ = ref
	it := c.describe()
	win := false
	// mg R: the first reader to see a TTL below the threshold recaches.
	if o.RecacheBelow > 0 && !c.has(bitTokenSent) && c.exptime() != 0 &&
		int64(c.exptime()) < now+o.RecacheBelow {
		win = true
	}
	if o.Touch {
		c.setExptime(o.Exptime)
	}
	// A stale item hands one win token to the first reader.
	if c.has(bitStale) && !c.has(bitTokenSent) {
		win = true
	}
	if win {
		c.set(bitTokenSent)
		it.Win = true
	}
	if !o.NoBump {
		c.hit()
		c.set(bitFetched)
		c.setAtime(now)
	}
	dst = s.appendValue(dst, c)
	sh.mu.Unlock()
	return it, dst, Hit
}

// vivify creates the empty placeholder item of mg N and gives its caller
// the win token. sh.mu is held.
func (s *Store) vivify(sh *shard, own int, h uint32, key []byte, exptime, now int64) (Item, Result) {
	ref, c, ok := s.alloc(own, s.geo.classFor(itemSize(len(key), 0)))
	if !ok {
		return Item{}, Miss
	}
	c.init(key, 0, 0, exptime, s.newCAS(0), now)
	c.set(bitTokenSent)
	s.link(sh, h, ref, c)
	it := c.describe()
	it.TokenSent = false
	it.Win = true
	it.Created = true
	return it, Hit
}

// Touch sets the expiry of key, like memcached touch: the CAS is kept and
// the item counts as fetched.
func (s *Store) Touch(key []byte, exptime int64) (Result, Item) {
	now := s.Now()
	sh, _, h := s.lock(key)
	defer sh.mu.Unlock()
	_, c, ok := s.find(sh, h, key, now)
	if !ok {
		return NotFound, Item{}
	}
	it := c.describe()
	c.setExptime(exptime)
	it.Exptime = int64(c.exptime())
	c.hit()
	c.set(bitFetched)
	c.setAtime(now)
	return Touched, it
}

// Delete removes key. With opt.CAS it deletes only on a CAS match (Exists
// otherwise). With opt.Invalidate (md I) the item stays, marked stale with a
// new CAS, so that the next reader wins the right to recompute it.
func (s *Store) Delete(key []byte, opt *DeleteOptions) (Result, Item) {
	var o DeleteOptions
	if opt != nil {
		o = *opt
	}
	now := s.Now()
	sh, _, h := s.lock(key)
	defer sh.mu.Unlock()
	ref, c, ok := s.find(sh, h, key, now)
	if !ok {
		return NotFound, Item{}
	}
	it := c.describe()
	if o.CAS != 0 && o.CAS != c.cas() {
		return Exists, it
	}
	if o.Before != 0 && c.cas() >= o.Before {
		return NotFound, Item{}
	}
	if o.Invalidate {
		if o.Touch {
			c.setExptime(o.Exptime)
		}
		c.set(bitStale)
		c.clear(bitTokenSent)
		c.setCAS(s.newCAS(o.NewCAS))
		it = c.describe()
		return Deleted, it
	}
	s.releaseRef(sh, h, ref, c)
	return Deleted, it
}
