package cluster

import (
	"context"

	"shoal/peer"
	"shoal/server"
	"shoal/store"
)

// The Router as the server's Cache: event loops serve a cluster node's
// client port, and no loop waits on the network.
//
//   - Start takes a get, set or delete (server.Request) and decides its
//     key's Route, once; it answers a key this node serves from the store
//     at once; a key a live peer serves goes out as a peer.Client.GetAsync
//     (SetAsync, DeleteAsync), whose reader goroutine completes it.
//     Anything else takes the synchronous walk on a goroutine of the
//     router (bg), on the same route, which completes from there: a
//     failover-worthy error of the async request (the member is marked
//     down as by the walk, which goes on to the route's next owner), no
//     live connection to the owner (the walk dials), a warming shard
//     (read-through from a source). A pause or lapse noticed takes serve,
//     which recovers first, then routes: no recovery runs on an event
//     loop. Writes are in async_write.go. The walk itself (getOn, setOn,
//     deleteOn, arithOn, touchOn) is in forward.go.
//   - An incr/decr, ma or touch (OpArith, OpTouch) runs at once when its
//     key is Inline, else on the synchronous walk on a goroutine of the
//     router, which completes it.
//   - Inline tells the server which other commands may run on a loop: a
//     key served here from a shard that does not warm, or with no owner
//     reachable (answered at once); anything forwarded runs on a goroutine.
//   - Flush writes, once per loop wake-up, the requests queued meanwhile:
//     the gets of many client connections share one write per peer
//     connection.

// Start is the Router's one call for a key's operation (server.Cache):
// pending means done will be called, once, from another goroutine, with
// the outcome in req. An incr/decr or touch runs at once when its key is
// served here (Inline), else on the synchronous walk on a goroutine.
// Without done (the caller waits) it takes the synchronous walk here,
// which gives up when ctx ends.
func (r *Router) Start(ctx context.Context, req *server.Request, done func(*server.Request)) bool {
	if done == nil {
		r.serve(ctx, req)
		return false
	}
	switch req.Op {
	case server.OpGet:
		return r.startGet(ctx, req, done)
	case server.OpSet, server.OpDelete:
		return r.startWrite(ctx, req, done)
	}
	if r.Inline(req.Key) {
		r.serve(ctx, req)
		return false
	}
	return r.later(req, done, func() { r.serve(ctx, req) })
}

// serve runs req on the synchronous walk, routed now (after recovering
// from a pause this request is the first to find: routed), waiting as
// long as the walk does, and leaves the outcome in req.
func (r *Router) serve(ctx context.Context, req *server.Request) {
	r.serveOn(ctx, r.routed(req.Key), req)
}

// serveOn is serve on route rt.
func (r *Router) serveOn(ctx context.Context, rt Route, req *server.Request) {
	switch req.Op {
	case server.OpGet:
		req.Item, req.Val, req.Res = r.getOn(ctx, rt, req.Key, req.Get, req.Dst)
	case server.OpSet:
		req.Res, req.Item, req.Err = r.setOn(ctx, rt, req.Key, req.Value, req.Set)
	case server.OpDelete:
		req.Res, req.Item, req.Err = r.deleteOn(ctx, rt, req.Key, req.Del)
	case server.OpArith:
		req.Res, req.N, req.Item, req.Err = r.arithOn(ctx, rt, req.Key, req.Arith)
	case server.OpTouch:
		req.Res, req.Item, req.Err = r.touchOn(ctx, rt, req.Key, req.Exptime)
	}
}

// asyncGet is a get forwarded asynchronously: its peer.GetHandler. Pooled.
type asyncGet struct {
	r    *Router
	ctx  context.Context // the client connection's
	rt   Route
	req  *server.Request
	done func(*server.Request)
}

// Inline reports whether a command on key is served by this node without
// waiting on the network; for nil (flush_all, which names no key), whether
// flushing is, which a member with peers is not.
func (r *Router) Inline(key []byte) bool {
	if r.tk.Recovering() {
		return false
	}
	if key == nil { // flush_all: it reaches every other member
		return len(r.peers.Load().byName) == 0
	}
	rt := r.route(key)
	if rt.Local() {
		return !r.tk.Warming(rt.placed())
	}
	return rt.member() == nil // no owner reachable: answered at once
}

