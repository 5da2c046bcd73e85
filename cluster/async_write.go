package cluster

import (
	"context"

	"shoal/peer"
	"shoal/store"
)

// The Router's SetAsync and DeleteAsync (server.AsyncCache): the
// server's one call for a write on an event loop, which decides the
// write's Route (no Inline before it). A write of a key served here runs
// at once; one whose key a live peer serves on its route goes out as a
// peer.Client.SetAsync (DeleteAsync) and completes on that connection's
// reader goroutine, mapped as Set (Delete) maps it. Anything else takes
// the synchronous walk on the same route on a goroutine of the router
// (bg), as GetAsync does: a failover-worthy error (the member is marked
// down as by Set, and the walk goes on to the route's next owner), no live
// connection to the owner (the walk dials), a key served here in a
// warming shard (read-through first). A pause or lapse noticed takes Set
// (Delete), which recovers first, then routes.

// asyncWrite is a set or delete forwarded asynchronously: its
// peer.SetHandler and peer.DeleteHandler. Pooled.
type asyncWrite struct {
	r          *Router
	ctx        context.Context // the client connection's
	rt         Route
	key, value []byte
	set        *store.SetOptions
	del        *store.DeleteOptions
	isDel      bool
	done       func(store.Result, store.Item, error)
}

// SetAsync is Set for an event loop (server.AsyncCache): pending means
// done will be called, once, from another goroutine.
func (r *Router) SetAsync(ctx context.Context, key, value []byte, opt *store.SetOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	return r.writeAsync(asyncWrite{ctx: ctx, key: key, value: value, set: opt, done: done})
}

// DeleteAsync is Delete for an event loop (server.AsyncCache), as
// SetAsync.
func (r *Router) DeleteAsync(ctx context.Context, key []byte, opt *store.DeleteOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	return r.writeAsync(asyncWrite{ctx: ctx, key: key, del: opt, isDel: true, done: done})
}

// writeAsync routes w: it writes a key served here at once (unless its
// shard warms: later), sends one a live peer serves to it, and fails one
// no owner is left for.
func (r *Router) writeAsync(w asyncWrite) (store.Result, store.Item, error, bool) {
	if r.recovering() {
		return r.writeLater(w, false)
	}
	w.r, w.rt = r, r.route(w.key)
	if w.rt.Local() {
		if r.warming(&w.rt) {
			return r.writeLater(w, true)
		}
		res, it, err := r.writeHere(&w)
		return res, it, err, false
	}
	m := w.rt.member()
	if m == nil {
		return 0, store.Item{}, ErrUnavailable, false
	}
	a, _ := r.asyncWrites.Get().(*asyncWrite)
	if a == nil {
		a = new(asyncWrite)
	}
	*a = w
	var err error
	if w.isDel {
		err = m.client.DeleteAsync(w.key, peerDeleteOptions(w.del), a)
	} else {
		err = m.client.SetAsync(w.key, w.value, peerSetOptions(w.set), a)
	}
	if err != nil {
		r.asyncWrites.Put(a.clear())
		return r.writeLater(w, true)
	}
	m.forwarded.Add(1)
	m.queued.Store(true) // after the request: Flush must see it
	return 0, store.Item{}, nil, true
}

// writeHere applies w to this node's store, on its route.
func (r *Router) writeHere(w *asyncWrite) (store.Result, store.Item, error) {
	if w.isDel {
		return r.localDelete(w.ctx, &w.rt, w.key, w.del)
	}
	return r.localSet(w.ctx, &w.rt, w.key, w.value, w.set)
}

// writeLater runs the synchronous write on a goroutine, on w's route when
// routed (else Set or Delete routes it, after any recovery), and reports
// pending; once the router is closed (no goroutines start), it runs it
// here.
func (r *Router) writeLater(w asyncWrite, routed bool) (store.Result, store.Item, error, bool) {
	write := func() (store.Result, store.Item, error) {
		switch {
		case !routed && w.isDel:
			return r.Delete(w.ctx, w.key, w.del)
		case !routed:
			return r.Set(w.ctx, w.key, w.value, w.set)
		case w.isDel:
			return r.deleteOn(w.ctx, w.rt, w.key, w.del)
		}
		return r.setOn(w.ctx, w.rt, w.key, w.value, w.set)
	}
	return r.laterWrite(write, w.done)
}

// SetDone completes a forwarded set, on the peer client's reader.
func (a *asyncWrite) SetDone(pr peer.Result, cas uint64, err error) {
	a.finish(setOutcome(pr, cas, err, a.set, len(a.value)))
}

// DeleteDone completes a forwarded delete, on the peer client's reader.
func (a *asyncWrite) DeleteDone(pr peer.Result, err error) {
	res, err := deleteOutcome(pr, err)
	a.finish(res, store.Item{}, err)
}

// finish hands the outcome to done, or fails over as walk does.
func (a *asyncWrite) finish(res store.Result, it store.Item, err error) {
	w := *a
	w.r.asyncWrites.Put(a.clear())
	if refusedForPause(err) {
		// The owner has recovered since: the synchronous walk asks it again.
		if res, it, err, pending := w.r.writeLater(w, true); !pending {
			w.done(res, it, err)
		}
		return
	}
	if err != nil && (refusedNotOwner(err) || refusedUnvouched(err) || w.r.failed(w.ctx, w.rt.member(), err)) {
		w.r.next(&w.rt) // the same route, on to the next owner
		if res, it, err, pending := w.r.writeLater(w, true); !pending {
			w.done(res, it, err)
		}
		return
	}
	w.done(res, it, err)
}

func (a *asyncWrite) clear() *asyncWrite {
	*a = asyncWrite{}
	return a
}
