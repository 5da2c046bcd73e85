package server

import (
	"context"

	"shoal/store"
)

// Cache is what the connection server needs from the layer below it: the
// local store on a standalone node (Local), a router on a cluster node.
// Every method is called concurrently from many connections.
//
// Start runs one key's operation (Request). With a done, it either
// completes req at once and returns false, its outcome in req, or returns
// true (pending) and calls done(req) later, exactly once, from another
// goroutine, with the outcome in req; done may run before Start has
// returned, and Start must not call it itself. Only a loop over an
// AsyncCache passes a done (the connection parks meanwhile). With done
// nil the caller waits: Start completes req before it returns (false),
// waiting on the network as long as it must and giving up when ctx ends,
// so that nothing uses the connection's buffers after the call (the
// goroutine driver, a command run off its loop). Start must not retain
// req, nor the slices it holds, after completing it. Exptimes are
// absolute unix seconds (0 = never); the server converts memcached's
// relative form.
//
// Writes may fail when the item's owner cannot be reached: the error's
// text goes to the client as "SERVER_ERROR <text>". A read never fails: an
// unreachable owner is a miss, which a cache client must handle anyway.
//
// ctx is the connection's: it ends when the server shuts down or drops
// its connections (DropConns), or once the connection has closed (a
// client's hang-up is seen between commands, not during one). A call that
// waits on the network should give up then: its answer has nowhere to go.
// A get's miss that comes after ctx ended is not answered (the cache may
// have given up): the connection ends.
type Cache interface {
	Now() int64
	Fits(keyLen, valueLen int) bool
	Start(ctx context.Context, req *Request, done func(*Request)) (pending bool)
	FlushAll(ctx context.Context, delay int64)
	SetMemoryLimit(bytes int64) error
	Stats() store.Stats
	ResetStats()
	// Range lists the items this node holds, for the commands that list
	// them (lru_crawler metadump, stats cachedump, which memcached-tool's
	// dump and keys use): it calls fn for every item, sequentially on the
	// calling goroutine, with store.Store.Range's guarantees; fn returns
	// false to stop. key and val are valid only during the call. Range
	// runs off the event loops and must not hold locks writers need while
	// fn runs (fn writes to the network).
	Range(fn func(key []byte, it store.Item, val []byte) bool)
}

// Local serves a Cache from a local store, which never fails a write.
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

// FlushAll flushes the local store.
func (l Local) FlushAll(_ context.Context, delay int64) { l.Store.FlushAll(delay) }

var _ Cache = Local{}

// MultiGetter is an optional Cache method for a classic retrieval of
// several keys (get, gets, gat, gats): a cluster cache fetches the keys of
// each owner in one batch, all owners at once, instead of one Get per key.
// The server uses it, when the Cache has it, for two keys or more; a
// single key, and every meta command, still goes through Get.
//
// GetMulti reads keys[i] for every i with the semantics of Get(keys[i],
// opt, ...) and calls into once per hit, in ascending i, sequentially on
// the calling goroutine and before it returns; a miss (including an
// unreachable owner) is not reported. A key listed twice is read twice.
// val is valid only during that call of into. GetMulti is called
// concurrently from many connection goroutines and must not retain keys,
// opt or into after it returns.
type MultiGetter interface {
	GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(i int, it store.Item, val []byte))
}

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
