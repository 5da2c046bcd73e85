package membership

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
var ErrConfig = errors.New("membership: invalid config")

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
	Epoch int64 // etcd revision of the membership
	// Members are the members in the ring, sorted by name: those etcd
	// lists that gossip has seen alive at least once, and this node.
	Members []etcdsync.Member
	// Unseen are the members etcd lists that gossip has never seen
	// alive, sorted by name: not in the ring until it does (see placed).
	// Two views of one epoch differ only here and in what follows from it.
	Unseen   []etcdsync.Member
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

	// Written by Run's goroutine only.
	synced     bool                // gossip.Synced is closed
	peersEpoch int64               // epoch of the last SetPeers
	noted      map[string]struct{} // unseen members logged already
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
	if cfg.Etcd.CheckSettings == nil {
		cfg.Etcd.CheckSettings = checkSettings
	}
	if err := cfg.Etcd.Validate(); err != nil {
		return nil, err
	}
	g, err := gossip.New(cfg.Gossip)
	if err != nil {
		return nil, err
	}
	return &Node{cfg: cfg, log: cfg.Logger, gossip: g, changed: make(chan struct{}, 1), noted: make(map[string]struct{})}, nil
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
	synced := n.gossip.Synced()
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
		case <-synced:
			synced, n.synced = nil, true
			n.rebuild(s)
		case <-n.gossip.Changed():
			n.rebuild(s) // a member may be seen for the first time
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
// whom to keep joined. The ring holds the members gossip has seen (placed);
// so a view changes with the etcd revision, or within one revision when
// gossip sees an unseen member for the first time.
func (n *Node) rebuild(s *etcdsync.Sync) {
	snap, ok := s.Current()
	if !ok {
		return
	}
	old := n.view.Load()
	if old != nil && old.Epoch == snap.Revision && len(old.Unseen) == 0 {
		return
	}
	if n.peersEpoch != snap.Revision {
		peers := make(map[string]string, len(snap.Members))
		for _, m := range snap.Members {
			peers[m.Name] = m.GossipAddr
		}
		n.gossip.SetPeers(peers)
		n.peersEpoch = snap.Revision
	}
	members, unseen := n.placed(snap.Members)
	if old != nil && old.Epoch == snap.Revision && len(unseen) == len(old.Unseen) {
		return // Seen never turns false: the same members are placed
	}
	if old == nil && len(unseen) > 0 && !n.synced {
		// Until gossip has joined the cluster once, every member but this
		// one looks unseen: a first view without them would claim (and
		// serve, cold) every shard.
		return
	}
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	r, err := ring.New(ringConfig(snap.Settings), names, snap.Revision)
	if err != nil {
		n.log.Error("cannot build ring", "epoch", snap.Revision, "err", err)
		return
	}
	n.noteUnseen(unseen)
	n.view.Store(&View{Epoch: snap.Revision, Members: members, Unseen: unseen, Settings: snap.Settings, Ring: r})
	n.log.Info("cluster view", "epoch", snap.Revision, "members", len(names), "unseen", len(unseen))
	n.notify()
}

// placed splits the members etcd lists into those that go in the ring and
// those gossip has never seen alive. A record in etcd is a claim; a
// process answering gossip backs it. A node that registered but never
// gossiped (a bogus or stale record, or a node whose gossip port nobody
// reaches) would otherwise own its share of shards that nobody serves:
// each of its keys would fail over, and with enough such records every
// owner of a key would be one. A member that was seen once stays placed
// even when gossip calls it dead (design: gossip only advises), so a
// restart or a crash does not move shards; only etcd removes it. This
// node is always placed. Nodes disagree on the ring only while gossip
// spreads a new member, typically well under a second.
func (n *Node) placed(all []etcdsync.Member) (members, unseen []etcdsync.Member) {
	self := n.Name()
	for _, m := range all {
		if m.Name == self || n.gossip.Seen(m.Name) {
			members = append(members, m)
		} else {
			unseen = append(unseen, m)
		}
	}
	return members, unseen
}

// noteUnseen logs each member once when it is first left out of the ring.
func (n *Node) noteUnseen(unseen []etcdsync.Member) {
	now := make(map[string]struct{}, len(unseen))
	for _, m := range unseen {
		now[m.Name] = struct{}{}
		if _, ok := n.noted[m.Name]; !ok {
			n.log.Warn("member listed in etcd but never seen by gossip: not in the ring until it is",
				"member", m.Name, "gossip_addr", m.GossipAddr)
		}
	}
	n.noted = now
}

// ringConfig is the ring's shape for the cluster settings.
func ringConfig(st etcdsync.Settings) ring.Config {
	return ring.Config{Shards: st.Shards, VNodes: st.VNodes, Replicas: st.Replicas}
}

// checkSettings refuses settings the ring cannot be built with, so that
// etcdsync never adopts them (etcdsync.Config.CheckSettings).
func checkSettings(st etcdsync.Settings) error { return ringConfig(st).Validate() }

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

// Rejections counts what this node refused to take from etcd
// (etcdsync.Sync.Rejections).
func (n *Node) Rejections() etcdsync.Rejections {
	if s := n.sync.Load(); s != nil {
		return s.Rejections()
	}
	return etcdsync.Rejections{}
}

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.Etcd.Self.Name }
