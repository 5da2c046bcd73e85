package store

// rangeChunkBytes and rangeChunkItems bound one batch of Range: the shard
// lock is held while at most this much is copied out, so writers to that
// shard wait for a copy of ~64 KiB, never for Range's callback.
const (
	rangeChunkBytes = 64 << 10
	rangeChunkItems = 256
)

// Range calls fn once for every live item (not expired, not flushed), in
// no particular order, until fn returns false. key and val are copies
// valid only during the call; it describes the item (Exptime absolute, as
// Get reports it). Range is read-only: it bumps no CLOCK count, last
// access or fetched bit, so a dump for warming a peer does not make every
// item look hot, and it frees nothing it finds expired.
//
// Range holds no shard lock while fn runs, so fn may call the Store. Each
// shard's index is snapshotted under its lock (a copy of its slots, cheaper
// than the index growth writers already wait for), then items are copied
// out in batches of about 64 KiB, re-checking under the lock that each one
// is still in the index. An item that lives, unwritten, through the whole
// of Range is visited exactly once; an item written, deleted or expiring
// while Range runs may or may not be visited (at most once, with whatever
// value it had when its batch was copied).
func (s *Store) Range(fn func(key []byte, it Item, val []byte) bool) {
	var b rangeBatch
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		b.slots = append(b.slots[:0], sh.idx.slots...)
		sh.mu.Unlock()
		for pos := 0; pos < len(b.slots); {
			pos = s.copyBatch(sh, &b, pos)
			if !b.emit(fn) {
				return
			}
		}
	}
}

// rangeBatch is Range's scratch: a shard's slot snapshot and the items of
// one batch, their keys and values packed in data.
type rangeBatch struct {
	slots []uint64
	items []rangeItem
	data  []byte
}

type rangeItem struct {
	it         Item
	klen, vlen int
}

// copyBatch copies the live items of b.slots[pos:] into b until the batch
// is full and returns the position after the last slot it looked at.
func (s *Store) copyBatch(sh *shard, b *rangeBatch, pos int) int {
	b.items, b.data = b.items[:0], b.data[:0]
	now := s.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for ; pos < len(b.slots); pos++ {
		if len(b.items) == rangeChunkItems || (len(b.data) >= rangeChunkBytes && len(b.items) > 0) {
			break
		}
		e := b.slots[pos]
		if e == 0 {
			continue
		}
		h, ref := slotHash(e), slotRef(e)
		// The chunk may have been freed, or reused by another key, since
		// the snapshot: only an entry still in the index names a live item.
		if _, ok := sh.idx.findRef(h, ref); !ok {
			continue
		}
		c := s.chunk(ref)
		if c.expired(now) || s.flushed(c, now) {
			continue
		}
		b.data = append(b.data, c.key()...)
		b.data = s.appendValue(b.data, c)
		b.items = append(b.items, rangeItem{it: c.describe(), klen: c.klen(), vlen: c.vlen()})
	}
	return pos
}

// emit calls fn for each item of the batch, without any lock held.
func (b *rangeBatch) emit(fn func(key []byte, it Item, val []byte) bool) bool {
	off := 0
	for i := range b.items {
		ri := &b.items[i]
		k := b.data[off : off+ri.klen : off+ri.klen]
		off += ri.klen
		v := b.data[off : off+ri.vlen : off+ri.vlen]
		off += ri.vlen
		if !fn(k, ri.it, v) {
			return false
		}
	}
	return true
}
