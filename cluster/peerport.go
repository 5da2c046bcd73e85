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

// PeerPort returns what serves the peer port (its server.Cache and
// server.Dumper): this node's store, where forwarded and replicated
// requests arrive; it never routes again. A forwarded request is served
// as the owner serves it on the client port (warm-up, then a push of the
// result to the key's other owners). A replicated write (it carries an
// epoch: server.Request.Replica; replicaSet, replicaDelete) is stored and
// not pushed again. Everything it does is in this file.
func (r *Router) PeerPort() *PeerPort { return &PeerPort{r: r} }

// PeerPort serves the peer port; see Router.PeerPort.
type PeerPort struct{ r *Router }

var (
	_ server.Cache  = (*PeerPort)(nil)
	_ server.Dumper = (*PeerPort)(nil)
)

// FlushAll flushes this node's store only: the member that got flush_all
// from its client sends it to every other.
func (p *PeerPort) FlushAll(ctx context.Context, delay int64) { p.r.st.FlushAll(delay) }

// GetMulti serves a classic multi-get on the peer port key by key, as get
// (members send mg; a classic get comes from an operator's tool).
func (p *PeerPort) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	var buf []byte
	for i, k := range keys {
		it, val, res := p.get(ctx, k, opt, buf[:0])
		if res == store.Hit {
			into(i, it, val)
		}
		buf = val
	}
}

// get serves a forwarded read. A read that finds this process was paused
// is served after the recovery (it changes nothing, and the shards this
// node owns then warm: it reads through from the owners that stood in), so
// that a read sent after the resume never misses; one that writes (touch,
// vivify) is refused as a write is, with a miss.
func (p *PeerPort) get(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	if !p.r.tk.Awake() && opt != nil && (opt.Touch || opt.Vivify) {
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
func (p *PeerPort) writeRoute(key []byte) (Route, error) {
	if !p.r.tk.Awake() {
		return Route{}, ErrPaused
	}
	rt, owner := p.r.routeHere(key)
	if !owner {
		return Route{}, ErrNotOwner
	}
	return rt, nil
}

// set serves a forwarded write.
func (p *PeerPort) set(ctx context.Context, key, value []byte, opt *store.SetOptions) (store.Result, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, store.Item{}, err
	}
	return p.r.localSet(ctx, &rt, key, value, opt)
}

// del serves a forwarded delete.
func (p *PeerPort) del(ctx context.Context, key []byte, opt *store.DeleteOptions) (store.Result, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, store.Item{}, err
	}
	return p.r.localDelete(ctx, &rt, key, opt)
}

// arith serves a forwarded incr/decr.
func (p *PeerPort) arith(ctx context.Context, key []byte, opt *store.ArithOptions) (store.Result, uint64, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, 0, store.Item{}, err
	}
	return p.r.localArith(ctx, &rt, key, opt)
}

// touch serves a forwarded touch.
func (p *PeerPort) touch(ctx context.Context, key []byte, exptime int64) (store.Result, store.Item, error) {
	rt, err := p.writeRoute(key)
	if err != nil {
		return 0, store.Item{}, err
	}
	return p.r.localTouch(ctx, &rt, key, exptime)
}

// admit reports why a replicated write of key from o is refused: the
// process was paused, or o's epoch predates the last change of the
// shard's owners.
func (p *PeerPort) admit(rt *Route, o server.Origin) error {
	r := p.r
	if !r.tk.Awake() {
		return ErrPaused
	}
	if len(rt.owners) == 0 {
		return nil
	}
	if r.tk.StaleEpoch(rt.shard, o.Epoch) {
		r.staleEpochs.Add(1)
		return ErrStaleEpoch
	}
	return nil
}

// replicaSet stores a replicated item unless this node holds a newer
// write of the key (a larger CAS: store.SetOptions.Newer): copies of a
// key converge to its newest write whatever order they arrive in, from
// the primary, a stand-in handing back (hints.go) or a warm-up.
func (p *PeerPort) replicaSet(key, value []byte, opt *store.SetOptions, o server.Origin) (res store.Result, it store.Item, err error) {
	rt := p.r.route(key)
	if err := p.admit(&rt, o); err != nil {
		return 0, store.Item{}, err
	}
	var so store.SetOptions
	if opt != nil {
		so = *opt
	}
	res = store.Stored
	p.r.tk.ReplicaNewer(rt.placed(), key, func(replace bool) {
		if replace {
			so.Mode = store.ModeReplace
		}
		res, it = p.r.ver.ApplyCopy(key, value, &so)
	})
	p.r.replicated.Add(1)
	return res, it, nil
}

