package server

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"shoal/protocol"
	"shoal/store"
)

// memcached's watch command: a connection that sends it receives, from
// then on, one line per event of the streams it named, and nothing else.
//
// An event site costs one atomic load (conn.watching) while no watcher
// takes its stream. Past it, the line is formatted once on the goroutine
// of the event, into a stack buffer, and copied into the ring of every
// watcher that takes it (watcher.ring, WatcherBufSize bytes, as
// memcached's watcher_logbuf_size): a line that does not fit is dropped
// and counted, and the next one that fits is preceded by "skipped=N", as
// memcached's logger does. The request path never waits for a watcher.
// The watcher's own goroutine (the connection's, or under an event loop
// the one its command was lent to) writes the ring out; a watcher that
// does not read holds its ring and its socket buffer, no more.

// Streams, as memcached's LOG_* flags.
const (
	streamRawCmds uint32 = 1 << iota
	streamEvictions
	streamFetchers
	streamMutations
	streamSysEvents
	streamConnEvents
	streamProxyReqs
	streamProxyEvents
	streamProxyUser
)

// streamNames are the stream names memcached 1.6.18 accepts. rawcmds,
// sysevents and the proxy streams are accepted and never emit: shoal
// logs no raw commands, its reclaimer and page moves log nothing, and it
// has no proxy.
var streamNames = [...]struct {
	name string
	bit  uint32
}{
	{"rawcmds", streamRawCmds},
	{"evictions", streamEvictions},
	{"fetchers", streamFetchers},
	{"mutations", streamMutations},
	{"sysevents", streamSysEvents},
	{"connevents", streamConnEvents},
	{"proxyreqs", streamProxyReqs},
	{"proxyevents", streamProxyEvents},
	{"proxyuser", streamProxyUser},
}

const (
	// WatcherBufSize is each watcher's buffer (memcached's
	// watcher_logbuf_size default, in stats settings).
	WatcherBufSize = 256 << 10
	// watcherLimit is memcached's WATCHER_LIMIT.
	watcherLimit = 20
	// skipRoom is what a line needs free beyond its length: room for a
	// "skipped=N" line before it, as memcached reserves.
	skipRoom = 128
	// lineMax bounds one line: a 250-byte key URI-encoded is 750 bytes.
	lineMax = 1024
	// watchPoll is how often a watcher that has nothing to write looks
	// whether its client is gone or the connection dropped.
	watchPoll = 100 * time.Millisecond
)

// Watch is the set of watchers a server's events go to. A Server makes
// its own unless Config.Watch names one: a node shares one between its
// client and peer servers, and its store reports evictions to it
// (Evicted). The zero value is ready; it starts nothing.
type Watch struct {
	// on is the union of the attached watchers' streams: the one load an
	// event site makes.
	on      atomic.Uint32
	gid     atomic.Uint64
	written atomic.Int64 // lines made (memcached's log_worker_written)
	sent    atomic.Int64 // lines a watcher's buffer took
	skipped atomic.Int64 // lines dropped for a full buffer
	// list is the attached watchers, replaced whole under mu.
	list atomic.Pointer[[]*watcher]
	mu   sync.Mutex
}

// WatchStats is the watch counters, as stats reports them.
type WatchStats struct {
	Watchers, Written, Sent, Skipped int64
}

// Stats returns the counters.
func (w *Watch) Stats() WatchStats {
	var n int
	if l := w.list.Load(); l != nil {
		n = len(*l)
	}
	return WatchStats{Watchers: int64(n), Written: w.written.Load(), Sent: w.sent.Load(), Skipped: w.skipped.Load()}
}

// watcher is one watching connection's streams and buffer.
type watcher struct {
	streams uint32
	minGID  uint64        // lines made before it attached are not its
	wake    chan struct{} // one token: the ring has lines

	// mu guards the fields below.
	mu      sync.Mutex
	ring    ring
	skipped uint64 // lines dropped since the last that fit
}

