package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrRunning is returned by a second call to Run: a memberlist name cannot
// rejoin after it left, so a Gossip runs once; make a new one (with a new
// Instance) to run again.
var ErrRunning = errors.New("gossip: Run called more than once")

// Gossip watches peers' health with memberlist. Its methods are safe for
// concurrent use; Run is called once.
type Gossip struct {
	cfg      Config
	name     string // memberlist name: Node + "/" + Instance
	interval time.Duration
	log      *slog.Logger
	changed  chan struct{} // buffer 1: coalesced health changes
	kick     chan struct{} // buffer 1: probeNow asks for a reconcile round now
	qready   chan struct{} // buffer 1: events are queued
	bound    chan struct{} // closed once LocalAddr is known
	synced   chan struct{} // closed by the event loop: see Synced
	started  atomic.Bool

	// listed: SetPeers was called; syncing: the marker that closes synced
	// was enqueued.
	listed, syncing atomic.Bool

	// joinFailures counts reconcile rounds in which some Join failed.
	joinFailures atomic.Int64
	// mismatched: peers already reported as speaking with another key or
	// label, by node and reason.
	mismatched onceSet

	// Test hooks, set before Run.
	noLeave       atomic.Bool // skip Leave on shutdown, as a crash would
	wrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport

	// qmu guards queue, which memberlist callbacks append to.
	qmu   sync.Mutex
	queue []event

	// mu guards the fields below.
	mu        sync.Mutex
	peers     map[string]string               // node -> normalized gossip address, from SetPeers
	nodes     map[string]map[string]*instance // node -> instance id -> state
	reported  map[string]State                // last published health of listed nodes
	seq       uint64                          // join counter ordering incarnations
	localAddr string
	graceEnd  time.Time // earliest deadGrace running; zero if none

	now func() time.Time // the clock; tests replace it
}

// New checks cfg and returns a Gossip; it does no I/O and starts nothing.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	interval := cfg.ReconcileInterval
	if interval == 0 {
		interval = defaultReconcileInterval
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Gossip{
		cfg:      cfg,
		name:     cfg.Node + "/" + cfg.Instance,
		interval: interval,
		log:      l.With("node", cfg.Node, "instance", cfg.Instance),
		changed:  make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		qready:   make(chan struct{}, 1),
		bound:    make(chan struct{}),
		synced:   make(chan struct{}),
		peers:    make(map[string]string),
		nodes:    make(map[string]map[string]*instance),
		reported: make(map[string]State),
		now:      time.Now,
	}, nil
}

// Run binds, joins memberlist and keeps health up to date until ctx is
// done; then it leaves (waiting at most a second for the broadcast, then
// pushing its state to each member, at most memberlist's 1 s TCP timeout
// each, in parallel: announceLeft), shuts memberlist down and returns nil after its goroutines have exited. It
// returns an error if memberlist cannot start, and ErrRunning if called
// again. Joins in flight (each at most memberlist's 1 s TCP timeout; no
// new one starts once ctx ends) delay the return.
func (g *Gossip) Run(ctx context.Context) error {
	if !g.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	ml, err := g.create()
	if err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.eventLoop(loopCtx) })
	wg.Go(func() { g.reconcileLoop(loopCtx, ml) })
	<-ctx.Done()
	cancel()
	wg.Wait()

	if !g.noLeave.Load() {
		if err := ml.Leave(leaveTimeout); err != nil {
			g.log.Warn("gossip: leave", "err", err)
		}
		g.announceLeft(ml)
	}
	if err := ml.Shutdown(); err != nil {
		g.log.Warn("gossip: shutdown", "err", err)
	}
	return nil
}

// announceLeft pushes this node's state, Left since Leave, to every
// member over TCP (a push/pull, as a join makes), in parallel, each
// bounded by memberlist's TCP timeout. Leave only queues the notice for
// UDP gossip and returns once it was handed out twice, to any members,
// before the last copy is written (or gives up after leaveTimeout, when
// the process stalled); a member that misses it suspects this node by
// probe, which the others, who know it left, never confirm, so the
// suspicion runs its longest timeout (18 s with 3 nodes) instead of the
// second a graceful stop takes (TestFailureDetection/graceful, 1 run in
// 49 with the process stalled while it left).
func (g *Gossip) announceLeft(ml *memberlist.Memberlist) {
	self := ml.LocalNode().Name
	var wg sync.WaitGroup
	for _, n := range ml.Members() {
		if n.Name == self {
			continue
		}
		addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
		wg.Go(func() {
			if _, err := ml.Join([]string{addr}); err != nil {
				g.log.Debug("gossip: announce leave", "addr", addr, "err", err)
			}
		})
	}
	wg.Wait()
}

