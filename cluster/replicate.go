package cluster

import (
	"log/slog"
	"slices"
	"sync/atomic"

	"shoal/repl"
	"shoal/store"
	"shoal/tomb"
)

// pusher sends the results of the writes this node serves to the keys'
// other owners through the replicator, each stamped with its route's
// epoch and the next sequence number of its shard, and hands back to a
// member the writes it missed (hints.go). The router's local operations
// (local.go) and multi-gets that touch call it after the store.
type pusher struct {
	repl    *repl.Replicator // nil without RouterConfig.Replication: nothing is pushed
	st      *store.Store
	tombs   *tomb.Table // a delete's version, pushed with it
	members Membership  // gossip's verdict on a member owed writes
	log     *slog.Logger

	seq   atomic.Pointer[[]atomic.Uint64] // per shard: writes replicated from here
	hints hints                           // writes owed to members that missed them
}

// wrote is called after a local write of key on route rt: when it changed
// the item and this node serves key as its primary on rt (no earlier
// owner takes requests), the result goes to the key's other owners.
func (p *pusher) wrote(rt *Route, key []byte, changed bool) {
	if !changed || p.repl == nil || !rt.primary() {
		return
	}
	if targets := rt.targets(); len(targets) > 0 {
		p.repl.Push(key, targets, p.stamped(rt, key))
	}
}

// wroteValue is wrote for a write that stored value whole under key as it
// (a set, add, replace or cas: not append or prepend, whose result the
// store assembled): the push is made from what the write returned, with
// no read-back of the store. A later write of the key pushes its own
// result, with a larger CAS, and the replica keeps the newer (takeover/versions.go).
func (p *pusher) wroteValue(rt *Route, key, value []byte, it *store.Item, changed bool) {
	if !changed || p.repl == nil || !rt.primary() {
		return
	}
	if targets := rt.targets(); len(targets) > 0 {
		p.repl.Push(key, targets, repl.Item{
			Value: value, Flags: it.Flags, Exptime: it.Exptime, CAS: it.CAS, KeyBinary: it.KeyBinary,
			Epoch: uint64(rt.View().Epoch), Seq: p.nextSeq(rt.shard),
		})
	}
}

// result reads back what a write left in the local store, without
// bumping it.
func (p *pusher) result(key []byte) repl.Item {
	it, val, res := p.st.Get(key, &store.GetOptions{NoBump: true}, nil)
	if res != store.Hit {
		return repl.Item{Deleted: true, CAS: p.tombs.Get(key)} // the delete's version, when it removed an item
	}
	return repl.Item{Value: val, Flags: it.Flags, Exptime: it.Exptime, CAS: it.CAS, KeyBinary: it.KeyBinary}
}

// stamped is key's local result with rt's epoch and the next sequence
// number of its shard.
func (p *pusher) stamped(rt *Route, key []byte) repl.Item {
	it := p.result(key)
	it.Epoch = uint64(rt.View().Epoch)
	it.Seq = p.nextSeq(rt.shard)
	return it
}

// Refresh is repl.Config.Refresh: a replica refused a push of key as older
// than its view. When peer is one of the key's owners in this node's
// current view, the push is made again from the store with this view's
// epoch, whether or not this node still serves the key: the peer keeps
// the newer copy (takeover/versions.go), so a resend can only bring it what it
// lacks. Resending only when this node was still the key's primary left
// a write served just before a view change on the old owner alone when
// the new primary had already pulled the key (e2e/history, rolling
// restarts: 4,826 pushes refused and not resent in 3 minutes, and reads
// of the older value on the new primary 1.1-1.3 s after the write).
func (r *Router) Refresh(key []byte, peer string) (repl.Item, bool) {
	rt := r.route(key)
	if peer == r.self || !slices.Contains(rt.owners, peer) {
		return repl.Item{}, false
	}
	it := r.push.stamped(&rt, key)
	if it.Deleted && it.CAS == 0 && !rt.primary() {
		// Nothing here, not even a delete's version: the node that no
		// longer serves the key has nothing to say about it.
		return repl.Item{}, false
	}
	return it, true
}
