package cluster

import "shoal/store"

// Local operations of the serving owner, shared by the client port (the
// Router) and the peer port (forwarded requests, PeerCache): each runs on
// this node's store, settles the key first when its shard warms and the
// operation depends on the item already there (warm.go), and pushes the
// result to the key's other owners when it changed the item.

func (r *Router) localGet(v *View, key []byte, opt *store.GetOptions, dst []byte) (it store.Item, val []byte, res store.Result) {
	if opt == nil || (!opt.Touch && !opt.Vivify) {
		r.settle(v, key)
		return r.st.Get(key, opt, dst)
	}
	changed := r.own(v, key, true, func() bool {
		it, val, res = r.st.Get(key, opt, dst)
		return (opt.Touch && res == store.Hit) || it.Created
	})
	r.wrote(key, changed)
	return it, val, res
}

func (r *Router) localSet(v *View, key, value []byte, opt *store.SetOptions) (res store.Result, it store.Item) {
	rmw := opt != nil && (opt.Mode != store.ModeSet || opt.CAS != 0)
	changed := r.own(v, key, rmw, func() bool {
		res, it = r.st.Set(key, value, opt)
		return res == store.Stored
	})
	r.wrote(key, changed)
	return res, it
}

func (r *Router) localDelete(v *View, key []byte, opt *store.DeleteOptions) (res store.Result, it store.Item) {
	rmw := opt != nil && (opt.CAS != 0 || opt.Invalidate)
	changed := r.own(v, key, rmw, func() bool {
		res, it = r.st.Delete(key, opt)
		return res == store.Deleted
	})
	r.wrote(key, changed)
	return res, it
}

func (r *Router) localArith(v *View, key []byte, opt *store.ArithOptions) (res store.Result, n uint64, it store.Item) {
	changed := r.own(v, key, true, func() bool {
		res, n, it = r.st.Arith(key, opt)
		return res == store.Stored
	})
	r.wrote(key, changed)
	return res, n, it
}

func (r *Router) localTouch(v *View, key []byte, exptime int64) (res store.Result, it store.Item) {
	changed := r.own(v, key, true, func() bool {
		res, it = r.st.Touch(key, exptime)
		return res == store.Touched
	})
	r.wrote(key, changed)
	return res, it
}

// current returns the view, after taking it (peerSet runs the transition
// to a new view once): a request from the peer port must not be served by
// a view whose warm-up has not started.
func (r *Router) current() *View {
	v := r.cfg.Members.View()
	if v != nil && v.Ring != nil {
		r.peerSet(v)
	}
	return v
}
