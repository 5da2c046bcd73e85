package etcdsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Snapshot is the cluster's membership as etcd holds it.
type Snapshot struct {
	Members  []Member // sorted by Name
	Settings Settings
	// Revision is the etcd revision of this view, the ring's epoch: it
	// increases with every membership change, and nodes holding the same
	// view converge on the same Revision.
	Revision int64
}

func (a Snapshot) equal(b Snapshot) bool {
	return a.Revision == b.Revision && a.Settings == b.Settings && slices.Equal(a.Members, b.Members)
}

// Sync registers this node in etcd and follows the cluster's membership.
// Its methods are safe for concurrent use; Run may be called once.
type Sync struct {
	cfg        Config
	log        *slog.Logger
	keys       keys
	selfValue  string // Self encoded: the exact bytes of our record
	fenceAfter time.Duration
	start      time.Time // origin of the monotonic nanosecond clock below

	// validUntil is the monotonic time (nanoseconds since start) until
	// which this node's registration is trusted; 0 means not registered.
	// The registrar sets it; keepalive acknowledgements push it forward.
	validUntil atomic.Int64
	superseded atomic.Bool
	leaseID    atomic.Int64 // current lease, 0 if none
	putRev     atomic.Int64 // revision of the registrar's last write of our record
	running    atomic.Bool
	lapses     atomic.Uint64 // see Lapse
	// goodRev is the revision of the latest view the watcher published
	// while this node was unfenced: members created by then and still
	// there after a lapse stayed through it. Written by the watcher only.
	goodRev atomic.Int64

	// firstRev is the revision of this process's first registration:
	// a later creation of its record ends a lapse.
	firstRev atomic.Int64

	// Rejections (reject.go): counters, and the watcher's memory of what
	// it refused, so each refusal is logged once. badConfig and
	// badMembers are written by seed, then by the watcher only.
	rejectedConfig, rejectedMembers atomic.Uint64
	refusingConfig                  atomic.Bool
	ignoredMembers                  atomic.Int64
	badConfig                       uint64 // hash of the settings value refused last; 0: none
	badMembers                      map[string]struct{}

	// fencedAck is the s.now() of the last keepalive answer of the lease
	// this node was last fenced from while registered (see Lapse.Since);
	// 0: never. Written by the registrar only.
	fencedAck atomic.Int64

	lapseMu    sync.Mutex // guards the fields below
	stayed     []string
	lapseRev   int64     // revision of the record that ended the latest lapse
	lapseSince time.Time // Lapse.Since of the latest lapse

	changed chan struct{} // buffer 1: Current has news
	touch   chan struct{} // buffer 1: watcher or keepalive ask the registrar to rewrite (verify) our record

	// skipRevoke, set by tests only, makes Run exit without revoking its
	// lease, as a crashed process would.
	skipRevoke bool

	mu      sync.Mutex // guards snap and hasSnap
	snap    Snapshot
	hasSnap bool
}

// New validates cfg and returns a Sync. It does no I/O.
func New(cfg Config) (*Sync, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sync{
		cfg:        cfg,
		log:        cfg.Logger.With("member", cfg.Self.Name),
		keys:       newKeys(cfg.Prefix, cfg.Self.Name),
		selfValue:  encodeMember(cfg.Self),
		fenceAfter: time.Duration(cfg.ttlSeconds()) * time.Second * 3 / 4,
		start:      time.Now(),
		changed:    make(chan struct{}, 1),
		touch:      make(chan struct{}, 1),
		badMembers: make(map[string]struct{}),
	}
	return s, nil
}

// Current returns the latest view; false before the first list succeeded.
// The returned Members slice must not be modified.
func (s *Sync) Current() (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.hasSnap
}

// Changed returns a channel that receives after Current has changed. It
// coalesces: one receive may stand for several changes, so read Current
// after each receive.
func (s *Sync) Changed() <-chan struct{} { return s.changed }

// Fenced reports whether this node must not act as a primary: it is true
// before the first registration, while keepalives go unacknowledged for
// three quarters of the lease TTL, after the lease or the record is lost
// until re-registered, after Run returned, and for good once superseded.
func (s *Sync) Fenced() bool {
	if s.superseded.Load() {
		return true
	}
	v := s.validUntil.Load()
	return v == 0 || s.now() >= v
}

// now is a monotonic clock in nanoseconds since New.
func (s *Sync) now() int64 { return int64(time.Since(s.start)) }

// Run connects to etcd, seeds or adopts the settings, registers this node
// and follows the membership until ctx ends; then it revokes the lease
// (graceful deregistration), closes the client and returns nil. It returns
// ErrSuperseded when another process took this node's name. Settings in
// etcd that it refuses are not an error: it keeps its own (Rejections).
// An unreachable etcd is not an error: Run keeps retrying, fenced, until
// etcd answers or ctx ends.
func (s *Sync) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("etcdsync: Run called twice")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.cfg.Endpoints,
		DialTimeout: s.cfg.DialTimeout,
		Logger:      zapNop(),
		TLS:         s.cfg.TLS,
		Username:    s.cfg.Username,
		Password:    s.cfg.Password,
		// A connection whose packets vanish (a partition: no reset)
		// would otherwise wait out TCP's retransmission backoff, several
		// seconds after the network heals; with pings it is closed
		// and redialled (grpc's floor for the ping interval is 10 s,
		// over etcd's default minimum of 5 s).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// grpc's default reconnect backoff grows to two minutes; a node
		// should find etcd again within seconds of its return.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: s.cfg.DialTimeout,
		})},
	})
	if err != nil {
		return fmt.Errorf("etcdsync: client: %w", err)
	}
	defer cli.Close()

	settings, err := s.seed(ctx, cli)
	if err != nil || ctx.Err() != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.register(ctx, cli); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() { s.watch(ctx, cli, settings) })
	<-ctx.Done()
	wg.Wait()
	s.validUntil.Store(0)

	if id := clientv3.LeaseID(s.leaseID.Load()); id != 0 && !s.skipRevoke {
		rctx, rcancel := context.WithTimeout(context.Background(), min(s.cfg.DialTimeout, 2*time.Second))
		if _, err := cli.Revoke(rctx, id); err != nil {
			s.log.Warn("etcdsync: revoke lease on shutdown", "err", err)
		} else {
			s.log.Info("etcdsync: deregistered")
		}
		rcancel()
	}
	if err := context.Cause(ctx); errors.Is(err, ErrSuperseded) {
		return err
	}
	return nil
}

