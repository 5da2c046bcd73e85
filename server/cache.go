package server

import (
	"context"

	"shoal/store"
)

// Cache is what the connection server needs from the layer below it: the
// local store on a standalone node (through Local), a router on a cluster
// node. Every method is called concurrently from many connection
// goroutines and must not retain key, value or dst after it returns.
// Exptimes are absolute unix seconds (0 = never); the server converts
// memcached's relative form.
//
// Writes may fail when the item's owner cannot be reached: the error's text
// goes to the client as "SERVER_ERROR <text>". A read never fails: an
// unreachable owner is a miss, which a cache client must handle anyway.
//
// ctx is the connection's: it ends when the server shuts down or drops
// its connections (DropConns), or once the connection has closed (a
// client's hang-up is seen between commands, not during one). A call that
// waits on the network should give up then: its answer has nowhere to go.
type Cache interface {
	Now() int64
	Fits(keyLen, valueLen int) bool
	Get(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result)
	Set(ctx context.Context, key, value []byte, opt *store.SetOptions) (store.Result, store.Item, error)
	Delete(ctx context.Context, key []byte, opt *store.DeleteOptions) (store.Result, store.Item, error)
	Arith(ctx context.Context, key []byte, opt *store.ArithOptions) (store.Result, uint64, store.Item, error)
	Touch(ctx context.Context, key []byte, exptime int64) (store.Result, store.Item, error)
	FlushAll(ctx context.Context, delay int64)
	SetMemoryLimit(bytes int64) error
	Stats() store.Stats
	ResetStats()
}

// Local serves a Cache from a local store, which never fails a write.
type Local struct{ *store.Store }

// Get reads from the local store.
func (l Local) Get(_ context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	return l.Store.Get(key, opt, dst)
}

// Set stores in the local store.
func (l Local) Set(_ context.Context, key, value []byte, opt *store.SetOptions) (store.Result, store.Item, error) {
	r, it := l.Store.Set(key, value, opt)
	return r, it, nil
}

// Delete deletes from the local store.
func (l Local) Delete(_ context.Context, key []byte, opt *store.DeleteOptions) (store.Result, store.Item, error) {
	r, it := l.Store.Delete(key, opt)
	return r, it, nil
}

// Arith applies incr/decr in the local store.
func (l Local) Arith(_ context.Context, key []byte, opt *store.ArithOptions) (store.Result, uint64, store.Item, error) {
	r, v, it := l.Store.Arith(key, opt)
	return r, v, it, nil
}

// Touch touches in the local store.
func (l Local) Touch(_ context.Context, key []byte, exptime int64) (store.Result, store.Item, error) {
	r, it := l.Store.Touch(key, exptime)
	return r, it, nil
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

// Replica is an optional Cache interface for a cluster node's peer port: a
// peer-port ms or md that carries Y (the sender's ring epoch) is a
// replicated write, and goes to ReplicaSet / ReplicaDelete instead of Set /
// Delete, with its origin; an mg with Y is a replica-level read (this
// node's copy only, as a peer settling a key during its warm-up needs it)
// and goes to ReplicaGet, so that the cache can order replicated writes
// per shard and refuse those from a stale ring. A ReplicaGet miss may
// carry in Item.CAS the version of a delete of the key the cache
// remembers: it is answered "EN c<version>". Everything else about the
// request (options, Fits, the reply) is as for Set / Delete: results map to
// the same replies and an error is answered "SERVER_ERROR <text>", except
// ErrStaleOrigin (wrapped or not), answered protocol.ReplyStaleEpoch.
//
// Both methods are called concurrently from many connection goroutines
// (several peers, several connections per peer: writes of one shard may
// arrive out of order, which is what Origin.Seq is for) and must not retain
// key, value or opt after they return. A client connection never calls them.
type Replica interface {
	ReplicaSet(key, value []byte, opt *store.SetOptions, o Origin) (store.Result, store.Item, error)
	ReplicaDelete(key []byte, opt *store.DeleteOptions, o Origin) (store.Result, store.Item, error)
	ReplicaGet(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result)
}

// Origin is where a replicated write comes from: the sender's ring epoch
// (meta Y) and its per-shard sequence number (meta Z; 0 when absent).
type Origin struct{ Epoch, Seq uint64 }

// Dumper is an optional Cache interface for the peer port's sd command,
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
