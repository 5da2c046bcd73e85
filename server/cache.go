package server

import "shoal/store"

// Cache is what the connection server needs from the layer below it: the
// local *store.Store on a standalone node, a router on a cluster node. Every
// method is called concurrently from many connection goroutines and must not
// retain key, value or dst after it returns. Exptimes are absolute unix
// seconds (0 = never); the server converts memcached's relative form.
type Cache interface {
	Now() int64
	Fits(keyLen, valueLen int) bool
	Get(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result)
	Set(key, value []byte, opt *store.SetOptions) (store.Result, store.Item)
	Delete(key []byte, opt *store.DeleteOptions) (store.Result, store.Item)
	Arith(key []byte, opt *store.ArithOptions) (store.Result, uint64, store.Item)
	Touch(key []byte, exptime int64) (store.Result, store.Item)
	FlushAll(delay int64)
	SetMemoryLimit(bytes int64) error
	Stats() store.Stats
	ResetStats()
}

var _ Cache = (*store.Store)(nil)
