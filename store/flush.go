package store

// FlushAll invalidates items the way memcached's flush_all does. delay is
// in seconds from now (the caller converts an absolute time). With delay
// <= 0 every item existing now is invalid at once; with delay d > 0, items
// last written at or before now+d-1 become invalid when the clock reaches
// now+d-1. Invalid items are freed lazily: by readers (counted as
// GetFlushed), by the CLOCK hand and by the reclaimer.
func (s *Store) FlushAll(delay int64) {
	now := s.Now()
	horizon := now
	if delay > 0 {
		horizon = now + delay
	}
	// memcached: settings.oldest_live = realtime(exptime) - 1, and when
	// that is not in the future every CAS issued so far is flushed too,
	// which catches items written within the current second.
	live := horizon - 1
	if live <= now {
		s.oldestCAS.Store(s.cas.Add(1))
	}
	s.oldestLive.Store(live)
}

// flushed is memcached's item_is_flushed, with the write time in place of
// the last-access time.
func (s *Store) flushed(c hdr, now int64) bool {
	live := s.oldestLive.Load()
	if live == 0 || live > now {
		return false
	}
	if int64(c.stime()) <= live {
		return true
	}
	oc := s.oldestCAS.Load()
	cas := c.cas()
	return oc != 0 && cas != 0 && cas < oc
}
