package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/ring"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("cluster: invalid config")

// Config wires one node into a cluster.
type Config struct {
	// Etcd is the membership registration; Etcd.Self.Name is this node.
	Etcd etcdsync.Config
	// Gossip is the failure detector; its Node must equal Etcd.Self.Name
	// and its Instance Etcd.Self.Instance (filled in when empty).
	Gossip gossip.Config
	// Logger receives view changes; nil discards.
	Logger *slog.Logger
}

// Validate checks the parts that must agree with each other.
func (c Config) Validate() error {
	if c.Etcd.Self.Name == "" {
		return fmt.Errorf("%w: no node name", ErrConfig)
	}
	if c.Gossip.Node != "" && c.Gossip.Node != c.Etcd.Self.Name {
		return fmt.Errorf("%w: gossip node %q is not etcd node %q", ErrConfig, c.Gossip.Node, c.Etcd.Self.Name)
	}
	return nil
}

// View is the cluster as this node sees it at one etcd revision. It is
// immutable.
type View struct {
	Epoch    int64             // etcd revision of the membership
	Members  []etcdsync.Member // sorted by name
	Settings etcdsync.Settings
	Ring     *ring.Ring
}

// Member returns the member named name.
func (v *View) Member(name string) (etcdsync.Member, bool) {
	for _, m := range v.Members {
		if m.Name == name {
			return m, true
		}
	}
	return etcdsync.Member{}, false
}

// Node is this process's membership in the cluster.
type Node struct {
	cfg    Config
	log    *slog.Logger
	gossip *gossip.Gossip
	// sync is created by Run once gossip has bound its port, so the
	// record in etcd carries the real gossip address.
	sync atomic.Pointer[etcdsync.Sync]

	view    atomic.Pointer[View]
	changed chan struct{}
}

// New prepares a node; it starts nothing.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Gossip.Node = cfg.Etcd.Self.Name
	if cfg.Gossip.Instance == "" {
		cfg.Gossip.Instance = cfg.Etcd.Self.Instance
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Etcd.Logger == nil {
		cfg.Etcd.Logger = cfg.Logger
	}
	if cfg.Gossip.Logger == nil {
		cfg.Gossip.Logger = cfg.Logger
	}
	if err := cfg.Etcd.Validate(); err != nil {
		return nil, err
	}
	g, err := gossip.New(cfg.Gossip)
	if err != nil {
		return nil, err
	}
	return &Node{cfg: cfg, log: cfg.Logger, gossip: g, changed: make(chan struct{}, 1)}, nil
}

// Run joins the cluster and keeps the view current until ctx ends; then it
// leaves gossip and deregisters from etcd, and returns after every
// goroutine it started has exited.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- n.gossip.Run(ctx) })
	var err error
	select {
	case <-n.gossip.Bound():
	case err = <-errs:
		cancel()
		wg.Wait()
		return err
	}
	ecfg := n.cfg.Etcd
	ecfg.Self.GossipAddr = n.gossip.LocalAddr()
	s, err := etcdsync.New(ecfg)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	n.sync.Store(s)
	wg.Go(func() { errs <- s.Run(ctx) })
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errs:
			// A part stopped on its own: stop the other one too.
			break loop
		case <-s.Changed():
			n.rebuild(s)
		case <-n.gossip.Changed():
			n.notify()
		}
	}
	cancel()
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// rebuild turns the latest etcd snapshot into a new View and tells gossip
// whom to keep joined.
func (n *Node) rebuild(s *etcdsync.Sync) {
	snap, ok := s.Current()
	if !ok {
		return
	}
	if old := n.view.Load(); old != nil && old.Epoch == snap.Revision {
		return
	}
	names := make([]string, len(snap.Members))
	peers := make(map[string]string, len(snap.Members))
	for i, m := range snap.Members {
		names[i] = m.Name
		peers[m.Name] = m.GossipAddr
	}
	r, err := ring.New(ring.Config{
		Shards:   snap.Settings.Shards,
		VNodes:   snap.Settings.VNodes,
		Replicas: snap.Settings.Replicas,
	}, names, snap.Revision)
	if err != nil {
		n.log.Error("cannot build ring", "epoch", snap.Revision, "err", err)
		return
	}
	n.gossip.SetPeers(peers)
	n.view.Store(&View{Epoch: snap.Revision, Members: snap.Members, Settings: snap.Settings, Ring: r})
	n.log.Info("cluster view", "epoch", snap.Revision, "members", len(names))
	n.notify()
}

func (n *Node) notify() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// View returns the current view, or nil before the first one.
func (n *Node) View() *View { return n.view.Load() }

// Changed receives after the view or a member's health changed (coalesced).
func (n *Node) Changed() <-chan struct{} { return n.changed }

// Health is the member's state as gossip last saw it.
func (n *Node) Health(name string) gossip.State { return n.gossip.Health(name) }

// Fenced reports whether this node has no live registration in etcd and so
// must not act as a primary.
func (n *Node) Fenced() bool {
	s := n.sync.Load()
	return s == nil || s.Fenced()
}

// Lapses counts the times this node registered again after etcd had
// deleted its record while other members stayed (etcdsync.Sync.Lapse).
func (n *Node) Lapses() uint64 {
	if s := n.sync.Load(); s != nil {
		return s.Lapses()
	}
	return 0
}

// Lapse describes the latest lapse of this node's registration.
func (n *Node) Lapse() etcdsync.Lapse {
	if s := n.sync.Load(); s != nil {
		return s.Lapse()
	}
	return etcdsync.Lapse{}
}

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.Etcd.Self.Name }
