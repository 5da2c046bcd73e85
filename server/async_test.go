package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/protocol"
	"shoal/store"
)

// remoteCache is a Cache over a local store that
// treats keys starting with "r" as served elsewhere: their gets and sets
// complete from another goroutine (at once, racing the loop's release, or
// a little later), and commands on them are not Inline.
type remoteCache struct {
	Local
	flushes chan struct{}
	writes  *atomic.Int64 // writes Start left pending
}

func newRemoteCache(st *store.Store) remoteCache {
	return remoteCache{Local{st}, make(chan struct{}, 1), new(atomic.Int64)}
}

// Inline: a flush_all (nil) reaches the keys served elsewhere too.
func (c remoteCache) Inline(key []byte) bool {
	return key != nil && !bytes.HasPrefix(key, []byte("r"))
}

func (c remoteCache) Start(ctx context.Context, req *Request, done func(*Request)) bool {
	if done == nil || c.Inline(req.Key) || (req.Op != OpGet && bytes.HasPrefix(req.Key, []byte("rnow"))) {
		c.Do(req) // served here, or a write answered at once after all
		return false
	}
	if req.Op != OpGet {
		c.writes.Add(1)
	}
	delay := time.Duration(rand.IntN(3)) * 100 * time.Microsecond
	go func() {
		time.Sleep(delay)
		c.Do(req)
		done(req)
	}()
	return true
}

func (c remoteCache) Flush() {
	select {
	case c.flushes <- struct{}{}:
	default:
	}
}

// TestRemoteCacheSameReplies: a pipeline of gets, mg, writes (storage
// commands of every kind, noreply ones, values larger than the read
// buffer, ms with modes, q, c, k, base64 keys, deletes and md) and a flush_all over keys served here and elsewhere gets, under
// an event loop over a Cache that may wait, the very bytes a goroutine per
// connection over the plain store sends.
func TestRemoteCacheSameReplies(t *testing.T) {
	t.Parallel()
	var req strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	big := strings.Repeat("b", 40<<10) // more than the reader's 16 KiB chunk
	for i := range 400 {
		k := fmt.Sprintf("%s%d", []string{"r", "l", "rnow"}[r.IntN(3)], r.IntN(20))
		switch r.IntN(12) {
		case 8:
			op := []string{"set", "add", "replace", "append", "prepend"}[r.IntN(5)]
			noreply := []string{"", " noreply"}[r.IntN(2)]
			fmt.Fprintf(&req, "%s %s %d 0 2%s\r\nw%d\r\n", op, k, i, noreply, i%10)
		case 9:
			// A cas of the CAS a gets just saw (stored, or not found),
			// and of a stale one; a cas 0 (no item has it).
			fmt.Fprintf(&req, "gets %s\r\ncas %s 0 0 1 %d\r\nc\r\ncas %s 0 0 1 0\r\nz\r\n", k, k, 1+r.IntN(3*i+1), k)
		case 10:
			fmt.Fprintf(&req, "set %s 5 0 %d\r\n%s\r\nget %s\r\n", k, len(big), big, k)
		case 11:
			flags := []string{"c F3 T0 k O1", "ME c", "MA q", "C1 c I", "C0 c", "MP N0 b"}[r.IntN(6)]
			if strings.HasSuffix(flags, " b") {
				k = base64.StdEncoding.EncodeToString([]byte(k))
			}
			fmt.Fprintf(&req, "ms %s 2 %s\r\nm%d\r\n", k, flags, i%10)
			md := []string{"", "q", "k O5", "C1", "C0", "I T30", "noreply"}[r.IntN(7)]
			if md == "noreply" {
				fmt.Fprintf(&req, "delete %s noreply\r\n", k)
			} else {
				fmt.Fprintf(&req, "md %s %s\r\n", k, md)
			}
		}
		switch r.IntN(8) {
		case 0, 1:
			fmt.Fprintf(&req, "get %s\r\n", k)
		case 2:
			fmt.Fprintf(&req, "gets %s l%d\r\n", k, i%20)
		case 3:
			fmt.Fprintf(&req, "mg %s v f t k O%d\r\n", k, i)
		case 4:
			fmt.Fprintf(&req, "set %s %d 0 %d\r\nv%d\r\n", k, i, len(fmt.Sprint(i))+1, i)
		case 5:
			op := []string{"incr %[1]s 1", "decr %[1]s 2", "touch %[1]s 100", "ma %[1]s v", "ma %[1]s N0 J7 v t c"}[r.IntN(5)]
			fmt.Fprintf(&req, op+"\r\ndelete %[1]s\r\n", k)
		case 6:
			fmt.Fprintf(&req, "gat 100 %s\r\nmn\r\n", k)
		case 7:
			if i%50 == 7 {
				req.WriteString("flush_all\r\n")
			} else {
				fmt.Fprintf(&req, "mg %s q v\r\n", k)
			}
		}
	}
	req.WriteString("mn\r\n")
	replies := func(cfg Config, async bool) string {
		st, err := store.New(store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var cache Cache = Local{st}
		if async {
			rc := newRemoteCache(st)
			t.Cleanup(func() {
				if rc.writes.Load() == 0 {
					t.Error("no write went pending in Start")
				}
			})
			cache = rc
		}
		_, addr := serve(t, cfg, cache)
		nc := dial(t, addr)
		go io.WriteString(nc, req.String())
		var out bytes.Buffer
		buf := make([]byte, 64<<10)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for bytes.Count(out.Bytes(), []byte("MN\r\n")) < strings.Count(req.String(), "mn\r\n") {
			n, err := nc.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				t.Fatalf("after %d bytes: %v", out.Len(), err)
			}
		}
		return out.String()
	}
	want := replies(Config{}, false)
	got := replies(Config{EventLoop: true, Loops: 1}, true)
	if got != want {
		t.Fatalf("event loop over a Cache that may wait answered\n%q\nwant\n%q", got, want)
	}
}

