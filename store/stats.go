package store

// Stats returns a snapshot of the store's counters and of every size class
// that owns a page. Its cost depends on the shard and class counts, never
// on the items held, so scrapers may call it often.
func (s *Store) Stats() Stats {
	st := Stats{
		LimitMaxbytes: s.memLimit.Load(),
		Pages:         s.nPages.Load(),
		PageSize:      int64(s.geo.pageSize),
		PoolPages:     s.poolLen.Load(),
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.CurrItems += sh.items
		st.TotalItems += sh.totalItems
		st.Bytes += sh.bytes
		st.GetExpired += sh.getExpired
		st.GetFlushed += sh.getFlushed
		sh.mu.Unlock()
	}
	for i := range s.classes {
		cl := &s.classes[i]
		cl.mu.Lock()
		st.Evictions += cl.evicted
		st.EvictedUnfetched += cl.evUnfetch
		st.Reclaimed += cl.reclaimed
		st.ExpiredUnfetched += cl.exUnfetch
		st.Rescued += cl.rescued
		if len(cl.pages) > 0 {
			cs := ClassStats{
				ID:         i + 1, // memcached numbers classes from 1
				ChunkSize:  cl.size,
				Pages:      len(cl.pages),
				UsedChunks: cl.used,
				FreeChunks: cl.nfree + cl.uncarved(),
				Items:      cl.used - cl.tails,
				Evicted:    cl.evicted,
				Reclaimed:  cl.reclaimed,
				OldestAge:  cl.evictedAge,
			}
			st.Classes = append(st.Classes, cs)
		}
		cl.mu.Unlock()
	}
	return st
}

// ResetStats zeroes the counters memcached's "stats reset" clears:
// total items, evictions, reclaims and the expired/flushed read counts.
// Gauges (items, bytes, pages) are kept.
func (s *Store) ResetStats() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.totalItems, sh.getExpired, sh.getFlushed = 0, 0, 0
		sh.mu.Unlock()
	}
	for i := range s.classes {
		cl := &s.classes[i]
		cl.mu.Lock()
		cl.evicted, cl.evUnfetch, cl.reclaimed, cl.exUnfetch, cl.rescued = 0, 0, 0, 0, 0
		cl.mu.Unlock()
	}
}
