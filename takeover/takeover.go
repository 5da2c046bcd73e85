package takeover

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/etcdsync"
	"shoal/membership"
	"shoal/peer"
	"shoal/protocol"
	"shoal/repl"
	"shoal/store"
)

// Takeover is how this node takes over shards, and gives them up: warm-up
// of the shards it becomes an owner of (warm.go, warm_pull.go), recovery
// from a pause of the process (pause.go), from a lapse of its registration
// (lapse.go) and from a co-owner's return (returns.go), a warm restart
// (restart.go) and the handoff before it leaves (handoff.go). Its state is
// its own, and so are the store and settings it works with (Config).
//
// Its host (the router) asks it, for a request:
//
//   - Awake: whether the process ran without a pause (it recovers first);
//   - Recovering: whether a pause or lapse recovery is due, which a
//     request must not run on an event loop;
//   - Warming: whether a route's shard warms (one atomic load when none);
//   - Settle, Own: make a key fresh before a read, run a local write;
//   - Replica, ReplicaNewer: run a replicated write; StaleEpoch: refuse
//     one from before the shard's owners changed.
//
// It tells it when its Run starts (Begin) and of each view it applies
// (Transition, under the view lock, then Kick), runs its workers (RunWarm,
// Heartbeat) and calls CheckLapse and NoticeReturns on its ticks
// (cluster/view.go). Handoff and its counters (Counters, part of the
// router's) are its too.
//
// What it asks of the router is Host, and nothing else; the router's
// members it sees as Sources, one applied view of them as a PeerView.
// Init readies it; its zero value is not usable before.
type Takeover struct {
	h Host
	Config

	// running: the router's Run has started (Begin); warm-up needs its
	// worker, so without it (tests of routing alone) shards never warm.
	// Guarded by the view lock.
	running bool

	w       warm
	born    time.Time    // for mono
	tick    atomic.Int64 // mono of the heartbeat's last tick (pause.go)
	pauseMu sync.Mutex
	// onPause are the functions OnPause registered.
	onPause []func()
	// cutAt is a CAS-comparable time (unix ms << 16) of the last tick at
	// which every member was usable, before the latest one at which some
	// was not: about when this node was last cut off (returns.go).
	cutAt              atomic.Uint64
	pauses, reverified atomic.Uint64 // recoveries from a pause; shards re-verified (returns.go)
}

// Config is what Takeover works with besides its host: its own, not the
// router's (the router makes it from its RouterConfig).
type Config struct {
	Self       string // this node's name
	Log        *slog.Logger
	Store      *store.Store
	Membership Registration     // its lapses (lapse.go)
	Repl       *repl.Replicator // nil without replication: discarded after a pause, reset for a member back
	Versions   Versions         // the store's versioned writes: a copy made elsewhere lands only over an older item and never over a newer delete
	PauseAfter time.Duration    // RouterConfig.PauseAfter
	DownFor    time.Duration    // RouterConfig.DownFor
	// PeerTimeout is RouterConfig.Peer.RequestTimeout (0: peer's default).
	PeerTimeout time.Duration
	// OwedFor is how far back a view change owes writes to a member that
	// became an owner of a shard (cluster/hints.go: viewOwedFor).
	OwedFor time.Duration
	// Restored, when not zero, is when the store's items were saved
	// before this process restored them (a warm restart, restart.go);
	// the pull starts RestoreMargin before it (0: 10 s, restoreMargin).
	Restored      time.Time
	RestoreMargin time.Duration
}

// Registration is this node's registration as takeover sees it: its
// lapses (lapse.go). Lapses is called on every request, concurrently.
// *membership.Node implements it.
type Registration interface {
	// Lapses counts the lapses of this node's registration so far; Lapse
	// describes the latest (Count, Since, Stayed).
	Lapses() uint64
	Lapse() etcdsync.Lapse
}

// ErrUnvouched: a write that depends on the item, on a key of a shard
// this node is taking over that no source answered for (warm.go: Settle,
// Own). What this node holds may have been overwritten elsewhere, so it
// does not build on it; a peer that forwarded the write tries the key's
// next owner (protocol.ReplyUnvouched).
var ErrUnvouched = errors.New(strings.TrimPrefix(protocol.ReplyUnvouched, "SERVER_ERROR "))

