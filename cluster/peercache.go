package cluster

import (
	"context"
	"fmt"

	"shoal/protocol"
	"shoal/server"
	"shoal/store"
)

// ErrStaleEpoch: a replicated write from a view older than the latest
// change of its shard's owners. Either its sender no longer serves the key,
// or it has not seen that change yet: the peer is told (the server answers
// server.ErrStaleOrigin with protocol.ReplyStaleEpoch), and a sender
// whose newer view lists the peer among the key's owners sends its copy
// again (Router.Refresh).
var ErrStaleEpoch = fmt.Errorf("cluster: stale epoch: %w", server.ErrStaleOrigin)

// PeerCache returns the Cache for the peer listener: this node's store,
// where forwarded and replicated requests arrive; it never routes again.
// A forwarded request is served as the owner serves it on the client port
// (warm-up, then a push of the result to the key's other owners). A
// replicated write (it carries an epoch: server.Request.Replica;
// ReplicaSet, ReplicaDelete) is stored and not pushed again. PeerCache
// implements server.Cache (async.go) and server.Dumper.
func (r *Router) PeerCache() *PeerCache { return &PeerCache{r: r} }

// PeerCache is the peer listener's Cache; see Router.PeerCache.
type PeerCache struct{ r *Router }

var (
	_ server.Cache  = (*PeerCache)(nil)
	_ server.Dumper = (*PeerCache)(nil)
)

// FlushAll flushes this node's store only: the member that got flush_all
// from its client sends it to every other.
func (p *PeerCache) FlushAll(ctx context.Context, delay int64) { p.r.st.FlushAll(delay) }

// GetMulti serves a classic multi-get on the peer port key by key, as Get
// (members send mg; a classic get comes from an operator's tool).
func (p *PeerCache) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	var buf []byte
	for i, k := range keys {
		it, val, res := p.Get(ctx, k, opt, buf[:0])
		if res == store.Hit {
			into(i, it, val)
		}
		buf = val
	}
}

// Get serves a forwarded read. A read that finds this process was paused
// is served after the recovery (it changes nothing, and the shards this
// node owns then warm: it reads through from the owners that stood in), so
// that a read sent after the resume never misses; one that writes (touch,
// vivify) is refused as a write is, with a miss.
func (p *PeerCache) Get(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	if !p.r.tk.awake() && opt != nil && (opt.Touch || opt.Vivify) {
		return store.Item{}, dst[:0], store.Miss
	}
	rt, owner := p.r.routeHere(key) // a touch or vivify is a write: pushed as Set's
	if !owner && opt != nil && (opt.Touch || opt.Vivify) {
		return store.Item{}, dst[:0], store.Miss // pushed to nobody (see routeHere)
	}
	return p.r.localGet(ctx, &rt, key, opt, dst)
}

// writeRoute is the route of a forwarded write, or why it is refused. One
// that finds this process was paused is refused with ErrPaused: it may
// have been sent before the pause, and its sender then gave up on it and
// wrote elsewhere. The recovery is done by then, so the sender asks again
// (Router.walk), and that is served. One on a key this node does not own
// in its view is refused with ErrNotOwner (see Router.routeHere); its
// sender passes it on to the key's next owner.
func (p *PeerCache) writeRoute(key []byte) (Route, error) {
	if !p.r.tk.awake() {
		return Route{}, ErrPaused
	}
	rt, owner := p.r.routeHere(key)
	if !owner {
		return Route{}, ErrNotOwner
	}
	return rt, nil
}

// Set serves a forwarded write.
func (p *PeerCache) Set(ctx context.Context, key, value []byte, opt *store.SetOptions) (store.Result, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, store.Item{}, err
	}
	return p.r.localSet(ctx, &rt, key, value, opt)
}

// Delete serves a forwarded delete.
func (p *PeerCache) Delete(ctx context.Context, key []byte, opt *store.DeleteOptions) (store.Result, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, store.Item{}, err
	}
	return p.r.localDelete(ctx, &rt, key, opt)
}

// Arith serves a forwarded incr/decr.
func (p *PeerCache) Arith(ctx context.Context, key []byte, opt *store.ArithOptions) (store.Result, uint64, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, 0, store.Item{}, err
	}
	return p.r.localArith(ctx, &rt, key, opt)
}

