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

// targets reports whether this node serves key now (it is the first owner
// in the ring that is not skipped as down or dead, as walk decides) and,
// if so, the key's other owners: the replicas to push its writes to.
func (r *Router) targets(v *View, key []byte) ([]repl.Target, bool) {
	if v == nil || v.Ring == nil {
		return nil, false
	}
	owners := v.Ring.Owners(v.Ring.Shard(key))
	ps := r.peerSet(v)
	serving := false
	var out []repl.Target
	for _, name := range owners {
		if name == r.self {
			serving = true
			continue
		}
		m := ps.get(name)
		if !serving && r.usable(name, m) {
			return nil, false // an earlier owner serves it
		}
		if m != nil {
			out = append(out, repl.Target{Name: m.name, Addr: m.addr})
		}
	}
	return out, serving
}

// result reads back what a write left in the local store, without
// bumping it.
func (r *Router) result(key []byte) repl.Item {
	it, val, res := r.st.Get(key, &store.GetOptions{NoBump: true}, nil)
	if res != store.Hit {
		return repl.Item{Deleted: true}
	}
	return repl.Item{Value: val, Flags: it.Flags, Exptime: it.Exptime, CAS: it.CAS, KeyBinary: it.KeyBinary}
}

// replicate pushes the result of a local write of key to targets, with
// the view's epoch and the shard's next sequence number.
func (r *Router) replicate(v *View, key []byte, targets []repl.Target) {
	if len(targets) == 0 {
		return
	}
	r.cfg.Replicator.Push(key, targets, r.stamped(v, key))
}

// stamped is key's local result with v's epoch and the next sequence
// number of its shard.
func (r *Router) stamped(v *View, key []byte) repl.Item {
	it := r.result(key)
	s := v.Ring.Shard(key)
	it.Epoch = uint64(v.Epoch)
	if seq := r.seq.Load(); seq != nil && s < len(*seq) {
		it.Seq = (*seq)[s].Add(1)
	}
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
	v := r.current()
	targets, serving := r.targets(v, key)
	if !serving {
		return repl.Item{}, false
	}
	for _, t := range targets {
		if t.Name == peer {
			return r.stamped(v, key), true
		}
	}
	return repl.Item{}, false
}