// TestRemoteCacheConnGone: connections closed by their client, dropped or
// shut down while a get is away finish without touching a closed socket
// (run with -race), and are forgotten.
func TestRemoteCacheConnGone(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1}, newRemoteCache(st))
	for range 50 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, "get r1\r\nget r2\r\nget l1\r\n")
		nc.Close()
	}
	srv.DropConns()
	testutil.WaitFor(t, 5*time.Second, "no connections left", func() bool { return srv.Stats().CurrConnections == 0 })
	nc := dial(t, addr)
	io.WriteString(nc, "get r1\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "no connections left", func() bool { return srv.Stats().CurrConnections == 0 })
}

// TestRemoteCacheDumpWaits: under an event loop over a Cache that may wait, sd runs
// off the loop and its writes wait for the client (it stops emitting while
// the client reads nothing), and the loop serves other connections
// meanwhile.
func TestRemoteCacheDumpWaits(t *testing.T) {
	t.Parallel()
	cache := newShardCache(t)
	const items, size = 4000, 8 << 10 // 32 MiB: more than the socket buffers hold
	val := strings.Repeat("v", size)
	for i := range items {
		if r, _ := cache.Set([]byte(fmt.Sprint("a", i)), []byte(val), nil); r != store.Stored { // shard 1
			t.Fatalf("set: %v", r)
		}
	}
	var emitted atomic.Int64
	cache.pause = func(n int) { emitted.Store(int64(n)) }
	_, addr := serve(t, Config{PeerExtensions: true, EventLoop: true, Loops: 1, Dumps: cache}, cache)
	c := dial(t, addr)
	if _, err := io.WriteString(c, "sd Ag==\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // read nothing
	if n := emitted.Load(); n >= items*size/2 {
		t.Fatalf("%d bytes emitted to a client that reads nothing: the dump is buffered", n)
	}
	if got := exchange(t, addr, "get a1\r\n", "END\r\n"); !strings.HasPrefix(got, "VALUE a1 ") {
		t.Fatalf("another connection during the dump: %q", got)
	}
	rr := protocol.NewReplyReader(bufio.NewReaderSize(c, 64<<10), 0)
	for n := 0; ; n++ {
		rep, err := rr.Next()
		if err != nil {
			t.Fatalf("after %d items: %v", n, err)
		}
		if rep.Status == protocol.StatusEN {
			if n != items {
				t.Fatalf("dumped %d items, want %d", n, items)
			}
			return
		}
	}
}

// TestAsyncLoopParks: a loop over a Cache that may wait waits in Go's poller, not
// in a blocking epoll_wait; parked, it still wakes for a new connection,
// for input on a quiet one and for its idle sweep (the poller's deadline),
// and it closes an idle connection while another stays served.
func TestAsyncLoopParks(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1, IdleTimeout: 300 * time.Millisecond}, newRemoteCache(st))
	idle := dial(t, addr)
	busy := dial(t, addr)
	br := bufio.NewReader(busy)
	fmt.Fprintf(busy, "version\r\n")
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	loops := srv.loops
	srv.mu.Unlock()
	if len(loops) != 1 || !loops[0].parks() {
		t.Skip("no event loop that parks here (not Linux)")
	}
	deadline := time.Now().Add(900 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		time.Sleep(50 * time.Millisecond) // the loop parks between requests
		fmt.Fprintf(busy, "set r%d 0 0 1\r\nx\r\nget r%d\r\n", i, i)
		for _, want := range []string{"STORED\r\n", fmt.Sprintf("VALUE r%d 0 1\r\n", i), "x\r\n", "END\r\n"} {
			busy.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, err := br.ReadString('\n'); got != want {
				t.Fatalf("request %d: got %q, %v; want %q", i, got, err, want)
			}
		}
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %v, want EOF (closed by the sweep)", err)
	}
	// With no traffic at all, only the poller's deadline wakes the loop.
	busy.Close()
	alone := dial(t, addr)
	alone.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := alone.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection idle alone: read %v, want EOF (closed by the sweep)", err)
	}
	if n := srv.Stats().IdleKicks; n != 2 {
		t.Fatalf("idle_kicks %d, want 2", n)
	}
}

