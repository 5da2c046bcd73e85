package cluster

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

// versions is the store's versioned writes: the store, and the deletes
// it remembers.
type versions struct {
	st    *store.Store
	tombs *tomb.Table
}

// applyCopy stores a copy of key made elsewhere, with so.NewCAS its
// version, unless this node holds a newer item or remembers a newer delete.
func (v versions) applyCopy(key, value []byte, so *store.SetOptions) (store.Result, store.Item) {
	so.Newer = true
	if so.NewCAS == 0 {
		return v.st.Set(key, value, so)
	}
	mu := v.tombs.Lock(key)
	defer mu.Unlock()
	if v.tombs.Covers(key, so.NewCAS) {
		return store.NotStored, store.Item{}
	}
	return v.st.Set(key, value, so)
}

// deleteVersioned deletes key as a delete of version d, or of a fresh
// version when d is 0 (this node serves the delete): only an item older
// than the delete goes. A delete that removes an item, and every delete
// made elsewhere (d set), is remembered. A conditional delete (opt.CAS)
// keeps its condition; an invalidation (opt.Invalidate) is a write, not a
// delete, and runs as given.
func (v versions) deleteVersioned(key []byte, opt *store.DeleteOptions, d uint64) (store.Result, store.Item) {
	var o store.DeleteOptions
	if opt != nil {
		o = *opt
	}
	if o.Invalidate {
		return v.st.Delete(key, &o)
	}
	mu := v.tombs.Lock(key)
	defer mu.Unlock()
	o.Before = v.st.Stamp(d)
	res, it := v.st.Delete(key, &o)
	if res == store.Deleted || d != 0 {
		v.tombs.Put(key, o.Before)
	}
	return res, it
}
