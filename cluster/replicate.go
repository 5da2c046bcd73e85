package cluster

import (
	"shoal/repl"
	"shoal/store"
)

// Replicator receives the result of every write this node applies as the
// serving owner of a key, with the key's other owners as targets.
// *repl.Replicator implements it. Push must not block or retain key or
// it.Value.
type Replicator interface {
	Push(key []byte, targets []repl.Target, it repl.Item)
}

// wrote is called after a local write of key on route rt: when it changed
// the item and this node serves key as its primary on rt (no earlier
// owner takes requests), the result goes to the key's other owners.
func (r *Router) wrote(rt *Route, key []byte, changed bool) {
	if !changed || r.cfg.Replicator == nil || !rt.primary() {
		return
	}
	if targets := rt.targets(nil); len(targets) > 0 {
		r.cfg.Replicator.Push(key, targets, r.stamped(rt, key))
	}
}

// result reads back what a write left in the local store, without
// bumping it.
func (r *Router) result(key []byte) repl.Item {
	it, val, res := r.st.Get(key, &store.GetOptions{NoBump: true}, nil)
	if res != store.Hit {
		return repl.Item{Deleted: true, CAS: r.tombs.Get(key)} // the delete's version, when it removed an item
	}
	return repl.Item{Value: val, Flags: it.Flags, Exptime: it.Exptime, CAS: it.CAS, KeyBinary: it.KeyBinary}
}

// stamped is key's local result with rt's epoch and the next sequence
// number of its shard.
func (r *Router) stamped(rt *Route, key []byte) repl.Item {
	it := r.result(key)
	it.Epoch = uint64(rt.View().Epoch)
	it.Seq = r.nextSeq(rt.shard)
	return it
}

// Refresh is repl.Config.Refresh: a replica refused a push of key as older
// than its view. When this node still serves key in its current view and
// peer is still one of the key's other owners, the push is made again from
// the store with this view's epoch (with a replication factor of 3 or
// more, a view change can keep both as owners while changing the third,
// and the replica may have seen it first). Otherwise nothing is resent:
// the key's owners in the new view have it or warm it.
func (r *Router) Refresh(key []byte, peer string) (repl.Item, bool) {
	rt := r.route(key)
	if !rt.primary() {
		return repl.Item{}, false
	}
	for _, t := range rt.targets(nil) {
		if t.Name == peer {
			return r.stamped(&rt, key), true
		}
	}
	return repl.Item{}, false
}
