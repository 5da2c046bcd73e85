package takeover

import (
	"shoal/store"
	"shoal/tomb"
)

// Versions: copies converge to the newest write, deletes included.
//
// Every write in a cluster has a version, its hybrid-clock CAS
// (store.Config.HybridCAS). A copy of a key made elsewhere (replicated,
// pulled by a warm-up, read through, handed back by a hint) is applied
// only over an older item (store.SetOptions.Newer) and never over a newer
// delete. A delete that removes an item gets a version too (store.Stamp),
// travels with it (md E on the peer port), removes only older items
// (store.DeleteOptions.Before) and is remembered for a while as a
// tombstone (package tomb), so that a copy that left its source before the
// delete cannot bring the key back. A tombstone's stripe lock orders the
// check of a copy against the recording of a delete. A local set needs no
// check: its CAS is minted after every version this node witnessed.

// Versions is the store's versioned writes: the store, and the deletes
// it remembers. The router and Takeover share one.
type Versions struct {
	Store *store.Store
	Tombs *tomb.Table
}

// ApplyCopy stores a copy of key made elsewhere, with so.NewCAS its
// version, unless this node holds a newer item or remembers a newer delete.
func (v Versions) ApplyCopy(key, value []byte, so *store.SetOptions) (store.Result, store.Item) {
	so.Newer = true
	if so.NewCAS == 0 {
		return v.Store.Set(key, value, so)
	}
	mu := v.Tombs.Lock(key)
	defer mu.Unlock()
	if v.Tombs.Covers(key, so.NewCAS) {
		return store.NotStored, store.Item{}
	}
	return v.Store.Set(key, value, so)
}

// DeleteVersioned deletes key as a delete of version d, or of a fresh
// version when d is 0 (this node serves the delete): only an item older
// than the delete goes. A delete that removes an item, and every delete
// made elsewhere (d set), is remembered. A conditional delete (opt.CAS)
// keeps its condition; an invalidation (opt.Invalidate) is a write, not a
// delete, and runs as given.
func (v Versions) DeleteVersioned(key []byte, opt *store.DeleteOptions, d uint64) (store.Result, store.Item) {
	var o store.DeleteOptions
	if opt != nil {
		o = *opt
	}
	if o.Invalidate {
		return v.Store.Delete(key, &o)
	}
	mu := v.Tombs.Lock(key)
	defer mu.Unlock()
	o.Before = v.Store.Stamp(d)
	res, it := v.Store.Delete(key, &o)
	if res == store.Deleted || d != 0 {
		v.Tombs.Put(key, o.Before)
	}
	return res, it
}

// exptimeAt converts the TTL left a peer reports (-1 never) to an
// absolute time on st's clock (cluster's exptimeAt).
func exptimeAt(st *store.Store, left int64) int64 {
	if left < 0 {
		return 0
	}
	return st.Now() + left
}
