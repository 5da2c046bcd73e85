package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/peer"
	"shoal/repl"
	"shoal/server"
	"shoal/store"
)

// fullNode is an in-process node wired as main wires it: a client port
// served through the router, a peer port served by PeerPort with the peer
// extensions, a replicator, and the router's Run (warm-up, pause ticks).
type fullNode struct {
	name         string
	node         *membership.Node
	router       *Router
	st           *store.Store
	addr, peerAt string // peerAt: the address the members dial (the proxy's, with one)
	proxy        *proxy
	repl         *repl.Replicator
}

func startFullNode(t *testing.T, etcd *testetcd.Server, name string) *fullNode {
	return startFullNodeWith(t, etcd, name, fullOpts{})
}

// fullOpts varies a fullNode.
type fullOpts struct {
	// proxy: the members reach the peer port through a proxy the test
	// can freeze (fullNode.proxy).
	proxy bool
	// replTimeout bounds a replication push (zero: the peer default).
	replTimeout time.Duration
	// hold is RouterConfig.MultiGetHold (zero: its default).
	hold int64
}

func startFullNodeWith(t *testing.T, etcd *testetcd.Server, name string, o fullOpts) *fullNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fn := &fullNode{name: name, addr: ln.Addr().String(), peerAt: pln.Addr().String()}
	if o.proxy {
		fn.proxy = startProxy(t, fn.peerAt)
		fn.peerAt = fn.proxy.addr
	}
	fn.node, err = membership.New(membership.Config{
		Etcd: etcdsync.Config{
			Endpoints: etcd.Endpoints(),
			Self:      etcdsync.Member{Name: name, Instance: name + "-1", ClientAddr: fn.addr, PeerAddr: fn.peerAt},
			Settings:  etcdsync.Settings{Replicas: 2, Shards: 64, VNodes: 1},
			LeaseTTL:  2 * time.Second,
		},
		Gossip: gossip.Config{BindAddr: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fn.st, err = store.New(store.Config{MemoryLimit: 8 << 20, HybridCAS: true}); err != nil {
		t.Fatal(err)
	}
	replication := &repl.Config{Peer: peer.Config{RequestTimeout: o.replTimeout}, RetryAfter: o.replTimeout}
	if fn.router, err = NewRouter(RouterConfig{Members: fn.node, Store: fn.st, Replication: replication, Peer: peer.Config{RequestTimeout: o.replTimeout}, DownFor: o.replTimeout, MultiGetHold: o.hold}); err != nil {
		t.Fatal(err)
	}
	rp := fn.router.Replicator()
	fn.repl = rp
	// Both ports on event loops, as main serves them.
	srv, err := server.New(server.Config{EventLoop: true, Loops: 1, Items: fn.st}, fn.router)
	if err != nil {
		t.Fatal(err)
	}
	psrv, err := server.New(server.Config{PeerExtensions: true, EventLoop: true, Loops: 1, Dumps: fn.router.PeerPort(), Items: fn.st}, fn.router.PeerPort())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runs := []func() error{
		func() error { return fn.node.Run(ctx) },
		func() error { return fn.st.Run(ctx) },
		func() error { return fn.router.Run(ctx) },
		func() error { return rp.Run(ctx) },
		func() error { return srv.Serve(ln) },
		func() error { return psrv.Serve(pln) },
	}
	done := make(chan error, len(runs))
	for _, run := range runs {
		go func() { done <- run() }()
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		psrv.Shutdown(sctx)
		cancel()
		for range runs {
			if err := <-done; err != nil && !errors.Is(err, server.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}
		rp.Close()
		fn.router.Close()
	})
	return fn
}

// waitMembers waits until every node routes by the same epoch with all of
// them alive.
func waitMembers(t *testing.T, nodes ...*fullNode) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "the nodes to converge", func() bool {
		var epoch int64
		for _, a := range nodes {
			v := a.router.View()
			if v == nil || len(v.Members) != len(nodes) || (epoch != 0 && v.Epoch != epoch) {
				return false
			}
			epoch = v.Epoch
			for _, b := range nodes {
				if a != b && a.node.Health(b.name) != gossip.Alive {
					return false
				}
			}
		}
		return true
	})
}

func waitWarm(t *testing.T, n *fullNode) {
	t.Helper()
	testutil.WaitUntil(t, 10*time.Second, n.name+" to finish warming", func() (bool, string) {
		active := n.router.Counters().WarmShards
		return active == 0, fmt.Sprintf("%d shards still warming", active)
	})
}

