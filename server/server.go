package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"shoal/protocol"
)

// Version is the memcached version shoal reports on the wire (version, stats),
// so clients that look at it to pick features treat shoal as memcached 1.6.
const Version = "1.6.18"

// Errors.
var (
	ErrConfig = errors.New("server: invalid config")
	ErrClosed = errors.New("server: closed")
	// ErrStaleOrigin: a Cache refuses a replicated write (Request.Replica) whose Origin
	// predates what it knows of the key's owners. The sender reads
	// protocol.ReplyStaleEpoch and may send the key's state again.
	ErrStaleOrigin = errors.New("server: stale origin")
)

// Config tunes the connection server. The zero value of each field means
// memcached's default.
type Config struct {
	// MaxConns is memcached -c: connections beyond it are told
	// "ERROR Too many open connections" and closed. Zero means 1024.
	MaxConns int
	// MaxItemSize is memcached -I; the reader swallows larger values. Zero
	// means 1 MiB.
	MaxItemSize int
	// IdleTimeout closes connections idle that long. Zero means never.
	IdleTimeout time.Duration
	// EnableShutdown allows the shutdown command (memcached -A).
	EnableShutdown bool
	// DisableFlush refuses flush_all (memcached -F).
	DisableFlush bool
	// Threads is reported in stats; it does not limit anything here.
	Threads int
	// Settings are extra "stats settings" lines (name, value) that only the
	// caller knows, such as tcpport.
	Settings [][2]string
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Cluster answers "stats cluster"; nil on a standalone node.
	Cluster ClusterInfo
	// Items is the store under the Cache (see Items): required, but for a
	// Local, which is its own.
	Items Items
	// EventLoop serves connections from edge-triggered epoll loops (see
	// Loops) over non-blocking sockets, instead of one goroutine per
	// connection: a request then costs epoll_wait, read and write and no
	// goroutine hand-off between threads. A loop runs its connections'
	// commands one after another on its own goroutine, so a Cache call that
	// blocks (a cluster Router forwarding to a peer) would stall every
	// connection of that loop: over any Cache but a Local, whose calls
	// never wait, the calls that may wait leave the loop (async.go). Off
	// (the zero value): a goroutine
	// per connection. Where epoll is missing (not Linux), or for a
	// net.Conn that is not a socket, connections get goroutines anyway.
	EventLoop bool
	// NoIOUring: event loops write each connection's replies with its own
	// send(2). Otherwise (the zero value) a loop sends the replies of a
	// wake-up's connections in one io_uring_enter where the kernel allows
	// io_uring (eventloop_send_linux.go).
	NoIOUring bool
	// Batch, when set, sends together the replies of requests a Cache
	// completes on another goroutine and marks Request.Batched (batch.go).
	// The goroutines that complete them must call its Send.
	Batch *Batch
	// Loops is the number of event loops (with EventLoop). Zero means
	// GOMAXPROCS-1, at least 1. Over a Local, a loop waits in epoll_wait,
	// a system call, on a thread of its own and holding its P (the
	// runtime's right to run Go code): leave GOMAXPROCS at least one above
	// Loops, so that the rest of the process (accepting, timers, the
	// store's reclaimer) finds a P without waiting for the runtime to take
	// one from a loop, and the runtime's monitor, seeing an idle P, leaves
	// waiting loops alone instead of waking every 20 µs to take their Ps.
	// Over any other Cache, whose requests complete on other goroutines
	// (peer readers) that need Ps as much as the loops, a loop with nothing
	// ready parks in Go's poller instead, as a goroutine reading a socket
	// does, holding neither a thread nor a P; GOMAXPROCS may then equal
	// Loops.
	Loops int
	// PeerExtensions makes connections accept shoal's extensions for the
	// peer listener, which only other cluster nodes talk to: the meta
	// E<cas> flag on ms, md (with I) and ma (write the item with that CAS,
	// so that a client's CAS token survives failover), the meta Y<epoch>
	// and Z<seq> flags on ms and md (the origin of a replicated write,
	// passed to the Cache as Request.Replica), and the sd shard dump command (answered
	// from Dumps). memcached 1.6.18 has none of them, so a client
	// listener must leave this off to answer them as memcached does.
	PeerExtensions bool
	// Dumps answers the peer port's sd (with PeerExtensions): the items
	// and deletes of the shards asked for. Nil: sd is refused as
	// unsupported.
	Dumps Dumper
	// Auth, when set, makes every connection authenticate before its
	// first command, as memcached's -Y (ASCII authentication).
	Auth Authenticator
	// TLS is the client port's TLS (memcached -Z), for refresh_certs and
	// its stats; nil without.
	TLS TLSInfo
	// PrefixDelimiter ends a key's prefix for stats detail (memcached -D).
	// Zero means ':'.
	PrefixDelimiter byte
	// ConnMemLimit bounds the memory connections hold outside the store
	// (see connMem): data blocks beyond it are refused with memcached's
	// "SERVER_ERROR out of memory storing object", and replies wait in
	// the clients' sockets rather than in the node. Zero means 64 MiB; it
	// is never below twice MaxItemSize, so the largest item always fits.
	ConnMemLimit int64
	// Binding is memcached -B: which protocols clients may speak. The
	// zero value negotiates per connection by its first byte (0x80 is the
	// binary protocol's request magic), as memcached's default does.
	Binding protocol.Binding
	// SASL, when set, turns SASL authentication on (memcached -S): a
	// connection runs nothing but SASL_LIST_MECHS, SASL_AUTH, SASL_STEP
	// and VERSION until a SASL_AUTH with mechanism PLAIN carries a user
	// and password that SASL.Check accepts. SASL is binary protocol only,
	// so Binding must be BindBinary or BindAuto (which then means
	// BindBinary), and Auth (-Y, ASCII only) must be nil.
	SASL Authenticator
	// NoAdmin refuses verbosity, cache_memlimit and shutdown (with
	// "CLIENT_ERROR not allowed on this port", noreply or not): the peer
	// listener, where members never send them. flush_all stays (members
	// propagate it; DisableFlush refuses it).
	NoAdmin bool
	// OnShutdown is called once when a client sends shutdown (with
	// EnableShutdown), graceful for "shutdown graceful" (memcached saves
	// its warm-restart file then, as on SIGUSR1); the owner of the
	// process decides how to stop.
	OnShutdown func(graceful bool)
	// Watch receives the events the watch command shows. Nil means one of
	// the server's own; servers of one node share one, which its store's
	// evictions go to (Watch.Evicted).
	Watch *Watch
	// DisableWatch refuses the watch command (memcached -W).
	DisableWatch bool
	// Off names memcached machinery switched off with -o: memcached then
	// leaves its counters out of stats, and so does the server.
	Off Off
}

