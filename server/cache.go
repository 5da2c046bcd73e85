package server

import (
	"context"

	"shoal/store"
)

// Cache is the request path below the connection server: the local
// store on a standalone node (Local), a router on a cluster node. Every
// method is called concurrently from many connections. What the server
// reads from the store itself (its clock, limits, counters, items) is
// Items, apart.
//
// Start runs one key's operation (Request). With a done, it either
// completes req at once and returns false, its outcome in req, or returns
// true (pending) and calls done(req) later, exactly once, from another
// goroutine, with the outcome in req; done may run before Start has
// returned, and Start must not call it itself. Only an event loop passes
// a done, and only to a Cache that may wait (not a Local; the connection
// parks meanwhile). With done nil the caller waits: Start completes req
// before it returns (false), waiting on the network as long as it must
// and giving up when ctx ends, so that nothing uses the connection's
// buffers after the call (the goroutine driver, a command run off its
// loop). Start must not retain req, nor the slices it holds, after
// completing it. Exptimes are absolute unix seconds (0 = never); the
// server converts memcached's relative form.
//
// GetMulti is a classic retrieval of several keys (get, gets, gat, gats):
// a cluster cache fetches the keys of each owner in one batch, all owners
// at once, instead of one request per key. It reads keys[i] for every i
// with the semantics of an OpGet of keys[i] with opt, and calls into once
// per hit, in ascending i, sequentially on the calling goroutine and
// before it returns; a miss (including an unreachable owner) is not
// reported. A key listed twice is read twice. val is valid only during
// that call of into. GetMulti must not retain keys, opt or into after it
// returns. The server calls it for two keys or more on a Cache that may
// wait; a Local's retrievals go key by key through Start.
//
// Inline reports whether a command on key completes without waiting on
// the network (for flush_all, which names no key, Inline(nil): whether
// flushing does): an event loop runs such commands itself and hands the
// others to a goroutine (see the server's async.go). Flush is called by
// an event loop at the end of each wake-up in which Start returned
// pending: requests Start queued may wait for it to be sent, so that the
// requests of a wake-up share writes.
//
// FlushAll is flush_all with its delay in seconds (0: now).
//
// Writes may fail when the item's owner cannot be reached: the error's
// text goes to the client as "SERVER_ERROR <text>". A read never fails: an
// unreachable owner is a miss, which a cache client must handle anyway.
//
// ctx is the connection's: it ends when the server shuts down or drops
// its connections (DropConns), or once the connection has closed (a
// client's hang-up is seen between commands, not during one). A call that
// waits on the network should give up then: its answer has nowhere to go.
// A get's miss or a write's error that comes after ctx ended is not
// answered (the cache may have given up): the connection ends.
type Cache interface {
	Start(ctx context.Context, req *Request, done func(*Request)) (pending bool)
	GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(i int, it store.Item, val []byte))
	Inline(key []byte) bool
	Flush()
	FlushAll(ctx context.Context, delay int64)
}

// Items is the store under a node's caches as the server reads it itself
// (*store.Store implements it), none of it waiting on anything: its clock
// and item size limit, its counters (stats) and memory limit
// (cache_memlimit), and its items.
//
// Range lists the items this node holds, for the commands that list them
// (lru_crawler metadump, stats cachedump, which memcached-tool's dump and
// keys use): it calls fn for every item, sequentially on the calling
// goroutine, with store.Store.Range's guarantees; fn returns false to
// stop. key and val are valid only during the call. Range runs off the
// event loops and must not hold locks writers need while fn runs (fn
// writes to the network). ClassID and Peek are for watch lines: an
// item's size class, and the value size under a key.
type Items interface {
	Now() int64
	Fits(keyLen, valueLen int) bool
	Stats() store.Stats
	ResetStats()
	SetMemoryLimit(bytes int64) error
	Range(fn func(key []byte, it store.Item, val []byte) bool)
	ClassID(keyLen, valueLen int) int
	Peek(key []byte) (int, bool)
}

var _ Items = (*store.Store)(nil)

// Local serves a Cache from a local store, which never waits and never
// fails a write. The server knows it: a Local's requests complete at
// once, on the event loop, and it is its own Items.
type Local struct{ *store.Store }

// Start runs req on the local store, at once: it is never pending.
func (l Local) Start(_ context.Context, req *Request, _ func(*Request)) bool {
	l.Do(req)
	return false
}

// Do runs req on the local store and leaves the outcome in it.
func (l Local) Do(req *Request) {
	switch req.Op {
	case OpGet:
		req.Item, req.Val, req.Res = l.Store.Get(req.Key, req.Get, req.Dst)
	case OpSet:
		req.Res, req.Item = l.Store.Set(req.Key, req.Value, req.Set)
		req.Err = nil
	case OpDelete:
		req.Res, req.Item = l.Store.Delete(req.Key, req.Del)
		req.Err = nil
	case OpArith:
		req.Res, req.N, req.Item = l.Store.Arith(req.Key, req.Arith)
		req.Err = nil
	case OpTouch:
		req.Res, req.Item = l.Store.Touch(req.Key, req.Exptime)
		req.Err = nil
	}
}

// GetMulti reads the keys one by one from the local store.
func (l Local) GetMulti(_ context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	var buf []byte
	for i, k := range keys {
		it, val, res := l.Store.Get(k, opt, buf[:0])
		if res == store.Hit {
			into(i, it, val)
		}
		buf = val
	}
}

// Inline is true: nothing waits.
func (Local) Inline([]byte) bool { return true }

// Flush does nothing: nothing is queued.
func (Local) Flush() {}

// FlushAll flushes the local store.
func (l Local) FlushAll(_ context.Context, delay int64) { l.Store.FlushAll(delay) }

var _ Cache = Local{}

// Origin is where a replicated write comes from: the sender's ring epoch
// (meta Y) and its per-shard sequence number (meta Z; 0 when absent).
type Origin struct{ Epoch, Seq uint64 }

// Dumper answers the peer port's sd command (Config.Dumps),
// with which a node coming back warms up from a peer.
//
// Dump calls emit for each item the Cache holds in the shards set in want,
// with a CAS of since or more (since 0: every item),
// (bit i of want[i/8], least significant bit first; see
// protocol.WantsShard): the server does not know what a shard is, the
// Cache decides. emit is called sequentially, on the calling goroutine,
// before Dump returns; key and val are valid only during the call, and it
// carries the item's flags, absolute Exptime and CAS. emit returns false
// when the connection has failed: Dump should stop then. Dump is called
// concurrently from several connection goroutines, must not retain want or
// emit, and must not hold locks that writers need while emit runs (emit
// writes to the network).
//
// With since, Dump returns false, having emitted nothing, when what it
// would emit is not all that changed since that version (the Cache
// dropped newer items by itself or forgot newer deletes); the server then
// answers protocol.ReplyNoDelta.
//
// DumpDeletes, called after Dump, emits under the same rules each delete
// the Cache remembers in the shards set in want, with the delete's
// version (since or more): a node warming a shard then also loses what
// was deleted while it was away, not only gains what was written.
type Dumper interface {
	Dump(want []byte, since uint64, emit func(key []byte, it store.Item, val []byte) bool) bool
	DumpDeletes(want []byte, since uint64, emit func(key []byte, version uint64) bool)
}