// attach adds a watcher of streams, or returns nil when watcherLimit are
// attached.
func (w *Watch) attach(streams uint32) *watcher {
	w.mu.Lock()
	defer w.mu.Unlock()
	var old []*watcher
	if l := w.list.Load(); l != nil {
		old = *l
	}
	if len(old) >= watcherLimit {
		return nil
	}
	x := &watcher{streams: streams, minGID: w.gid.Add(1), wake: make(chan struct{}, 1), ring: ring{b: make([]byte, WatcherBufSize)}}
	l := append(append(make([]*watcher, 0, len(old)+1), old...), x)
	w.list.Store(&l)
	w.setOn(l)
	return x
}

// detach removes x.
func (w *Watch) detach(x *watcher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := *w.list.Load()
	l := make([]*watcher, 0, len(old))
	for _, y := range old {
		if y != x {
			l = append(l, y)
		}
	}
	w.list.Store(&l)
	w.setOn(l)
}

func (w *Watch) setOn(l []*watcher) {
	var on uint32
	for _, x := range l {
		on |= x.streams
	}
	w.on.Store(on)
}

// start begins a line of stream: "ts=<sec>.<usec> gid=<n> ".
func (w *Watch) start(dst []byte) ([]byte, uint64) {
	gid := w.gid.Add(1)
	now := time.Now()
	dst = append(dst, "ts="...)
	dst = strconv.AppendInt(dst, now.Unix(), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(now.Nanosecond()/1000), 10) // %d, unpadded, as memcached
	dst = append(dst, " gid="...)
	dst = strconv.AppendUint(dst, gid, 10)
	dst = append(dst, ' ')
	return dst, gid
}

// send copies line (newline-terminated) into the buffer of every watcher
// of stream.
func (w *Watch) send(stream uint32, gid uint64, line []byte) {
	l := w.list.Load()
	if l == nil {
		return
	}
	w.written.Add(1)
	for _, x := range *l {
		if x.streams&stream == 0 || gid < x.minGID {
			continue
		}
		x.mu.Lock()
		if x.ring.free() < len(line)+skipRoom {
			x.skipped++
			x.mu.Unlock()
			w.skipped.Add(1)
			continue
		}
		if x.skipped > 0 {
			var a [32]byte
			s := append(strconv.AppendUint(append(a[:0], "skipped="...), x.skipped, 10), '\n')
			x.ring.put(s)
			x.skipped = 0
		}
		x.ring.put(line)
		x.mu.Unlock()
		w.sent.Add(1)
		select {
		case x.wake <- struct{}{}:
		default:
		}
	}
}

// Evicted logs an eviction of the store (evictions stream); it is a
// store.Config.Evicted callback.
func (w *Watch) Evicted(key []byte, it store.Item, class int) {
	if w.on.Load()&streamEvictions == 0 {
		return
	}
	var a [lineMax]byte
	b, gid := w.start(a[:0])
	now := time.Now().Unix()
	ttl := int64(-1)
	if it.Exptime > 0 {
		ttl = it.Exptime - now
	}
	b = append(b, "type=eviction key="...)
	b = appendURIEncoded(b, key)
	b = append(b, " fetch="...)
	b = append(b, yesNo(it.Fetched)...)
	b = append(b, " ttl="...)
	b = strconv.AppendInt(b, ttl, 10)
	b = append(b, " la="...)
	b = strconv.AppendInt(b, int64(int32(now-it.LastAccess)), 10)
	b = append(b, " clsid="...)
	b = strconv.AppendUint(b, uint64(uint8(class)), 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(it.Size), 10)
	b = append(b, '\n')
	w.send(streamEvictions, gid, b)
}

// ring is a watcher's fixed buffer of lines not yet written.
type ring struct {
	b    []byte
	r, n int // unread bytes start at r, n of them
}

func (g *ring) free() int { return len(g.b) - g.n }