// gatedCache is a Cache over a local store whose Start of an op
// (gated) on the key "slow" stays pending until gate is closed; a gated
// get then gives up, with a miss, as a cluster's get whose context ended.
type gatedCache struct {
	Local
	gated        Op
	called, gate chan struct{}
	completing   atomic.Bool // the pending request is about to call done
}

func (*gatedCache) Inline([]byte) bool { return true }
func (c *gatedCache) Start(ctx context.Context, req *Request, done func(*Request)) bool {
	if req.Op != c.gated || string(req.Key) != "slow" {
		c.Do(req)
		return false
	}
	close(c.called)
	if done == nil { // the caller waits: here
		c.complete(req)
		return false
	}
	go func() {
		c.complete(req)
		done(req)
	}()
	return true
}

// complete completes the gated request once gate is closed.
func (c *gatedCache) complete(req *Request) {
	<-c.gate
	if req.Op == OpGet {
		req.Item, req.Val, req.Res = store.Item{}, req.Dst[:0], store.Miss
	} else {
		c.Do(req)
	}
	c.completing.Store(true)
}

func (*gatedCache) Flush() {}

// TestShutdownWaitsForPendingWrite: Shutdown returns only once a write
// pending in Start has completed, so that whatever the write does (a
// cluster node's push to the replicas) happens before what its owner
// does after Shutdown (draining the replication queue).
func TestShutdownWaitsForPendingWrite(t *testing.T) {
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cache := &gatedCache{Local: Local{st}, gated: OpSet, called: make(chan struct{}), gate: make(chan struct{})}
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1}, cache)
	c := dial(t, addr)
	io.WriteString(c, "set slow 0 0 1\r\nx\r\n")
	select {
	case <-cache.called:
	case <-time.After(5 * time.Second):
		t.Fatal("the set never reached Start")
	}
	shut := make(chan bool)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		shut <- err == nil && cache.completing.Load()
	}()
	// A Shutdown that does not wait returns within this.
	time.Sleep(100 * time.Millisecond)
	close(cache.gate)
	if !<-shut {
		t.Fatal("Shutdown returned before the pending write completed")
	}
	if _, v, res := st.Get([]byte("slow"), nil, nil); res != store.Hit || string(v) != "x" {
		t.Fatalf("slow: %v %q", res, v)
	}
}

