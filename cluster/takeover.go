package cluster

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"shoal/membership"
	"shoal/peer"
	"shoal/repl"
	"shoal/store"
)

// takeover is how this node takes over shards, and gives them up: warm-up
// of the shards it becomes an owner of (warm.go, warm_pull.go), recovery
// from a pause of the process (pause.go), from a lapse of its registration
// (lapse.go) and from a co-owner's return (returns.go), a warm restart
// (restart.go) and the handoff before it leaves (handoff.go). Its state is
// its own, and so are the store and settings it works with
// (takeoverConfig).
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
// It tells it when its Run starts (begin) and of each view it applies
// (transition, under the view lock, then kick), runs its workers (runWarm, heartbeat) and calls checkLapse
// and noticeReturns on its ticks (view.go). Handoff and its counters
// (counters, part of the router's Counters) are its too.
//
// What it asks of the router is host, and nothing else; the router's
// members it sees as sources, one applied view of them as a peerView.
type takeover struct {
	h host
	takeoverConfig

	// running: the router's Run has started (begin); warm-up needs its
	// worker, so without it (tests of routing alone) shards never warm.
	// Guarded by the view lock.
	running bool

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

// takeoverConfig is what takeover works with besides its host: its own,
// not the router's.
type takeoverConfig struct {
	self        string // this node's name
	log         *slog.Logger
	st          *store.Store
	members     Membership       // its lapses (lapse.go)
	repl        *repl.Replicator // nil without replication: discarded after a pause, reset for a member back
	ver         versions         // the store's versioned writes: a copy made elsewhere lands only over an older item and never over a newer delete
	pauseAfter  time.Duration    // RouterConfig.PauseAfter
	downFor     time.Duration    // RouterConfig.DownFor
	peerTimeout time.Duration    // RouterConfig.Peer.RequestTimeout (0: peer's default)
	// restored is the version a warm restart pulls what changed from
	// (restart.go); 0 when the store started empty.
	restored uint64
}

// newTakeoverConfig is takeover's part of a router's config.
func newTakeoverConfig(cfg RouterConfig, rp *repl.Replicator, ver versions) takeoverConfig {
	c := takeoverConfig{
		self: cfg.Members.Name(), log: cfg.Logger, st: cfg.Store, members: cfg.Members, repl: rp, ver: ver,
		pauseAfter: cfg.PauseAfter, downFor: cfg.DownFor, peerTimeout: cfg.Peer.RequestTimeout,
	}
	if !cfg.Restored.IsZero() {
		c.restored = versionAt(cfg.Restored.Add(-cmp.Or(cfg.RestoreMargin, restoreMargin)))
	}
	return c
}

// init readies t for h (NewRouter).
func (t *takeover) init(h host, c takeoverConfig) {
	t.h, t.takeoverConfig, t.born = h, c, time.Now()
	t.w.wake = make(chan struct{}, 1)
	t.w.restored = c.restored
}

// host is what takeover asks of the router (*takeoverHost, the router as
// takeover sees it, implements it).
type host interface {
	// current returns the view requests route by now, with its members.
	current() peerView
	// viewLock is held while a view is applied (transition runs under
	// it, before the view is published) and while takeover recovers
	// from a pause, a lapse or a return, so that no view is applied
	// meanwhile.
	viewLock() sync.Locker
	// owe records that member is owed this node's writes of shard from
	// version from on (hints.go): it became an owner of the shard.
	owe(member string, shard int, from uint64)
}

// peerView is one applied view with the other members in it (*peerSet):
// a request's, or the current one.
type peerView interface {
	View() *membership.View
	// Peer returns the member named name, nil when it has no client in
	// this view (it is this node, or not in it).
	Peer(name string) source
}

// source is another member as takeover reads and pulls from it
// (*member): its client, and its health (member.go).
type source interface {
	Name() string
	Client() *peer.Client
	// Usable reports whether a request may go to it now (not marked
	// down, not dead to gossip).
	Usable() bool
	// Failed counts a failed request to it and reports whether err means
	// it did not answer (it is then marked down).
	Failed(ctx context.Context, err error) bool
}

// placement is where a request's key lives, as the router routed it:
// its shard (-1 without owners) in the view the request routes by.
type placement struct {
	shard int
	peers peerView
}

// begin marks the router's Run as started and warms what this node owns
// in v; the view lock is held.
func (t *takeover) begin(v *membership.View) {
	t.running = true
	t.transition(nil, v)
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
