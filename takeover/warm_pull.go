package takeover

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

// RunWarm is the warm-up worker: it pulls the queued shards until ctx ends.
func (t *Takeover) RunWarm(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.w.wake:
		}
		t.pullQueued(ctx)
	}
}

// pullQueued drops what may be stale in the queued shards, then pulls each
// from its first source that answers; a shard no source serves ends its
// warm-up with what this node holds.
func (t *Takeover) pullQueued(ctx context.Context) {
	q := t.takeQueued()
	if q.anyDrop {
		t.dropStale(q.drop, q.keepFrom)
	}
	if len(q.shards) == 0 {
		return
	}
	p := &pullRun{t: t, q: q, tried: map[int]int{}, rounds: map[int]int{}}
	var bo backoff
	for shards := q.shards; len(shards) > 0 && ctx.Err() == nil; {
		ps := t.h.Current()
		if v := ps.View(); v == nil || v.Ring == nil {
			// Claimed before any view was published: back in the
			// queue, for the wake that follows the publication.
			t.w.mu.Lock()
			t.w.queue = append(t.w.queue, shards...)
			t.w.mu.Unlock()
			return
		}
		shards = p.pullAll(ctx, ps.View(), p.bySource(ps, shards))
		if len(shards) == 0 && len(p.waiting) > 0 {
			bo.wait(ctx)
			shards, p.waiting = p.waiting, nil
		}
	}
}

// queued is what the worker takes from warm at once: the shards to pull,
// the claim count of each when taken (pullDone), and the drop to do
// first.
type queued struct {
	shards   []int
	claims   map[int]uint64
	drop     []bool // per shard: its items go first (dropStale)
	anyDrop  bool
	keepFrom uint64 // the drop keeps items with a CAS at or above it (0: none)
}

// takeQueued empties the queue and the pending drop. Under the view
// lock: apply
// claims and publishes a view under it, so the view the worker loads
// next is at least the one every shard taken was claimed in.
func (t *Takeover) takeQueued() queued {
	w := &t.w
	t.h.ViewLock().Lock()
	defer t.h.ViewLock().Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	q := queued{shards: w.queue, claims: make(map[int]uint64, len(w.queue)), drop: make([]bool, len(w.flags)), keepFrom: w.keepFrom}
	w.queue, w.keepFrom = nil, 0
	for _, s := range q.shards {
		q.claims[s] = w.claims[s]
	}
	for s := range w.drop {
		q.drop[s], q.anyDrop = true, true
	}
	clear(w.drop)
	if w.dropOthers {
		w.dropOthers = false
		if v := t.h.Current().View(); v != nil && v.Ring != nil && v.Ring.NumShards() == len(q.drop) {
			for s := range q.drop {
				if !slices.Contains(v.Ring.Owners(s), t.Self) {
					q.drop[s], q.anyDrop = true, true
				}
			}
		}
	}
	w.verified(q.drop) // what a warm restart restored there is gone
	return q
}

// pullRun is one pullQueued: per shard, the sources tried so far and the
// rounds in which every source failed.
type pullRun struct {
	t       *Takeover
	q       queued
	mu      sync.Mutex  // guards tried while pulls run
	tried   map[int]int // per shard: sources tried
	rounds  map[int]int // per shard to retry: times every source failed
	waiting []int       // shards whose sources all failed: tried again after a backoff
}

// dumpSource is a member to pull shards from, whole or by what changed
// since.
type dumpSource struct {
	m     Source
	since uint64
}

// bySource groups shards by the next source to try for each. A shard with
// none left is retried later when only a source can vouch for what this
// node holds, else it ends its warm-up with that.
func (p *pullRun) bySource(ps PeerView, shards []int) map[dumpSource][]int {
	w := &p.t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	groups := map[dumpSource][]int{}
	for _, s := range shards {
		if !w.flags[s].Load() {
			continue // no longer ours
		}
		src := w.src[s]
		var m Source
		for p.tried[s] < len(src) && m == nil {
			name := src[p.tried[s]]
			p.tried[s]++
			if c := ps.Peer(name); trySource(c, w.wiped[s]) {
				m = c
			}
		}
		if m == nil && len(src) > 0 && (p.q.drop[s] || w.wiped[s] || w.merge[s] || w.restoredSince(s) != 0) && p.rounds[s] < pullRounds {
			// Its items are gone (what we hold is nothing; wiped:
			// claimed again after an earlier round took its drop), or a
			// co-owner just came back with newer writes (merge), or
			// they are what a warm restart restored, which only a
			// source can vouch for. The sources may be out of reach
			// for a moment (a healed partition; gossip lagging right
			// after a restart): try them all again later.
			p.rounds[s]++
			p.tried[s] = 0
			p.waiting = append(p.waiting, s)
			continue
		}
		if m == nil {
			w.pullDone(s, p.q.claims[s]) // no source left: keep what we hold
			continue
		}
		g := dumpSource{m, w.since[s]}
		groups[g] = append(groups[g], s)
	}
	return groups
}

