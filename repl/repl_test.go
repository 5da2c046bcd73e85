package repl_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/repl"
	"shoal/server"
	"shoal/store"
)

// startServer serves a fresh store on a loopback port.
func startServer(t *testing.T) (*store.Store, string) {
	t.Helper()
	st := newStore(t)
	return st, serve(t, server.Local{Store: st})
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// serve serves cache on a loopback peer port until the test ends.
func serve(t *testing.T, cache server.Cache) string {
	t.Helper()
	items, _ := cache.(server.Items) // the test caches wrap a Local
	srv, err := server.New(server.Config{PeerExtensions: true, Items: items}, cache)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, server.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func run(t *testing.T, r *repl.Replicator) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
}

func stat(r *repl.Replicator, name string) repl.PeerStats {
	for _, s := range r.Stats() {
		if s.Peer == name {
			return s
		}
	}
	return repl.PeerStats{}
}

func TestReplicateItems(t *testing.T) {
	st, addr := startServer(t)
	r, err := repl.New(repl.Config{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	to := []repl.Target{{Name: "b", Addr: addr}}
	exp := time.Now().Unix() + 3600
	r.Push([]byte("a"), to, repl.Item{Value: []byte("va"), Flags: 7, Exptime: exp, CAS: 4242})
	r.Push([]byte("b"), to, repl.Item{Value: []byte("vb"), Flags: 1})
	r.Push([]byte("c"), to, repl.Item{Value: []byte("vc")})
	r.Push([]byte("c"), to, repl.Item{Deleted: true})
	r.Push([]byte("d"), to, repl.Item{Value: []byte("vd")})
	r.Push([]byte("d"), to, repl.Item{Value: []byte("old"), Exptime: 1}) // already expired
	testutil.WaitFor(t, 10*time.Second, "every entry sent", func() bool { return stat(r, "b").Sent == 6 })

	it, v, res := st.Get([]byte("a"), nil, nil)
	if res != store.Hit || string(v) != "va" || it.Flags != 7 || it.Exptime != exp || it.CAS != 4242 {
		t.Errorf("a: %v %q flags %d exptime %d cas %d, want va flags 7 exptime %d cas 4242", res, v, it.Flags, it.Exptime, it.CAS, exp)
	}
	it, v, res = st.Get([]byte("b"), nil, nil)
	if res != store.Hit || string(v) != "vb" || it.Flags != 1 || it.Exptime != 0 {
		t.Errorf("b: %v %q flags %d exptime %d", res, v, it.Flags, it.Exptime)
	}
	for _, k := range []string{"c", "d"} {
		if _, _, res := st.Get([]byte(k), nil, nil); res != store.Miss {
			t.Errorf("%s: %v, want miss", k, res)
		}
	}
	s := stat(r, "b")
	if s.Dropped != 0 || s.Failures != 0 || s.Queued != 0 || s.Lag != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestDropsWhenQueueFull(t *testing.T) {
	r, err := repl.New(repl.Config{QueueLen: 4, RetryAfter: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	to := []repl.Target{{Name: "dead", Addr: deadAddr(t)}}
	// Not running yet: the queue fills and the rest is dropped.
	for range 10 {
		r.Push([]byte("k"), to, repl.Item{Value: []byte("v")})
	}
	s := stat(r, "dead")
	if s.Queued != 4 || s.Dropped != 6 {
		t.Fatalf("before Run: %+v, want 4 queued, 6 dropped", s)
	}
	run(t, r)
	testutil.WaitFor(t, 10*time.Second, "the queue to drain", func() bool { return stat(r, "dead").Queued == 0 })
	testutil.WaitFor(t, 10*time.Second, "a failure", func() bool { return stat(r, "dead").Failures > 0 })
	s = stat(r, "dead")
	if s.Sent+s.Failures != 4 || s.Dropped != 6 {
		t.Errorf("after Run: %+v", s)
	}
}

// TestRetriesUntilPeerAnswers: an entry the peer does not answer is sent
// again after RetryAfter, so a peer that comes up within the retries gets
// it; LagSeq counts it while it waits.
func TestRetriesUntilPeerAnswers(t *testing.T) {
	addr := deadAddr(t)
	r, err := repl.New(repl.Config{RetryAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	to := []repl.Target{{Name: "late", Addr: addr}}
	r.Push([]byte("k"), to, repl.Item{Value: []byte("v"), Epoch: 3, Seq: 1})
	if s := stat(r, "late"); s.LagSeq != 1 {
		t.Fatalf("LagSeq = %d right after the push, want 1", s.LagSeq)
	}
	// The first send is refused (nothing listens); the peer comes up
	// during the pause before the next one.
	testutil.WaitFor(t, 10*time.Second, "a refused send", func() bool { return stat(r, "late").Retries == 1 })
	st := newStore(t)
	srv, err := server.New(server.Config{PeerExtensions: true}, server.Local{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the address was taken meanwhile: %v", err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	testutil.WaitFor(t, 10*time.Second, "the entry delivered", func() bool { return stat(r, "late").Sent == 1 })
	if _, v, res := st.Get([]byte("k"), nil, nil); res != store.Hit || string(v) != "v" {
		t.Fatalf("k on the late peer: %v %q", res, v)
	}
	if s := stat(r, "late"); s.Failures != 0 || s.Dropped != 0 || s.LagSeq != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// epochReplica is a peer's cache that refuses replicated writes older than
// epoch, as a replica that saw a newer view of the key's owners does, and
// applies replicated sets after delay, as a busy peer.
type epochReplica struct {
	server.Local
	epoch uint64
	delay time.Duration
}

// Start serves a replicated write or replica read (Request.Replica)
// through the Replica methods, and anything else from the store.
func (c epochReplica) Start(_ context.Context, req *server.Request, _ func(*server.Request)) bool {
	switch {
	case !req.Replica:
		c.Do(req)
	case req.Op == server.OpGet:
		req.Item, req.Val, req.Res = c.ReplicaGet(req.Key, req.Get, req.Dst)
	case req.Op == server.OpSet:
		req.Res, req.Item, req.Err = c.ReplicaSet(req.Key, req.Value, req.Set, req.Origin)
	case req.Op == server.OpDelete:
		req.Res, req.Item, req.Err = c.ReplicaDelete(req.Key, req.Del, req.Origin)
	}
	return false
}

func (c epochReplica) admit(o server.Origin) error {
	if o.Epoch < c.epoch {
		return fmt.Errorf("test replica at epoch %d: %w", c.epoch, server.ErrStaleOrigin)
	}
	return nil
}

func (c epochReplica) ReplicaSet(key, value []byte, opt *store.SetOptions, o server.Origin) (store.Result, store.Item, error) {
	time.Sleep(c.delay)
	if err := c.admit(o); err != nil {
		return 0, store.Item{}, err
	}
	res, it := c.Set(key, value, opt)
	return res, it, nil
}

func (c epochReplica) ReplicaDelete(key []byte, opt *store.DeleteOptions, o server.Origin) (store.Result, store.Item, error) {
	if err := c.admit(o); err != nil {
		return 0, store.Item{}, err
	}
	res, it := c.Delete(key, opt)
	return res, it, nil
}

func (c epochReplica) ReplicaGet(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	return c.Get(key, opt, dst)
}

// TestStaleRefusalIsRefreshed: an entry a replica refuses as older than
// its view is sent again as Refresh says the key is now (with the newer
// epoch), or dropped when Refresh says it is no longer this node's to
// push; without Refresh it is a failure.
func TestStaleRefusalIsRefreshed(t *testing.T) {
	st := newStore(t)
	to := []repl.Target{{Name: "r", Addr: serve(t, epochReplica{Local: server.Local{Store: st}, epoch: 5})}}

	var asked atomic.Int32
	refresh := func(key []byte, peer string) (repl.Item, bool) {
		asked.Add(1)
		if string(key) == "gone" || peer != "r" {
			return repl.Item{}, false
		}
		return repl.Item{Value: []byte("current"), Epoch: 5, Seq: 9}, true
	}
	r, err := repl.New(repl.Config{RetryAfter: 20 * time.Millisecond, Refresh: refresh})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	r.Push([]byte("k"), to, repl.Item{Value: []byte("old view"), Epoch: 4, Seq: 1})
	r.Push([]byte("gone"), to, repl.Item{Value: []byte("old view"), Epoch: 4, Seq: 2})
	testutil.WaitFor(t, 10*time.Second, "both entries settled", func() bool { s := stat(r, "r"); return s.LagSeq == 0 && s.Stale == 2 })
	if _, v, res := st.Get([]byte("k"), nil, nil); res != store.Hit || string(v) != "current" {
		t.Errorf("k on the replica: %v %q, want the refreshed value", res, v)
	}
	if _, _, res := st.Get([]byte("gone"), nil, nil); res != store.Miss {
		t.Errorf("gone on the replica: %v, want nothing (Refresh declined)", res)
	}
	if s := stat(r, "r"); s.Sent != 1 || s.Failures != 0 || s.Retries != 0 || asked.Load() != 2 {
		t.Errorf("stats %+v, Refresh asked %d times; want 1 sent, no failure, asked twice", s, asked.Load())
	}

	t.Run("without Refresh", func(t *testing.T) {
		r, err := repl.New(repl.Config{RetryAfter: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		run(t, r)
		r.Push([]byte("k2"), to, repl.Item{Value: []byte("old view"), Epoch: 4})
		testutil.WaitFor(t, 10*time.Second, "a failure", func() bool { return stat(r, "r").Failures == 1 })
		if _, _, res := st.Get([]byte("k2"), nil, nil); res != store.Miss {
			t.Errorf("k2 stored despite the refusal: %v", res)
		}
	})
}

// TestDrain: Drain returns once every queued entry reached a slow peer
// (Close right after loses none), and, for a peer that never answers,
// once the entries were given up on (told to Missed), not at ctx's end.
func TestDrain(t *testing.T) {
	st := newStore(t)
	to := []repl.Target{{Name: "slow", Addr: serve(t, epochReplica{Local: server.Local{Store: st}, delay: 20 * time.Millisecond})}}
	dead := []repl.Target{{Name: "dead", Addr: deadAddr(t)}}
	var missed atomic.Int32
	r, err := repl.New(repl.Config{BatchLen: 8, RetryAfter: 20 * time.Millisecond,
		Missed: func(string, []byte, repl.Item) { missed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	const n = 40
	for i := range n {
		r.Push(fmt.Appendf(nil, "k%d", i), to, repl.Item{Value: []byte("v")})
	}
	r.Push([]byte("lost"), dead, repl.Item{Value: []byte("v")})
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	start := time.Now()
	if !r.Drain(dctx) {
		t.Fatal("Drain: not drained in 10 s")
	}
	took := time.Since(start)
	r.Close()
	cancel()
	<-done
	for i := range n {
		if _, _, res := st.Get(fmt.Appendf(nil, "k%d", i), nil, nil); res != store.Hit {
			t.Fatalf("k%d missing on the peer after Drain and Close", i)
		}
	}
	if missed.Load() != 1 || took > 5*time.Second {
		t.Fatalf("dead peer: Missed told %d times, Drain took %v; want once, well under 10 s", missed.Load(), took)
	}
}

// TestBatchSendsNewest: of the entries for one key in a batch, the one
// with the newest CAS is sent, even when an older one was queued after it
// (two writes of the key racing to push their results).
func TestBatchSendsNewest(t *testing.T) {
	st, addr := startServer(t)
	r, err := repl.New(repl.Config{})
	if err != nil {
		t.Fatal(err)
	}
	to := []repl.Target{{Name: "b", Addr: addr}}
	// Queued before Run: one batch.
	r.Push([]byte("k"), to, repl.Item{Value: []byte("new"), CAS: 200})
	r.Push([]byte("k"), to, repl.Item{Value: []byte("old"), CAS: 100})
	r.Push([]byte("j"), to, repl.Item{Value: []byte("old"), CAS: 300})
	r.Push([]byte("j"), to, repl.Item{Value: []byte("new"), CAS: 400})
	run(t, r)
	testutil.WaitFor(t, 10*time.Second, "every entry sent", func() bool { return stat(r, "b").Sent == 4 })
	for k, cas := range map[string]uint64{"k": 200, "j": 400} {
		if it, v, res := st.Get([]byte(k), nil, nil); res != store.Hit || string(v) != "new" || it.CAS != cas {
			t.Errorf("%s on the peer: %v %q cas %d, want new cas %d", k, res, v, it.CAS, cas)
		}
	}
}

// TestQueueBytes: a replica that stops reading cannot make what is held
// for it exceed Config.QueueBytes: what does not fit is dropped, counted
// and told to Missed; with a replica that answers, nothing stays held.
func TestQueueBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accepts, never reads nor answers
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
		}
	}()
	const max = 64 << 10
	var missed atomic.Int32
	r, err := repl.New(repl.Config{QueueBytes: max, BatchLen: 8, Missed: func(string, []byte, repl.Item) { missed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	to := []repl.Target{{Name: "stalled", Addr: ln.Addr().String()}}
	val := make([]byte, 4<<10)
	const n = 200
	for i := range n {
		r.Push(fmt.Appendf(nil, "k%d", i), to, repl.Item{Value: val})
		if s := stat(r, "stalled"); s.Bytes > max {
			t.Fatalf("after %d pushes: %d bytes held, bound %d", i+1, s.Bytes, max)
		}
	}
	s := stat(r, "stalled")
	if s.Dropped == 0 || s.Dropped+uint64(s.LagSeq) != n || int(missed.Load()) != int(s.Dropped) {
		t.Fatalf("stats %+v, Missed told %d; want drops, each told, the rest held", s, missed.Load())
	}

	st, addr := startServer(t)
	live := []repl.Target{{Name: "live", Addr: addr}}
	for i := range 10 { // what fits
		r.Push(fmt.Appendf(nil, "k%d", i), live, repl.Item{Value: val})
	}
	testutil.WaitFor(t, 10*time.Second, "every entry sent", func() bool { return stat(r, "live").Sent == 10 })
	if s := stat(r, "live"); s.Bytes != 0 || s.Dropped != 0 {
		t.Fatalf("live peer: stats %+v, want nothing held or dropped", s)
	}
	if _, v, res := st.Get([]byte("k9"), nil, nil); res != store.Hit || len(v) != len(val) {
		t.Fatalf("k9 on the live peer: %v, %d bytes", res, len(v))
	}
}
