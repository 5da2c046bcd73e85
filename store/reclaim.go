package store

import (
	"context"
	"time"
)

// Run advances the coarse clock once a second (when Config.Clock is nil)
// and, every Config.ReclaimInterval, frees a slice of every shard's expired
// and flushed items, so that memory comes back without waiting for a read,
// and moves pages that classes hold but do not need to the pool (automove).
// It blocks until ctx is done and then returns nil; it starts no goroutine.
// A second concurrent Run returns ErrRunning.
func (s *Store) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	var tick <-chan time.Time
	if s.cfg.Clock == nil {
		s.coarse.Store(time.Now().Unix())
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	reclaim := time.NewTicker(s.cfg.ReclaimInterval)
	defer reclaim.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick:
			s.coarse.Store(now.Unix())
		case <-reclaim.C:
			s.reclaim()
			s.automove()
		}
	}
}

// reclaim scans the next slice of each shard's index and frees items that
// are expired or flushed. Each shard's lock is held for one slice only:
// 1/64 of its slots, at least minIndexSlots, so a full pass over the store
// takes about 64 intervals whatever its size.
func (s *Store) reclaim() int {
	freed := 0
	now := s.Now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		slots := sh.idx.slots
		n := uint32(len(slots))
		budget := max(minIndexSlots, len(slots)/64)
		pos := sh.reclaimPos
		for ; budget > 0; budget-- {
			if pos >= n {
				pos = 0
			}
			e := sh.idx.slots[pos]
			if e != 0 {
				ref := slotRef(e)
				c := s.chunk(ref)
				if exp := c.expired(now); exp || s.flushed(c, now) {
					// The backward shift may move a follower into pos;
					// look at pos again.
					s.forget(c)
					s.release(sh, pos, ref, c, exp && !c.has(bitFetched), true)
					freed++
					continue
				}
			}
			pos++
		}
		sh.reclaimPos = pos
		sh.mu.Unlock()
	}
	return freed
}