// Off is memcached machinery an operator switched off (-o no_lru_crawler,
// no_lru_maintainer, no_slab_reassign, no_maxconns_fast; no_modern is all
// four). shoal has none of it; only stats shows the difference.
type Off struct {
	LRUCrawler, LRUMaintainer, SlabReassign, MaxconnsFast bool
}

// TLSInfo is the client port's TLS as the server sees it: Refresh
// reloads the certificates (refresh_certs; its error's text is the reply
// line), the counters feed stats. Its methods are called from connection
// goroutines concurrently.
type TLSInfo interface {
	Refresh() error
	HandshakeErrors() int64
	SinceRefresh() int64
}

// ClusterInfo is the cluster view as name/value pairs in display order,
// which the server does not interpret: ClusterStats behind "stats
// cluster"; RingStats behind "stats ring", what a ring-aware client
// learns the cluster from (the membership the node's ring is built from
// and the settings placement uses), nil when there is no ring to serve.
// Its methods are called from connection goroutines concurrently.
type ClusterInfo interface {
	ClusterStats() [][2]string
	RingStats() [][2]string
}

// Validate reports a config memcached would refuse.
func (c Config) Validate() error {
	if c.MaxConns < 0 {
		return fmt.Errorf("%w: connection limit must be positive", ErrConfig)
	}
	if c.MaxItemSize < 0 {
		return fmt.Errorf("%w: max item size must be positive", ErrConfig)
	}
	if c.Loops < 0 {
		return fmt.Errorf("%w: event loops must not be negative", ErrConfig)
	}
	if c.ConnMemLimit < 0 {
		return fmt.Errorf("%w: connection memory limit must not be negative", ErrConfig)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("%w: idle timeout must not be negative", ErrConfig)
	}
	if c.SASL != nil && (c.Binding == protocol.BindASCII || c.Auth != nil) {
		return fmt.Errorf("%w: SASL needs the binary protocol", ErrConfig)
	}
	if c.Auth != nil && c.Binding == protocol.BindBinary {
		return fmt.Errorf("%w: ASCII authentication needs the ASCII protocol", ErrConfig)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxConns == 0 {
		c.MaxConns = 1024
	}
	switch {
	case c.SASL != nil:
		c.Binding = protocol.BindBinary
	case c.Auth != nil:
		c.Binding = protocol.BindASCII // as memcached -Y
	}
	if c.MaxItemSize == 0 {
		c.MaxItemSize = 1 << 20
	}
	if c.Threads == 0 {
		c.Threads = 4
	}
	if c.ConnMemLimit == 0 {
		c.ConnMemLimit = 64 << 20
	}
	// One item of the largest size must always be receivable.
	c.ConnMemLimit = max(c.ConnMemLimit, 2*int64(c.MaxItemSize))
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Server serves the memcached text protocol over a Cache.
type Server struct {
	cfg     Config
	cache   Cache
	log     *slog.Logger
	started time.Time
	nextID  atomic.Uint64

	mem       connMem
	mgValue   atomic.Int64 // mean value size of recent GetMulti calls (firstBatch)
	auth      authCounters
	detail    detail
	idleKicks atomic.Int64
	// ringCalls and ringSends: the loops' batched sends (sendAll), and
	// the replies they carried.
	ringCalls, ringSends atomic.Int64
	verbosity            atomic.Int64
	totalConns           atomic.Int64
	rejectedConns        atomic.Int64
	shutdownStarted      atomic.Bool
	statsOff             map[string]bool          // fields stats leaves out (Config.Off)
	latency              [numFamilies]latencyHist // sampled; see SampleEvery
	watch                *Watch
	stopping             chan struct{} // closed by Shutdown: watchers stop
	// ctx is every connection's parent (conn.ctx); Shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	// items is Config.Items, or a Local's store.
	items Items
	// remote: the cache may wait on the network (any but a Local). Event
	// loops then let its requests complete on other goroutines (a
	// pending Start parks the connection; a loop with nothing ready parks
	// in Go's poller), and retrievals of several keys go to GetMulti.
	remote bool

	// mu guards the fields below.
	mu        sync.Mutex
	listeners map[net.Listener]int64 // when Serve took it, by the cache's clock
	conns     map[*conn]struct{}
	closed    counters // counters of connections that have ended
	done      bool
	loops     []*loop   // event loops (EventLoop), started by the first Serve
	loopsOff  bool      // EventLoop is set but the loops could not start
	nextLoop  int       // round robin over loops for new connections
	ringOnce  sync.Once // logs that loops run without io_uring
	wg        sync.WaitGroup
}

// New returns a server over cache. It starts nothing.
func New(cfg Config, cache Cache) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cache == nil {
		return nil, fmt.Errorf("%w: nil cache", ErrConfig)
	}
	if _, local := cache.(Local); !local && cfg.Items == nil {
		return nil, fmt.Errorf("%w: no Items under the cache", ErrConfig)
	}
	cfg = cfg.withDefaults()
	s := &Server{
		statsOff:  offStats(cfg.Off),
		cfg:       cfg,
		cache:     cache,
		log:       cfg.Logger,
		started:   time.Now(),
		listeners: make(map[net.Listener]int64),
		conns:     make(map[*conn]struct{}),
		watch:     cfg.Watch,
		stopping:  make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.watch == nil {
		s.watch = new(Watch)
	}
	s.items = cfg.Items
	if l, ok := cache.(Local); !ok {
		s.remote = true
	} else if s.items == nil {
		s.items = l.Store
	}
	s.mem.limit = cfg.ConnMemLimit
	s.detail.delim = cmp.Or(cfg.PrefixDelimiter, ':')
	return s, nil
}

// Serve accepts connections on ln until Shutdown. It returns ErrClosed after
// Shutdown, or the accept error that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = s.items.Now()
	if s.cfg.EventLoop && s.loops == nil && !s.loopsOff {
		s.startLoopsLocked()
	}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isDone() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.totalConns.Add(1)
		if !s.admit(nc) {
			continue
		}
	}
}