// TestWarmJoin: a node that joins a cluster with data answers for its new
// shards at once with no miss (read-through while it pulls), then holds
// its copy of every key it owns.
func TestWarmJoin(t *testing.T) {
	t.Parallel() // an etcd and nodes of its own
	etcd := testetcd.Start(t)
	a := startFullNode(t, etcd, "a")
	waitMembers(t, a)
	ca := client(a.addr)
	const n = 300
	for i := range n {
		k := fmt.Sprintf("wj-%d", i)
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("v-" + k), Flags: uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	cb := client(b.addr)
	for i := range n {
		k := fmt.Sprintf("wj-%d", i)
		it, err := cb.Get(k)
		if err != nil || string(it.Value) != "v-"+k || it.Flags != uint32(i) {
			t.Fatalf("get %s through the joining node: %+v, %v", k, it, err)
		}
	}
	waitWarm(t, b)
	// With two nodes and two replicas, b owns every shard: its own store
	// holds every key.
	for i := range n {
		k := fmt.Sprintf("wj-%d", i)
		if _, _, res := b.st.Get([]byte(k), &store.GetOptions{NoBump: true}, nil); res != store.Hit {
			t.Fatalf("%s not in b's store after warm-up (pulled %d, read through %d)", k, b.router.Counters().Pulled, b.router.Counters().ReadThrough)
		}
	}
}

// TestWarmAfterPause: a node that notices it was paused drops what it held
// and serves what the others hold now, never its older value.
func TestWarmAfterPause(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	a := startFullNode(t, etcd, "a")
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	waitWarm(t, a)
	waitWarm(t, b)
	ca := client(a.addr)
	const n = 100
	for i := range n {
		k := fmt.Sprintf("wp-%d", i)
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}
	// While a "was away", b took newer writes (straight into its store, as
	// a stand-in owner would) and a delete.
	for i := range n {
		k := []byte(fmt.Sprintf("wp-%d", i))
		// Both copies in place: no push of "old" is still on its way.
		for _, n := range []*fullNode{a, b} {
			testutil.WaitFor(t, 5*time.Second, n.name+" to hold "+string(k), func() bool { _, _, res := n.st.Get(k, nil, nil); return res == store.Hit })
		}
		if i == 0 {
			b.router.ver.DeleteVersioned(k, nil, 0) // as an owner deletes: with a tombstone
			continue
		}
		b.st.Set(k, []byte("new"), &store.SetOptions{})
	}
	// The last tick was long ago: a pause, noticed by the next request or
	// the next tick, whichever comes first.
	a.router.tk.NotePause()
	ca.Get("wp-1")
	testutil.WaitFor(t, 5*time.Second, "a pause on a's router", func() bool { return a.router.Counters().Pauses == 1 })
	for i := range n {
		k := fmt.Sprintf("wp-%d", i)
		it, err := ca.Get(k)
		if i == 0 {
			if !errors.Is(err, memcache.ErrCacheMiss) {
				t.Fatalf("deleted %s: %+v, %v", k, it, err)
			}
			continue
		}
		if err != nil || string(it.Value) != "new" {
			t.Fatalf("get %s through a after its pause: %+v, %v", k, it, err)
		}
	}
	waitWarm(t, a)
	if _, v, res := a.st.Get([]byte("wp-0"), nil, nil); res == store.Hit {
		t.Fatalf("a's store still holds the deleted wp-0 (%q) after warm-up", v)
	}
	for i := 1; i < n; i++ {
		k := []byte(fmt.Sprintf("wp-%d", i))
		if _, v, res := a.st.Get(k, nil, nil); res != store.Hit || string(v) != "new" {
			vw := a.node.View()
			t.Fatalf("a's store holds %q (%v) for %s after warm-up (owners %v; pulled %d dropped %d read through %d)", v, res, k,
				vw.Ring.Owners(vw.Ring.Shard(k)), a.router.Counters().Pulled, a.router.Counters().Dropped, a.router.Counters().ReadThrough)
		}
	}
}

// client is a gomemcache client of addr that waits 5 s for a reply, not
// its default 500 ms: a whole-repo run loads the machine (a set timed
// out in TestViewChangeOwes).
func client(addr string) *memcache.Client {
	c := memcache.New(addr)
	c.Timeout = 5 * time.Second
	return c
}
