package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/membership"
	"shoal/peer"
	"shoal/protocol"
	"shoal/repl"
	"shoal/store"
	"shoal/takeover"
	"shoal/tomb"
)

// ErrUnavailable: every owner of the key is dead or unreachable. A write
// fails with it (the client sees SERVER_ERROR); a read is a miss instead.
var ErrUnavailable = errors.New("cluster: no owner reachable")

// ErrPaused: a peer's request read before this process was paused; its
// sender has given up on it (see takeover/pause.go).
var ErrPaused = errors.New(strings.TrimPrefix(protocol.ReplyPaused, "SERVER_ERROR "))

// ErrNotOwner: a peer's forwarded write on a key this node does not own
// in its view (Router.routeHere); its sender passes it on to the key's
// next owner without marking this node down.
var ErrNotOwner = errors.New(strings.TrimPrefix(protocol.ReplyNotOwner, "SERVER_ERROR "))

// ErrUnvouched: a write that depends on the item, on a key of a shard
// this node is taking over that no source answered for (package
// takeover: Settle, Own). What this node holds may have been overwritten
// elsewhere, so it does not build on it; a peer that forwarded the write
// tries the key's next owner (protocol.ReplyUnvouched).
var ErrUnvouched = takeover.ErrUnvouched

// ErrConfig reports an unusable RouterConfig.
var ErrConfig = errors.New("cluster: invalid router config")

// Membership is what a Router needs from the cluster: the current view,
// gossip's verdict on a member and this node's name, a signal that the
// view changed, and the lapses of this node's registration (takeover/lapse.go).
// Health and Lapses are called concurrently from request goroutines (Lapses
// on every request), View and Changed from the router's own (Run).
// *membership.Node implements it.
type Membership interface {
	View() *membership.View
	Health(name string) gossip.State
	Name() string
	// Changed receives (coalesced) after the view changed; nil when the
	// view is only polled.
	Changed() <-chan struct{}
	// Lapses counts the lapses of this node's registration so far; Lapse
	// describes the latest (Count, Since, Stayed).
	Lapses() uint64
	Lapse() etcdsync.Lapse
}

// RouterConfig wires a Router. The zero value of each optional field means
// its default.
type RouterConfig struct {
	// Members and Store are required: the cluster view and this node's store.
	Members Membership
	Store   *store.Store
	// Peer is the template for the client to each member; Addr is filled
	// in from the member's PeerAddr.
	Peer peer.Config
	// Pool, if set, lends the client to each member, shared with the
	// node's other users of that peer (the replicator); nil means a pool
	// of the router's own, made with Peer.
	Pool *peer.Pool
	// DownFor is how long a member stays skipped after a refused connect,
	// a timeout or a lost connection. Zero means 1 s.
	DownFor time.Duration
	// Logger receives peer state changes; nil discards.
	Logger *slog.Logger
	// Replication, when not nil, makes the router push the result of
	// every write this node applies as a key's serving owner to the key's
	// other owners, through a replicator it makes with this config
	// (Router.Replicator): its Refresh and Missed are the router's
	// (Router.Refresh, Router.Missed), its Pool when nil the router's.
	Replication *repl.Config
	// PauseAfter is the gap in the heartbeat's ticks after which this
	// node counts itself as having been paused (takeover/pause.go). Zero
	// means 1 s: the peer request timeout, after which the others fail
	// over.
	PauseAfter time.Duration
	// Tombstones bounds the deletes remembered with their version
	// (takeover/versions.go); its zero value means package tomb's defaults.
	Tombstones tomb.Config
	// Restored, when not zero, is when the store's items were saved
	// before this process restored them (a warm restart, -e): the shards
	// this node owns then warm by pulling only what changed since
	// (takeover/restart.go).
	Restored time.Time
	// RestoreMargin is how far before Restored the pull of a warm restart
	// starts. Zero means 10 s (takeover/restart.go).
	RestoreMargin time.Duration
	// MultiGetHold bounds the bytes of other owners' values this node's
	// multi-gets hold at once (hold.go). Zero means 8 MiB.
	MultiGetHold int64
}

// Validate reports a config the router cannot use.
func (c RouterConfig) Validate() error {
	switch {
	case c.Members == nil:
		return fmt.Errorf("%w: router without membership", ErrConfig)
	case c.Store == nil:
		return fmt.Errorf("%w: router without store", ErrConfig)
	case c.DownFor < 0 || c.PauseAfter < 0 || c.RestoreMargin < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	case c.MultiGetHold < 0:
		return fmt.Errorf("%w: negative multi-get hold", ErrConfig)
	}
	return nil
}