// seed creates /<prefix>/config from cfg.Settings if absent, or adopts
// what is there unless it is refused: then it keeps cfg.Settings, which
// passed the same checks. It retries until etcd answers or ctx ends.
func (s *Sync) seed(ctx context.Context, cli *clientv3.Client) (Settings, error) {
	key := s.keys.config
	want := encodeSettings(s.cfg.Settings)
	var bo retry
	for {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		resp, err := cli.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, want)).
			Else(clientv3.OpGet(key)).
			Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			s.log.Info("etcdsync: seeded settings", "settings", s.cfg.Settings)
			return s.cfg.Settings, nil
		case err == nil:
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 0 { // deleted between compare and read: try again
				continue
			}
			kept := s.cfg.Settings
			st, err := decodeSettings(kvs[0].Value, s.cfg.CheckSettings)
			if err == nil && kvs[0].Version > 1 {
				var created int
				created, err = s.createdShards(ctx, cli, kvs[0])
				if created != 0 && kept.Shards != created {
					if k := (Settings{Replicas: kept.Replicas, Shards: created, VNodes: kept.VNodes}); k.Validate() == nil {
						kept = k
					}
				}
				if errors.Is(err, errUnavailable) {
					s.log.Log(ctx, bo.level(), "etcdsync: settings: etcd unavailable, retrying", "err", err)
					if !bo.wait(ctx) {
						return Settings{}, nil
					}
					continue
				}
			}
			if err != nil {
				s.refuseConfig(kvs[0].Value, err, kept)
				return kept, nil
			}
			if st != s.cfg.Settings {
				s.log.Info("etcdsync: adopted cluster settings", "settings", st, "configured", s.cfg.Settings)
			}
			return st, nil
		}
		s.log.Log(ctx, bo.level(), "etcdsync: settings: etcd unavailable, retrying", "err", err)
		if !bo.wait(ctx) {
			return Settings{}, nil
		}
	}
}

// errUnavailable: etcd did not answer a read that seed needs.
var errUnavailable = errors.New("etcdsync: etcd unavailable")

// createdShards reads the shard count the cluster was created with, the
// settings record at its create revision, when kv (the record now) was
// rewritten since: a node joining must not adopt a shard count that the
// running nodes refused (applyConfig). It returns that count and an error
// when the record now changes it. When etcd has compacted that revision
// away, the creation cannot be checked: it returns 0, nil and the record
// now is adopted.
func (s *Sync) createdShards(ctx context.Context, cli *clientv3.Client, kv *mvccpb.KeyValue) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, string(kv.Key), clientv3.WithRev(kv.CreateRevision))
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		s.log.Warn("etcdsync: the cluster settings were rewritten and their creation compacted away: their shard count cannot be checked",
			"key", string(kv.Key), "create_rev", kv.CreateRevision)
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("%w: %w", errUnavailable, err)
	case len(resp.Kvs) == 0:
		return 0, nil
	}
	created, err := decodeSettings(resp.Kvs[0].Value, nil)
	if err != nil {
		return 0, nil // created unreadable: nothing to hold the record now to
	}
	st, _ := decodeSettings(kv.Value, nil)
	if st.Shards != created.Shards {
		return created.Shards, fmt.Errorf("shard count %d is not the cluster's %d, fixed when it was created (revision %d)",
			st.Shards, created.Shards, kv.CreateRevision)
	}
	return created.Shards, nil
}

// publish stores snap as the current view and notifies Changed if it
// differs from the previous one.
func (s *Sync) publish(snap Snapshot) {
	if !s.Fenced() {
		s.goodRev.Store(max(s.goodRev.Load(), snap.Revision))
	}
	s.mu.Lock()
	same := s.hasSnap && s.snap.equal(snap)
	if !same {
		s.snap, s.hasSnap = snap, true
	}
	s.mu.Unlock()
	if same {
		return
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// requestTouch asks the registrar to rewrite (and so verify) our record.
func (s *Sync) requestTouch() {
	select {
	case s.touch <- struct{}{}:
	default:
	}
}

// retry is a jittered exponential backoff, 100 ms to 2 s.
type retry struct{ next time.Duration }

// wait sleeps for the next delay; false if ctx ended first.
func (r *retry) wait(ctx context.Context) bool {
	t := time.NewTimer(r.delay())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *retry) delay() time.Duration {
	if r.next == 0 {
		r.next = 100 * time.Millisecond
	}
	d := r.next/2 + rand.N(r.next/2+1)
	r.next = min(2*r.next, 2*time.Second)
	return d
}

func (r *retry) reset() { r.next = 0 }

// level is Warn for the first failure of a streak, Debug for the rest, so
// that an etcd outage logs once rather than every two seconds.
func (r *retry) level() slog.Level {
	if r.next == 0 {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