// startGet is Start for a get.
func (r *Router) startGet(ctx context.Context, req *server.Request, done func(*server.Request)) bool {
	if r.tk.Recovering() {
		return r.later(req, done, func() { r.serve(ctx, req) })
	}
	rt := r.route(req.Key)
	if rt.Local() {
		if r.tk.Warming(rt.placed()) {
			return r.getLater(ctx, rt, req, done)
		}
		if !noRoom(r.st, req) {
			req.Item, req.Val, req.Res = r.localGet(ctx, &rt, req.Key, req.Get, req.Dst)
		}
		return false
	}
	m := rt.member()
	if m == nil {
		req.Item, req.Val, req.Res = store.Item{}, req.Dst[:0], store.Miss // no owner reachable
		return false
	}
	a, _ := r.asyncGets.Get().(*asyncGet)
	if a == nil {
		a = new(asyncGet)
	}
	*a = asyncGet{r: r, ctx: ctx, rt: rt, req: req, done: done}
	po := peerGetOptions(req.Get, req.Dst)
	if roomed(req) && req.Room < r.st.MaxItemSize() {
		// The owner sends no larger value (server/connroom.go). A room
		// any value fits goes unsaid: no A on the wire, as in the usual
		// case, which also a port without shoal's extensions takes.
		po.Room = req.Room
	}
	if err := m.client.GetAsync(req.Key, po, a); err != nil {
		r.asyncGets.Put(a.clear())
		return r.getLater(ctx, rt, req, done)
	}
	m.forwarded.Add(1)
	m.queued.Store(true) // after the request: Flush must see it
	return true
}

// roomed reports whether req's value is bounded by its Room: not where
// the get may hand out a win token (vivify, recache), which a second ask
// would not get.
func roomed(req *server.Request) bool {
	return req.Room > 0 && (req.Get == nil || !req.Get.Vivify && req.Get.RecacheBelow == 0)
}

// noRoom answers req, a get of a key served here, by the size of its
// value when that is larger than req.Room (server.Request.Wants): the
// connection asks again once it has room. A room as large as any value
// needs no look.
func noRoom(st *store.Store, req *server.Request) bool {
	if !roomed(req) || req.Room >= st.MaxItemSize() {
		return false
	}
	n, ok := st.Peek(req.Key)
	if !ok || n <= req.Room {
		return false
	}
	req.Item, req.Val, req.Res, req.Wants = store.Item{}, req.Dst[:0], store.Miss, n
	return true
}

// getLater serves a get on route rt with the synchronous walk, on a
// goroutine, and reports pending (see later).
func (r *Router) getLater(ctx context.Context, rt Route, req *server.Request, done func(*server.Request)) bool {
	return r.later(req, done, func() {
		req.Item, req.Val, req.Res = r.getOn(ctx, rt, req.Key, req.Get, req.Dst)
	})
}

// later runs serve (which leaves req's outcome in req) on a goroutine of
// the router, then done, and reports pending; once the router is closed
// (no goroutines start), it runs serve here and reports false.
func (r *Router) later(req *server.Request, done func(*server.Request), serve func()) bool {
	if r.spawn(func() { serve(); done(req) }) {
		return true
	}
	serve()
	return false
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

// GetDone completes a forwarded get, on the peer client's reader, which
// calls peer.Config.RepliesHandled after: a completion here is
// server.Request.Batched.
func (a *asyncGet) GetDone(pit peer.Item, hit bool, err error) {
	r, ctx, rt, req, done := a.r, a.ctx, a.rt, a.req, a.done
	r.asyncGets.Put(a.clear())
	if err == peer.ErrNoRoom { // an answer: the value's size, not the value
		req.Item, req.Val, req.Res, req.Wants = store.Item{}, req.Dst[:0], store.Miss, pit.Size
		req.Batched = true
		done(req)
		return
	}
	if err != nil {
		if !rt.member().Failed(ctx, err) {
			req.Item, req.Val, req.Res = store.Item{}, req.Dst[:0], store.Miss // the owner's error: a miss, as the walk
			req.Batched = true
			done(req)
			return
		}
		r.next(&rt) // the same route, on to the next owner
		if !r.getLater(ctx, rt, req, done) {
			req.Batched = true // served here after all (the router is closed)
			done(req)
		}
		return
	}
	req.Item, req.Val, req.Res = r.gotten(&pit, hit, req.Get, req.Dst)
	req.Batched = true
	done(req)
}

func (a *asyncGet) clear() *asyncGet {
	*a = asyncGet{}
	return a
}

// Flush writes the requests Start queued (server.Cache).
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
