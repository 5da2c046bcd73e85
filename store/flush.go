package store

// horizon is what one flush_all left behind. It is immutable once
// published, so that a reader sees the time and the CAS of the same flush.
type horizon struct {
	// live: items written at or before this unix second are invalid once
	// the clock has reached it (memcached's settings.oldest_live).
	live int64
	// cas: items with a lower CAS are invalid once live is reached
	// (settings.oldest_cas); 0 when no flush took one.
	cas uint64
	// exact: the flush took effect when it ran, and cas orders every item
	// against it, so live is not consulted.
	exact bool
}

// FlushAll invalidates items the way memcached's flush_all does. delay is
// in seconds from now (the caller converts an absolute time). With delay
// <= 1 every item written before the call is invalid at once and every
// item written after it survives; with delay d > 1, items last written at
// or before now+d-1 become invalid when the clock reaches now+d-1. Invalid
// items are freed lazily: by lookups (counted as GetFlushed), by the CLOCK
// hand and by the reclaimer.
//
// An immediate flush is ordered by CAS alone: the time of a write is only
// known to the second and is read before the write takes its CAS, so a
// write racing a flush in a new second could carry the old second yet come
// after the flush. memcached also flushes by CAS within the flush's second;
// shoal goes further and never lets the second decide when a CAS can, which
// is what keeps a set issued after a flush_all from another connection.
func (s *Store) FlushAll(delay int64) {
	// Concurrent flushes publish in the order they take their CAS, so the
	// latest flush is the one that stays.
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	now := s.Now()
	live := now - 1 // memcached: oldest_live = realtime(exptime) - 1
	if delay > 0 {
		live = now + delay - 1
	}
	if s.cfg.NoCAS {
		// memcached without CAS: oldest_live = realtime(exptime), so
		// what is written in the flush's second, after it too, goes.
		live++
	}
	hz := &horizon{live: live}
	if live <= now && !s.cfg.NoCAS {
		// A fresh CAS: with HybridCAS a reading of the clock, so that
		// LostSince orders the flush by when it ran (the last CAS handed
		// out may be seconds older, and live a second or two: a node
		// restarted with its memory file then took a delta from a source
		// flushed after its save, and served flushed items).
		hz.cas, hz.exact = s.newCAS(0), true
	} else if old := s.flush.Load(); old != nil {
		hz.cas = old.cas // memcached keeps oldest_cas across a delayed flush
	}
	s.flush.Store(hz)
}

// flushed is memcached's item_is_flushed, with the write time in place of
// the last-access time and CAS order alone after an immediate flush.
func (s *Store) flushed(c hdr, now int64) bool {
	hz := s.flush.Load()
	switch {
	case hz == nil:
		return false
	case hz.exact:
		// Immediate: whatever second a reader thinks it is.
		return c.cas() < hz.cas
	case hz.live > now:
		return false
	}
	cas := c.cas()
	return hz.cas != 0 && cas != 0 && cas < hz.cas || int64(c.stime()) <= hz.live
}