// create binds the transport and starts memberlist with the local-network
// timings (DefaultLocalConfig; SuspicionMult is deliberately left alone).
func (g *Gossip) create() (*memberlist.Memberlist, error) {
	mlog := newStdLogger(g.log, func(name string) {
		g.enqueue(event{kind: evSuspect, name: name})
	})
	bindIP, bindPort, _ := parseIPPort(g.cfg.BindAddr) // checked by Validate
	// The transport is made here rather than by memberlist so that an
	// explicit advertise port survives binding port 0.
	var nt *memberlist.NetTransport
	var err error
	for range 10 { // port 0 picks a TCP port, then binds UDP to it: retry races
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{bindIP.String()},
			BindPort:  bindPort,
			Logger:    mlog,
		})
		if err == nil || bindPort != 0 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: bind %s: %w", g.cfg.BindAddr, err)
	}
	port := nt.GetAutoBindPort()
	g.mu.Lock()
	g.localAddr = net.JoinHostPort(bindIP.String(), strconv.Itoa(port))
	g.mu.Unlock()
	close(g.bound)

	conf := memberlist.DefaultLocalConfig()
	conf.Name = g.name
	conf.BindAddr = bindIP.String()
	conf.BindPort = port
	conf.AdvertisePort = port
	if g.cfg.AdvertiseAddr != "" {
		ip, p, _ := parseIPPort(g.cfg.AdvertiseAddr)
		conf.AdvertiseAddr = ip.String()
		if p != 0 {
			conf.AdvertisePort = p
		}
	}
	var tr memberlist.NodeAwareTransport = nt
	if g.wrapTransport != nil {
		tr = g.wrapTransport(nt)
	}
	conf.Transport = tr
	conf.Logger = mlog
	conf.Delegate = metaDelegate{meta: g.cfg.Meta}
	conf.Events = eventDelegate{g}
	conf.Ping = pingDelegate{g}
	conf.Label = g.cfg.Label
	conf.SecretKey = g.cfg.SecretKey

	ml, err := memberlist.Create(conf)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	return ml, nil
}

// eventLoop applies what the callbacks enqueued, then logs and notifies;
// it also wakes when a death's grace ends.
func (g *Gossip) eventLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		g.mu.Lock()
		end := g.graceEnd
		g.mu.Unlock()
		var grace <-chan time.Time
		if !end.IsZero() {
			t.Reset(max(end.Sub(g.now()), 0))
			grace = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-g.qready:
		case <-grace:
		}
		g.publish(g.apply(g.drain()))
	}
}

// reportMismatches warns, once per listed node and reason, of the peers
// that Join's err says have another key or label. Join reports each
// address on a line of its own: "failed to join <addr>: <reason>".
func (g *Gossip) reportMismatches(err error) {
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		r := mismatch(line)
		if r == "" {
			continue
		}
		_, rest, _ := strings.Cut(line, "failed to join ")
		addr, _, _ := strings.Cut(rest, ": ")
		node := "?"
		g.mu.Lock()
		for name, a := range g.peers {
			if a == addr {
				node = name
			}
		}
		g.mu.Unlock()
		if g.mismatched.first(node + " " + r) {
			g.log.Warn("gossip: cannot join a listed peer: "+mismatchHint, "peer", node, "addr", addr, "reason", r)
		}
	}
}

// reconcileLoop joins listed peers that gossip does not see alive, at once
// when SetPeers changes the list and every interval after.
func (g *Gossip) reconcileLoop(ctx context.Context, ml *memberlist.Memberlist) {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		listed := g.listed.Load() // before joinTargets: the round then covers the list
		g.join(ctx, ml, g.joinTargets(), listed)
		if listed {
			g.markSynced()
		}
		// Suspect is cleared by a successful probe of ours, but memberlist
		// slows its probing when it is unhealthy itself (after a partition,
		// for instance) and reports no refutation: ask directly.
		var rejoin []string
		for _, s := range g.suspects() {
			if _, err := ml.Ping(s.name, net.UDPAddrFromAddrPort(s.addr)); err == nil {
				g.enqueue(event{kind: evAck, name: s.name})
				if s.dead {
					rejoin = append(rejoin, s.addr.String())
				}
			}
		}
		// A node memberlist declared dead that answers our pings refuted
		// its suspicion where we did not hear it (the refutation is sent
		// a few times only, and may be lost right after a partition
		// heals), and it never refutes again: later notices of its
		// death carry the incarnation it has left behind, and memberlist
		// neither probes nor syncs with a node it holds dead. Only a
		// push/pull would tell us, every 15 s by chance; a join is one,
		// now.
		g.join(ctx, ml, rejoin, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		}
	}
}

