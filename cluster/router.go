package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"shoal/gossip"
	"shoal/peer"
	"shoal/store"
)

// ErrUnavailable: every owner of the key is dead or unreachable. A write
// fails with it (the client sees SERVER_ERROR); a read is a miss instead.
var ErrUnavailable = errors.New("cluster: no owner reachable")

// ErrPaused: a peer's request read before this process was paused; its
// sender has given up on it (see pause.go).
var ErrPaused = errors.New("cluster: request predates a pause")

// Membership is what a Router needs from the cluster: the current view,
// gossip's verdict on a member and this node's name. Every method is called
// concurrently from request goroutines. *Node implements it.
type Membership interface {
	View() *View
	Health(name string) gossip.State
	Name() string
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
	// DownFor is how long a member stays skipped after a refused connect,
	// a timeout or a lost connection. Zero means 1 s.
	DownFor time.Duration
	// Logger receives peer state changes; nil discards.
	Logger *slog.Logger
	// Replicator, when not nil, receives the result of every write this
	// node applies as the key's serving owner, to push to the other owners.
	Replicator Replicator
	// PauseAfter is the gap in Run's ticks after which this node counts
	// itself as having been paused (pause.go). Zero means 1 s: the peer
	// request timeout, after which the others fail over.
	PauseAfter time.Duration
	// OnPause, when not nil, is called when a pause is noticed, before any
	// request runs: main closes the peer connections there (their buffered
	// requests were given up by their senders) and empties the
	// replication queue (it predates what the others took meanwhile).
	OnPause func()
}

// Validate reports a config the router cannot use.
func (c RouterConfig) Validate() error {
	switch {
	case c.Members == nil:
		return fmt.Errorf("%w: router without membership", ErrConfig)
	case c.Store == nil:
		return fmt.Errorf("%w: router without store", ErrConfig)
	case c.DownFor < 0 || c.PauseAfter < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	return nil
}

// Router serves a key from the first reachable owner in the ring: this
// node's store when that owner is this node, else the owner over a pooled
// peer connection, failing over to the next owner at once when a peer is
// down, times out or drops the connection. It implements server.Cache,
// and server.AsyncCache for event loops (async.go).
//
// A forwarded request arrives at the owner's connection server and is
// routed again there; within one view this only ever moves towards owners
// earlier in the list (a node never skips itself), so it ends. During a
// view change two nodes may briefly disagree; the peer request timeout
// bounds such a detour.
type Router struct {
	cfg   RouterConfig
	self  string
	st    *store.Store
	log   *slog.Logger
	peers atomic.Pointer[peerSet] // replaced whole on a new view

	// mu serializes rebuilding peers, view transitions and Close.
	mu     sync.Mutex
	closed bool
	view   *View // the last view transition saw
	// running: Run has started; warm-up needs its worker, so without it
	// (tests of routing alone) shards never warm.
	running bool

	w       warm
	seq     atomic.Pointer[[]atomic.Uint64] // per shard: writes replicated from here
	born    time.Time                       // for mono
	tick    atomic.Int64                    // mono of Run's last tick
	pauseMu sync.Mutex
	bg      sync.WaitGroup // Router.probe goroutines and GetAsync's (SetAsync's) fallbacks
	// bgMu orders starting a goroutine of bg against Close's wait for them.
	bgMu     sync.Mutex
	bgClosed bool

	asyncGets   sync.Pool // *asyncGet
	asyncWrites sync.Pool // *asyncWrite

	pauses, staleEpochs, replicated atomic.Uint64
}

// peerSet is the clients for the members of one view; immutable. A view
// is compared by identity, not epoch: within one epoch a member gossip
// sees for the first time joins the ring (Node.placed).
type peerSet struct {
	view   *View
	closed bool // made by Close: every peer is gone
	byName map[string]*member
}

// member is one other node: its client and its counters. Counters survive
// view changes for as long as the member keeps its peer address.
type member struct {
	name, addr string
	client     *peer.Client
	downUntil  atomic.Int64 // unix nanoseconds; 0: not marked down
	probing    atomic.Bool  // a probe runs (see Router.down)
	forwarded  atomic.Uint64
	failures   atomic.Uint64
	// queued: GetAsync queued a request since the last Flush.
	queued atomic.Bool
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
	r := &Router{cfg: cfg, self: cfg.Members.Name(), st: cfg.Store, log: cfg.Logger, born: time.Now()}
	r.w.wake = make(chan struct{}, 1)
	return r, nil
}

// Run keeps the router current until ctx ends: it ticks for pause
// detection, takes each new view (starting warm-up of shards this node
// takes over) and pulls warming shards. It returns when every goroutine it
// started has stopped.
func (r *Router) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.runWarm(ctx) })
	r.mu.Lock()
	r.running = true
	r.transition(nil, r.view) // what this node owns already
	r.mu.Unlock()
	t := time.NewTicker(tickEvery)
	defer func() { t.Stop(); wg.Wait() }()
	r.tick.Store(r.mono())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if r.awake() {
			r.tick.Store(r.mono())
		}
		if v := r.cfg.Members.View(); v != nil {
			r.peerSet(v)
		}
	}
}

