package cluster

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
// (RouterConfig.RestoreMargin): writes the
// others took just before this node stopped, whose pushes may not have
// landed, and the skew between the nodes' clocks (the versions are
// hybrid clock readings).
const restoreMargin = 10 * time.Second

// restoredClaims returns the since of a warm restart for the claims of the
// first view this node is in, once, and marks the shards it does not own
// for dropping; 0 when the store was not restored. w.mu is held.
func (w *warm) restoredClaims() uint64 {
	since := w.restored
	if since != 0 {
		w.restored = 0
		w.dropOthers = true
	}
	return since
}

// versionAt is the hybrid-clock version of time t (store.Config.HybridCAS).
func versionAt(t time.Time) uint64 { return uint64(t.UnixMilli()) << 16 }

// wipeForFull drops the local items of warming shards ss (but the keys
// settled meanwhile) and marks them to be pulled whole: their source could
// not tell what changed since the restart's save.
func (r *Router) wipeForFull(ss []int) {
	w := &r.w
	drop := make([]bool, len(w.flags))
	w.mu.Lock()
	for _, s := range ss {
		drop[s] = true
		w.wiped[s] = true
		delete(w.since, s)
	}
	w.mu.Unlock()
	w.noDeltas.Add(uint64(len(ss)))
	r.dropStale(drop, 0)
}
