package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/membership"
	"shoal/peer"
	"shoal/repl"
	"shoal/ring"
	"shoal/server"
	"shoal/store"
)

// replRig is an owner ("self") pushing through a running repl.Replicator
// to one replica ("p"), a router of its own whose peer port (PeerPort)
// is served over real TCP on loopback.
type replRig struct {
	rt, replica *Router
	st, pst     *store.Store
	rp          *repl.Replicator
	view        *membership.View
	applied     <-chan uint64 // the CAS of each replicated set the replica applied
	timer       *time.Timer
}

func startReplRig(tb testing.TB) *replRig {
	tb.Helper()
	pst := newStore(tb)
	r, err := ring.New(ring.Config{Shards: 16, Replicas: 2}, []string{"p", "self"}, 1)
	if err != nil {
		tb.Fatal(err)
	}
	view := &membership.View{Epoch: 1, Members: []etcdsync.Member{{Name: "p"}, {Name: "self", PeerAddr: "127.0.0.1:1"}}, Ring: r}
	pm := &namedMembers{fakeMembers{view: view, health: map[string]gossip.State{"self": gossip.Alive}}, "p"}
	replica, err := NewRouter(RouterConfig{Members: pm, Store: pst})
	if err != nil {
		tb.Fatal(err)
	}
	applied := make(chan uint64, 1024)
	_, view.Members[0].PeerAddr = serveCache(tb, server.Config{PeerExtensions: true, Dumps: replica.PeerPort(), Items: pst}, &signalCache{replica.PeerPort(), applied})
	replica.apply()
	tb.Cleanup(func() { replica.Close() })

	st := newStore(tb)
	fm := &fakeMembers{view: view, health: map[string]gossip.State{"p": gossip.Alive}}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: st, Replication: &repl.Config{Peer: peer.Config{Conns: 1}}, Peer: peer.Config{Conns: 1, RequestTimeout: time.Second}, DownFor: time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	rp := rt.Replicator()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rp.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; rp.Close() })
	rt.apply()
	tb.Cleanup(func() { rt.Close() })
	return &replRig{rt: rt, replica: replica, st: st, pst: pst, rp: rp, view: view, applied: applied, timer: time.NewTimer(time.Hour)}
}

// signalCache is a replica's PeerPort that tells the CAS of every
// replicated set it applied.
type signalCache struct {
	*PeerPort
	applied chan<- uint64
}

func (c *signalCache) Start(ctx context.Context, req *server.Request, done func(*server.Request)) bool {
	pending := c.PeerPort.Start(ctx, req, done) // a replicated write is never pending
	if req.Replica && req.Op == server.OpSet {
		var cas uint64
		if req.Set != nil {
			cas = req.Set.NewCAS
		}
		select {
		case c.applied <- cas:
		default:
		}
	}
	return pending
}

// keys returns n keys this rig's owner serves, as its primary.
func (g *replRig) keys(n int) [][]byte {
	var ks [][]byte
	for _, k := range ownedBy(g.view, "self", "bench", n) {
		ks = append(ks, []byte(k))
	}
	return ks
}

// setReplicated sets key on the owner and waits until the replica has
// applied that write (its CAS).
func (g *replRig) setReplicated(tb testing.TB, key, val []byte, opt *store.SetOptions) {
	res, it, err := routerSet(g.rt, context.Background(), key, val, opt)
	if res != store.Stored || err != nil {
		tb.Fatalf("set: %v %v", res, err)
	}
	g.timer.Reset(10 * time.Second) // (a time.After would allocate)
	defer g.timer.Stop()
	for {
		select {
		case cas := <-g.applied:
			if cas >= it.CAS {
				return
			}
		case <-g.timer.C:
			tb.Fatalf("replica never got %s", key)
		}
	}
}

// BenchmarkReplicatedSet: sets on the owner of keys with one replica,
// replicated over a real peer connection to the replica's peer port
// (PeerPort.replicaSet): the owner's set, its push, the replicator's
// send and the replica applying it. allocs/op counts all of them (one
// process). "each" waits for every set to reach the replica (latency);
// "window64" waits every 64 sets for the last one (throughput: the
// sender batches).
func BenchmarkReplicatedSet(b *testing.B) {
	g := startReplRig(b)
	keys := g.keys(64)
	val := make([]byte, 100)
	opt := &store.SetOptions{}
	for _, k := range keys { // connections dialled, links made
		g.setReplicated(b, k, val, opt)
	}
	for _, window := range []int{1, 64} {
		name := "each"
		if window > 1 {
			name = fmt.Sprintf("window%d", window)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[i%len(keys)]
				i++
				if i%window != 0 {
					if res, _, err := routerSet(g.rt, context.Background(), k, val, opt); res != store.Stored || err != nil {
						b.Fatalf("set: %v %v", res, err)
					}
					continue
				}
				g.setReplicated(b, k, val, opt)
			}
			b.StopTimer()
			for _, s := range g.rp.Stats() {
				if s.Dropped != 0 || s.Failures != 0 {
					b.Fatalf("replication stats %+v", s)
				}
			}
		})
	}
}