// Init readies t for h (cluster's NewRouter).
func (t *Takeover) Init(h Host, c Config) {
	t.h, t.Config, t.born = h, c, time.Now()
	t.w.wake = make(chan struct{}, 1)
	if !c.Restored.IsZero() {
		// the version a warm restart pulls what changed from (restart.go)
		t.w.restored = versionAt(c.Restored.Add(-cmp.Or(c.RestoreMargin, restoreMargin)))
	}
}

// OnPause registers f to run when a pause is noticed, before any request
// runs (pause.go). It must be called before the heartbeat runs.
func (t *Takeover) OnPause(f func()) { t.onPause = append(t.onPause, f) }

// Running reports whether Begin was called: the router's Run has
// started. The view lock must be held.
func (t *Takeover) Running() bool { return t.running }

// Host is what Takeover asks of the router (cluster's takeoverHost, the
// router as takeover sees it, implements it).
type Host interface {
	// Current returns the view requests route by now, with its members.
	Current() PeerView
	// ViewLock is held while a view is applied (Transition runs under
	// it, before the view is published) and while takeover recovers
	// from a pause, a lapse or a return, so that no view is applied
	// meanwhile.
	ViewLock() sync.Locker
	// Owe records that member is owed this node's writes of shard from
	// version from on (cluster/hints.go): it became an owner of the
	// shard.
	Owe(member string, shard int, from uint64)
}

// PeerView is one applied view with the other members in it (cluster's
// *peerSet): a request's, or the current one.
type PeerView interface {
	View() *membership.View
	// Peer returns the member named name, nil when it has no client in
	// this view (it is this node, or not in it).
	Peer(name string) Source
}

// Source is another member as takeover reads and pulls from it
// (cluster's *member): its client, and its health.
type Source interface {
	Name() string
	Client() *peer.Client
	// Usable reports whether a request may go to it now (not marked
	// down, not dead to gossip).
	Usable() bool
	// Failed counts a failed request to it and reports whether err means
	// it did not answer (it is then marked down).
	Failed(ctx context.Context, err error) bool
}

// Placement is where a request's key lives, as the router routed it:
// its Shard (-1 without owners) in the view the request routes by.
type Placement struct {
	Shard int
	Peers PeerView
}

// Begin marks the router's Run as started and warms what this node owns
// in v; the view lock is held.
func (t *Takeover) Begin(v *membership.View) {
	t.running = true
	t.Transition(nil, v)
}

// Recovering reports whether a pause or a lapse is waiting to be
// recovered from: a request that sees one leaves the event loop, and the
// synchronous operation it runs on a goroutine recovers first (Awake).
func (t *Takeover) Recovering() bool { return t.pausedNow() || t.lapsePending() }

// AnyWarming reports whether some shard warms.
func (t *Takeover) AnyWarming() bool { return t.w.active.Load() > 0 }

// Kick wakes the warm-up worker: a view was published whose Transition
// claimed pulls.
func (t *Takeover) Kick() { t.w.kick() }

// StaleEpoch reports whether a replicated write to shard s sent in epoch
// predates the last change of the shard's owners.
func (t *Takeover) StaleEpoch(s int, epoch uint64) bool {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	return s < len(t.w.changedAt) && int64(epoch) < t.w.changedAt[s]
}

// Counters is a snapshot of takeover's counters: the shards warming now,
// the items warm-up pulled, dropped as possibly stale and read through
// from a source, a warm restart's shards pulled by what changed and
// refused that (restart.go), the pauses noticed, the lapses of this
// node's registration recovered from (lapse.go), the shards re-verified
// after a co-owner came back (returns.go). They are part of
// cluster.Counters.
type Counters struct {
	WarmShards                   int
	Pulled, Dropped, ReadThrough uint64
	DeltaShards, DeltaRefused    uint64
	Pauses, Lapses               uint64
	Reverified                   uint64
}

// Counters returns the warm-up, pause, lapse and re-verify counters.
func (t *Takeover) Counters() Counters {
	w := &t.w
	return Counters{
		WarmShards: int(w.active.Load()),
		Pulled:     w.pulled.Load(), Dropped: w.dropped.Load(), ReadThrough: w.fetched.Load(),
		DeltaShards: w.deltas.Load(), DeltaRefused: w.noDeltas.Load(),
		Pauses: t.pauses.Load(), Lapses: w.lapses.Load(),
		Reverified: t.reverified.Load(),
	}
}
