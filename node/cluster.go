package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"shoal/cluster"
	"shoal/membership"
	"shoal/peer"
	"shoal/peerauth"
	"shoal/repl"
	"shoal/server"
	"shoal/tomb"
)

// joinCluster prepares this node's cluster membership (and the --dev etcd
// it needs). The returned function stops that etcd, if any.
func joinCluster(ctx context.Context, o Config, client, peer net.Addr, log *slog.Logger) (*membership.Node, func(), error) {
	stop := func() {}
	endpoints := splitList(o.Etcd)
	if o.Dev {
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

// clusterParts is what a cluster node runs besides its client port: the
// membership (node, its --dev etcd), the router, the peer port's server
// and the replicator. Its zero value is a standalone node's.
type clusterParts struct {
	node       *membership.Node
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
func (c *clusterParts) start(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, n *Node, batch *server.Batch) error {
	c.leave, c.stopEtcd = func() {}, func() {}
	o, log := n.cfg, n.log
	auth, err := peerAuth(o)
	if err != nil {
		return err
	}
	peerLn, err := listenPeer(o, n.lns[0].Addr(), auth, log)
	if err != nil {
		return err
	}
	c.defers = append(c.defers, func() { peerLn.Close() })
	c.node, c.stopEtcd, err = joinCluster(ctx, o, n.lns[0].Addr(), peerLn.Addr(), log)
	if err != nil {
		c.stopEtcd = func() {}
		return err
	}
	if c.router, err = newRouter(n, c.node, auth, batch); err != nil {
		return err
	}
	// The replicator outlives the servers: it stops after they do, so
	// the writes they applied last are still pushed; the router closes
	// first, after the servers' connections are gone.
	c.replicator = c.router.Replicator()
	replCtx, replCancel := context.WithCancel(context.Background())
	c.defers = append(c.defers, replCancel, func() { c.replicator.Close() }, func() { c.router.Close() })
	wg.Go(func() {
		if err := c.replicator.Run(replCtx); err != nil {
			log.Error("replication stopped", "err", err)
		}
	})
	// Forwarded writes arrive on the peer port; their owner replicates
	// them from there. One event loop (the peer cache's reads through
	// warming shards leave it): a node's peers batch their requests, a
	// few connections each.
	if c.peerSrv, err = server.New(server.Config{MaxConns: o.MaxConns, MaxItemSize: o.MaxItemSize, ConnMemLimit: o.ConnMemLimit(), Logger: log, PeerExtensions: true, NoAdmin: true, EventLoop: n.eventLoop, NoIOUring: o.NoIOUring, Loops: 1, Watch: n.watch, DisableWatch: o.DisableWatch, Items: n.st, Dumps: c.router.PeerPort()}, c.router.PeerPort()); err != nil {
		return err
	}
	// After a pause, what the peer connections still hold was sent
	// before it: the senders timed out and went to the next owner. Client
	// connections stay: a client that gave up has closed its own, and one
	// still waiting wants its answer.
	c.router.RegisterOnPause(c.peerSrv.DropConns)
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

// newRouter makes the router of n's store over membership m, with its
// replicator. One client per peer, shared by forwarding and replication:
// their requests share connections and writes; every dialled peer
// connection authenticates with auth, when set. The peer readers send
// the client replies their completions leave in batch.
func newRouter(n *Node, m *membership.Node, auth *peerauth.Auth, batch *server.Batch) (*cluster.Router, error) {
	peerCfg := peer.Config{Logger: n.log, RepliesHandled: batch.Send}
	if auth != nil {
		peerCfg.Handshake = auth.Client
	}
	pool := peer.NewPool(peerCfg)
	return cluster.NewRouter(cluster.RouterConfig{
		Members: m, Store: n.st, Logger: n.log, Peer: peerCfg, Pool: pool,
		Replication: &repl.Config{Logger: n.log, Peer: peerCfg, Pool: pool},
		Restored:    n.restored, RestoreMargin: n.cfg.RestoreMargin, // a warm restart pulls what changed
		// Deletes are remembered in 1/64 of the item memory, 1 MiB at least.
		Tombstones: tomb.Config{MaxBytes: max(1<<20, int64(n.cfg.MemoryMB<<20)/64)},
	})
}
