package cluster

import (
	"context"
	"testing"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/ring"
	"shoal/server"
	"shoal/store"
)

// TestRouterLocalAllocs: a get and a set this node serves, routed once,
// allocate nothing, through the synchronous Cache methods and the event
// loop's Start alike.
func TestRouterLocalAllocs(t *testing.T) {
	r, err := ring.New(ring.Config{Shards: 16, Replicas: 1}, []string{"self"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMembers{view: &membership.View{Epoch: 1, Members: []etcdsync.Member{{Name: "self"}}, Ring: r}, health: map[string]gossip.State{}}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: newStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.apply()
	key, val, dst := []byte("key"), []byte("value"), make([]byte, 0, 64)
	opt := &store.SetOptions{}
	routerSet(rt, context.Background(), key, val, opt) // "Start get" may run first
	setReq := &server.Request{Op: server.OpSet, Key: key, Value: val, Set: opt}
	getReq := &server.Request{Op: server.OpGet, Key: key, Dst: dst}
	done := func(req *server.Request) { t.Errorf("Start of a local key's %v went pending", req.Op) }
	for name, op := range map[string]func(){
		"waiting set": func() { routerSet(rt, context.Background(), key, val, opt) },
		"waiting get": func() { routerGet(rt, context.Background(), key, nil, dst) },
		"Start set": func() {
			if rt.Start(context.Background(), setReq, done) || setReq.Res != store.Stored {
				t.Errorf("pending, or %v", setReq.Res)
			}
		},
		"Start get": func() {
			if rt.Start(context.Background(), getReq, done) || getReq.Res != store.Hit {
				t.Errorf("pending, or %v", getReq.Res)
			}
		},
	} {
		if n := testing.AllocsPerRun(100, op); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// TestRouterReplicatedAllocs: a set this node serves as the primary of a
// key with a live replica allocates nothing, pushed through a running
// repl.Replicator over a real peer connection: through the synchronous
// walk (serve), the event loop's Start and the peer port's set (a write
// forwarded here), and, all the way to the replica applying it
// (PeerPort.replicaSet), the whole round trip.
func TestRouterReplicatedAllocs(t *testing.T) {
	if testutil.Race {
		t.Skip("counts allocations across goroutines, which the race detector's synchronization makes")
	}
	g := startReplRig(t)
	key := g.keys(1)[0]
	val, opt := []byte("value"), &store.SetOptions{}
	g.setReplicated(t, key, val, opt) // the connections dialled, the link made
	pc := g.rt.PeerPort()
	setReq := &server.Request{Op: server.OpSet, Key: key, Value: val, Set: opt}
	done := func(*server.Request) { t.Error("Start of a local key's set went pending") }
	for _, c := range []struct {
		name string
		op   func()
	}{
		{"waiting set", func() { routerSet(g.rt, context.Background(), key, val, opt) }},
		{"Start set", func() {
			if g.rt.Start(context.Background(), setReq, done) || setReq.Res != store.Stored {
				t.Errorf("pending, or %v", setReq.Res)
			}
		}},
		{"forwarded set", func() { pc.set(context.Background(), key, val, opt) }},
		{"Set until the replica applied it", func() { g.setReplicated(t, key, val, opt) }},
	} {
		// repl reuses its value buffers, once its free list holds as many
		// as are in flight at once: how many a run has depends on when
		// the sender runs (AllocsPerRun runs on one P), so a run that
		// had more in flight than any before allocates the difference.
		// A steady state that allocates shows in every run.
		var n float64
		for range 5 {
			if n = testing.AllocsPerRun(100, c.op); n == 0 {
				break
			}
			g.setReplicated(t, key, val, opt)
		}
		if n != 0 {
			t.Errorf("%s: %v allocations, want 0", c.name, n)
		}
	}
	g.setReplicated(t, key, []byte("last"), opt)
	if _, v, res := g.pst.Get(key, nil, nil); res != store.Hit || string(v) != "last" {
		t.Fatalf("replica holds %q (%v), want the last write", v, res)
	}
	for _, s := range g.rp.Stats() {
		if s.Dropped != 0 || s.Failures != 0 {
			t.Errorf("replication stats %+v, want no drops or failures", s)
		}
	}
}

// TestRouterForwardedAllocs: a get and a set whose key another member
// serves, sent by Start as the event loop sends them (GetAsync, SetAsync)
// and completed on the peer reader, allocate nothing for the whole round
// trip: this router, its peer connection, and the owner's peer port
// serving them, all in this process.
func TestRouterForwardedAllocs(t *testing.T) {
	if testutil.Race {
		t.Skip("counts allocations across goroutines, which the race detector's synchronization makes")
	}
	g := startReplRig(t)
	key := []byte(ownedBy(g.view, "p", "fwd", 1)[0])
	ch := make(chan struct{}, 1)
	done := func(*server.Request) { ch <- struct{}{} }
	forwarded := 0
	run := func(req *server.Request) {
		if g.rt.Start(context.Background(), req, done) {
			g.rt.Flush()
			<-ch
			forwarded++
		}
	}
	dst := make([]byte, 0, 64)
	set := &server.Request{Op: server.OpSet, Key: key, Value: []byte("value"), Set: &store.SetOptions{}}
	get := &server.Request{Op: server.OpGet, Key: key, Dst: dst}
	run(set) // the connection dialled
	for _, c := range []struct {
		name string
		req  *server.Request
		want store.Result
	}{{"set", set, store.Stored}, {"get", get, store.Hit}} {
		forwarded = 0
		n := testing.AllocsPerRun(100, func() {
			get.Dst = dst[:0]
			if run(c.req); c.req.Res != c.want || c.req.Err != nil {
				t.Fatalf("%s: %v %v, want %v", c.name, c.req.Res, c.req.Err, c.want)
			}
		})
		if forwarded == 0 {
			t.Fatalf("%s: Start served p's key here", c.name)
		}
		if n != 0 {
			t.Errorf("forwarded %s: %v allocations, want 0", c.name, n)
		}
	}
	if _, v, res := g.pst.Get(key, nil, nil); res != store.Hit || string(v) != "value" {
		t.Errorf("the owner holds %q (%v)", v, res)
	}
}
