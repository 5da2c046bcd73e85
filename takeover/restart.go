package takeover

import "time"

// Warm restart: a node restarted with its memory file (-e) holds what it
// held when it stopped. Dropping that and pulling every shard again would
// make the restart as slow as a cold one; keeping it without question
// would serve what the others overwrote or deleted meanwhile. So the
// shards it owns in its first view warm as any other (read-through of
// each key before it is served, writes by version), but the pull asks
// only for what changed since the save (the items and remembered deletes
// of that version or newer, sd's since). A source that cannot vouch for
// that answers protocol.ReplyNoDelta: its store dropped a newer item by
// itself (evicted, expired, flushed) or it forgot a newer delete (a
// restart longer than the tombstones' minute). The shard's restored items
// are then dropped and it is pulled whole, as after a cold start. Restored
// items of shards the node does not own are dropped.

// restoreMargin is how far before the save the pull starts by default
// (Config.RestoreMargin, cluster's RouterConfig.RestoreMargin): writes the
// others took just before this node stopped, whose pushes may not have
// landed, and the skew between the nodes' clocks (the versions are
// hybrid clock readings).
const restoreMargin = 10 * time.Second

// restoredView, at a view with this node, starts a warm restart's
// claims the first time: every shard of n is unverified, and those this
// node does not own are marked for dropping. w.mu is held.
func (w *warm) restoredView(n int) {
	if w.restored == 0 || w.unverified != nil {
		return
	}
	w.unverified = make([]bool, n)
	for s := range w.unverified {
		w.unverified[s] = true
	}
	w.dropOthers = true
}

// restoredSince returns the since to claim shard s with: the restart's
// while s has been neither pulled nor dropped since (a view that settles
// may claim it more than once), else 0. w.mu is held.
func (w *warm) restoredSince(s int) uint64 {
	if w.unverified == nil || !w.unverified[s] {
		return 0
	}
	return w.restored
}

// verified marks the shards set in drop as no longer holding restored
// items. w.mu is held.
func (w *warm) verified(drop []bool) {
	for s, d := range drop {
		if d && w.unverified != nil {
			w.unverified[s] = false
		}
	}
}

// versionAt is the hybrid-clock version of time t (store.Config.HybridCAS).
func versionAt(t time.Time) uint64 { return uint64(t.UnixMilli()) << 16 }

// wipeForFull drops the local items of warming shards ss (but the keys
// settled meanwhile) and marks them to be pulled whole: their source could
// not tell what changed since the restart's save.
func (t *Takeover) wipeForFull(ss []int) {
	w := &t.w
	drop := make([]bool, len(w.flags))
	w.mu.Lock()
	for _, s := range ss {
		drop[s] = true
		w.wiped[s] = true
		delete(w.since, s)
	}
	w.verified(drop)
	w.mu.Unlock()
	w.noDeltas.Add(uint64(len(ss)))
	t.dropStale(drop, 0)
}
