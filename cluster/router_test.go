package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/protocol"
	"shoal/ring"
	"shoal/server"
	"shoal/store"
)

var _ server.Cache = (*Router)(nil)

// routedNode is one in-process cluster node: membership, store, router and
// a connection server on its own loopback port.
type routedNode struct {
	node   *membership.Node
	router *Router
	st     *store.Store
	addr   string
}

func startRoutedNode(t *testing.T, etcd *testetcd.Server, name string, scfg server.Config, opts ...func(*membership.Config)) *routedNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	cfg := membership.Config{
		Etcd: etcdsync.Config{
			Endpoints: etcd.Endpoints(),
			Self:      etcdsync.Member{Name: name, Instance: name + "-1", ClientAddr: addr, PeerAddr: addr},
			Settings:  etcdsync.Settings{Replicas: 2, Shards: 64, VNodes: 1},
			LeaseTTL:  2 * time.Second,
		},
		Gossip: gossip.Config{BindAddr: "127.0.0.1:0"},
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := membership.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{MemoryLimit: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRouter(RouterConfig{Members: n, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	// One server takes both the clients' requests and the other node's
	// forwarded ones (its address is the member's peer address), which
	// carry shoal's peer extensions (mg A, the room a value may take).
	scfg.Items, scfg.PeerExtensions = st, true
	srv, err := server.New(scfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 4)
	go func() { done <- n.Run(ctx) }()
	go func() { done <- st.Run(ctx) }()
	go func() { done <- applyViews(ctx, rt, n) }()
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
		for range 4 {
			if err := <-done; err != nil && !errors.Is(err, server.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}
		rt.Close()
	})
	return &routedNode{node: n, router: rt, st: st, addr: addr}
}

// applyViews applies n's views to rt as Router.Run does, for a rig that
// tests routing alone: with no peer port, Run's warm-up could not pull.
func applyViews(ctx context.Context, rt *Router, n *membership.Node) error {
	for {
		rt.apply()
		select {
		case <-ctx.Done():
			return nil
		case <-n.Changed():
		}
	}
}

// TestRouterTwoNodes: whatever node a client talks to, every key reaches
// its owner: values set through one node read back through the other, a
// cas token from one node works through the other, counters move through
// both. Under both drivers of the client port: a goroutine per connection,
// and event loops (the router's Start completing on the peer reader).
func TestRouterTwoNodes(t *testing.T) {
	t.Parallel() // an etcd and nodes of its own
	for name, cfg := range map[string]server.Config{"goroutines": {}, "event loops": {EventLoop: true}} {
		t.Run(name, func(t *testing.T) { testRouterTwoNodes(t, cfg) })
	}
}

func testRouterTwoNodes(t *testing.T, scfg server.Config) {
	etcd := testetcd.Start(t)
	a := startRoutedNode(t, etcd, "a", scfg)
	b := startRoutedNode(t, etcd, "b", scfg)
	testutil.WaitFor(t, 20*time.Second, "the two nodes to converge", func() bool {
		va, vb := a.router.View(), b.router.View() // the views they route by
		return va != nil && vb != nil && va.Epoch == vb.Epoch && len(va.Members) == 2 &&
			a.node.Health("b") == gossip.Alive && b.node.Health("a") == gossip.Alive
	})
	ca, cb := client(a.addr), client(b.addr)
	clients := map[string]*memcache.Client{"a": ca, "b": cb}
	other := map[string]*memcache.Client{"a": cb, "b": ca}
	const keys = 40
	for from, c := range clients {
		t.Run("set via "+from, func(t *testing.T) {
			for i := range keys {
				k := fmt.Sprintf("%s-key-%d", from, i)
				if err := c.Set(&memcache.Item{Key: k, Value: []byte(k + "-v"), Flags: uint32(i), Expiration: 300}); err != nil {
					t.Fatalf("set %s: %v", k, err)
				}
				it, err := other[from].Get(k)
				if err != nil || string(it.Value) != k+"-v" || it.Flags != uint32(i) {
					t.Fatalf("get %s through the other node: %+v, %v", k, it, err)
				}
			}
		})
		t.Run("cas via the other than "+from, func(t *testing.T) {
			for i := range keys {
				k := fmt.Sprintf("%s-key-%d", from, i)
				it, err := c.Get(k) // gets: carries the CAS token
				if err != nil {
					t.Fatal(err)
				}
				it.Value = []byte("swapped")
				if err := other[from].CompareAndSwap(it); err != nil {
					t.Fatalf("cas %s through the other node: %v", k, err)
				}
				if err := other[from].CompareAndSwap(it); !errors.Is(err, memcache.ErrCASConflict) {
					t.Fatalf("stale cas %s: %v, want a conflict", k, err)
				}
				if got, err := c.Get(k); err != nil || string(got.Value) != "swapped" {
					t.Fatalf("after cas %s: %+v, %v", k, got, err)
				}
			}
		})
	}
	t.Run("incr through both", func(t *testing.T) {
		for i := range keys {
			k := fmt.Sprintf("counter-%d", i)
			if err := ca.Set(&memcache.Item{Key: k, Value: []byte("10")}); err != nil {
				t.Fatal(err)
			}
			if v, err := ca.Increment(k, 5); err != nil || v != 15 {
				t.Fatalf("incr %s via a: %d, %v", k, v, err)
			}
			if v, err := cb.Increment(k, 0); err != nil || v != 15 {
				t.Fatalf("incr %s 0 via b: %d, %v", k, v, err)
			}
			if v, err := cb.Decrement(k, 3); err != nil || v != 12 {
				t.Fatalf("decr %s via b: %d, %v", k, v, err)
			}
			if err := cb.Touch(k, 100); err != nil {
				t.Fatalf("touch %s via b: %v", k, err)
			}
			if err := ca.Delete(k); err != nil {
				t.Fatalf("delete %s via a: %v", k, err)
			}
			if _, err := cb.Get(k); !errors.Is(err, memcache.ErrCacheMiss) {
				t.Fatalf("get %s after delete: %v", k, err)
			}
		}
	})
	t.Run("non-numeric through both", func(t *testing.T) {
		// Whichever node owns a key, the client reads memcached's line:
		// the forwarding node turns the owner's into the same one.
		for i := range keys {
			k := fmt.Sprintf("text-%d", i)
			if err := ca.Set(&memcache.Item{Key: k, Value: []byte("abc")}); err != nil {
				t.Fatal(err)
			}
			for _, addr := range []string{a.addr, b.addr} {
				for _, req := range []string{"incr " + k + " 1\r\n", "ma " + k + "\r\n"} {
					if got := rawExchange(t, addr, req, len(protocol.ReplyNonNumeric)); got != protocol.ReplyNonNumeric {
						t.Fatalf("%q via %s: %q", req, addr, got)
					}
				}
			}
		}
	})
	t.Run("multi-get through both", func(t *testing.T) {
		const n = 200
		var line strings.Builder
		line.WriteString("get")
		var want strings.Builder
		mkeys := make([]string, 0, n)
		for i := range n {
			k := fmt.Sprintf("multi-%d", i)
			mkeys = append(mkeys, k)
			fmt.Fprintf(&line, " %s", k)
			if i%7 == 3 {
				continue // a miss
			}
			if err := ca.Set(&memcache.Item{Key: k, Value: []byte(k + "-v"), Flags: uint32(i)}); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&want, "VALUE %s %d %d\r\n%s-v\r\n", k, i, len(k)+2, k)
		}
		line.WriteString(" multi-1 multi-3 multi-1\r\n") // duplicates and a miss
		want.WriteString("VALUE multi-1 1 9\r\nmulti-1-v\r\nVALUE multi-1 1 9\r\nmulti-1-v\r\nEND\r\n")
		for name, c := range clients {
			got, err := c.GetMulti(mkeys)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n-n/7-1 {
				t.Errorf("via %s: %d hits", name, len(got))
			}
			for i, k := range mkeys {
				it, ok := got[k]
				if ok != (i%7 != 3) || ok && (string(it.Value) != k+"-v" || it.Flags != uint32(i)) {
					t.Fatalf("via %s: %s = %+v, %v", name, k, it, ok)
				}
			}
			addr := a.addr
			if name == "b" {
				addr = b.addr
			}
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, line.String()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, want.Len())
			if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != want.String() {
				t.Fatalf("raw get via %s: %v\n%q\nwant\n%q", name, err, buf, want.String())
			}
		}
	})
	for name, n := range map[string]*routedNode{"a": a, "b": b} {
		ps := n.router.PeerStats()
		if len(ps) != 1 || ps[0].Forwarded == 0 || ps[0].Failures != 0 {
			t.Errorf("%s: peer stats %+v, want forwarded requests and no failures", name, ps)
		}
	}
}

