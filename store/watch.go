package store

// noteEvicted reports item c (chunk r), about to be evicted, to
// Config.Evicted. The caller holds its shard and class locks.
func (s *Store) noteEvicted(r uint32, c hdr) {
	if f := s.cfg.Evicted; f != nil {
		f(c.key(), c.describe(), s.classOf(r)+1)
	}
}

// ClassID is the id of the size class (as stats slabs numbers them) that
// holds an item of this key and value length, or of its head chunk when
// it is chunked; 0 when no class can.
func (s *Store) ClassID(keyLen, valueLen int) int {
	if !s.Fits(keyLen, valueLen) {
		return 0
	}
	if s.geo.tailClass(keyLen, valueLen) >= 0 {
		return s.geo.head + 1
	}
	return s.geo.classFor(itemSize(keyLen, valueLen)) + 1
}

// Peek reports the value length of key's live item, without touching it
// (no bump, no copy), and false when there is none. The watch fetchers
// stream logs, before each write, the lookup memcached's write makes:
// the server peeks only while someone watches, so that Set pays nothing.
func (s *Store) Peek(key []byte) (int, bool) {
	now := s.Now()
	sh, _, h := s.lock(key)
	defer sh.mu.Unlock()
	_, c, ok := s.find(sh, h, key, now)
	if !ok {
		return 0, false
	}
	return c.vlen(), true
}
