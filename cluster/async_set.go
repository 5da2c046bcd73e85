package cluster

import (
	"shoal/peer"
	"shoal/store"
)

// The Router as a server.AsyncSetter: a write whose key a live peer
// serves goes out as a peer.Client.SetAsync and completes on that
// connection's reader goroutine, mapped as Set maps it. Anything else
// takes the synchronous Set on a goroutine of the router (bg), as
// GetAsync does: a failover-worthy error (the member is marked down as by
// Set, then Set walks on from the start, past it), no live connection to
// the owner (Set dials), a key served here after all (a view changed
// since Inline; a warming shard), a pause noticed.

// asyncSet is a set forwarded asynchronously: its peer.SetHandler. Pooled.
type asyncSet struct {
	r          *Router
	m          *member
	key, value []byte
	opt        *store.SetOptions
	done       func(store.Result, store.Item, error)
}

// SetAsync is Set for an event loop (server.AsyncSetter): pending means
// done will be called, once, from another goroutine.
func (r *Router) SetAsync(key, value []byte, opt *store.SetOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	r.checkLapse() // as GetAsync
	v := r.cfg.Members.View()
	if r.pausedNow() || v == nil || v.Ring == nil {
		return r.setLater(key, value, opt, done)
	}
	ps := r.peerSet(v)
	for _, name := range v.Ring.Owners(v.Ring.Shard(key)) {
		if name == r.self {
			break // served here: Set (rare: Inline said otherwise)
		}
		m := ps.get(name)
		if !r.usable(name, m) {
			continue
		}
		a, _ := r.asyncSets.Get().(*asyncSet)
		if a == nil {
			a = new(asyncSet)
		}
		*a = asyncSet{r: r, m: m, key: key, value: value, opt: opt, done: done}
		if err := m.client.SetAsync(key, value, peerSetOptions(opt), a); err != nil {
			r.asyncSets.Put(a.clear())
			break
		}
		m.forwarded.Add(1)
		m.queued.Store(true) // after the request: Flush must see it
		return 0, store.Item{}, nil, true
	}
	return r.setLater(key, value, opt, done)
}

// setLater runs the synchronous Set on a goroutine and reports pending;
// once the router is closed (no goroutines start), it runs Set here.
func (r *Router) setLater(key, value []byte, opt *store.SetOptions, done func(store.Result, store.Item, error)) (store.Result, store.Item, error, bool) {
	if r.spawn(func() { done(r.Set(key, value, opt)) }) {
		return 0, store.Item{}, nil, true
	}
	res, it, err := r.Set(key, value, opt)
	return res, it, err, false
}

// SetDone completes a forwarded set, on the peer client's reader.
func (a *asyncSet) SetDone(pr peer.Result, cas uint64, err error) {
	r, m, key, value, opt, done := a.r, a.m, a.key, a.value, a.opt, a.done
	r.asyncSets.Put(a.clear())
	res, it, err := setOutcome(pr, cas, err, opt, len(value))
	if err != nil && r.failed(m, err) {
		if res, it, err, pending := r.setLater(key, value, opt, done); !pending {
			done(res, it, err)
		}
		return
	}
	done(res, it, err)
}

func (a *asyncSet) clear() *asyncSet {
	*a = asyncSet{}
	return a
}
