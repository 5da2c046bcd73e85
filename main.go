// Command shoal is a memcached-compatible cache node. main alone reads flags
// and the environment and wires the packages together: store (items in
// memory) under server (connections and the memcached protocol).
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/clienttls"
	"shoal/cluster"
	"shoal/monitor"
	"shoal/peer"
	"shoal/protocol"
	"shoal/repl"
	"shoal/server"
	"shoal/store"
	"shoal/tomb"
)

const (
	shoalVersion     = "0.1.0"
	memcachedVersion = server.Version
	// drainFor bounds the wait for the replication queues at shutdown: a
	// replica that does not answer is given up on in about a second
	// (three tries), and the process must not wait out sctx for it.
	drainFor = 2 * time.Second
)

func main() {
	if daemonize(os.Args[1:]) {
		return // the daemon runs on in the background
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGUSR1 stops the node as SIGTERM does and saves the memory file
	// (-e) for a warm restart, as memcached's graceful stop.
	ctx, stopGraceful := context.WithCancelCause(ctx)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		stopGraceful(errGracefulStop)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	switch {
	case err == nil, errors.Is(err, errHelp), errors.Is(err, errVersion):
	default:
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(64)
	}
}

// errGracefulStop, as the cause of run's context ending, asks for a warm
// restart: the memory file (-e) is saved on the way out.
var errGracefulStop = errors.New("graceful stop")

// run starts a node with args and serves until ctx ends or a client sends
// shutdown (with -A). ready, when not nil, receives the listening addresses
// once the node accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]net.Addr)) error {
	o, err := parseFlags(args)
	switch {
	case errors.Is(err, errHelp):
		printHelp(stdout)
		return err
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "shoal %s (memcached %s compatible)\n", shoalVersion, memcachedVersion)
		return err
	case err != nil:
		return err
	}
	log := newLogger(stderr, o)
	sasl, err := checkModes(o)
	if err != nil {
		return err
	}
	eventLoop, threads := loops(o)
	// One watch for the node: its store's evictions, and the events of
	// its client and peer connections.
	watch := new(server.Watch)
	st, restored, err := openStore(o, log, watch.Evicted)
	if err != nil {
		return err
	}
	if o.pidFile != "" {
		if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0644); err != nil {
			return fmt.Errorf("could not open the pid file %s: %w", o.pidFile, err)
		}
		defer os.Remove(o.pidFile)
	}
	lns, err := listen(o)
	if err != nil {
		return err
	}
	defer closeAll(lns)
	if err := writePortFile(os.Getenv("MEMCACHED_PORT_FILENAME"), lns); err != nil {
		return err
	}
	clientTLS, err := serveTLS(o, lns)
	if err != nil {
		return err
	}
	var httpLn net.Listener
	if o.httpAddr != "" {
		if httpLn, err = net.Listen("tcp", o.httpAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer httpLn.Close()
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var gracefulCmd atomic.Bool // "shutdown graceful"
	// Stop in order: every goroutine (the cluster node deregisters through
	// etcd on its way out), then the --dev etcd; the store is saved for a
	// warm restart once nothing uses it.
	stopEtcd := func() {}
	defer func() {
		cancel()
		wg.Wait()
		stopEtcd()
		if o.memoryFile != "" && (gracefulCmd.Load() || errors.Is(context.Cause(parent), errGracefulStop)) {
			saveStore(st, o.memoryFile, log)
		}
	}()
	onShutdown := func(graceful bool) {
		gracefulCmd.Store(graceful)
		cancel()
	}
	scfg, err := clientConfig(o, log, watch, sasl, clientTLS, eventLoop, threads, onShutdown)
	if err != nil {
		return err
	}
	var cl clusterParts // zero when standalone
	defer cl.close()
	cache := server.Cache(server.Local{Store: st})
	if o.clustered() {
		err := cl.start(ctx, cancel, &wg, o, log, st, restored, watch, lns[0].Addr(), eventLoop)
		stopEtcd = cl.stopEtcd // joined, it has an etcd to stop even on an error
		if err != nil {
			return err
		}
		scfg.Cluster = clusterInfo{cl.node, cl.router}
		cache = cl.router
	}
	node, router, peerSrv, replicator := cl.node, cl.router, cl.peerSrv, cl.replicator
	srv, err := server.New(scfg, cache)
	if err != nil {
		return err
	}
	var mon *monitor.Monitor
	if httpLn != nil {
		if mon, err = newMonitor(srv, node, router, lns[0].Addr(), log); err != nil {
			return err
		}
		wg.Go(func() {
			if err := mon.Serve(httpLn); err != nil {
				log.Error("http server stopped", "err", err)
			}
		})
		log.Info("http serving", "addr", httpLn.Addr().String(), "endpoints", "/metrics /cluster /")
	}
	wg.Go(func() {
		if err := st.Run(ctx); err != nil {
			log.Error("store stopped", "err", err)
		}
	})
	if node != nil {
		// Clients queue in the listen backlog until the router routes by
		// a view with this node: before it, every key would look local,
		// and missing.
		waitInView(ctx, router, node.Name(), 10*time.Second)
	}
	errc := make(chan error, len(lns))
	addrs := make([]net.Addr, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr()
		wg.Go(func() { errc <- srv.Serve(ln) })
	}
	log.Info("shoal serving", "addrs", fmt.Sprint(addrs), "memory_mb", o.memoryMB, "version", shoalVersion)
	if ready != nil {
		ready(addrs)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		cancel()
	}
	log.Info("shoal stopping")
	stopServing(log, srv, router, cl.leaveCluster, peerSrv, replicator, mon)
	cancel()
	if serveErr != nil && !errors.Is(serveErr, server.ErrClosed) {
		return serveErr
	}
	return nil
}

func newLogger(w io.Writer, o options) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case o.verbose >= 2:
		level = slog.LevelDebug
	case o.verbose == 1:
		level = slog.LevelInfo
	}
	hopts := &slog.HandlerOptions{Level: level}
	if o.logJSON {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// listen opens one TCP listener per -l address, all on -p; or, with -s,
// the UNIX socket alone, as memcached does.
func listen(o options) ([]net.Listener, error) {
	if o.unixSocket != "" {
		ln, err := listenUnix(o.unixSocket, o.unixMask)
		if err != nil {
			return nil, err
		}
		return []net.Listener{ln}, nil
	}
	var lns []net.Listener
	for _, host := range strings.Split(o.listen, ",") {
		host = strings.TrimSpace(host)
		// An IPv4 address binds IPv4 only, as memcached does: Go's "tcp"
		// would turn 0.0.0.0 into a dual-stack [::].
		network := "tcp"
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			network = "tcp4"
		}
		ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(max(o.port, 0))))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("failed to listen on %s port %d: %w", host, o.port, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// writePortFile writes the TCP ports listened on to path, one
// "TCP INET: <port>" or "TCP INET6: <port>" line per listener, as
// memcached does for $MEMCACHED_PORT_FILENAME (test harnesses read the
// port of "-p -1" there); nothing when path is empty.
func writePortFile(path string, lns []net.Listener) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	for _, ln := range lns {
		a, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		family := "INET6"
		if a.IP.To4() != nil {
			family = "INET"
		}
		fmt.Fprintf(&b, "TCP %s: %d\n", family, a.Port)
	}
	tmp := path + ".lck"
	if err := os.WriteFile(tmp, []byte(b.String()), 0644); err != nil {
		return fmt.Errorf("MEMCACHED_PORT_FILENAME: %w", err)
	}
	return os.Rename(tmp, path)
}

