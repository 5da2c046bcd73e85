package cluster

import (
	"context"

	"shoal/peer"
	"shoal/server"
	"shoal/store"
)

// The Router's Start for a set or delete (server.Cache): the
// server's one call for a write on an event loop, which decides the
// write's Route (no Inline before it). A write of a key served here runs
// at once; one whose key a live peer serves on its route goes out as a
// peer.Client.SetAsync (DeleteAsync) and completes on that connection's
// reader goroutine, mapped as Set (Delete) maps it. Anything else takes
// the synchronous walk on the same route on a goroutine of the router
// (bg), as a get does: a failover-worthy error (the member is marked
// down as by Set, and the walk goes on to the route's next owner), no live
// connection to the owner (the walk dials), a key served here in a
// warming shard (read-through first). A pause or lapse noticed takes Set
// (Delete), which recovers first, then routes.

// asyncWrite is a set or delete forwarded asynchronously: its
// peer.SetHandler and peer.DeleteHandler. Pooled.
type asyncWrite struct {
	r    *Router
	ctx  context.Context // the client connection's
	rt   Route
	req  *server.Request
	done func(*server.Request)
}

// startWrite is Start for a set or delete: it writes a key served here at
// once (unless its shard warms: later), sends one a live peer serves to
// it, and fails one no owner is left for.
func (r *Router) startWrite(ctx context.Context, req *server.Request, done func(*server.Request)) bool {
	w := asyncWrite{r: r, ctx: ctx, req: req, done: done}
	if r.tk.Recovering() {
		return r.writeLater(w, false)
	}
	w.rt = r.route(req.Key)
	if w.rt.Local() {
		if r.tk.Warming(w.rt.placed()) {
			return r.writeLater(w, true)
		}
		r.writeHere(ctx, &w.rt, req)
		return false
	}
	m := w.rt.member()
	if m == nil {
		req.Res, req.Item, req.Err = 0, store.Item{}, ErrUnavailable
		return false
	}
	a, _ := r.asyncWrites.Get().(*asyncWrite)
	if a == nil {
		a = new(asyncWrite)
	}
	*a = w
	var err error
	if req.Op == server.OpDelete {
		err = m.client.DeleteAsync(req.Key, peerDeleteOptions(req.Del), a)
	} else {
		err = m.client.SetAsync(req.Key, req.Value, peerSetOptions(req.Set), a)
	}
	if err != nil {
		r.asyncWrites.Put(a.clear())
		return r.writeLater(w, true)
	}
	m.forwarded.Add(1)
	m.queued.Store(true) // after the request: Flush must see it
	return true
}

// writeHere applies the write req (set, delete, incr/decr, touch) to this
// node's store, on route rt.
func (r *Router) writeHere(ctx context.Context, rt *Route, req *server.Request) {
	switch req.Op {
	case server.OpSet:
		req.Res, req.Item, req.Err = r.localSet(ctx, rt, req.Key, req.Value, req.Set)
	case server.OpDelete:
		req.Res, req.Item, req.Err = r.localDelete(ctx, rt, req.Key, req.Del)
	case server.OpArith:
		req.Res, req.N, req.Item, req.Err = r.localArith(ctx, rt, req.Key, req.Arith)
	case server.OpTouch:
		req.Res, req.Item, req.Err = r.localTouch(ctx, rt, req.Key, req.Exptime)
	}
}

// writeLater runs the synchronous write on a goroutine, on w's route when
// routed (else serve routes it, after any recovery), and reports
// pending; once the router is closed (no goroutines start), it runs it
// here.
func (r *Router) writeLater(w asyncWrite, routed bool) bool {
	req := w.req
	return r.later(req, w.done, func() {
		if routed {
			r.serveOn(w.ctx, w.rt, req)
		} else {
			r.serve(w.ctx, req)
		}
	})
}

// SetDone completes a forwarded set, on the peer client's reader.
func (a *asyncWrite) SetDone(pr peer.Result, cas uint64, err error) {
	a.finish(setOutcome(pr, cas, err, a.req.Set, len(a.req.Value)))
}

// DeleteDone completes a forwarded delete, on the peer client's reader.
func (a *asyncWrite) DeleteDone(pr peer.Result, err error) {
	res, err := deleteOutcome(pr, err)
	a.finish(res, store.Item{}, err)
}

// finish leaves the outcome in the request and calls done, or fails over
// as walk does.
func (a *asyncWrite) finish(res store.Result, it store.Item, err error) {
	w := *a
	w.r.asyncWrites.Put(a.clear())
	if refusedForPause(err) {
		// The owner has recovered since: the synchronous walk asks it again.
		if !w.r.writeLater(w, true) {
			w.done(w.req)
		}
		return
	}
	if err != nil && (refusedNotOwner(err) || refusedUnvouched(err) || w.rt.member().Failed(w.ctx, err)) {
		w.r.next(&w.rt) // the same route, on to the next owner
		if !w.r.writeLater(w, true) {
			w.done(w.req)
		}
		return
	}
	w.req.Res, w.req.Item, w.req.Err = res, it, err
	w.req.Batched = true // on the peer client's reader: see asyncGet.GetDone
	w.done(w.req)
}

func (a *asyncWrite) clear() *asyncWrite {
	*a = asyncWrite{}
	return a
}