// Touch serves a forwarded touch.
func (p *PeerCache) Touch(ctx context.Context, key []byte, exptime int64) (store.Result, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, store.Item{}, err
	}
	return p.r.localTouch(ctx, &rt, key, exptime)
}

// admit reports why a replicated write of key from o is refused: the
// process was paused, or o's epoch predates the last change of the
// shard's owners.
func (p *PeerCache) admit(rt *Route, o server.Origin) error {
	r := p.r
	if !r.tk.awake() {
		return ErrPaused
	}
	if len(rt.owners) == 0 {
		return nil
	}
	if r.tk.staleEpoch(rt.shard, o.Epoch) {
		r.staleEpochs.Add(1)
		return ErrStaleEpoch
	}
	return nil
}

// ReplicaSet stores a replicated item unless this node holds a newer
// write of the key (a larger CAS: store.SetOptions.Newer): copies of a
// key converge to its newest write whatever order they arrive in, from
// the primary, a stand-in handing back (hints.go) or a warm-up.
func (p *PeerCache) ReplicaSet(key, value []byte, opt *store.SetOptions, o server.Origin) (res store.Result, it store.Item, err error) {
	rt := p.r.route(key)
	if err := p.admit(&rt, o); err != nil {
		return 0, store.Item{}, err
	}
	var so store.SetOptions
	if opt != nil {
		so = *opt
	}
	res = store.Stored
	p.r.tk.replicaNewer(&rt, key, func(replace bool) {
		if replace {
			so.Mode = store.ModeReplace
		}
		res, it = p.r.applyCopy(key, value, &so)
	})
	p.r.replicated.Add(1)
	return res, it, nil
}

// ReplicaDelete applies a replicated delete, with ReplicaSet's exception:
// one with a version removes only an older item and is remembered
// (versions.go).
func (p *PeerCache) ReplicaDelete(key []byte, opt *store.DeleteOptions, o server.Origin) (res store.Result, it store.Item, err error) {
	rt := p.r.route(key)
	if err := p.admit(&rt, o); err != nil {
		return 0, store.Item{}, err
	}
	res = store.Deleted
	var d uint64 // the delete's version (md E); 0 from a sender that sends none
	if opt != nil && !opt.Invalidate {
		d = opt.NewCAS
	}
	p.r.tk.replica(&rt, key, d != 0, func() bool {
		if d == 0 {
			res, it = p.r.st.Delete(key, opt)
		} else {
			res, it = p.r.deleteVersioned(key, opt, d)
		}
		return res == store.Deleted
	})
	p.r.replicated.Add(1)
	return res, it, nil
}

// ReplicaGet reads this node's store only: a warming peer settling a key
// asks here, and must not be sent on to another warming node. A miss
// carries the version of the key's delete when this node remembers one.
func (p *PeerCache) ReplicaGet(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	it, val, res := p.r.st.Get(key, opt, dst)
	if res != store.Hit {
		it = store.Item{CAS: p.r.tombs.Get(key)}
	}
	return it, val, res
}

// Dump lists this node's items in the shards set in want with a CAS of
// since or more, for a peer warming them. With since, it refuses (false)
// when it cannot vouch that these are all that changed since: the store
// dropped a newer item by itself, or a newer delete was forgotten.
func (p *PeerCache) Dump(want []byte, since uint64, emit func(key []byte, it store.Item, val []byte) bool) bool {
	v := p.r.View()
	if v == nil || v.Ring == nil {
		return true
	}
	if since != 0 && (p.r.st.LostSince(since) || p.r.tombs.Forgotten() >= since) {
		return false
	}
	p.r.st.Range(func(key []byte, it store.Item, val []byte) bool {
		return it.CAS < since || !protocol.WantsShard(want, v.Ring.Shard(key)) || emit(key, it, val)
	})
	return true
}

// DumpDeletes lists the deletes this node remembers (its tombstones) in
// the shards set in want, for a peer warming them: a copy it kept from
// before it was cut off goes if the key was deleted since.
func (p *PeerCache) DumpDeletes(want []byte, since uint64, emit func(key []byte, version uint64) bool) {
	v := p.r.View()
	if v == nil || v.Ring == nil {
		return
	}
	p.r.tombs.Range(max(since, 1), func(key []byte, version uint64) bool {
		return !protocol.WantsShard(want, v.Ring.Shard(key)) || emit(key, version)
	})
}
