package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"shoal/membership"
	"shoal/peer"
	"shoal/store"
)

// runWarm is the warm-up worker: it pulls the queued shards until ctx ends.
func (r *Router) runWarm(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.w.wake:
		}
		r.pullQueued(ctx)
	}
}

// pullQueued drops what may be stale in the queued shards, then pulls each
// from its first source that answers; a shard no source serves ends its
// warm-up with what this node holds.
func (r *Router) pullQueued(ctx context.Context) {
	w := &r.w
	// Under r.mu: apply claims and publishes a view under it, so the
	// view loaded below is at least the one every shard taken was
	// claimed in.
	r.mu.Lock()
	w.mu.Lock()
	shards := w.queue
	w.queue = nil
	claims := make(map[int]uint64, len(shards))
	for _, s := range shards {
		claims[s] = w.claims[s]
	}
	drop := make([]bool, len(w.flags))
	anyDrop := false
	for s := range w.drop {
		drop[s], anyDrop = true, true
	}
	clear(w.drop)
	keepFrom := w.keepFrom
	w.keepFrom = 0
	if w.dropOthers {
		w.dropOthers = false
		if v := r.View(); v != nil && v.Ring != nil && v.Ring.NumShards() == len(drop) {
			for s := range drop {
				if !slices.Contains(v.Ring.Owners(s), r.self) {
					drop[s], anyDrop = true, true
				}
			}
		}
	}
	w.verified(drop) // what a warm restart restored there is gone
	w.mu.Unlock()
	r.mu.Unlock()
	if anyDrop {
		r.dropStale(drop, keepFrom)
	}
	if len(shards) == 0 {
		return
	}
	tried := make(map[int]int, len(shards)) // per shard: sources tried
	rounds := make(map[int]int)             // per dropped shard: times every source failed
	var waiting []int                       // dropped shards whose sources all failed: tried again after bo
	var bo backoff
	for len(shards) > 0 && ctx.Err() == nil {
		ps := r.peers.Load()
		v := ps.view
		if v == nil || v.Ring == nil {
			// Claimed before any view was published: back in the
			// queue, for the wake that follows the publication.
			w.mu.Lock()
			w.queue = append(w.queue, shards...)
			w.mu.Unlock()
			return
		}
		type group struct {
			m     *member
			since uint64
		}
		groups := map[group][]int{}
		w.mu.Lock()
		for _, s := range shards {
			if !w.flags[s].Load() {
				continue // no longer ours
			}
			src := w.src[s]
			var m *member
			for tried[s] < len(src) && m == nil {
				name := src[tried[s]]
				tried[s]++
				if c := ps.get(name); r.trySource(name, c, w.wiped[s]) {
					m = c
				}
			}
			if m == nil && (drop[s] || w.wiped[s] || w.merge[s] || w.restoredSince(s) != 0) && rounds[s] < pullRounds {
				// Its items are gone (what we hold is nothing; wiped:
				// claimed again after an earlier round took its drop), or a
				// co-owner just came back with newer writes (merge), or
				// they are what a warm restart restored, which only a
				// source can vouch for. The sources may be out of reach
				// for a moment (a healed partition; gossip lagging right
				// after a restart): try them all again later.
				rounds[s]++
				tried[s] = 0
				waiting = append(waiting, s)
				continue
			}
			if m == nil {
				w.pullDone(s, claims[s]) // no source left: keep what we hold
				continue
			}
			g := group{m, w.since[s]}
			groups[g] = append(groups[g], s)
		}
		w.mu.Unlock()
		var mu sync.Mutex
		var retry []int
		var wg sync.WaitGroup
		for g, ss := range groups {
			m := g.m
			wg.Go(func() {
				err := r.pull(ctx, v, m, ss, g.since)
				mu.Lock()
				defer mu.Unlock()
				if g.since != 0 && errors.Is(err, peer.ErrNoDelta) {
					r.log.Info("warm restart: the source cannot tell what changed; pulling in full", "peer", m.name, "shards", len(ss))
					r.wipeForFull(ss)
					for _, s := range ss {
						tried[s]-- // the same source, whole
					}
					retry = append(retry, ss...)
					return
				}
				if err != nil {
					r.log.Warn("warm-up pull failed", "peer", m.name, "shards", len(ss), "err", err)
					r.failed(m, err)
					retry = append(retry, ss...) // each goes on to its next source
					return
				}
				if g.since != 0 {
					w.deltas.Add(uint64(len(ss)))
				}
				w.mu.Lock()
				for _, s := range ss {
					if w.claims[s] == claims[s] {
						delete(w.wiped, s) // pulled after its drop
					}
					if w.unverified != nil {
						w.unverified[s] = false
					}
					w.pullDone(s, claims[s])
				}
				w.mu.Unlock()
			})
		}
		wg.Wait()
		shards = retry
		if len(shards) == 0 && len(waiting) > 0 {
			bo.wait(ctx)
			shards, waiting = waiting, nil
		}
	}
}