// TestGiveUpNotAnswered: a get whose connection's context ends while it
// is pending (Shutdown) and that the cache then gives up on, with a
// miss, is not answered: its client reads the connection's end, not END
// for a key that exists, under both drivers. (A cluster node's get
// forwarded to a silent owner during its shutdown did answer END.)
func TestGiveUpNotAnswered(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(fmt.Sprint("eventloop=", loop), func(t *testing.T) {
			st, err := store.New(store.Config{MemoryLimit: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			st.Set([]byte("slow"), []byte("v"), nil)
			cache := &gatedCache{Local: Local{st}, gated: OpGet, called: make(chan struct{}), gate: make(chan struct{})}
			srv, addr := serve(t, Config{EventLoop: loop, Loops: 1}, cache)
			c := dial(t, addr)
			io.WriteString(c, "get slow\r\n")
			select {
			case <-cache.called:
			case <-time.After(5 * time.Second):
				t.Fatal("the get never reached Start")
			}
			shut := make(chan error)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				shut <- srv.Shutdown(ctx)
			}()
			testutil.WaitFor(t, 5*time.Second, "the connections' context ended", func() bool { return srv.ctx.Err() != nil })
			close(cache.gate)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c)
			if len(got) != 0 || err != nil {
				t.Errorf("the client read %q (%v), want the connection's end and nothing else", got, err)
			}
			if err := <-shut; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// slowSetCache is a Cache whose set of "slow" outlives its connection's
// context: it completes once ctx has ended and gate is closed, reporting
// the flags it was given then; pending when Start has a done, as a
// cluster's forwarded set is.
type slowSetCache struct {
	Local
	started, gate chan struct{}
	seen          chan string
}

func (c *slowSetCache) Start(ctx context.Context, req *Request, done func(*Request)) bool {
	if req.Op != OpSet || string(req.Key) != "slow" {
		c.Do(req)
		return false
	}
	close(c.started)
	slow := func() {
		<-ctx.Done()
		<-c.gate
		c.seen <- fmt.Sprintf("%s flags=%d", req.Key, req.Set.Flags)
		c.Do(req)
	}
	if done == nil { // the caller waits
		slow()
		return false
	}
	go func() { slow(); done(req) }() // as a cluster's forwarded set
	return true
}

// TestRequestOutlivesNoCommand: a connection that waits for its request
// runs nothing else until the request is done, even once its context has
// ended (Shutdown): the next command's options, value buffer and read
// buffer are not reused under it. (A connection that abandoned the
// request at the context's end ran the next set meanwhile, and the first
// one was stored with the second one's flags.) Found by a helper's review.
func TestRequestOutlivesNoCommand(t *testing.T) {
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cache := &slowSetCache{Local: Local{st}, started: make(chan struct{}), gate: make(chan struct{}), seen: make(chan string, 1)}
	srv, addr := serve(t, Config{}, cache)
	c := dial(t, addr)
	io.WriteString(c, "set slow 1 0 1\r\na\r\nset other 2 0 1\r\nb\r\n")
	<-cache.started
	go srv.Shutdown(context.Background())
	time.Sleep(200 * time.Millisecond) // the next set would run meanwhile
	if _, _, res := st.Get([]byte("other"), nil, nil); res == store.Hit {
		t.Error("the next command ran while the first was still in Start")
	}
	close(cache.gate)
	if got := <-cache.seen; got != "slow flags=1" {
		t.Fatalf("the request's inputs changed under it: %s", got)
	}
}