// Router serves a key from the first reachable owner in the ring: this
// node's store when that owner is this node, else the owner over a pooled
// peer connection, failing over to the next owner at once when a peer is
// down, times out or drops the connection. It is the client port's
// server.Cache (async.go: Start; multiget.go: GetMulti); the server reads
// the store itself (server.Items) for what is this node's alone.
//
// A forwarded request arrives at the owner's connection server and is
// routed again there; within one view this only ever moves towards owners
// earlier in the list (a node never skips itself), so it ends. During a
// view change two nodes may briefly disagree; the peer request timeout
// bounds such a detour.
type Router struct {
	cfg  RouterConfig
	self string
	st   *store.Store
	log  *slog.Logger
	repl *repl.Replicator // nil without RouterConfig.Replication
	// peers is the view requests route by, with its members' clients:
	// replaced whole by apply (view.go), never nil.
	peers atomic.Pointer[peerSet]

	// mu serializes applying a view (warm-up transitions) and Close;
	// takeover holds it while it recovers (takeover.Host's ViewLock), and
	// it guards tk.Running (numberShards is told it).
	mu     sync.Mutex
	closed bool
	// applied is closed when apply publishes a newer view, and replaced.
	applied chan struct{}

	tk    takeover.Takeover // warm-up, pause, lapse, returns, restart, handoff
	tombs *tomb.Table       // recent deletes with their version (takeover/versions.go)
	ver   takeover.Versions // the store's versioned writes, with tombs
	push  pusher            // writes to the other owners, and hand-backs (replicate.go, hints.go)
	hold  *hold             // other owners' values multi-gets hold (hold.go)
	bg    sync.WaitGroup    // members' probes (member.probe), Start's fallbacks, hand-backs
	// bgMu orders starting a goroutine of bg against Close's wait for them.
	bgMu     sync.Mutex
	bgClosed bool

	asyncGets   sync.Pool // *asyncGet
	asyncWrites sync.Pool // *asyncWrite

	staleEpochs, replicated atomic.Uint64
}

// peerSet is one view and the clients for its members; immutable.
type peerSet struct {
	view   *membership.View // nil before the first
	byName map[string]*member
	// targets, by shard: the shard's owners in view that have a client
	// (every owner but this node), in ring order; the replicas a write
	// this node serves as primary goes to (Route.targets).
	targets [][]repl.Target
}

// replTargets computes ps.targets from ps.view and ps.byName: one slice per
// shard, all in one backing array.
func replTargets(ps *peerSet) [][]repl.Target {
	v := ps.view
	if v == nil || v.Ring == nil || len(ps.byName) == 0 {
		return nil
	}
	n := v.Ring.NumShards()
	out := make([][]repl.Target, n)
	var all []repl.Target
	for s := range n {
		for _, name := range v.Ring.Owners(s) {
			if m := ps.byName[name]; m != nil {
				all = append(all, repl.Target{Name: m.name, Addr: m.addr})
			}
		}
	}
	all = slices.Clip(all)
	i := 0
	for s := range n {
		j := i
		for _, name := range v.Ring.Owners(s) {
			if ps.byName[name] != nil {
				j++
			}
		}
		if j > i {
			out[s] = all[i:j:j]
		}
		i = j
	}
	return out
}

// NewRouter returns a router; it does no I/O (peer connections are dialled
// by the first request to each).
func NewRouter(cfg RouterConfig) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DownFor == 0 {
		cfg.DownFor = time.Second
	}
	if cfg.PauseAfter == 0 {
		cfg.PauseAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Peer.Logger == nil {
		cfg.Peer.Logger = cfg.Logger
	}
	if cfg.Pool == nil {
		cfg.Pool = peer.NewPool(cfg.Peer)
	}
	r := &Router{cfg: cfg, self: cfg.Members.Name(), st: cfg.Store, log: cfg.Logger, tombs: tomb.New(cfg.Tombstones), hold: newHold(cfg.MultiGetHold)}
	r.ver = takeover.Versions{Store: r.st, Tombs: r.tombs}
	r.peers.Store(&peerSet{})
	r.applied = make(chan struct{})
	if cfg.Replication != nil {
		rc := *cfg.Replication
		rc.Refresh, rc.Missed = r.Refresh, r.Missed
		rc.Pool = cmp.Or(rc.Pool, cfg.Pool)
		var err error
		if r.repl, err = repl.New(rc); err != nil {
			return nil, err
		}
	}
	r.push = pusher{repl: r.repl, st: r.st, tombs: r.tombs, members: cfg.Members, log: r.log}
	r.tk.Init((*takeoverHost)(r), takeoverConfig(cfg, r.repl, r.ver))
	return r, nil
}

// Replicator is the replicator the router pushes its writes through, nil
// without RouterConfig.Replication. Its owner runs it (Run), drains it at
// shutdown and closes it after the router.
func (r *Router) Replicator() *repl.Replicator { return r.repl }

// RegisterOnPause registers f to run when a pause is noticed, before any
// request runs (takeover/pause.go): package node closes the peer port's
// connections there, whose buffered requests their senders gave up on.
// It must be called before Run.
func (r *Router) RegisterOnPause(f func()) { r.tk.OnPause(f) }

func (ps *peerSet) get(name string) *member {
	if ps == nil {
		return nil
	}
	return ps.byName[name]
}