// admit registers a new connection and starts its goroutine, or refuses it
// the way memcached does when -c is reached.
func (s *Server) admit(nc net.Conn) bool {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.rejectedConns.Add(1)
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(nc, "ERROR Too many open connections\r\n")
		nc.Close()
		return false
	}
	c := newConn(s, nc.RemoteAddr(), nc.LocalAddr())
	s.conns[c] = struct{}{}
	if s.watch.on.Load()&streamConnEvents != 0 {
		s.logConn(c, false)
	}
	if len(s.loops) > 0 {
		if fd, err := detach(nc); err == nil {
			l := s.loops[s.nextLoop%len(s.loops)]
			s.nextLoop++
			ok := l.add(c, fd)
			if !ok { // the loop died (it logged why)
				delete(s.conns, c)
				c.cancel()
			}
			s.mu.Unlock()
			return ok
		}
	}
	c.nc = nc
	c.setIO(connReader{c}, nc)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.forget(c)
	}()
	return true
}

func (s *Server) forget(c *conn) {
	c.cancel()
	c.free()
	s.mu.Lock()
	delete(s.conns, c)
	s.closed.add(&c.ctr)
	done := s.done
	s.mu.Unlock()
	if s.watch.on.Load()&streamConnEvents != 0 {
		switch {
		case done:
			c.closeWhy = closeShutdown
		case c.closeWhy == closeNormal && c.err != nil:
			c.closeWhy = closeError
		}
		s.logConn(c, true)
	}
}

