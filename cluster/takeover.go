package cluster

import (
	"cmp"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"shoal/store"
)

// takeover is how this node takes over shards, and gives them up: warm-up
// of the shards it becomes an owner of (warm.go, warm_pull.go), recovery
// from a pause of the process (pause.go), from a lapse of its registration
// (lapse.go) and from a co-owner's return (returns.go), a warm restart
// (restart.go) and the handoff before it leaves (handoff.go). Its state is
// its own, and so are the store and settings it works with (init).
//
// The router asks it, for a request:
//
//   - awake: whether the process ran without a pause (it recovers first);
//   - recovering: whether a pause or lapse recovery is due, which a
//     request must not run on an event loop;
//   - warming: whether a route's shard warms (one atomic load when none);
//   - settle, own: make a key fresh before a read, run a local write;
//   - replica, replicaNewer: run a replicated write; staleEpoch: refuse
//     one from before the shard's owners changed.
//
// It tells it of each view it applies (transition, under r.mu, then
// kick), runs its workers (runWarm, heartbeat) and calls checkLapse and
// noticeReturns on its ticks (view.go). Handoff and its counters
// (counters, part of the router's Counters) are its too.
//
// What it asks of the router (r), and nothing else:
//
//   - the view requests route by, with its members' peer clients
//     (r.View, r.peers), and whether Run has started (r.running);
//   - a member's health: usable, and failed for a request that failed;
//   - r.mu, held while it recovers from a pause, a lapse or a return, so
//     that no view is applied meanwhile (apply holds it for transition);
//   - the writes' bookkeeping: the replication queue (r.repl: discarded
//     after a pause, reset for a member back), the per-shard sequence
//     (r.seq), the hints owed (r.hints.owe), and the store's versioned
//     operations (r.applyCopy, r.deleteVersioned, r.exptime).
type takeover struct {
	r *Router

	self        string // this node's name
	log         *slog.Logger
	st          *store.Store
	members     Membership    // its lapses (lapse.go)
	pauseAfter  time.Duration // RouterConfig.PauseAfter
	downFor     time.Duration // RouterConfig.DownFor
	peerTimeout time.Duration // RouterConfig.Peer.RequestTimeout (0: peer's default)

	w       warm
	born    time.Time    // for mono
	tick    atomic.Int64 // mono of the heartbeat's last tick (pause.go)
	pauseMu sync.Mutex
	// onPause are the functions RegisterOnPause registered.
	onPause []func()
	// cutAt is a CAS-comparable time (unix ms << 16) of the last tick at
	// which every member was usable, before the latest one at which some
	// was not: about when this node was last cut off (returns.go).
	cutAt              atomic.Uint64
	pauses, reverified atomic.Uint64 // recoveries from a pause; shards re-verified (returns.go)
}

// init readies t for r (NewRouter).
func (t *takeover) init(r *Router) {
	t.r, t.born = r, time.Now()
	t.self, t.log, t.st, t.members = r.self, r.log, r.st, r.cfg.Members
	t.pauseAfter, t.downFor, t.peerTimeout = r.cfg.PauseAfter, r.cfg.DownFor, r.cfg.Peer.RequestTimeout
	t.w.wake = make(chan struct{}, 1)
	if !r.cfg.Restored.IsZero() {
		t.w.restored = versionAt(r.cfg.Restored.Add(-cmp.Or(r.cfg.RestoreMargin, restoreMargin)))
	}
}

// recovering reports whether a pause or a lapse is waiting to be
// recovered from: a request that sees one leaves the event loop, and the
// synchronous operation it runs on a goroutine recovers first (awake).
func (t *takeover) recovering() bool { return t.pausedNow() || t.lapsePending() }

// anyWarming reports whether some shard warms.
func (t *takeover) anyWarming() bool { return t.w.active.Load() > 0 }

// kick wakes the warm-up worker: a view was published whose transition
// claimed pulls.
func (t *takeover) kick() { t.w.kick() }

// staleEpoch reports whether a replicated write to shard s sent in epoch
// predates the last change of the shard's owners.
func (t *takeover) staleEpoch(s int, epoch uint64) bool {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	return s < len(t.w.changedAt) && int64(epoch) < t.w.changedAt[s]
}

// counters returns the warm-up, pause, lapse and re-verify counters.
func (t *takeover) counters() Counters {
	w := &t.w
	return Counters{
		WarmShards: int(w.active.Load()),
		Pulled:     w.pulled.Load(), Dropped: w.dropped.Load(), ReadThrough: w.fetched.Load(),
		DeltaShards: w.deltas.Load(), DeltaRefused: w.noDeltas.Load(),
		Pauses: t.pauses.Load(), Lapses: w.lapses.Load(),
		Reverified: t.reverified.Load(),
	}
}
