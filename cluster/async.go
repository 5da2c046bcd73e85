package cluster

import (
	"context"

	"shoal/peer"
	"shoal/store"
)

// The Router as a server.AsyncCache: event loops serve a cluster node's
// client port, and no loop waits on the network.
//
//   - GetAsync decides the key's Route; it answers a key this node serves
//     from the store at once; a key a live peer serves goes out as a
//     peer.Client.GetAsync, whose reader goroutine completes it. Anything
//     else takes the synchronous walk on a goroutine of the router (bg),
//     on the same route, which completes from there: a failover-worthy
//     error of the async request (the member is marked down as by Get,
//     and the walk goes on to the route's next owner), no live connection
//     to the owner (the walk dials), a warming shard (read-through from a
//     source). A pause or lapse noticed takes Get (which recovers first,
//     then routes): no recovery runs on an event loop.
//   - Inline tells the server which other commands may run on a loop: a
//     key served here from a shard that does not warm, or with no owner
//     reachable (answered at once); anything forwarded runs on a goroutine.
//   - Flush writes, once per loop wake-up, the requests queued meanwhile:
//     the gets of many client connections share one write per peer
//     connection.

// asyncGet is a get forwarded asynchronously: its peer.GetHandler. Pooled.
type asyncGet struct {
	r    *Router
	ctx  context.Context // the client connection's
	rt   Route
	key  []byte
	opt  *store.GetOptions
	dst  []byte
	done func(store.Item, []byte, store.Result)
}

// Inline reports whether a command on key is served by this node without
// waiting on the network; for nil (flush_all, which names no key), whether
// flushing is, which a member with peers is not.
func (r *Router) Inline(key []byte) bool {
	if r.recovering() {
		return false
	}
	if key == nil { // flush_all: it reaches every other member
		return len(r.peers.Load().byName) == 0
	}
	rt := r.route(key)
	if rt.Local() {
		return !r.warming(&rt)
	}
	return rt.member() == nil // no owner reachable: answered at once
}

// recovering reports whether a pause or a lapse is waiting to be
// recovered from: a request that sees one leaves the event loop, and the
// synchronous operation it runs on a goroutine recovers first (awake).
func (r *Router) recovering() bool {
	return r.pausedNow() || r.lapsePending()
}

// GetAsync is Get for an event loop (server.AsyncCache): pending means
// done will be called, once, from another goroutine.
func (r *Router) GetAsync(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte, done func(store.Item, []byte, store.Result)) (store.Item, []byte, store.Result, bool) {
	if r.recovering() {
		return r.later(ctx, r.Get, key, opt, dst, done)
	}
	rt := r.route(key)
	if rt.Local() {
		if r.warming(&rt) {
			return r.getLater(ctx, rt, key, opt, dst, done)
		}
		it, val, res := r.localGet(ctx, &rt, key, opt, dst)
		return it, val, res, false
	}
	m := rt.member()
	if m == nil {
		return store.Item{}, dst[:0], store.Miss, false // no owner reachable
	}
	a, _ := r.asyncGets.Get().(*asyncGet)
	if a == nil {
		a = new(asyncGet)
	}
	*a = asyncGet{r: r, ctx: ctx, rt: rt, key: key, opt: opt, dst: dst, done: done}
	if err := m.client.GetAsync(key, peerGetOptions(opt, dst), a); err != nil {
		r.asyncGets.Put(a.clear())
		return r.getLater(ctx, rt, key, opt, dst, done)
	}
	m.forwarded.Add(1)
	m.queued.Store(true) // after the request: Flush must see it
	return store.Item{}, nil, store.Miss, true
}

// getLater serves a get on route rt with the synchronous walk, on a
// goroutine, and reports pending (see later).
func (r *Router) getLater(ctx context.Context, rt Route, key []byte, opt *store.GetOptions, dst []byte, done func(store.Item, []byte, store.Result)) (store.Item, []byte, store.Result, bool) {
	return r.later(ctx, func(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
		return r.getOn(ctx, rt, key, opt, dst)
	}, key, opt, dst, done)
}

// getter is a synchronous Get: Router.Get, PeerCache.Get.
type getter func(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result)

// later runs get on a goroutine of the router and reports pending; once
// the router is closed (no goroutines start), it runs get here.
func (r *Router) later(ctx context.Context, get getter, key []byte, opt *store.GetOptions, dst []byte, done func(store.Item, []byte, store.Result)) (store.Item, []byte, store.Result, bool) {
	if r.spawn(func() { done(get(ctx, key, opt, dst)) }) {
		return store.Item{}, nil, store.Miss, true
	}
	it, val, res := get(ctx, key, opt, dst)
	return it, val, res, false
}