// put appends p, which fits (free).
func (g *ring) put(p []byte) {
	w := (g.r + g.n) % len(g.b)
	k := copy(g.b[w:], p)
	copy(g.b, p[k:])
	g.n += len(p)
}

// peek returns the unread bytes up to the end of the buffer; producers
// only write to the free part, so the slice stays valid until advance.
func (g *ring) peek() []byte {
	return g.b[g.r:min(g.r+g.n, len(g.b))]
}

func (g *ring) advance(k int) {
	g.r = (g.r + k) % len(g.b)
	g.n -= k
	if g.n == 0 {
		g.r = 0
	}
}

// watching reports whether a watcher takes stream: one atomic load.
func (c *conn) watching(stream uint32) bool { return c.srv.watch.on.Load()&stream != 0 }

// Status words of memcached's log lines.
var (
	getStatus   = [...]string{"not_found", "found"}
	storeStatus = [...]string{
		store.Stored: "stored", store.NotStored: "not_stored", store.Exists: "exists",
		store.NotFound: "not_found", store.TooLarge: "too_large", store.NoMemory: "no_memory",
	}
)

// logGet logs a lookup of key (fetchers): found, with its value length.
// memcached's flushed and expired statuses are never used: the store
// does not tell them from a miss.
func (c *conn) logGet(key []byte, found bool, size int) {
	var a [lineMax]byte
	b, gid := c.srv.watch.start(a[:0])
	b = append(b, "type=item_get key="...)
	b = appendURIEncoded(b, key)
	b = append(b, " status="...)
	cls := 0
	if found {
		b = append(b, getStatus[1]...)
		cls = c.srv.items.ClassID(len(key), size)
	} else {
		b = append(b, getStatus[0]...)
		size = 0
	}
	b = append(b, " clsid="...)
	b = strconv.AppendInt(b, int64(cls), 10)
	b = append(b, " cfd="...)
	b = strconv.AppendUint(b, c.id, 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, '\n')
	c.srv.watch.send(streamFetchers, gid, b)
}

// logStore logs the outcome of a write (mutations): cmd is memcached's
// command word, exptime the write's absolute exptime, size the length of
// the value it carried.
func (c *conn) logStore(key []byte, res store.Result, cmd string, exptime int64, size int) {
	status := "not_stored"
	if int(res) < len(storeStatus) && storeStatus[res] != "" {
		status = storeStatus[res]
	}
	var a [lineMax]byte
	b, gid := c.srv.watch.start(a[:0])
	b = append(b, "type=item_store key="...)
	b = appendURIEncoded(b, key)
	b = append(b, " status="...)
	b = append(b, status...)
	b = append(b, " cmd="...)
	b = append(b, cmd...)
	b = append(b, " ttl="...)
	ttl := uint32(0)
	if exptime != 0 {
		ttl = uint32(exptime - c.srv.items.Now()) // %u of a rel_time_t difference
	}
	b = strconv.AppendUint(b, uint64(ttl), 10)
	b = append(b, " clsid="...)
	cls := 0
	if res != store.TooLarge && res != store.NoMemory {
		cls = c.srv.items.ClassID(len(key), size)
	}
	b = strconv.AppendInt(b, int64(cls), 10)
	b = append(b, " cfd="...)
	b = strconv.AppendUint(b, c.id, 10)
	b = append(b, " size="...)
	if res == store.TooLarge || res == store.NoMemory {
		size = 0 // memcached logs no item for a write it could not allocate
	}
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, '\n')
	c.srv.watch.send(streamMutations, gid, b)
}

// watchWrite logs a write as memcached does: the lookup it made
// (c.prior, from peekPrior), then its outcome; size is the length of the
// value it carried.
func (c *conn) watchWrite(key []byte, cmd string, res store.Result, exptime int64, size int) {
	prior := int(c.prior) - 1 // -1: none
	c.prior = 0
	if c.watching(streamFetchers) {
		c.logGet(key, prior >= 0, prior)
	}
	if c.watching(streamMutations) {
		if res == store.Stored && prior >= 0 && (cmd == "append" || cmd == "prepend") {
			size += prior // memcached logs the item it built
		}
		c.logStore(key, res, cmd, exptime, size)
	}
}

