package peer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/protocol"
	"shoal/server"
	"shoal/store"
)

// shardOf is the tests' fake shard function.
func shardOf(key []byte) int { return int(key[0]) % 8 }

// peerCache is what a cluster node's peer port serves, in miniature: the
// local store, dumped by shardOf, and replicated writes that record their
// origins.
type peerCache struct {
	server.Local
	deletes map[string]uint64 // what DumpDeletes emits (set before serving)
	lost    uint64            // Dump refuses a since at or below it
	mu      sync.Mutex        // guards origins
	origins []server.Origin
}

func (c *peerCache) Dump(want []byte, since uint64, emit func([]byte, store.Item, []byte) bool) bool {
	if since != 0 && since <= c.lost {
		return false
	}
	c.Store.Range(func(k []byte, it store.Item, v []byte) bool {
		return !protocol.WantsShard(want, shardOf(k)) || it.CAS < since || emit(k, it, v)
	})
	return true
}

func (c *peerCache) DumpDeletes(want []byte, since uint64, emit func([]byte, uint64) bool) {
	for k, v := range c.deletes {
		if protocol.WantsShard(want, shardOf([]byte(k))) && v >= since && !emit([]byte(k), v) {
			return
		}
	}
}

func (c *peerCache) ReplicaSet(key, value []byte, opt *store.SetOptions, o server.Origin) (store.Result, store.Item, error) {
	c.record(o)
	res, it := c.Set(key, value, opt)
	return res, it, nil
}

func (c *peerCache) ReplicaDelete(key []byte, opt *store.DeleteOptions, o server.Origin) (store.Result, store.Item, error) {
	c.record(o)
	res, it := c.Delete(key, opt)
	return res, it, nil
}

