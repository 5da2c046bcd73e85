package takeover

import (
	"slices"
	"time"
)

// Lapse recovery: etcd deleted this node's record while other members
// stayed registered (a partition longer than the lease; etcdsync.Lapse).
// The others had a view without this node and served its shards
// meanwhile: values it holds may have been overwritten, keys deleted. A
// view that drops and regains this node warms the regained shards, but
// keeps what the source lacks (see warm.go: after an etcd outage the
// source may hold less), and a node whose watch skipped the view without
// itself sees no change at all. So, once the registrar reports the lapse
// and before the request that notices it runs, the router:
//
//   - drops this node's items of every shard that a member which stayed
//     owns in the current view (that member held it through the lapse:
//     its copy is the one to keep); owned ones are pulled again from it
//     (or, should it not answer, from the other owners, then from those
//     that stood in for this node), read through until then, like after
//     a pause (pause.go);
//     What it wrote itself since it was cut off (a CAS at or above
//     lapseKeepFrom: Takeover.cutAt or the last keepalive etcd answered)
//     stays, and the pull and the reads that settle it first decide by
//     version: the source's newer copy or newer delete (its dump and its
//     replica-level misses carry the deletes it remembers) wins, an
//     older one does not, and a key the source lacks stays
//     (warm.keptFrom). Dropping it would lose writes taken between the
//     heal and the notice of the lapse; keeping it without the source's
//     deletes brought back keys written just before the cut and deleted
//     during it;
//   - leaves alone the shards only lapsed members hold: nobody has a
//     better copy. After an etcd outage that expired every lease nobody
//     stayed, and nothing is dropped.
//
// What it does not do (unlike a pause): close the peer connections or
// discard the replication queue. The lapse is noticed seconds after the
// heal, when this node may have taken writes that are only in that queue;
// what the queue held from before carries an older epoch, which the
// others refuse for the shards that moved.

// lapsePending reports whether the membership reported a lapse not yet
// recovered from.
func (t *Takeover) lapsePending() bool {
	return t.Membership.Lapses() != t.w.lapses.Load()
}

// CheckLapse recovers from a lapse the membership reported since the last
// call, once, whichever caller notices first.
func (t *Takeover) CheckLapse() {
	m := t.Membership
	if m.Lapses() == t.w.lapses.Load() {
		return
	}
	t.pauseMu.Lock()
	defer t.pauseMu.Unlock()
	l := m.Lapse()
	if l.Count == t.w.lapses.Load() {
		return
	}
	if t.recoverFromLapse(l.Stayed, lapseKeepFrom(t.cutAt.Load(), l.Since)) {
		t.w.lapses.Store(l.Count)
	}
}

// lapseKeepFrom is the version from which a lapse's drop keeps this
// node's items (0: none): the last tick at which it saw every member
// usable before it saw one not (cutAt), unless it saw no cut or saw one
// only after its lease had lost etcd (a blip after the heal); then the
// last keepalive etcd answered (since), after which the cut began. A
// node cut off from everything may see no cut at all: its gossip may
// keep the others suspect, not dead, and with no request it marks no
// peer down. Keeping nothing there dropped the writes it took between
// the heal and the notice of the lapse (e2e/history, seed 23: a set 8 ms
// before the notice dropped, its push refused, the value before served).
func lapseKeepFrom(cutAt uint64, since time.Time) uint64 {
	var bound uint64
	if !since.IsZero() {
		bound = uint64(since.UnixMilli()) << 16
	}
	if cutAt != 0 && (bound == 0 || cutAt <= bound) {
		return cutAt
	}
	return bound
}

// recoverFromLapse drops and re-pulls what stayed members hold (see
// above), keeping the items with a version at or above keepFrom; false
// when it cannot run yet (no view, or Run has not started). t.pauseMu is
// held.
func (t *Takeover) recoverFromLapse(stayed []string, keepFrom uint64) bool {
	v := t.h.Current().View()
	if v == nil || v.Ring == nil {
		return false
	}
	t.h.ViewLock().Lock()
	defer t.h.ViewLock().Unlock()
	if !t.running {
		return false
	}
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init(v.Ring.NumShards())
	if len(w.flags) != v.Ring.NumShards() {
		return true
	}
	rg, without := v.Ring, t.ringWithout(v) // who stood in for this node
	if with := t.ringWith(v); with != nil {
		// Registered again, but this view is from before (the watcher
		// has not caught up): the others already route to this node on
		// the ring with it, so warm what it owns there.
		rg, without = with, v.Ring
	}
	// A pause's drop not yet done keeps nothing: it stays so.
	pausePending := w.dropOthers || (len(w.drop) > 0 && w.keepFrom == 0)
	var cs []claim
	dropped := 0
	for s := range v.Ring.NumShards() {
		owners := rg.Owners(s)
		var src []string // stayed owners first
		for _, o := range owners {
			if o != t.Self && slices.Contains(stayed, o) {
				src = append(src, o)
			}
		}
		if len(src) == 0 {
			continue // only lapsed members hold it
		}
		if !slices.Contains(owners, t.Self) {
			w.drop[s] = true // not served here; dropped before it can be again
			w.wiped[s] = true
			dropped++
			continue
		}
		src = others(src, owners, t.Self)
		if without != nil {
			src = others(src, without.Owners(s), t.Self)
		}
		cs = append(cs, claim{shard: s, src: src, drop: true})
	}
	clear(w.fresh) // what was settled before may be stale too
	if !pausePending {
		w.keepFrom, w.keptFrom = keepFrom, keepFrom
	}
	w.start(cs)
	t.Log.Warn("registration lapsed while others stayed: dropping what they hold and pulling owned shards again",
		"stayed", stayed, "owned_shards", len(cs), "other_shards", dropped, "epoch", v.Epoch,
		"keep_from", time.UnixMilli(int64(keepFrom>>16)).UTC().Format("15:04:05.000"))
	return true
}
