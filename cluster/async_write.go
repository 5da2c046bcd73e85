package cluster

import (
	"shoal/peer"
	"shoal/store"
)

// The Router as a server.AsyncSetter and server.AsyncDeleter: a write
// whose key a live peer serves goes out as a peer.Client.SetAsync
// (DeleteAsync) and completes on that connection's reader goroutine,
// mapped as Set (Delete) maps it. Anything else takes the synchronous Set
// (Delete) on a goroutine of the router (bg), as GetAsync does: a
// failover-worthy error (the member is marked down as by Set, then Set
// walks on from the start, past it), no live connection to the owner (Set
// dials), a key served here after all (a view changed since Inline; a
// warming shard), a pause noticed.

// asyncWrite is a set or delete forwarded asynchronously: its
// peer.SetHandler and peer.DeleteHandler. Pooled.
type asyncWrite struct {
	r          *Router
	m          *member
	key, value []byte
	set        *store.SetOptions
	del        *store.DeleteOptions
	isDel      bool
	done       func(store.Result, store.Item, error)
}

// SetAsync is Set for an event loop (server.AsyncSetter): pending means
// done will be called, once, from another goroutine.
func (r *Router) SetAsync(key, value []byte, opt *store.SetOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	return r.writeAsync(asyncWrite{key: key, value: value, set: opt, done: done})
}

// DeleteAsync is Delete for an event loop (server.AsyncDeleter), as
// SetAsync.
func (r *Router) DeleteAsync(key []byte, opt *store.DeleteOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	return r.writeAsync(asyncWrite{key: key, del: opt, isDel: true, done: done})
}

// writeAsync sends w to the key's serving owner if it is a live peer, or
// runs it later.
func (r *Router) writeAsync(w asyncWrite) (store.Result, store.Item, error, bool) {
	r.checkLapse() // as GetAsync
	v := r.cfg.Members.View()
	if r.pausedNow() || v == nil || v.Ring == nil {
		return r.writeLater(w)
	}
	ps := r.peerSet(v)
	for _, name := range v.Ring.Owners(v.Ring.Shard(w.key)) {
		if name == r.self {
			break // served here: Set (rare: Inline said otherwise)
		}
		m := ps.get(name)
		if !r.usable(name, m) {
			continue
		}
		a, _ := r.asyncWrites.Get().(*asyncWrite)
		if a == nil {
			a = new(asyncWrite)
		}
		*a = w
		a.r, a.m = r, m
		var err error
		if w.isDel {
			err = m.client.DeleteAsync(w.key, peerDeleteOptions(w.del), a)
		} else {
			err = m.client.SetAsync(w.key, w.value, peerSetOptions(w.set), a)
		}
		if err != nil {
			r.asyncWrites.Put(a.clear())
			break
		}
		m.forwarded.Add(1)
		m.queued.Store(true) // after the request: Flush must see it
		return 0, store.Item{}, nil, true
	}
	return r.writeLater(w)
}

// writeLater runs the synchronous Set (Delete) on a goroutine and reports
// pending; once the router is closed (no goroutines start), it runs it
// here.
func (r *Router) writeLater(w asyncWrite) (store.Result, store.Item, error, bool) {
	write := func() (store.Result, store.Item, error) {
		if w.isDel {
			return r.Delete(w.key, w.del)
		}
		return r.Set(w.key, w.value, w.set)
	}
	if r.spawn(func() { w.done(write()) }) {
		return 0, store.Item{}, nil, true
	}
	res, it, err := write()
	return res, it, err, false
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
	if err != nil && w.r.failed(w.m, err) {
		if res, it, err, pending := w.r.writeLater(w); !pending {
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
