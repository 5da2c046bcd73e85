package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"shoal/clienttls"
	"shoal/cluster"
	"shoal/membership"
	"shoal/monitor"
	"shoal/repl"
	"shoal/server"
	"shoal/store"
)

// Version is shoal's own version (server.Version is memcached's it speaks).
const Version = "0.1.0"

// drainFor bounds the wait for the replication queues at shutdown: a
// replica that does not answer is given up on in about a second (three
// tries), and the process must not wait out the stop's 10 s for it.
const drainFor = 2 * time.Second

// ErrGracefulStop, as the cause of Run's context ending, asks for a warm
// restart: the memory file (-e) is saved on the way out.
var ErrGracefulStop = errors.New("graceful stop")

// Node is one shoal process's parts: the store, the client port's server
// and, in a cluster, the membership, the router, the peer port and the
// replicator (clusterParts).
type Node struct {
	cfg       Config
	log       *slog.Logger
	sasl      server.Authenticator // -S's users, nil without -S
	eventLoop bool                 // event loops serve the client port
	threads   int                  // how many
	// watch is the node's one watch: its store's evictions, and the
	// events of its client and peer connections.
	watch     *server.Watch
	st        *store.Store
	restored  time.Time // when the restored memory file was saved; zero if none
	lns       []net.Listener
	clientTLS *clienttls.TLS // nil without -Z
	httpLn    net.Listener   // nil without --http
	pidFile   string         // the pid file New wrote, for release to remove
	graceful  atomic.Bool    // a client sent "shutdown graceful"
}

// New checks cfg, opens the store and listens on the client (and HTTP)
// addresses; Run serves them. What New made, Run releases.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, watch: new(server.Watch)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if n.sasl, err = checkModes(cfg); err != nil {
		return nil, err
	}
	n.eventLoop, n.threads = loops(cfg)
	if n.st, n.restored, err = openStore(cfg, n.log, n.watch.Evicted); err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		n.release()
		return nil, err
	}
	return n, nil
}

// listen writes the pid file and opens the listeners: the client port's
// (with TLS under -Z) and --http's. What it made before failing, release
// closes.
func (n *Node) listen() error {
	cfg := n.cfg
	if cfg.PIDFile != "" {
		if err := os.WriteFile(cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0644); err != nil {
			return fmt.Errorf("could not open the pid file %s: %w", cfg.PIDFile, err)
		}
		n.pidFile = cfg.PIDFile
	}
	var err error
	if n.lns, err = listen(cfg); err != nil {
		return err
	}
	if err := writePortFile(os.Getenv("MEMCACHED_PORT_FILENAME"), n.lns); err != nil {
		return err
	}
	if n.clientTLS, err = serveTLS(cfg, n.lns); err != nil {
		return err
	}
	if cfg.HTTPAddr != "" {
		if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
	}
	return nil
}

// release closes the listeners and removes the pid file New wrote (not
// one it failed to write: that may be another process's).
func (n *Node) release() {
	if n.httpLn != nil {
		n.httpLn.Close()
	}
	closeAll(n.lns)
	if n.pidFile != "" {
		os.Remove(n.pidFile)
	}
}

// Run serves until ctx ends or a client sends shutdown (with -A), then
// stops in order (stopServing) and releases everything; with -e, a stop
// whose cause is ErrGracefulStop, or "shutdown graceful", saves the store
// for a warm restart. Run is called once.
func (n *Node) Run(ctx context.Context) error {
	defer n.release()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Stop in order: every goroutine (the cluster node deregisters through
	// etcd on its way out), then the --dev etcd; the store is saved for a
	// warm restart once nothing uses it.
	stopEtcd := func() {}
	defer func() {
		cancel()
		wg.Wait()
		stopEtcd()
		if n.cfg.MemoryFile != "" && (n.graceful.Load() || errors.Is(context.Cause(parent), ErrGracefulStop)) {
			saveStore(n.st, n.cfg.MemoryFile, n.log)
		}
	}()
	onShutdown := func(graceful bool) {
		n.graceful.Store(graceful)
		cancel()
	}
	scfg, err := n.clientConfig(onShutdown)
	if err != nil {
		return err
	}
	// The client port's replies that peer readers complete go out
	// together (server.Batch): made before the peer clients that call its
	// Send and the server that fills it, closed after both.
	batch := server.NewBatch(server.BatchConfig{NoIOUring: n.cfg.NoIOUring, Logger: n.log})
	defer batch.Close()
	var cl clusterParts // zero when standalone
	defer cl.close()
	cache := server.Cache(server.Local{Store: n.st})
	if n.cfg.Clustered() {
		err := cl.start(ctx, cancel, &wg, n, batch)
		stopEtcd = cl.stopEtcd // joined, it has an etcd to stop even on an error
		if err != nil {
			return err
		}
		scfg.Cluster = cluster.Info{Node: cl.node, Router: cl.router}
		scfg.Items = n.st
		scfg.Batch = batch
		cache = cl.router
	}
	srv, err := server.New(scfg, cache)
	if err != nil {
		return err
	}
	mon, err := n.serveHTTP(&wg, srv, cl.node, cl.router)
	if err != nil {
		return err
	}
	wg.Go(func() {
		if err := n.st.Run(ctx); err != nil {
			n.log.Error("store stopped", "err", err)
		}
	})
	return n.serve(ctx, cancel, &wg, srv, &cl, mon)
}

// serve serves the client port on wg until ctx ends or a listener fails,
// then stops the servers in order (stopServing).
func (n *Node) serve(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, srv *server.Server, cl *clusterParts, mon *monitor.Monitor) error {
	if cl.node != nil {
		// Clients queue in the listen backlog until the router routes by
		// a view with this node: before it, every key would look local,
		// and missing.
		waitInView(ctx, cl.router, cl.node.Name(), 10*time.Second)
	}
	errc := make(chan error, len(n.lns))
	addrs := make([]net.Addr, len(n.lns))
	for i, ln := range n.lns {
		addrs[i] = ln.Addr()
		wg.Go(func() { errc <- srv.Serve(ln) })
	}
	n.log.Info("shoal serving", "addrs", fmt.Sprint(addrs), "memory_mb", n.cfg.MemoryMB, "version", Version)
	if n.cfg.Ready != nil {
		n.cfg.Ready(addrs)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		cancel()
	}
	n.log.Info("shoal stopping")
	stopServing(n.log, srv, cl.router, cl.leaveCluster, cl.peerSrv, cl.replicator, mon)
	cancel()
	if serveErr != nil && !errors.Is(serveErr, server.ErrClosed) {
		return serveErr
	}
	return nil
}

// serveHTTP serves /metrics, /cluster and the status page on wg, with
// --http; node and router are nil on a standalone node, which is then
// named by its client address.
func (n *Node) serveHTTP(wg *sync.WaitGroup, srv *server.Server, node *membership.Node, router *cluster.Router) (*monitor.Monitor, error) {
	if n.httpLn == nil {
		return nil, nil
	}
	cfg := monitor.Config{Node: n.lns[0].Addr().String(), Version: Version, Stats: srv, Logger: n.log}
	if node != nil {
		cfg.Node, cfg.Cluster = node.Name(), node
	}
	if router != nil {
		cfg.Peers = router
	}
	mon, err := monitor.New(cfg)
	if err != nil {
		return nil, err
	}
	wg.Go(func() {
		if err := mon.Serve(n.httpLn); err != nil {
			n.log.Error("http server stopped", "err", err)
		}
	})
	n.log.Info("http serving", "addr", n.httpLn.Addr().String(), "endpoints", "/metrics /cluster /")
	return mon, nil
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