// listenUnix listens on a UNIX socket at path, replacing a socket left
// there by an earlier run (never another kind of file), with the access
// mask of memcached's -a.
func listenUnix(path string, mask os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UNIX socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mask); err != nil {
		ln.Close()
		return nil, fmt.Errorf("UNIX socket %s: %w", path, err)
	}
	return ln, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}

// joinCluster prepares this node's cluster membership (and the --dev etcd
// it needs). The returned function stops that etcd, if any.
func joinCluster(ctx context.Context, o options, client, peer net.Addr, log *slog.Logger) (*cluster.Node, func(), error) {
	stop := func() {}
	endpoints := splitList(o.etcd)
	if o.dev {
		devEndpoints, stopDev, err := startDevEtcd(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		stop = stopDev
		endpoints = devEndpoints
		log.Info("dev etcd serving", "endpoints", strings.Join(endpoints, ","))
	}
	node, err := newClusterNode(ctx, o, endpoints, client, peer, log)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return node, stop, nil
}

// newMonitor prepares the HTTP endpoints for this node; node and router
// are nil on a standalone node, which is then named by its client address.
func newMonitor(srv *server.Server, node *cluster.Node, router *cluster.Router, client net.Addr, log *slog.Logger) (*monitor.Monitor, error) {
	cfg := monitor.Config{Node: client.String(), Version: shoalVersion, Stats: srv, Logger: log}
	if node != nil {
		cfg.Node, cfg.Cluster = node.Name(), node
	}
	if router != nil {
		cfg.Peers = router
	}
	return monitor.New(cfg)
}

// clusterInfo answers "stats cluster" (the view, then the router's
// takeover and per-peer lines, from the same counters /metrics uses) and
// "stats ring".
type clusterInfo struct {
	node   *cluster.Node
	router *cluster.Router
}

// RingStats answers "stats ring" (server.RingInfo) for ring-aware clients.
func (c clusterInfo) RingStats() [][2]string { return c.node.RingStats() }

func (c clusterInfo) ClusterStats() [][2]string {
	return append(c.node.ClusterStats(), c.router.ClusterStats()...)
}

// settings are the "stats settings" lines only main knows.
func settings(o options) [][2]string {
	ev := "on"
	if o.noEvict {
		ev = "off"
	}
	growth := o.growthFactor
	if growth == 0 {
		growth = store.DefaultGrowthFactor
	}
	inter, socket := o.listen, "NULL"
	if o.unixSocket != "" {
		inter, socket = "NULL", o.unixSocket
	}
	return append([][2]string{
		{"tcpport", strconv.Itoa(o.port)},
		{"udpport", "0"},
		{"inter", inter},
		{"evictions", ev},
		{"domain_socket", socket},
		{"umask", strconv.FormatUint(uint64(o.unixMask), 8)},
		{"growth_factor", strconv.FormatFloat(growth, 'f', 2, 64)},
		{"stat_key_prefix", string(o.prefixDelim)},
		{"reqs_per_event", strconv.Itoa(o.reqsPerEvent)},
		{"tcp_backlog", strconv.Itoa(o.backlog)},
		{"auth_enabled_ascii", cmp.Or(o.authFile, "no")},
		{"memory_file", cmp.Or(o.memoryFile, "(null)")},
		{"cas_enabled", yesNo(!o.noCAS)},
		{"maxconns_fast", yesNo(!o.off.MaxconnsFast)},
		{"slab_reassign", yesNo(!o.off.SlabReassign)},
		{"lru_crawler", yesNo(!o.off.LRUCrawler)},
	}, tlsSettings(o.tls)...)
}

// checkModes refuses the flag combinations memcached refuses, and those a
// cluster cannot honour, and reads -S's password file.
func checkModes(o options) (server.Authenticator, error) {
	var sasl server.Authenticator
	if o.sasl {
		// memcached's password-file mode: user:password lines, as -Y's.
		switch path := os.Getenv("MEMCACHED_SASL_PWDB"); {
		case o.binding == protocol.BindASCII:
			return nil, errors.New("you cannot allow the ASCII protocol while using SASL")
		case o.authFile != "":
			return nil, errors.New("-S and -Y cannot be used together")
		case path == "":
			return nil, errors.New("-S needs a password file: set MEMCACHED_SASL_PWDB to a file of user:password lines")
		default:
			users, err := readAuthFile(path)
			if err != nil {
				return nil, err
			}
			sasl = users
		}
	}
	if o.noCAS && o.clustered() {
		return nil, errors.New("-C cannot be used in a cluster: the copies of a key are ordered by CAS")
	}
	if o.authFile != "" && o.binding == protocol.BindBinary {
		return nil, errors.New("you cannot allow the BINARY protocol while using ascii authentication tokens")
	}
	return sasl, nil
}

// loops decides how the client port is served and sets GOMAXPROCS: event
// loops (or a goroutine per connection) and how many.
func loops(o options) (eventLoop bool, threads int) {
	var procs int
	// Event loops serve the client port with fewer scheduler hand-offs
	// than a goroutine per connection: a standalone node's cache, the local
	// store, never waits on the network, and a cluster node's router is a
	// server.AsyncCache (forwarded gets complete on the peer client's
	// reader, other forwarded commands run on goroutines of their own).
	eventLoop = !o.connGoroutines
	threads, procs = o.threads, o.threads
	if threads == 0 {
		procs = runtime.GOMAXPROCS(0) // all cores, or the container's share
		threads = procs
		if eventLoop && o.clustered() {
			// A core for the peer traffic: the peer port's event loop and
			// the peer clients' readers (which complete forwarded gets). On
			// 2 cores, one client loop costs the forwarding node 12-13
			// CPU-µs per forwarded get against 15 with two
			// (BenchmarkForwarding).
			threads = max(1, procs-1)
		}
	}
	if eventLoop && !o.clustered() {
		// A standalone node's loops each hold a thread, waiting in
		// epoll_wait: one P more for the rest of the process (see
		// server.Config.Loops). A cluster node's loops park in Go's
		// poller and need none.
		procs = threads + 1
	}
	if procs > 0 {
		// -t N: N worker threads' worth of Go code, as memcached's.
		runtime.GOMAXPROCS(procs)
	}
	return eventLoop, threads
}

// clientConfig is the client port's server configuration.
func clientConfig(o options, log *slog.Logger, watch *server.Watch, sasl server.Authenticator, clientTLS *clienttls.TLS, eventLoop bool, threads int, onShutdown func(bool)) (server.Config, error) {
	scfg := server.Config{
		MaxConns:        o.maxConns,
		MaxItemSize:     o.maxItemSize,
		IdleTimeout:     o.idleTimeout,
		ConnMemLimit:    o.connMemLimit(),
		PrefixDelimiter: o.prefixDelim,
		EnableShutdown:  o.allowShutdown,
		DisableFlush:    o.disableFlush,
		DisableWatch:    o.disableWatch,
		Watch:           watch,
		Binding:         o.binding,
		SASL:            sasl,
		Threads:         threads,
		Settings:        settings(o),
		Logger:          log,
		OnShutdown:      onShutdown,
		Off:             o.off,
		EventLoop:       eventLoop,
		Loops:           threads,
	}
	if clientTLS != nil {
		scfg.TLS = clientTLS
	}
	if o.authFile != "" {
		users, err := readAuthFile(o.authFile)
		if err != nil {
			return scfg, err
		}
		scfg.Auth = users
	}
	return scfg, nil
}

// stopServing stops the servers in order, within 10 s: the client port;
// the shards handed off; the membership left; the peer port; the
// replication queue drained (at most drainFor); the HTTP server.
func stopServing(log *slog.Logger, srv *server.Server, router *cluster.Router, leave func(), peerSrv *server.Server, replicator *repl.Replicator, mon *monitor.Monitor) {
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("connections did not close in time", "err", err)
	}
	if router != nil {
		sent, failed := router.Handoff(sctx)
		log.Info("shards handed off", "items", sent, "failed", failed)
	}
	leave()
	if peerSrv != nil {
		if err := peerSrv.Shutdown(sctx); err != nil {
			log.Warn("peer connections did not close in time", "err", err)
		}
	}
	if replicator != nil {
		// No write arrives any more: what the last ones left queued for
		// the replicas goes out before the process does.
		dctx, dcancel := context.WithTimeout(sctx, drainFor)
		if !replicator.Drain(dctx) {
			log.Warn("replication queue not drained in time", "within", drainFor)
		}
		dcancel()
	}
	if mon != nil {
		if err := mon.Shutdown(sctx); err != nil {
			log.Warn("http requests did not finish in time", "err", err)
		}
	}
}