// pullRounds is how many times the sources of a shard whose items were
// dropped are all tried, a backoff apart (about 12 s in all), before its
// warm-up ends with the shard empty.
const pullRounds = 8

// backoff doubles from 250 ms to 2 s.
type backoff struct{ next time.Duration }

// wait sleeps for the next delay or until ctx ends.
func (b *backoff) wait(ctx context.Context) {
	b.next = min(max(2*b.next, 250*time.Millisecond), 2*time.Second)
	t := time.NewTimer(b.next)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pull stores the items member m holds in shards ss, and applies the
// deletes it remembers there (an item older than the delete goes); with
// since, only those of that version or newer (peer.ErrNoDelta when m
// cannot tell).
func (r *Router) pull(ctx context.Context, v *membership.View, m *member, ss []int, since uint64) error {
	want := make([]byte, (len(r.w.flags)+7)/8)
	for _, s := range ss {
		want[s/8] |= 1 << (s % 8)
	}
	w := &r.w
	return m.client.Dump(ctx, want, since, func(key []byte, it peer.Item) error {
		s := v.Ring.Shard(key)
		w.mu.Lock()
		switch _, fresh := w.fresh[string(key)]; {
		case fresh || !w.flags[s].Load():
		case it.Deleted:
			if it.CAS == 0 {
				break // no version: nothing to order it by
			}
			if res, _ := r.deleteVersioned(key, nil, it.CAS); res == store.Deleted {
				w.dropped.Add(1)
			}
		default:
			r.applyCopy(key, it.Value, &store.SetOptions{Flags: it.Flags, Exptime: r.exptime(it.TTL), NewCAS: it.CAS, KeyBinary: it.KeyBinary})
			w.pulled.Add(1)
		}
		w.mu.Unlock()
		return nil
	})
}

// dropStale deletes the local items of the shards marked in drop, but the
// fresh keys of warming shards and, when keepFrom is set, the items with a
// CAS at or above it (written since a lapse's cut): what this node held
// from before a pause or a cut may have been overwritten or deleted.
func (r *Router) dropStale(drop []bool, keepFrom uint64) {
	v := r.View()
	if v == nil || v.Ring == nil {
		return
	}
	w := &r.w
	r.st.Range(func(key []byte, it store.Item, _ []byte) bool {
		s := v.Ring.Shard(key)
		if s >= len(drop) || !drop[s] || (keepFrom != 0 && it.CAS >= keepFrom) {
			return true
		}
		w.mu.Lock()
		if _, fresh := w.fresh[string(key)]; !fresh || !w.flags[s].Load() {
			if res, _ := r.st.Delete(key, &store.DeleteOptions{CAS: it.CAS}); res == store.Deleted {
				w.dropped.Add(1)
			}
		}
		w.mu.Unlock()
		return true
	})
}
