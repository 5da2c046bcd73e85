package cluster

import (
	"context"

	"shoal/store"
)

// Local operations of the serving owner, shared by the client port (the
// Router) and the peer port (forwarded requests, PeerPort): each runs on
// this node's store on the request's route, settles the key first when its
// shard warms and the operation depends on the item already there
// (takeover/warm.go), and pushes the result to the key's other owners on that route
// when it changed the item and this node is the key's primary there.

func (r *Router) localGet(ctx context.Context, rt *Route, key []byte, opt *store.GetOptions, dst []byte) (it store.Item, val []byte, res store.Result) {
	if opt == nil || (!opt.Touch && !opt.Vivify) {
		if !r.tk.Settle(ctx, rt.placed(), key) {
			return store.Item{}, dst[:0], store.Miss // not vouched for (takeover/warm.go)
		}
		return r.st.Get(key, opt, dst)
	}
	changed, err := r.tk.Own(ctx, rt.placed(), key, true, func() bool {
		it, val, res = r.st.Get(key, opt, dst)
		return (opt.Touch && res == store.Hit) || it.Created
	})
	if err != nil {
		return store.Item{}, dst[:0], store.Miss // not vouched for, as above
	}
	r.push.wrote(rt, key, changed)
	return it, val, res
}

func (r *Router) localSet(ctx context.Context, rt *Route, key, value []byte, opt *store.SetOptions) (res store.Result, it store.Item, err error) {
	rmw := opt != nil && (opt.Mode != store.ModeSet || opt.CAS != 0)
	changed, err := r.tk.Own(ctx, rt.placed(), key, rmw, func() bool {
		res, it = r.st.Set(key, value, opt)
		return res == store.Stored
	})
	if err != nil {
		return 0, store.Item{}, err
	}
	if opt != nil && (opt.Mode == store.ModeAppend || opt.Mode == store.ModePrepend) {
		r.push.wrote(rt, key, changed) // the stored value is not value: read it back
	} else {
		r.push.wroteValue(rt, key, value, &it, changed)
	}
	return res, it, nil
}

func (r *Router) localDelete(ctx context.Context, rt *Route, key []byte, opt *store.DeleteOptions) (res store.Result, it store.Item, err error) {
	rmw := opt != nil && (opt.CAS != 0 || opt.Invalidate)
	changed, err := r.tk.Own(ctx, rt.placed(), key, rmw, func() bool {
		res, it = r.ver.DeleteVersioned(key, opt, 0)
		return res == store.Deleted
	})
	if err != nil {
		return 0, store.Item{}, err
	}
	r.push.wrote(rt, key, changed)
	return res, it, nil
}

func (r *Router) localArith(ctx context.Context, rt *Route, key []byte, opt *store.ArithOptions) (res store.Result, n uint64, it store.Item, err error) {
	changed, err := r.tk.Own(ctx, rt.placed(), key, true, func() bool {
		res, n, it = r.st.Arith(key, opt)
		return res == store.Stored
	})
	if err != nil {
		return 0, 0, store.Item{}, err
	}
	r.push.wrote(rt, key, changed)
	return res, n, it, nil
}

func (r *Router) localTouch(ctx context.Context, rt *Route, key []byte, exptime int64) (res store.Result, it store.Item, err error) {
	changed, err := r.tk.Own(ctx, rt.placed(), key, true, func() bool {
		res, it = r.st.Touch(key, exptime)
		return res == store.Touched
	})
	if err != nil {
		return 0, store.Item{}, err
	}
	r.push.wrote(rt, key, changed)
	return res, it, nil
}