// clusterParts is what a cluster node runs besides its client port: the
// membership (node, its --dev etcd), the router, the peer port's server
// and the replicator. Its zero value is a standalone node's.
type clusterParts struct {
	node       *cluster.Node
	router     *cluster.Router
	peerSrv    *server.Server // serves forwarded requests from the local store
	replicator *repl.Replicator
	leave      func() // ends cluster membership (deregisters); nil standalone
	stopEtcd   func()
	defers     []func() // close runs them last first
}

// leaveCluster ends the membership (the node deregisters), if any.
func (c *clusterParts) leaveCluster() {
	if c.leave != nil {
		c.leave()
	}
}

// close releases what start made, in the reverse order.
func (c *clusterParts) close() {
	for i := len(c.defers) - 1; i >= 0; i-- {
		c.defers[i]()
	}
}

// start joins the cluster and starts the peer port, the replicator, the
// membership and the router on wg; a failure of the peer port or of the
// membership cancels the node (cancel). What it made, close releases, even
// when it fails.
func (c *clusterParts) start(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, o options, log *slog.Logger, st *store.Store, restored time.Time, watch *server.Watch, clientAddr net.Addr, eventLoop bool) error {
	c.leave, c.stopEtcd = func() {}, func() {}
	var err error
	// Every push comes from the router, made below: a refusal to
	// refresh cannot come before it exists.
	refresh := func(key []byte, peer string) (repl.Item, bool) { return c.router.Refresh(key, peer) }
	auth, err := peerAuth(o)
	if err != nil {
		return err
	}
	peerCfg := peer.Config{Logger: log} // every dialled peer connection authenticates
	if auth != nil {
		peerCfg.Handshake = auth.Client
	}
	// One client per peer, shared by forwarding and replication: their
	// requests share connections and writes.
	pool := peer.NewPool(peerCfg)
	missed := func(peer string, key []byte, it repl.Item) { c.router.Missed(peer, key, it) }
	if c.replicator, err = repl.New(repl.Config{Logger: log, Refresh: refresh, Missed: missed, Peer: peerCfg, Pool: pool}); err != nil {
		return err
	}
	// The replicator outlives the servers: it stops after they do
	// (below), so the writes they applied last are still pushed.
	replCtx, replCancel := context.WithCancel(context.Background())
	c.defers = append(c.defers, replCancel)
	wg.Go(func() {
		if err := c.replicator.Run(replCtx); err != nil {
			log.Error("replication stopped", "err", err)
		}
	})
	c.defers = append(c.defers, func() { c.replicator.Close() })
	peerLn, err := listenPeer(o, clientAddr, auth, log)
	if err != nil {
		return err
	}
	c.defers = append(c.defers, func() { peerLn.Close() })
	c.node, c.stopEtcd, err = joinCluster(ctx, o, clientAddr, peerLn.Addr(), log)
	if err != nil {
		c.stopEtcd = func() {}
		return err
	}
	if c.router, err = cluster.NewRouter(cluster.RouterConfig{
		Members: c.node, Store: st, Logger: log, Replicator: c.replicator, Peer: peerCfg, Pool: pool,
		Restored: restored, RestoreMargin: o.restoreMargin, // a warm restart pulls what changed
		// Deletes are remembered in 1/64 of the item memory, 1 MiB at least.
		Tombstones: tomb.Config{MaxBytes: max(1<<20, int64(o.memoryMB<<20)/64)},
		// After a pause, what the peer connections still hold was
		// sent before it: the senders timed out and went to the next
		// owner. Client connections stay: a client that gave up has
		// closed its own, and one still waiting wants its answer.
		// What was queued for the replicas predates what they took
		// over meanwhile.
		OnPause: func() {
			c.peerSrv.DropConns()
			c.replicator.Discard()
		},
	}); err != nil {
		return err
	}
	c.defers = append(c.defers, func() { c.router.Close() }) // after the server's connections are gone
	// Forwarded writes arrive on the peer port; their owner replicates
	// them from there.
	// One event loop (the peer cache is a server.AsyncCache too): a
	// node's peers batch their requests, a few connections each.
	if c.peerSrv, err = server.New(server.Config{MaxConns: o.maxConns, MaxItemSize: o.maxItemSize, ConnMemLimit: o.connMemLimit(), Logger: log, PeerExtensions: true, NoAdmin: true, EventLoop: eventLoop, Loops: 1, Watch: watch, DisableWatch: o.disableWatch}, c.router.PeerCache()); err != nil {
		return err
	}
	wg.Go(func() {
		// Peers that already see this node queue in the listen
		// backlog until it sees itself: before that it would answer
		// for shards it has not started to warm.
		waitInView(ctx, c.router, c.node.Name(), 10*time.Second)
		if err := c.peerSrv.Serve(peerLn); !errors.Is(err, server.ErrClosed) {
			log.Error("peer server stopped", "err", err)
			cancel()
		}
	})
	// The node and the router outlive the servers: on the way out this
	// node hands its shards off, and only then deregisters.
	nodeCtx, nodeCancel := context.WithCancel(context.Background())
	c.defers = append(c.defers, nodeCancel)
	c.leave = nodeCancel
	wg.Go(func() {
		if err := c.node.Run(nodeCtx); err != nil {
			log.Error("cluster membership stopped", "err", err)
			cancel()
		}
	})
	wg.Go(func() { c.router.Run(nodeCtx) })
	return nil
}