// pullAll pulls each group from its source, all at once, and returns the
// shards to try again (on their next source, or whole).
func (p *pullRun) pullAll(ctx context.Context, v *membership.View, groups map[dumpSource][]int) (retry []int) {
	var wg sync.WaitGroup
	for g, ss := range groups {
		wg.Go(func() {
			again := p.pullFrom(ctx, v, g, ss)
			p.mu.Lock()
			defer p.mu.Unlock()
			retry = append(retry, again...)
		})
	}
	wg.Wait()
	return retry
}

// pullFrom pulls shards ss from g and ends their warm-up, or returns
// those to try again.
func (p *pullRun) pullFrom(ctx context.Context, v *membership.View, g dumpSource, ss []int) (retry []int) {
	t, w := p.t, &p.t.w
	err := t.pull(ctx, v, g.m, ss, g.since)
	switch {
	case g.since != 0 && errors.Is(err, peer.ErrNoDelta):
		t.Log.Info("warm restart: the source cannot tell what changed; pulling in full", "peer", g.m.Name(), "shards", len(ss))
		t.wipeForFull(ss)
		p.mu.Lock()
		for _, s := range ss {
			p.tried[s]-- // the same source, whole
		}
		p.mu.Unlock()
		return ss
	case err != nil:
		t.Log.Warn("warm-up pull failed", "peer", g.m.Name(), "shards", len(ss), "err", err)
		g.m.Failed(ctx, err)
		return ss // each goes on to its next source
	}
	if g.since != 0 {
		w.deltas.Add(uint64(len(ss)))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range ss {
		if w.claims[s] == p.q.claims[s] && slices.Contains(v.Ring.Owners(s), t.Self) {
			// Pulled after its drop. Not when pulled in a view in
			// which this node does not own it (a late view after a
			// lapse, transition): what it pulled then gets no writes
			// until it owns the shard again, and must be settled then.
			delete(w.wiped, s)
		}
		if w.unverified != nil {
			w.unverified[s] = false
		}
		w.pullDone(s, p.q.claims[s])
	}
	return nil
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
func (t *Takeover) pull(ctx context.Context, v *membership.View, m Source, ss []int, since uint64) error {
	want := make([]byte, (len(t.w.flags)+7)/8)
	for _, s := range ss {
		want[s/8] |= 1 << (s % 8)
	}
	w := &t.w
	return m.Client().Dump(ctx, want, since, func(key []byte, it peer.Item) error {
		s := v.Ring.Shard(key)
		w.mu.Lock()
		switch _, fresh := w.fresh[string(key)]; {
		case fresh || !w.flags[s].Load():
		case it.Deleted:
			if it.CAS == 0 {
				break // no version: nothing to order it by
			}
			if res, _ := t.Versions.DeleteVersioned(key, nil, it.CAS); res == store.Deleted {
				w.dropped.Add(1)
			}
		default:
			t.Versions.ApplyCopy(key, it.Value, &store.SetOptions{Flags: it.Flags, Exptime: exptimeAt(t.Store, it.TTL), NewCAS: it.CAS, KeyBinary: it.KeyBinary})
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
func (t *Takeover) dropStale(drop []bool, keepFrom uint64) {
	v := t.h.Current().View()
	if v == nil || v.Ring == nil {
		return
	}
	w := &t.w
	t.Store.Range(func(key []byte, it store.Item, _ []byte) bool {
		s := v.Ring.Shard(key)
		if s >= len(drop) || !drop[s] || (keepFrom != 0 && it.CAS >= keepFrom) {
			return true
		}
		w.mu.Lock()
		if _, fresh := w.fresh[string(key)]; !fresh || !w.flags[s].Load() {
			if res, _ := t.Store.Delete(key, &store.DeleteOptions{CAS: it.CAS}); res == store.Deleted {
				w.dropped.Add(1)
			}
		}
		w.mu.Unlock()
		return true
	})
}