// Start serves a replicated write or replica read (Request.Replica)
// through the Replica methods, and anything else from the store.
func (c *peerCache) Start(_ context.Context, req *server.Request, _ func(*server.Request)) bool {
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

func (c *peerCache) record(o server.Origin) {
	c.mu.Lock()
	c.origins = append(c.origins, o)
	c.mu.Unlock()
}

// servePeerPort runs an in-process peer port (server with the peer
// extensions) over a fresh store wrapped by wrap, and returns its address.
// The store's clock stands still (no Run), so TTLs come back exact.
func servePeerPort(t testing.TB, wrap func(*store.Store) server.Cache) string {
	t.Helper()
	st, err := store.New(store.Config{MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cache := wrap(st)
	dumps, _ := cache.(server.Dumper) // the wraps that answer sd
	srv, err := server.New(server.Config{PeerExtensions: true, Dumps: dumps, Items: st}, cache)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	})
	return ln.Addr().String()
}

type dumped struct {
	val   string
	flags uint32
	cas   uint64
	ttl   int64
}

func TestDump(t *testing.T) {
	pc := &peerCache{}
	addr := servePeerPort(t, func(st *store.Store) server.Cache { pc.Local = server.Local{Store: st}; return pc })
	c := newClient(t, Config{Addr: addr})
	want := make(map[string]dumped)
	big := strings.Repeat("x", 100<<10)
	for i := range 300 {
		k := "a" + strconv.Itoa(i) // shard 1
		switch i % 100 {
		case 7:
			k = "a key with spaces " + strconv.Itoa(i) // travels base64
		case 8:
			k = "b" + strconv.Itoa(i) // shard 2: not wanted
		}
		v := strconv.Itoa(i)
		if i%50 == 0 {
			v = big // the dump passes the server's flush threshold many times
		}
		ttl, left := int64(0), int64(-1)
		if i%3 == 0 {
			ttl, left = 1000, 1000
		}
		_, cas, err := c.Set(bg, []byte(k), []byte(v), SetOptions{Flags: uint32(i), TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		if k[0] != 'b' {
			want[k] = dumped{v, uint32(i), cas, left}
		}
	}
	pc.deletes = map[string]uint64{"a gone": 77, "a\x00\r\n": 78, "b gone": 79} // the last in shard 2: not wanted
	got := make(map[string]dumped)
	gone := make(map[string]uint64)
	err := c.Dump(bg, []byte{1 << 1}, 0, func(key []byte, it Item) error {
		if it.Deleted {
			if _, dup := gone[string(key)]; dup || it.Value != nil || it.Flags != 0 {
				t.Errorf("delete of %q: twice %v, value %q, flags %d", key, dup, it.Value, it.Flags)
			}
			gone[string(key)] = it.CAS
			return nil
		}
		if _, dup := got[string(key)]; dup || len(gone) > 0 {
			t.Errorf("%q twice %v, or after %d deletes", key, dup, len(gone))
		}
		got[string(key)] = dumped{string(it.Value), it.Flags, it.CAS, it.TTL}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"a gone": 77, "a\x00\r\n": 78}; !maps.Equal(gone, want) {
		t.Errorf("deletes dumped: %v, want %v", gone, want)
	}
	if len(got) != len(want) {
		t.Errorf("dumped %d items, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%q: got %d bytes f%d c%d t%d, want %d bytes f%d c%d t%d", k, len(g.val), g.flags, g.cas, g.ttl, len(w.val), w.flags, w.cas, w.ttl)
		}
	}
	// The pool is untouched by a dump: its connections still serve.
	if _, ok, err := c.Get(bg, []byte("a1"), GetOptions{}); !ok || err != nil {
		t.Fatalf("get after dump: %v %v", ok, err)
	}
}

// TestDumpSince: with since, only the items and deletes of that version
// or newer come; a peer that cannot vouch for them answers ErrNoDelta.
func TestDumpSince(t *testing.T) {
	pc := &peerCache{}
	addr := servePeerPort(t, func(st *store.Store) server.Cache { pc.Local = server.Local{Store: st}; return pc })
	c := newClient(t, Config{Addr: addr})
	cas := make([]uint64, 10)
	for i := range cas {
		_, v, err := c.Set(bg, []byte("a"+strconv.Itoa(i)), []byte("v"), SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cas[i] = v
	}
	since := cas[6]
	pc.deletes = map[string]uint64{"a old": since - 1, "a new": since}
	var got []string
	err := c.Dump(bg, []byte{1 << 1}, since, func(key []byte, it Item) error {
		got = append(got, fmt.Sprintf("%s %v", key, it.Deleted))
		return nil
	})
	slices.Sort(got)
	if want := []string{"a new true", "a6 false", "a7 false", "a8 false", "a9 false"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("since %d: %v, %v; want %v", since, got, err, want)
	}
	pc.lost = since
	err = c.Dump(bg, []byte{1 << 1}, since, func([]byte, Item) error { return errors.New("called") })
	if !errors.Is(err, ErrNoDelta) || !errors.Is(err, ErrReply) {
		t.Fatalf("a peer that lost newer items: %v", err)
	}
	if err := c.Dump(bg, []byte{1 << 1}, 0, func([]byte, Item) error { return nil }); err != nil {
		t.Fatalf("a whole dump from the same peer: %v", err)
	}
}

func TestDumpStops(t *testing.T) {
	pc := &peerCache{}
	addr := servePeerPort(t, func(st *store.Store) server.Cache { pc.Local = server.Local{Store: st}; return pc })
	c := newClient(t, Config{Addr: addr})
	for i := range 1000 {
		if _, _, err := c.Set(bg, []byte("a"+strconv.Itoa(i)), make([]byte, 1000), SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	errStop := errors.New("enough")
	n := 0
	err := c.Dump(bg, []byte{0xff}, 0, func([]byte, Item) error {
		if n++; n == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || n != 3 {
		t.Fatalf("err %v after %d items, want %v after 3", err, n, errStop)
	}

	ctx, cancel := context.WithCancel(bg)
	n = 0
	err = c.Dump(ctx, []byte{0xff}, 0, func([]byte, Item) error {
		if n++; n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dump: %v after %d items", err, n)
	}
	if err := c.Dump(ctx, []byte{0xff}, 0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("dump with a done context: %v", err)
	}
}

func TestDumpFailures(t *testing.T) {
	const item = "VA 1 ka f0 t-1 c1\r\nx\r\n"
	// A peer that sends one item, then stays silent.
	silent := startFake(t, listen(t, "127.0.0.1:0"), func(string) []byte { return []byte(item) })
	// A peer that sends one item and half of another, then dies.
	dying := listen(t, "127.0.0.1:0")
	dyingDone := make(chan struct{})
	t.Cleanup(func() { dying.Close(); <-dyingDone })
	go func() {
		defer close(dyingDone)
		nc, err := dying.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		nc.Read(buf)
		nc.Write([]byte(item + "VA 10 kb f0 t-1 c2\r\nxx"))
		nc.Close()
	}()
	plain := servePeerPort(t, func(st *store.Store) server.Cache { return server.Local{Store: st} })

	for name, tc := range map[string]struct {
		cfg     Config
		timeout time.Duration
		want    error
	}{
		"deadline":      {Config{Addr: silent.ln.Addr().String(), RequestTimeout: time.Minute}, 100 * time.Millisecond, context.DeadlineExceeded},
		"silent peer":   {Config{Addr: silent.ln.Addr().String(), RequestTimeout: 100 * time.Millisecond}, time.Minute, ErrTimeout},
		"peer dies":     {Config{Addr: dying.Addr().String()}, time.Minute, ErrConnLost},
		"not a dumper":  {Config{Addr: plain}, time.Minute, ErrReply},
		"peer down":     {Config{Addr: testutil.FreeAddr(t)}, time.Minute, ErrDown},
		"client closed": {Config{Addr: plain}, time.Minute, ErrClosed},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, tc.cfg)
			if tc.want == ErrClosed {
				c.Close()
			}
			ctx, cancel := context.WithTimeout(bg, tc.timeout)
			defer cancel()
			start := time.Now()
			err := c.Dump(ctx, []byte{1}, 0, func([]byte, Item) error { return nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			var re *ReplyError
			if tc.want == ErrReply && (!errors.As(err, &re) || re.Line != "SERVER_ERROR dump not supported") {
				t.Fatalf("reply error %v", err)
			}
		})
	}
}

// TestReplicaOrigin: Set and Delete with an Epoch reach the peer's Replica
// with their origin; without one, its plain Set and Delete.
func TestReplicaOrigin(t *testing.T) {
	pc := &peerCache{}
	addr := servePeerPort(t, func(st *store.Store) server.Cache { pc.Local = server.Local{Store: st}; return pc })
	c := newClient(t, Config{Addr: addr})
	steps := []func() error{
		func() error {
			_, _, err := c.Set(bg, []byte("k"), []byte("v"), SetOptions{Epoch: 3, Seq: 17, NewCAS: 99})
			return err
		},
		func() error { _, _, err := c.Set(bg, []byte("k"), []byte("v"), SetOptions{Seq: 5}); return err },
		func() error { _, err := c.Delete(bg, []byte("k"), DeleteOptions{Epoch: 4}); return err },
		func() error { _, _, err := c.Set(bg, []byte("k"), []byte("w"), SetOptions{}); return err },
		func() error {
			_, err := c.Delete(bg, []byte("k"), DeleteOptions{Invalidate: true, NewCAS: 7, Epoch: 1<<64 - 1, Seq: 1<<64 - 1})
			return err
		},
		func() error { _, err := c.Delete(bg, []byte("k"), DeleteOptions{}); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	want := []server.Origin{{Epoch: 3, Seq: 17}, {Epoch: 4}, {Epoch: 1<<64 - 1, Seq: 1<<64 - 1}}
	if !slices.Equal(pc.origins, want) {
		t.Fatalf("origins %+v, want %+v", pc.origins, want)
	}
}

func (c *peerCache) ReplicaGet(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	it, val, res := c.Get(key, opt, dst)
	if res != store.Hit {
		it.CAS = c.deletes[string(key)]
	}
	return it, val, res
}

// TestGetRemembersDelete: a LocalOnly miss reports the delete the peer
// remembers, with its version; a plain miss, or one with nothing
// remembered, reports nothing.
func TestGetRemembersDelete(t *testing.T) {
	pc := &peerCache{deletes: map[string]uint64{"gone": 42, "a key with spaces": 43}}
	addr := servePeerPort(t, func(st *store.Store) server.Cache { pc.Local = server.Local{Store: st}; return pc })
	c := newClient(t, Config{Addr: addr})
	for _, tc := range []struct {
		key  string
		opts GetOptions
		want Item
	}{
		{"gone", GetOptions{LocalOnly: true}, Item{CAS: 42, Deleted: true}},
		{"a key with spaces", GetOptions{LocalOnly: true}, Item{CAS: 43, Deleted: true}},
		{"gone", GetOptions{}, Item{}},
		{"never", GetOptions{LocalOnly: true}, Item{}},
	} {
		it, hit, err := c.Get(bg, []byte(tc.key), tc.opts)
		if err != nil || hit || it.CAS != tc.want.CAS || it.Deleted != tc.want.Deleted {
			t.Errorf("get %q %+v: %+v hit %v err %v, want %+v", tc.key, tc.opts, it, hit, err, tc.want)
		}
	}
}