func (s *Server) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Shutdown closes the listeners, then every connection, and waits for the
// connection goroutines and event loops to exit or ctx to end. It is
// idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.done {
		close(s.stopping)
	}
	s.done = true
	s.cancel() // what connections wait on the network for has nowhere to go
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		if c.nc != nil {
			c.nc.Close()
		}
	}
	for _, l := range s.loops {
		l.stop() // the loop closes its own connections
	}
	s.mu.Unlock()
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchReplies wakes every event loop each memSweepEvery while the
// replies waiting for sockets hold more than the limit (connMem), so that
// a loop waiting for events on connections that will send none still
// sweeps them (loop.memSweep) and runs those waiting for memory; and ends
// the goroutine driver's writes stalled through the spell (kickStalled)
// and, once it is over, wakes its waiting retrievals (endSpell). One runs
// at a time (connMem.watching), started by the first connection to see
// the limit passed; it checks again after it lets go, so that a passing
// it sees at that moment is not missed.
func (s *Server) watchReplies() {
	m := &s.mem
	for {
		from := time.Now()
		for m.outOver() {
			s.mu.Lock()
			loops := s.loops
			s.mu.Unlock()
			for _, l := range loops {
				l.wake()
			}
			time.Sleep(memSweepEvery)
			s.kickStalled(from, time.Now())
		}
		m.watching.Store(false)
		m.endSpell() // after: a waiter that failed to start a watcher took its channel before

		if !m.outOver() || !m.watching.CompareAndSwap(false, true) {
			return
		}
	}
}

// DropConns closes every open connection at once and keeps serving new
// ones. Commands a dropped connection has read but not run yet are not
// run: a cluster node calls it after a pause of the process, when what
// its connections hold was sent before the pause and its senders have
// given up on it.
func (s *Server) DropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.dropped.Store(true)
		c.cancel()
		if c.nc != nil {
			c.nc.Close()
		}
	}
	for _, l := range s.loops {
		l.dropConns() // the loop closes its own connections
	}
}

// requestShutdown runs the owner's shutdown hook once.
func (s *Server) requestShutdown(graceful bool) {
	if s.shutdownStarted.CompareAndSwap(false, true) && s.cfg.OnShutdown != nil {
		go s.cfg.OnShutdown(graceful)
	}
}