// View is the view of ps (takeover.PeerView).
func (ps *peerSet) View() *membership.View {
	if ps == nil {
		return nil
	}
	return ps.view
}

// Peer is the member named name as takeover sees it (takeover.PeerView);
// nil when it has no client in ps.
func (ps *peerSet) Peer(name string) takeover.Source {
	if m := ps.get(name); m != nil {
		return m
	}
	return nil
}

// routed decides the route of a client's request on key. A request runs
// even when it is the one that finds the process was paused: it is routed
// after the recovery (the client is still waiting for its answer).
func (r *Router) routed(key []byte) Route {
	r.tk.Awake()
	return r.route(key)
}

// walk sends a request on route rt to its serving owner with remote,
// until one answers or rt reaches this node: an error from remote that
// means "no answer" marks the member down and moves rt on to its next
// owner (the same view and owners). An owner that refused the request
// because it found it had been paused (ErrPaused) has recovered by then:
// it is asked once more. walk returns nil with rt.Local() when this node
// serves the request (the caller runs it on rt), nil when an owner
// answered, ErrUnavailable when no owner is left, or remote's error when
// the owner answered with one.
func (r *Router) walk(ctx context.Context, rt *Route, remote func(*member) error) error {
	retried := false
	for !rt.Local() {
		m := rt.member()
		if m == nil {
			return ErrUnavailable
		}
		m.forwarded.Add(1)
		err := remote(m)
		if err == nil {
			return nil
		}
		if refusedForPause(err) && !retried {
			retried = true
			continue
		}
		if refusedNotOwner(err) || refusedUnvouched(err) {
			r.next(rt)
			continue
		}
		if !m.Failed(ctx, err) {
			return err
		}
		r.next(rt)
	}
	return nil
}

// refusedForPause reports whether err is a peer's ErrPaused: the owner
// refused a request that found it had been paused (see PeerPort.writeRoute).
func refusedForPause(err error) bool { return errors.Is(err, peer.ErrRefusedPaused) }

// refusedNotOwner reports whether err is a peer's ErrNotOwner.
func refusedNotOwner(err error) bool { return errors.Is(err, peer.ErrRefusedNotOwner) }

// refusedUnvouched reports whether err is a peer's ErrUnvouched.
func refusedUnvouched(err error) bool { return errors.Is(err, peer.ErrRefusedUnvouched) }

// PeerStats is what this node knows of one other member: what it
// forwarded there and, with a replicator, how replication to it stands.
type PeerStats struct {
	Peer      string
	Forwarded uint64 // requests sent to the member
	Failures  uint64 // of those, the ones that failed
	// Down: skipped after a failed request until a probe gets an answer
	// (its owners stand in for its keys meanwhile).
	Down           bool
	ReplLag        time.Duration // age of the oldest write not yet acknowledged
	ReplLagSeq     int           // writes not yet acknowledged
	ReplQueueBytes int64         // bytes of keys and values queued or being sent (bounded by repl.Config.QueueBytes)
	ReplQueueDrops uint64        // writes dropped because the queue was full
	ReplStale      uint64        // writes the member refused as older than its view (sent again refreshed)
}

// PeerStats returns the counters of every other member of the current
// view, in member order. Safe for concurrent use.
func (r *Router) PeerStats() []PeerStats {
	ps := r.peers.Load()
	if ps.view == nil {
		return nil
	}
	var rs map[string]repl.PeerStats
	if r.repl != nil {
		rs = make(map[string]repl.PeerStats)
		for _, s := range r.repl.Stats() {
			rs[s.Peer] = s
		}
	}
	var out []PeerStats
	for _, mem := range ps.view.Members {
		m := ps.get(mem.Name)
		if m == nil {
			continue
		}
		s := rs[m.name]
		out = append(out, PeerStats{
			Peer: m.name, Forwarded: m.forwarded.Load(), Failures: m.failures.Load(), Down: m.downUntil.Load() != 0,
			ReplLag: s.Lag, ReplLagSeq: s.LagSeq, ReplQueueBytes: s.Bytes, ReplQueueDrops: s.Dropped, ReplStale: s.Stale,
		})
	}
	return out
}

// FlushAll flushes this node's store and, over each member's peer port
// (which flushes its own store only), every other member's, as a client of
// a cluster expects flush_all to empty the cache it sees. A member that
// does not answer within the peer timeout is logged and left out. The
// fan-out outlives the client's connection (it is bounded by the peer
// timeout): a flush_all half applied would leave the cache half flushed.
func (r *Router) FlushAll(ctx context.Context, delay int64) {
	ctx = context.WithoutCancel(ctx)
	r.st.FlushAll(delay)
	ps := r.peers.Load()
	var wg sync.WaitGroup
	for _, m := range ps.byName {
		if !usable(m) {
			continue
		}
		wg.Go(func() {
			if err := m.client.FlushAll(ctx, delay); err != nil {
				r.log.Warn("flush_all not applied on a member", "peer", m.name, "err", err)
			}
		})
	}
	wg.Wait()
}