// logConn logs a connection opened or closed (connevents).
func (s *Server) logConn(c *conn, closed bool) {
	var a [lineMax]byte
	b, gid := s.watch.start(a[:0])
	if closed {
		b = append(b, "type=conn_close rip="...)
	} else {
		b = append(b, "type=conn_new rip="...)
	}
	transport, port := "tcp", 0
	switch a := c.raddr.(type) {
	case *net.TCPAddr:
		b = append(b, a.IP.String()...)
		port = a.Port
	default:
		b = append(b, "unix"...)
		transport = "local"
	}
	b = append(b, " rport="...)
	b = strconv.AppendInt(b, int64(port), 10)
	b = append(b, " transport="...)
	b = append(b, transport...)
	if closed {
		b = append(b, " reason="...)
		b = append(b, closeReasons[c.closeWhy]...)
	}
	b = append(b, " cfd="...)
	b = strconv.AppendUint(b, c.id, 10)
	b = append(b, '\n')
	s.watch.send(streamConnEvents, gid, b)
}

// Why a connection closed, as memcached's conn_close reasons.
const (
	closeNormal uint8 = iota
	closeError
	closeIdle
	closeShutdown
)

var closeReasons = [...]string{"normal", "error", "idle_timeout", "shutdown"}

// peekPrior notes in c.prior what key holds before a write, for the
// lookup memcached's write logs: in the local store only (Config.Items),
// so it never waits on a peer.
func (c *conn) peekPrior(key []byte) {
	c.prior = 0
	if n, ok := c.srv.items.Peek(key); ok {
		c.prior = int32(n + 1)
	}
}

// logLookup logs the lookup of a command that found key's item or not,
// with the value length peekPrior saw.
func (c *conn) logLookup(key []byte, found bool) {
	size := max(int(c.prior)-1, 0)
	c.prior = 0
	c.logGet(key, found, size)
}

// storeCmds are memcached's command words for item_store lines.
var storeCmds = [...]string{
	protocol.OpSet: "set", protocol.OpAdd: "add", protocol.OpReplace: "replace",
	protocol.OpAppend: "append", protocol.OpPrepend: "prepend", protocol.OpCAS: "cas",
}

// watchArith logs an ma as memcached does: its lookup, and for an item it
// created (N), a second lookup and the add that stored it.
func (c *conn) watchArith(key []byte, res store.Result, v uint64, it store.Item, vivExp int64) {
	if !it.Created {
		if c.watching(streamFetchers) {
			c.logLookup(key, res != store.NotFound)
		}
		return
	}
	if c.watching(streamFetchers) {
		c.logGet(key, false, 0)
		c.logGet(key, false, 0)
	}
	if c.watching(streamMutations) {
		var digits [20]byte
		c.logStore(key, res, "add", vivExp, len(strconv.AppendUint(digits[:0], v, 10)))
	}
}

// refused drops the old value of a write refused before it reached the
// store (too large, or no memory to receive it), as memcached does for a
// set (op), and logs both.
func (c *conn) refused(op protocol.StoreOp, key []byte, res store.Result) {
	deleted, it := false, store.Item{}
	if op == protocol.OpSet {
		var r store.Result
		r, it = c.deleteAnyway(key)
		deleted = r == store.Deleted
	}
	if c.watching(streamMutations) {
		c.logStore(key, res, storeCmds[op], 0, 0)
	}
	if op == protocol.OpSet && c.watching(streamFetchers) {
		c.logGet(key, deleted, it.Size)
	}
}

// resetStats zeroes the counters stats reset clears, as memcached's.
func (w *Watch) resetStats() {
	w.written.Store(0)
	w.sent.Store(0)
	w.skipped.Store(0)
}
