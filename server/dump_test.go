package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/protocol"
	"shoal/store"
)

// fixedClock keeps TTLs in replies exact.
type fixedClock int64

func (c fixedClock) Now() int64 { return int64(c) }

const testNow = 1_700_000_000

// shardOf is the tests' fake shard function: the server never sees it,
// only the bitmap the client sends and the items the Dumper emits.
func shardOf(key []byte) int { return int(key[0]) % 8 }

// shardCache is a cluster cache in miniature: the local store, a Dumper
// that filters Store.Range and deletes by shardOf, and a Replica that
// records the origins it is given.
type shardCache struct {
	Local
	sorted  bool              // emit in key order, for exact transcripts
	deletes map[string]uint64 // what DumpDeletes emits (set before serving)
	// lost: Dump refuses a since at or below it (0: refuses none)
	lost uint64
	// pause, when set, is called after each item emitted with the bytes
	// of values emitted so far.
	pause func(emitted int)

	mu      sync.Mutex // guards origins
	origins []string
}

func (c *shardCache) Dump(want []byte, since uint64, emit func([]byte, store.Item, []byte) bool) bool {
	if since != 0 && since <= c.lost {
		return false
	}
	type rec struct {
		key, val string
		it       store.Item
	}
	var recs []rec
	emitted := 0
	c.Store.Range(func(k []byte, it store.Item, v []byte) bool {
		if !protocol.WantsShard(want, shardOf(k)) || it.CAS < since {
			return true
		}
		if c.sorted {
			recs = append(recs, rec{string(k), string(v), it})
			return true
		}
		emitted += len(v)
		ok := emit(k, it, v)
		if c.pause != nil {
			c.pause(emitted)
		}
		return ok
	})
	slices.SortFunc(recs, func(a, b rec) int { return strings.Compare(a.key, b.key) })
	for _, r := range recs {
		if !emit([]byte(r.key), r.it, []byte(r.val)) {
			break
		}
	}
	return true
}

func (c *shardCache) DumpDeletes(want []byte, since uint64, emit func([]byte, uint64) bool) {
	for _, k := range slices.Sorted(maps.Keys(c.deletes)) {
		if protocol.WantsShard(want, shardOf([]byte(k))) && c.deletes[k] >= since && !emit([]byte(k), c.deletes[k]) {
			return
		}
	}
}

var errStale = errors.New("stale epoch")

func (c *shardCache) record(op string, key []byte, o Origin) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.origins = append(c.origins, op+" "+string(key)+" "+strconv.FormatUint(o.Epoch, 10)+" "+strconv.FormatUint(o.Seq, 10))
	if o.Epoch == 666 {
		return errStale
	}
	return nil
}

func (c *shardCache) ReplicaSet(key, value []byte, opt *store.SetOptions, o Origin) (store.Result, store.Item, error) {
	if err := c.record("set", key, o); err != nil {
		return 0, store.Item{}, err
	}
	res, it := c.Set(key, value, opt)
	return res, it, nil
}

func (c *shardCache) ReplicaDelete(key []byte, opt *store.DeleteOptions, o Origin) (store.Result, store.Item, error) {
	if err := c.record("delete", key, o); err != nil {
		return 0, store.Item{}, err
	}
	res, it := c.Delete(key, opt)
	return res, it, nil
}

var _ Dumper = (*shardCache)(nil)

// Start serves a replicated write or replica read (Request.Replica)
// through the Replica methods, and anything else from the store.
func (c *shardCache) Start(_ context.Context, req *Request, _ func(*Request)) bool {
	switch {
	case !req.Replica:
		c.Do(req)
	case req.Op == OpGet:
		req.Item, req.Val, req.Res = c.ReplicaGet(req.Key, req.Get, req.Dst)
	case req.Op == OpSet:
		req.Res, req.Item, req.Err = c.ReplicaSet(req.Key, req.Value, req.Set, req.Origin)
	case req.Op == OpDelete:
		req.Res, req.Item, req.Err = c.ReplicaDelete(req.Key, req.Del, req.Origin)
	}
	return false
}

func newShardCache(t testing.TB) *shardCache {
	t.Helper()
	st, err := store.New(store.Config{Clock: fixedClock(testNow), MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return &shardCache{Local: Local{st}}
}

// exchange writes req on a fresh connection and reads until the reply
// ends with end.
func exchange(t *testing.T, addr, req, end string) string {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(got), end) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
	}
	return string(got)
}