// probeNow asks reconcileLoop for a round now: it joins the listed peers
// not seen alive and pings the suspects.
func (g *Gossip) probeNow() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// joinParallel bounds the joins one reconcile round runs at once.
const joinParallel = 64

// join joins each address on its own, joinParallel at a time, and returns
// when every attempt has ended. memberlist's Join tries addresses one
// after the other, each up to its TCP timeout (1 s), so a listed address
// that swallows packets (a member record pointing nowhere) would hold up
// the join of every address behind it. The first success marks gossip
// synced when listed is true. Once ctx ends no further join starts.
func (g *Gossip) join(ctx context.Context, ml *memberlist.Memberlist, addrs []string, listed bool) {
	if len(addrs) == 0 {
		return
	}
	var failed atomic.Bool
	var wg sync.WaitGroup
	sem := make(chan struct{}, joinParallel)
	for _, addr := range addrs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := ml.Join([]string{addr}); err != nil {
				failed.Store(true)
				g.log.Debug("gossip: join", "addr", addr, "err", err)
				g.reportMismatches(err)
				return
			}
			if listed {
				g.markSynced()
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		g.joinFailures.Add(1)
	}
}

// markSynced enqueues, once, the marker that closes synced: behind the
// events of the join that preceded it, so that Seen already reflects them
// when Synced is closed.
func (g *Gossip) markSynced() {
	if g.syncing.CompareAndSwap(false, true) {
		g.enqueue(event{kind: evSynced})
	}
}

type suspect struct {
	name string // memberlist name
	addr netip.AddrPort
	dead bool // memberlist declared it dead: its grace runs (state.go)
}

// suspects lists the incarnations of listed peers that are Suspect.
func (g *Gossip) suspects() []suspect {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []suspect
	for node := range g.peers {
		id, in := g.bestLocked(node)
		if node == g.cfg.Node || in == nil || in.state != Suspect {
			continue
		}
		if ap, err := netip.ParseAddrPort(in.addr); err == nil {
			out = append(out, suspect{name: node + "/" + id, addr: ap, dead: in.dead()})
		}
	}
	return out
}

// joinTargets lists the addresses of listed peers not seen alive or suspect.
func (g *Gossip) joinTargets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var addrs []string
	for node, addr := range g.peers {
		if node == g.cfg.Node || addr == g.localAddr {
			continue
		}
		if s := g.healthLocked(node); s == Alive || s == Suspect {
			continue
		}
		addrs = append(addrs, addr)
	}
	return addrs
}

// SetPeers replaces the nodes etcd lists: node name -> gossip address
// (ip:port). Self may be included or not. Health reports only listed nodes
// (and self); the reconcile loop joins listed ones not seen alive.
func (g *Gossip) SetPeers(peers map[string]string) {
	g.listed.Store(true)
	g.mu.Lock()
	g.peers = make(map[string]string, len(peers))
	for node, addr := range peers {
		g.peers[node] = normAddr(addr)
	}
	changes := g.recomputeLocked()
	g.mu.Unlock()
	g.publish(changes)
	g.probeNow()
}

// Health reports node's health by node name: the state memberlist last
// reported for its newest incarnation, or Unknown if that node was never
// seen or is not listed by SetPeers. Self is always listed.
func (g *Gossip) Health(node string) State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.healthLocked(node)
}

// Seen reports whether gossip has ever heard of node alive, listed or not:
// some incarnation of it joined memberlist (here or, by gossip, anywhere
// in the cluster). It stays true for the life of this Gossip, whatever
// happened to the node since. Self is always seen.
func (g *Gossip) Seen(node string) bool {
	if node == g.cfg.Node {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nodes[node]) > 0
}

// Synced is closed once the first reconcile round after SetPeers has
// ended, or earlier, as soon as one of its joins succeeded and its events
// were applied: a join exchanges the full member list, so from then on
// Seen knows every node the cluster's gossip knows. A node that reaches
// none of the listed peers is synced when the round ends, which takes at
// most memberlist's TCP timeout (1 s) per joinParallel addresses.
func (g *Gossip) Synced() <-chan struct{} { return g.synced }

// Changed returns a channel that receives a value after any Health result
// changes; notifications coalesce, so re-read Health for every node you care
// about after each receive.
func (g *Gossip) Changed() <-chan struct{} { return g.changed }

// Bound is closed once Run has bound its port, so that LocalAddr can be
// advertised (etcd must list the real address when BindAddr had port 0).
func (g *Gossip) Bound() <-chan struct{} { return g.bound }

// LocalAddr returns the bound ip:port (with the real port when BindAddr
// asked for port 0), or "" before Run has bound it.
func (g *Gossip) LocalAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.localAddr
}