// fakeMembers is a settable view and health; changed, when not nil,
// is its Changed signal.
type fakeMembers struct {
	view    *membership.View
	health  map[string]gossip.State
	changed chan struct{}
}

func (f *fakeMembers) View() *membership.View          { return f.view }
func (f *fakeMembers) Health(name string) gossip.State { return f.health[name] }
func (f *fakeMembers) Name() string                    { return "self" }
func (f *fakeMembers) Changed() <-chan struct{}        { return f.changed }
func (f *fakeMembers) Lapses() uint64                  { return 0 }
func (f *fakeMembers) Lapse() etcdsync.Lapse           { return etcdsync.Lapse{} }

// TestRouterFailover: an owner that refuses connections is skipped (and
// then marked down) in favour of the next owner; with no owner left a
// write fails and a read misses. No view yet means local service.
func TestRouterFailover(t *testing.T) {
	gone := testutil.FreeAddr(t) // nothing listens here: connects are refused
	members := []etcdsync.Member{{Name: "gone", PeerAddr: gone}, {Name: "self"}}
	ringOf := func(replicas int) *membership.View {
		r, err := ring.New(ring.Config{Shards: 16, Replicas: replicas}, []string{"gone", "self"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return &membership.View{Epoch: int64(replicas), Members: members, Ring: r}
	}
	// keyOwnedBy finds a key whose primary is owner.
	keyOwnedBy := func(v *membership.View, owner string) []byte {
		for i := 0; ; i++ {
			k := fmt.Appendf(nil, "k%d", i)
			if v.Ring.Primary(v.Ring.Shard(k)) == owner {
				return k
			}
		}
	}
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMembers{health: map[string]gossip.State{"gone": gossip.Alive}}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	t.Run("no view serves locally", func(t *testing.T) {
		if res, _, err := routerSet(rt, context.Background(), []byte("early"), []byte("v"), &store.SetOptions{}); res != store.Stored || err != nil {
			t.Fatalf("set: %v %v", res, err)
		}
		if _, v, res := routerGet(rt, context.Background(), []byte("early"), nil, nil); res != store.Hit || string(v) != "v" {
			t.Fatalf("get: %v %q", res, v)
		}
	})
	fm.view = ringOf(2)
	rt.apply() // as Run would, which this test does not run
	k := keyOwnedBy(fm.view, "gone")
	t.Run("next owner takes over", func(t *testing.T) {
		if res, _, err := routerSet(rt, context.Background(), k, []byte("v"), &store.SetOptions{}); res != store.Stored || err != nil {
			t.Fatalf("set: %v %v", res, err)
		}
		if _, v, res := routerGet(rt, context.Background(), k, nil, nil); res != store.Hit || string(v) != "v" {
			t.Fatalf("get: %v %q", res, v)
		}
		ps := rt.PeerStats()
		if len(ps) != 1 || ps[0].Failures != 1 || !ps[0].Down {
			t.Fatalf("peer stats %+v: want one failure, then skipped as down", ps)
		}
	})
	fm.view = ringOf(1)
	rt.apply()
	k = keyOwnedBy(fm.view, "gone")
	t.Run("no owner left", func(t *testing.T) {
		fm.health["gone"] = gossip.Dead
		if _, _, err := routerSet(rt, context.Background(), k, []byte("v"), &store.SetOptions{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("set: %v, want ErrUnavailable", err)
		}
		if _, _, res := routerGet(rt, context.Background(), k, nil, nil); res != store.Miss {
			t.Fatalf("get: %v, want a miss", res)
		}
		if _, _, _, err := routerArith(rt, context.Background(), k, &store.ArithOptions{Delta: 1}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("incr: %v, want ErrUnavailable", err)
		}
	})
}

// TestRouterMultiGetFailover: a multi-get batch whose owner refuses the
// connection goes to each key's next owner, or is a miss when none is left;
// the hits still come in key order.
func TestRouterMultiGetFailover(t *testing.T) {
	gone := testutil.FreeAddr(t)
	members := []etcdsync.Member{{Name: "gone", PeerAddr: gone}, {Name: "self"}}
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for i := range 40 {
		k := fmt.Appendf(nil, "k%d", i)
		keys = append(keys, k)
		if i%5 != 4 {
			st.Set(k, append(k, "-v"...), &store.SetOptions{Flags: uint32(i)})
		}
	}
	keys = append(keys, keys[0], keys[4]) // duplicates of a hit and a miss
	src := func(i int) int {              // the first index of keys[i]
		if i >= 40 {
			return []int{0, 4}[i-40]
		}
		return i
	}
	for name, tc := range map[string]struct {
		replicas int
		hits     func(v *membership.View, i int) bool // key i is expected back
	}{
		"next owner takes the group": {2, func(_ *membership.View, i int) bool { return i%5 != 4 }},
		"no owner left is a miss": {1, func(v *membership.View, i int) bool {
			return i%5 != 4 && v.Ring.Primary(v.Ring.Shard(keys[i])) == "self"
		}},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := ring.New(ring.Config{Shards: 16, Replicas: tc.replicas}, []string{"gone", "self"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			v := &membership.View{Epoch: 1, Members: members, Ring: r}
			fm := &fakeMembers{view: v, health: map[string]gossip.State{"gone": gossip.Alive}}
			rt, err := NewRouter(RouterConfig{Members: fm, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			rt.apply() // as Run would, which this test does not run
			var want, got []int
			remote := 0
			for i, k := range keys {
				if tc.hits(v, src(i)) {
					want = append(want, i)
				}
				if r.Primary(r.Shard(k)) == "gone" {
					remote++
				}
			}
			if remote == 0 {
				t.Fatal("no key is owned by the dead member")
			}
			rt.GetMulti(context.Background(), keys, nil, func(i int, it store.Item, val []byte) {
				k := keys[i]
				if string(val) != string(k)+"-v" || it.Flags != uint32(src(i)) {
					t.Errorf("key %s: %q flags %d", k, val, it.Flags)
				}
				got = append(got, i)
			})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("hits %v, want %v", got, want)
			}
			if ps := rt.PeerStats(); len(ps) != 1 || ps[0].Failures != 1 || !ps[0].Down {
				t.Fatalf("peer stats %+v: want one failed batch", ps)
			}
		})
	}
}

// rawExchange sends req on a new connection to addr and returns the first
// n bytes of the answer.
func rawExchange(t *testing.T, addr, req string, n int) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(nc, buf); err != nil {
		t.Fatalf("%q: %v after %q", req, err, buf)
	}
	return string(buf)
}

// routerGet, routerSet and routerArith are a waiting caller's requests
// through the router: serve, which Start runs without a done.
func routerGet(r *Router, ctx context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	req := server.Request{Op: server.OpGet, Key: key, Get: opt, Dst: dst}
	r.serve(ctx, &req)
	return req.Item, req.Val, req.Res
}

func routerSet(r *Router, ctx context.Context, key, val []byte, opt *store.SetOptions) (store.Result, store.Item, error) {
	req := server.Request{Op: server.OpSet, Key: key, Value: val, Set: opt}
	r.serve(ctx, &req)
	return req.Res, req.Item, req.Err
}

func routerArith(r *Router, ctx context.Context, key []byte, opt *store.ArithOptions) (store.Result, uint64, store.Item, error) {
	req := server.Request{Op: server.OpArith, Key: key, Arith: opt}
	r.serve(ctx, &req)
	return req.Res, req.N, req.Item, req.Err
}