// TestShardDump: sd answers each item of the wanted shards exactly as
// "mg <key> v k f t c" would, then each delete remembered there as HD
// with its key in base64 and its version, then EN; expired items and
// other shards are left out.
func TestShardDump(t *testing.T) {
	cache := newShardCache(t)
	cache.sorted = true
	cache.deletes = map[string]uint64{
		"q x": 400, // shard 1, a key with a space
		"y":   500, // shard 1
		"k":   600, // shard 3: not wanted
		"b\n": 700, // shard 2
	}
	_, addr := serve(t, Config{PeerExtensions: true, Dumps: cache}, cache)
	setup := "ms a 5 F5 T100 E100\r\nhello\r\n" + // shard 1
		"ms Yg== 2 b E200\r\nhi\r\n" + // "b", shard 2, written with a base64 key
		"ms c 1 E300\r\nx\r\n" + // shard 3: not wanted
		"ms i 0 T-1\r\n\r\n" + // shard 1, expired
		"ms ia 0 F4294967295 E" + strconv.FormatUint(1<<64-1, 10) + "\r\n\r\n" + // shard 1, empty value
		"mn\r\n"
	if got := exchange(t, addr, setup, "MN\r\n"); got != "HD\r\nHD\r\nHD\r\nHD\r\nHD\r\nMN\r\n" {
		t.Fatalf("setup: %q", got)
	}
	want := "VA 5 ka f5 t100 c100\r\nhello\r\n" +
		"VA 2 kYg== b f0 t-1 c200\r\nhi\r\n" +
		"VA 0 kia f4294967295 t-1 c18446744073709551615\r\n\r\n" +
		"HD kYgo= b c700\r\n" + // "b\n"
		"HD kcSB4 b c400\r\n" + // "q x"
		"HD keQ== b c500\r\n" + // "y"
		"EN\r\n"
	bitmap := []byte{1<<1 | 1<<2} // shards 1 and 2
	got := exchange(t, addr, string(protocol.AppendShardDumpRequest(nil, bitmap, 0)), "EN\r\n")
	if got != want {
		t.Fatalf("sd replied\n%q\nwant\n%q", got, want)
	}
	// The same bytes as mg, item by item.
	mg := exchange(t, addr, "mg a v k f t c\r\nmg Yg== b v k f t c\r\nmg ia v k f t c\r\nmn\r\n", "MN\r\n")
	if items := want[:strings.Index(want, "HD")]; mg != items+"MN\r\n" {
		t.Fatalf("mg replied\n%q\nsd\n%q", mg, want)
	}
	// No shard wanted, or only shards nobody holds: just EN.
	for _, b := range []string{"AA==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if got := exchange(t, addr, "sd "+b+"\r\n", "EN\r\n"); got != "EN\r\n" {
			t.Errorf("sd %s: %q", b, got)
		}
	}
}