// Close closes every peer client. Requests after it are served locally or
// fail over as if every peer were down. Close is idempotent.
func (r *Router) Close() error {
	r.mu.Lock()
	r.closed = true
	old := r.peers.Swap(&peerSet{closed: true})
	r.mu.Unlock()
	if old != nil {
		for _, m := range old.byName {
			m.client.Close()
		}
	}
	r.bgMu.Lock()
	r.bgClosed = true
	r.bgMu.Unlock()
	r.bg.Wait()
	return nil
}

// peerSet returns the clients for view v, building them on the first
// request that sees a new view and closing those of departed members.
func (r *Router) peerSet(v *View) *peerSet {
	if ps := r.peers.Load(); ps != nil && (ps.view == v || ps.closed) {
		return ps
	}
	r.mu.Lock()
	old := r.peers.Load()
	// A request that read v before the current view was stored must not
	// take the router back to it.
	if old != nil && (old.view == v || old.closed || r.closed || v != r.cfg.Members.View()) {
		r.mu.Unlock()
		return old
	}
	r.transition(r.view, v)
	r.view = v
	ps := &peerSet{view: v, byName: make(map[string]*member, len(v.Members))}
	for _, m := range v.Members {
		if m.Name == r.self || m.PeerAddr == "" {
			continue
		}
		if o := old.get(m.Name); o != nil && o.addr == m.PeerAddr {
			ps.byName[m.Name] = o
			continue
		}
		pc := r.cfg.Peer
		pc.Addr = m.PeerAddr
		c, err := peer.New(pc)
		if err != nil {
			r.log.Error("cannot create peer client", "peer", m.Name, "addr", m.PeerAddr, "err", err)
			continue
		}
		ps.byName[m.Name] = &member{name: m.Name, addr: m.PeerAddr, client: c}
	}
	r.peers.Store(ps)
	r.mu.Unlock()
	if old != nil {
		for name, o := range old.byName {
			if ps.byName[name] != o {
				o.client.Close() // its in-flight requests fail over
			}
		}
	}
	return ps
}

func (ps *peerSet) get(name string) *member {
	if ps == nil {
		return nil
	}
	return ps.byName[name]
}

// down reports whether m is marked down. Once the mark is DownFor old, m
// stays down until a probe (one at a time, in the background) gets an
// answer from it, so a host that stopped answering costs one request
// timeout, not one every DownFor. The clock is read only while a mark
// exists, so the healthy path costs no syscall.
func (r *Router) down(m *member) bool {
	until := m.downUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() >= until && m.probing.CompareAndSwap(false, true) {
		if !r.spawn(func() { r.probe(m) }) {
			m.probing.Store(false)
		}
	}
	return true
}

// probeKey is read (this node's copy only) to learn whether a member
// answers again.
var probeKey = []byte("shoal:probe")

// probe asks m for probeKey: any answer ends m's down mark; no answer
// renews it for DownFor.
func (r *Router) probe(m *member) {
	defer m.probing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DownFor)
	defer cancel()
	_, _, err := m.client.Get(ctx, probeKey, peer.GetOptions{LocalOnly: true, NoBump: true})
	if err != nil && failover(err) {
		m.downUntil.Store(time.Now().Add(r.cfg.DownFor).UnixNano())
		return
	}
	m.downUntil.Store(0)
	r.log.Info("peer answers again", "peer", m.name)
}

// failover reports whether err means the owner did not answer, so the
// next owner should be tried; a reply error is the owner's answer.
func failover(err error) bool {
	return errors.Is(err, peer.ErrDown) || errors.Is(err, peer.ErrTimeout) ||
		errors.Is(err, peer.ErrConnLost) || errors.Is(err, peer.ErrClosed) ||
		errors.Is(err, peer.ErrProtocol)
}