// spawn runs f on a goroutine of the router (bg) and reports true; once
// the router is closed, it starts none and reports false.
func (r *Router) spawn(f func()) bool {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.bgClosed {
		return false
	}
	r.bg.Go(f)
	return true
}

// The peer port's cache as a server.AsyncCache: everything it serves is
// this node's store, but a key of a warming shard is read through from a
// source first, and a pause noticed recovers first: those run on a
// goroutine.

// Inline reports whether a command on key is served without waiting on
// the network: not during a pause, not in a warming shard. A flush_all
// (nil) is this node's alone.
func (p *PeerCache) Inline(key []byte) bool {
	if p.r.recovering() {
		return false
	}
	if key == nil {
		return true // flush_all: this node's store only
	}
	rt := p.r.route(key)
	return !p.r.warming(&rt)
}

// GetAsync serves a forwarded read at once, or on a goroutine when it may
// wait (see Inline).
func (p *PeerCache) GetAsync(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte, done func(store.Item, []byte, store.Result)) (store.Item, []byte, store.Result, bool) {
	if p.Inline(key) {
		it, val, res := p.Get(ctx, key, opt, dst)
		return it, val, res, false
	}
	return p.r.later(ctx, p.Get, key, opt, dst, done)
}

// SetAsync serves a forwarded write at once, or on a goroutine when it may
// wait (see writeNow).
func (p *PeerCache) SetAsync(ctx context.Context, key, value []byte, opt *store.SetOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	if rt, now, err := p.writeNow(key); now {
		if err != nil {
			return 0, store.Item{}, err, false
		}
		res, it, err := p.r.localSet(ctx, &rt, key, value, opt)
		return res, it, err, false
	}
	return p.r.laterWrite(func() (store.Result, store.Item, error) { return p.Set(ctx, key, value, opt) }, done)
}

// DeleteAsync is SetAsync for a forwarded delete.
func (p *PeerCache) DeleteAsync(ctx context.Context, key []byte, opt *store.DeleteOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	if rt, now, err := p.writeNow(key); now {
		if err != nil {
			return 0, store.Item{}, err, false
		}
		res, it, err := p.r.localDelete(ctx, &rt, key, opt)
		return res, it, err, false
	}
	return p.r.laterWrite(func() (store.Result, store.Item, error) { return p.Delete(ctx, key, opt) }, done)
}

// writeNow routes a forwarded write once, as Set would (writeRoute), and
// reports whether it is answered now: served here, or refused (err). Not
// now (Inline's cases): a pause or lapse is being recovered from, or the
// key's shard warms; the write then runs on a goroutine, through Set.
func (p *PeerCache) writeNow(key []byte) (rt Route, now bool, err error) {
	if p.r.recovering() {
		return Route{}, false, nil
	}
	if rt, err = p.writeRoute(key); err != nil {
		return rt, true, err
	}
	return rt, !p.r.warming(&rt), nil
}

// laterWrite runs write on a goroutine of the router and reports pending,
// as later does for a get; once the router is closed, it runs write here.
func (r *Router) laterWrite(write func() (store.Result, store.Item, error), done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	if r.spawn(func() { done(write()) }) {
		return 0, store.Item{}, nil, true
	}
	res, it, err := write()
	return res, it, err, false
}

// Flush does nothing: the peer port forwards nothing.
func (p *PeerCache) Flush() {}

// GetDone completes a forwarded get, on the peer client's reader.
func (a *asyncGet) GetDone(pit peer.Item, hit bool, err error) {
	r, ctx, rt, key, opt, dst, done := a.r, a.ctx, a.rt, a.key, a.opt, a.dst, a.done
	r.asyncGets.Put(a.clear())
	if err != nil {
		if !r.failed(ctx, rt.member(), err) {
			done(store.Item{}, dst[:0], store.Miss) // the owner's error: a miss, as Get
			return
		}
		r.next(&rt) // the same route, on to the next owner
		if it, val, res, pending := r.getLater(ctx, rt, key, opt, dst, done); !pending {
			done(it, val, res)
		}
		return
	}
	done(r.gotten(&pit, hit, opt, dst))
}

func (a *asyncGet) clear() *asyncGet {
	*a = asyncGet{}
	return a
}

// Flush writes the requests GetAsync queued (server.AsyncCache).
func (r *Router) Flush() {
	ps := r.peers.Load()
	if ps == nil {
		return
	}
	for _, m := range ps.byName {
		if m.queued.Load() && m.queued.Swap(false) {
			m.client.Flush()
		}
	}
}