// TestShardDumpErrors: the replies around sd, on a peer port and on a
// client port (where sd, Y and Z are what memcached 1.6.18 makes of them).
func TestShardDumpErrors(t *testing.T) {
	peer := startShoalConfig(t, Config{PeerExtensions: true}) // no Dumps
	client := startShoalConfig(t, Config{})
	cache := newShardCache(t)
	cache.deletes = map[string]uint64{"gone": 42}
	_, dumper := serve(t, Config{PeerExtensions: true, Dumps: cache}, cache)
	for name, tc := range map[string]struct {
		addr, req, want string
	}{
		"no dumper":         {peer, "sd AQ==\r\n", "SERVER_ERROR dump not supported\r\n"},
		"bad base64":        {dumper, "sd AQ=\r\nsd A?==\r\nmn\r\n", "CLIENT_ERROR bad data chunk\r\nCLIENT_ERROR bad data chunk\r\nMN\r\n"},
		"no bitmap":         {dumper, "sd\r\n", "CLIENT_ERROR bad command line format\r\n"},
		"client sd":         {client, "sd AQ==\r\n", "ERROR\r\n"},
		"client ms Y":       {client, "ms a 1 Y1\r\nx\r\nmn\r\n", "CLIENT_ERROR invalid flag\r\nMN\r\n"},
		"client ms Z":       {client, "ms a 1 Z1\r\nx\r\nmn\r\n", "CLIENT_ERROR invalid flag\r\nMN\r\n"},
		"client md Y":       {client, "md a Y1\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		"peer mg Y":         {dumper, "ms a 1\r\nx\r\nmg a Y1 v\r\n", "HD\r\nVA 1\r\nx\r\n"},                                                   // ReplicaGet
		"peer mg Y deleted": {dumper, "mg gone Y1 v\r\nmg none Y1 v\r\nmg gone v\r\nmg gone Y1 v q\r\nmn\r\n", "EN c42\r\nEN\r\nEN\r\nMN\r\n"}, // a remembered delete's version, on a replica-level miss only
		"peer ma Z":         {dumper, "ma a Z1\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		"peer ms Y bad":     {dumper, "ms a 1 Yx\r\nx\r\nmn\r\n", "CLIENT_ERROR bad token in command line format\r\nMN\r\n"},
		"peer Local ms Y":   {peer, "ms a 1 Y1 Z2\r\nx\r\nmg a v\r\n", "HD\r\nVA 1\r\nx\r\n"}, // no Replica: a plain Set
		"peer Local md YZ":  {peer, "ms a 1\r\nx\r\nmd a Y1 Z2\r\n", "HD\r\nHD\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, tc.addr)
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReplicaOrigin: a peer-port ms or md with Y goes to the Replica with
// its origin; without Y (even with Z) to Set / Delete. A Replica error is
// a SERVER_ERROR, as for Set.
func TestReplicaOrigin(t *testing.T) {
	cache := newShardCache(t)
	_, addr := serve(t, Config{PeerExtensions: true, Dumps: cache}, cache)
	got := exchange(t, addr, "ms k 1 Y3 Z9 c E50\r\nx\r\n"+
		"ms k 1 Z4\r\ny\r\n"+
		"md k Y4 q\r\n"+
		"ms k 1 Y7\r\nz\r\n"+
		"md k Z5\r\n"+
		"ms k 1 Y666\r\nw\r\n"+
		"md k Y666\r\n"+
		"mn\r\n", "MN\r\n")
	want := "HD c50\r\nHD\r\nHD\r\nHD\r\nSERVER_ERROR stale epoch\r\nSERVER_ERROR stale epoch\r\nMN\r\n"
	if got != want {
		t.Fatalf("replies %q, want %q", got, want)
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	wantOrigins := []string{"set k 3 9", "delete k 4 0", "set k 7 0", "set k 666 0", "delete k 666 0"}
	if !slices.Equal(cache.origins, wantOrigins) {
		t.Fatalf("origins %q, want %q", cache.origins, wantOrigins)
	}
}

// writeLog records the size of every write on the connections of a
// listener.
type writeLog struct {
	net.Listener
	mu     sync.Mutex // guards writes
	writes []int
}

func (l *writeLog) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loggedConn{nc, l}, nil
}

type loggedConn struct {
	net.Conn
	l *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, len(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// TestShardDumpStreams: a dump of over 1 MiB goes out in writes of about
// flushAt bytes as the Dumper emits, not in one write at the end. The
// Dumper stops halfway until the client has received 256 KiB, which it
// could not if the server held the dump back.
func TestShardDumpStreams(t *testing.T) {
	cache := newShardCache(t)
	const items, size = 200, 8 << 10 // 1.6 MiB
	val := strings.Repeat("v", size)
	for i := range items {
		k := []byte("a" + strconv.Itoa(i)) // shard 1
		if r, _ := cache.Set(k, []byte(val), nil); r != store.Stored {
			t.Fatalf("set %s: %v", k, r)
		}
	}
	received := make(chan struct{})
	var once sync.Once
	cache.pause = func(emitted int) {
		if emitted >= items*size/2 {
			once.Do(func() {
				select {
				case <-received:
				case <-time.After(5 * time.Second):
					t.Error("client saw nothing of the first half of the dump")
				}
			})
		}
	}
	srv, err := New(Config{PeerExtensions: true, Dumps: cache, Items: cache}, cache)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &writeLog{Listener: ln}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(wl) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()

	c := dial(t, ln.Addr().String())
	if _, err := io.WriteString(c, "sd Ag==\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	rr := protocol.NewReplyReader(br, 0)
	n, bytes := 0, 0
	signalled := false
	for {
		rep, err := rr.Next()
		if err != nil {
			t.Fatalf("after %d items: %v", n, err)
		}
		if rep.Status == protocol.StatusEN {
			break
		}
		if rep.Status != protocol.StatusVA || len(rep.Value) != size {
			t.Fatalf("reply %v with %d bytes", rep.Status, len(rep.Value))
		}
		n++
		bytes += len(rep.Value)
		if bytes >= 256<<10 && !signalled {
			signalled = true
			close(received)
		}
	}
	if n != items {
		t.Fatalf("dumped %d items, want %d", n, items)
	}
	wl.mu.Lock()
	defer wl.mu.Unlock()
	if len(wl.writes) < items*size/flushAt {
		t.Errorf("%d writes for a %d-byte dump", len(wl.writes), items*size)
	}
	for _, w := range wl.writes {
		if w > flushAt+size+64 {
			t.Errorf("one write of %d bytes: the dump was buffered", w)
		}
	}
}

// TestPeerExtensionsOffMatchMemcached: on a client port, every peer
// extension gets memcached 1.6.18's own answer, byte for byte.
func TestPeerExtensionsOffMatchMemcached(t *testing.T) {
	mc := startMemcached(t)
	sh := startShoal(t)
	req := "sd AQ==\r\nsd\r\nsd AQ= x\r\n" +
		"ms a 1 Y1\r\nx\r\nms a 1 Z1 T0\r\nx\r\nms a 1 E5 Y1\r\nx\r\n" +
		"md a Y1\r\nmd a Z2 q\r\nmg a Y1 v\r\nma a Z1\r\n" +
		"mn\r\n"
	want := exchange(t, mc, req, "MN\r\n")
	if got := exchange(t, sh, req, "MN\r\n"); got != want {
		t.Fatalf("shoal client port\n%q\nmemcached\n%q", got, want)
	}
}

func (c *shardCache) ReplicaGet(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	it, val, res := c.Get(key, opt, dst)
	if res != store.Hit {
		it.CAS = c.deletes[string(key)]
	}
	return it, val, res
}