// walk finds the owner that serves key: local runs when it is this node
// (or there is no view yet); otherwise remote runs with the member, and an
// error from it that means "no answer" marks the member down and moves on
// to the next owner. walk returns ErrUnavailable when no owner is left,
// or remote's error when the owner answered with one. A client's request
// runs even when it is the one that finds the process was paused (it
// runs after the recovery): the client is still waiting for its answer.
func (r *Router) walk(key []byte, local func(*View), remote func(*member) error) error {
	r.awake()
	v := r.cfg.Members.View()
	if v == nil || v.Ring == nil {
		local(v)
		return nil
	}
	owners := v.Ring.Owners(v.Ring.Shard(key))
	if len(owners) == 0 {
		local(v)
		return nil
	}
	ps := r.peerSet(v)
	for _, name := range owners {
		if name == r.self {
			local(v)
			return nil
		}
		m := ps.get(name)
		if !r.usable(name, m) {
			continue
		}
		m.forwarded.Add(1)
		err := remote(m)
		if err == nil {
			return nil
		}
		if !r.failed(m, err) {
			return err
		}
	}
	return ErrUnavailable
}

// usable reports whether a request may go to member m, named name.
func (r *Router) usable(name string, m *member) bool {
	return m != nil && !r.down(m) && r.cfg.Members.Health(name) != gossip.Dead
}

// failed counts a failed request to m and reports whether err means m did
// not answer, in which case m is marked down and the next owner is tried.
func (r *Router) failed(m *member, err error) bool {
	m.failures.Add(1)
	if !failover(err) {
		return false
	}
	if m.downUntil.Swap(time.Now().Add(r.cfg.DownFor).UnixNano()) == 0 {
		r.log.Warn("peer marked down", "peer", m.name, "err", err)
	}
	return true
}

// wrote is called after a local write of key: when it changed the item
// and this node serves key, its result goes to the other owners.
func (r *Router) wrote(key []byte, changed bool) {
	if !changed || r.cfg.Replicator == nil {
		return
	}
	v := r.cfg.Members.View()
	if targets, ok := r.targets(v, key); ok {
		r.replicate(v, key, targets)
	}
}

// PeerCounters is what a Router counts per member, for metrics.
type PeerCounters struct {
	Peer      string
	Forwarded uint64 // requests sent to the member
	Failures  uint64 // of those, the ones that failed
	Down      bool   // skipped now after a failure
}

// PeerStats returns the counters of every other member of the current
// view, in member order. Safe for concurrent use.
func (r *Router) PeerStats() []PeerCounters {
	v := r.cfg.Members.View()
	if v == nil {
		return nil
	}
	ps := r.peerSet(v)
	var out []PeerCounters
	for _, mem := range v.Members {
		m := ps.get(mem.Name)
		if m == nil {
			continue
		}
		out = append(out, PeerCounters{
			Peer: m.name, Forwarded: m.forwarded.Load(), Failures: m.failures.Load(), Down: m.downUntil.Load() != 0,
		})
	}
	return out
}

// Local operations: this node's store, whatever the ring says.

// Now is the store's coarse clock.
func (r *Router) Now() int64 { return r.st.Now() }

// Fits asks the local store; every node runs with the same item size limit.
func (r *Router) Fits(keyLen, valueLen int) bool { return r.st.Fits(keyLen, valueLen) }

// FlushAll flushes this node's store and, over each member's peer port
// (which flushes its own store only), every other member's, as a client of
// a cluster expects flush_all to empty the cache it sees. A member that
// does not answer within the peer timeout is logged and left out.
func (r *Router) FlushAll(delay int64) {
	r.st.FlushAll(delay)
	v := r.cfg.Members.View()
	if v == nil {
		return
	}
	ps := r.peerSet(v)
	var wg sync.WaitGroup
	for name, m := range ps.byName {
		if !r.usable(name, m) {
			continue
		}
		wg.Go(func() {
			if err := m.client.FlushAll(context.Background(), delay); err != nil {
				r.log.Warn("flush_all not applied on a member", "peer", m.name, "err", err)
			}
		})
	}
	wg.Wait()
}

// SetMemoryLimit sets this node's store limit.
func (r *Router) SetMemoryLimit(bytes int64) error { return r.st.SetMemoryLimit(bytes) }

// Stats are this node's store counters.
func (r *Router) Stats() store.Stats { return r.st.Stats() }

// ResetStats resets this node's store counters.
func (r *Router) ResetStats() { r.st.ResetStats() }