// replicaDelete applies a replicated delete, with replicaSet's exception:
// one with a version removes only an older item and is remembered
// (takeover/versions.go).
func (p *PeerPort) replicaDelete(key []byte, opt *store.DeleteOptions, o server.Origin) (res store.Result, it store.Item, err error) {
	rt := p.r.route(key)
	if err := p.admit(&rt, o); err != nil {
		return 0, store.Item{}, err
	}
	res = store.Deleted
	var d uint64 // the delete's version (md E); 0 from a sender that sends none
	if opt != nil && !opt.Invalidate {
		d = opt.NewCAS
	}
	p.r.tk.Replica(rt.placed(), key, d != 0, func() bool {
		if d == 0 {
			res, it = p.r.st.Delete(key, opt)
		} else {
			res, it = p.r.ver.DeleteVersioned(key, opt, d)
		}
		return res == store.Deleted
	})
	p.r.replicated.Add(1)
	return res, it, nil
}

// replicaGet reads this node's store only: a warming peer settling a key
// asks here, and must not be sent on to another warming node. A miss
// carries the version of the key's delete when this node remembers one.
func (p *PeerPort) replicaGet(key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
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
func (p *PeerPort) Dump(want []byte, since uint64, emit func(key []byte, it store.Item, val []byte) bool) bool {
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
func (p *PeerPort) DumpDeletes(want []byte, since uint64, emit func(key []byte, version uint64) bool) {
	v := p.r.View()
	if v == nil || v.Ring == nil {
		return
	}
	p.r.tombs.Range(max(since, 1), func(key []byte, version uint64) bool {
		return !protocol.WantsShard(want, v.Ring.Shard(key)) || emit(key, version)
	})
}

// The peer port's Cache: everything it serves is
// this node's store, but a key of a warming shard is read through from a
// source first, and a pause noticed recovers first: those run on a
// goroutine.

// Inline reports whether a command on key is served without waiting on
// the network: not during a pause, not in a warming shard. A flush_all
// (nil) is this node's alone.
func (p *PeerPort) Inline(key []byte) bool {
	if p.r.tk.Recovering() {
		return false
	}
	if key == nil {
		return true // flush_all: this node's store only
	}
	rt := p.r.route(key)
	return !p.r.tk.Warming(rt.placed())
}

// Start serves a forwarded request at once, or on a goroutine when it may
// wait (see Inline and writeNow).
func (p *PeerPort) Start(ctx context.Context, req *server.Request, done func(*server.Request)) bool {
	if req.Replica {
		p.replica(req)
		return false
	}
	if done == nil { // the caller waits
		p.do(ctx, req)
		return false
	}
	if req.Op == server.OpGet {
		if p.Inline(req.Key) {
			p.do(ctx, req)
			return false
		}
		return p.r.later(req, done, func() { p.do(ctx, req) })
	}
	rt, now, err := p.writeNow(req.Key)
	switch {
	case !now:
		return p.r.later(req, done, func() { p.do(ctx, req) })
	case err != nil:
		req.Res, req.N, req.Item, req.Err = 0, 0, store.Item{}, err
	default:
		p.r.writeHere(ctx, &rt, req)
	}
	return false
}

// do serves req, waiting as long as a warming shard's read-through or a
// recovery does, and leaves the outcome in req.
func (p *PeerPort) do(ctx context.Context, req *server.Request) {
	switch req.Op {
	case server.OpGet:
		req.Item, req.Val, req.Res = p.get(ctx, req.Key, req.Get, req.Dst)
	case server.OpSet:
		req.Res, req.Item, req.Err = p.set(ctx, req.Key, req.Value, req.Set)
	case server.OpDelete:
		req.Res, req.Item, req.Err = p.del(ctx, req.Key, req.Del)
	case server.OpArith:
		req.Res, req.N, req.Item, req.Err = p.arith(ctx, req.Key, req.Arith)
	case server.OpTouch:
		req.Res, req.Item, req.Err = p.touch(ctx, req.Key, req.Exptime)
	}
}

// replica serves a peer's replicated write or replica read
// (server.Request.Replica), at once: on the event loop when the key is
// Inline, else on the goroutine the server ran the command on.
func (p *PeerPort) replica(req *server.Request) {
	switch req.Op {
	case server.OpGet:
		req.Item, req.Val, req.Res = p.replicaGet(req.Key, req.Get, req.Dst)
	case server.OpSet:
		req.Res, req.Item, req.Err = p.replicaSet(req.Key, req.Value, req.Set, req.Origin)
	case server.OpDelete:
		req.Res, req.Item, req.Err = p.replicaDelete(req.Key, req.Del, req.Origin)
	default:
		req.Res, req.N, req.Item, req.Err = 0, 0, store.Item{}, fmt.Errorf("replicated %v: not a replica operation", req.Op)
	}
}

// writeNow routes a forwarded write once, as Set would (writeRoute), and
// reports whether it is answered now: served here, or refused (err). Not
// now (Inline's cases): a pause or lapse is being recovered from, or the
// key's shard warms; the write then runs on a goroutine, through Set.
func (p *PeerPort) writeNow(key []byte) (rt Route, now bool, err error) {
	if p.r.tk.Recovering() {
		return Route{}, false, nil
	}
	if rt, err = p.writeRoute(key); err != nil {
		return rt, true, err
	}
	return rt, !p.r.tk.Warming(rt.placed()), nil
}

// Flush does nothing: the peer port forwards nothing.
func (p *PeerPort) Flush() {}
