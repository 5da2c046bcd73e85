package cluster

import (
	"context"
	"errors"

	"shoal/peer"
	"shoal/protocol"
	"shoal/store"
)

// Forwarding maps store options onto meta requests. What does not travel
// faithfully yet:
//
//   - A key a client sent base64-encoded travels so (ms b) on forwarded
//     sets, replication, warm-up pulls and handoff, but not on a key
//     settled by read-through during warm-up, which is stored plain.
//   - Item.Created after a forwarded vivify (mg N, ma N) is inferred (win
//     token on an empty value for mg; never for ma), so the t flag of the
//     very reply that created the item may report the T rather than the N
//     TTL; Item.KeyBinary is never set on a forwarded read.
//   - Item.Exptime and LastAccess come back as seconds left / seconds ago
//     and are rebuilt with this node's clock.
//   - A classic multi-key get goes by owner in batches (multiget.go), but a
//     meta mg is one key, so a pipeline of mg is still forwarded key by key.
//   - Touch is forwarded as a gat (mg T v): the value crosses the wire.
//   - flush_all reaches every member that answers (Router.FlushAll), each
//     applying the delay on its own clock; one that is down keeps its items.

// ttl is the meta T token for an absolute exptime.
func ttl(exptime int64) int64 { return protocol.MetaTTL(exptime) }

// exptime converts the TTL left a peer reports (-1 never) back to an
// absolute time on this node's clock.
func (r *Router) exptime(left int64) int64 { return exptimeAt(r.st, left) }

// exptimeAt is exptime on st's clock.
func exptimeAt(st *store.Store, left int64) int64 {
	if left < 0 {
		return 0
	}
	return st.Now() + left
}

func (r *Router) item(it *peer.Item, size int) store.Item {
	out := store.Item{
		Flags: it.Flags, Exptime: r.exptime(it.TTL), CAS: it.CAS, Size: size,
		Fetched: it.Fetched, Win: it.Win, Stale: it.Stale, TokenSent: it.TokenSent,
	}
	if it.LastAccess > 0 {
		out.LastAccess = r.st.Now() - it.LastAccess
	}
	return out
}

// replyResult maps the owner's error lines that are store outcomes; the
// server then answers its client with its own line for the result, the
// one memcached sends for the client's command.
func replyResult(err error) (store.Result, bool) {
	switch {
	case errors.Is(err, peer.ErrNonNumeric):
		return store.NonNumeric, true
	case errors.Is(err, peer.ErrOutOfMemory):
		return store.NoMemory, true
	case errors.Is(err, peer.ErrTooLarge):
		return store.TooLarge, true
	}
	return 0, false
}

// getOn reads key from the first reachable owner on route rt; no
// reachable owner, or an error from the owner, is a miss.
func (r *Router) getOn(ctx context.Context, rt Route, key []byte, opt *store.GetOptions, dst []byte) (it store.Item, val []byte, res store.Result) {
	res = store.Miss
	err := r.walk(ctx, &rt, func(m *member) error {
		pit, hit, err := m.client.Get(ctx, key, peerGetOptions(opt, dst))
		if err != nil {
			return err
		}
		it, val, res = r.gotten(&pit, hit, opt, dst)
		return nil
	})
	if err != nil {
		return store.Item{}, dst[:0], store.Miss
	}
	if rt.Local() {
		return r.localGet(ctx, &rt, key, opt, dst)
	}
	return it, val, res
}

// peerGetOptions is a forwarded get's request, its value read into dst.
func peerGetOptions(opt *store.GetOptions, dst []byte) peer.GetOptions {
	var po peer.GetOptions
	if opt != nil {
		po = peer.GetOptions{
			Touch: opt.Touch, TTL: ttl(opt.Exptime), NoBump: opt.NoBump,
			Vivify: opt.Vivify, VivifyTTL: ttl(opt.VivifyExptime),
			RecacheBelow: opt.RecacheBelow, Detail: true,
		}
	}
	po.Buf = dst
	return po
}

// gotten is a forwarded get's result from the owner's reply.
func (r *Router) gotten(pit *peer.Item, hit bool, opt *store.GetOptions, dst []byte) (store.Item, []byte, store.Result) {
	if !hit {
		return store.Item{}, dst[:0], store.Miss
	}
	it := r.item(pit, len(pit.Value))
	it.Created = opt != nil && opt.Vivify && pit.Win && len(pit.Value) == 0
	return it, pit.Value, store.Hit
}

var setModes = [...]peer.SetMode{
	store.ModeSet: peer.ModeSet, store.ModeAdd: peer.ModeAdd, store.ModeReplace: peer.ModeReplace,
	store.ModeAppend: peer.ModeAppend, store.ModePrepend: peer.ModePrepend,
}

func writeResult(res peer.Result, ok store.Result) store.Result {
	switch res {
	case peer.NotStored:
		return store.NotStored
	case peer.Exists:
		return store.Exists
	case peer.NotFound:
		return store.NotFound
	}
	return ok
}

// setOn writes through the first reachable owner on route rt.
func (r *Router) setOn(ctx context.Context, rt Route, key, value []byte, opt *store.SetOptions) (res store.Result, it store.Item, err error) {
	err = r.walk(ctx, &rt, func(m *member) error {
		pr, cas, err := m.client.Set(ctx, key, value, peerSetOptions(opt))
		res, it, err = setOutcome(pr, cas, err, opt, len(value))
		return err
	})
	if err == nil && rt.Local() {
		res, it, err = r.localSet(ctx, &rt, key, value, opt)
	}
	return res, it, err
}

// peerSetOptions is a forwarded set's request.
func peerSetOptions(opt *store.SetOptions) peer.SetOptions {
	if opt == nil {
		return peer.SetOptions{}
	}
	return peer.SetOptions{
		Flags: opt.Flags, TTL: ttl(opt.Exptime), CAS: opt.CAS, Invalidate: opt.Invalidate,
		Mode: setModes[opt.Mode], NewCAS: opt.NewCAS, Vivify: opt.Vivify, VivifyTTL: ttl(opt.Exptime),
		KeyBinary: opt.KeyBinary,
	}
}

// setOutcome maps a forwarded set's outcome (Client.Set's or SetAsync's)
// to Set's results. An error left is the owner's failure, not a store
// outcome: for walk to fail over on, or to return.
func setOutcome(pr peer.Result, cas uint64, err error, opt *store.SetOptions, size int) (store.Result, store.Item, error) {
	if err != nil {
		if rr, ok := replyResult(err); ok {
			return rr, store.Item{}, nil
		}
		return 0, store.Item{}, err
	}
	var so store.SetOptions
	if opt != nil {
		so = *opt
	}
	return writeResult(pr, store.Stored), store.Item{Flags: so.Flags, Exptime: so.Exptime, CAS: cas, Size: size}, nil
}

// deleteOn deletes (or invalidates) through the first reachable owner on
// route rt.
func (r *Router) deleteOn(ctx context.Context, rt Route, key []byte, opt *store.DeleteOptions) (res store.Result, it store.Item, err error) {
	err = r.walk(ctx, &rt, func(m *member) error {
		pr, err := m.client.Delete(ctx, key, peerDeleteOptions(opt))
		res, err = deleteOutcome(pr, err)
		return err
	})
	if err == nil && rt.Local() {
		res, it, err = r.localDelete(ctx, &rt, key, opt)
	}
	return res, it, err
}

// peerDeleteOptions is a forwarded delete's request.
func peerDeleteOptions(opt *store.DeleteOptions) peer.DeleteOptions {
	var po peer.DeleteOptions
	if opt != nil {
		po = peer.DeleteOptions{CAS: opt.CAS, Invalidate: opt.Invalidate, NewCAS: opt.NewCAS}
		if opt.Touch {
			po.TTL = ttl(opt.Exptime)
		}
	}
	return po
}

// deleteOutcome maps a forwarded delete's outcome (Client.Delete's or
// DeleteAsync's) to Delete's result; an error is the owner's failure.
func deleteOutcome(pr peer.Result, err error) (store.Result, error) {
	if err != nil {
		return 0, err
	}
	return writeResult(pr, store.Deleted), nil
}

// arithOn applies incr/decr at the first reachable owner on route rt.
func (r *Router) arithOn(ctx context.Context, rt Route, key []byte, opt *store.ArithOptions) (res store.Result, v uint64, it store.Item, err error) {
	err = r.walk(ctx, &rt, func(m *member) error {
		po := peer.ArithOptions{
			Decr: opt.Decr, Delta: opt.Delta, ZeroDelta: opt.Delta == 0,
			Vivify: opt.Vivify, Initial: opt.Initial, VivifyTTL: ttl(opt.VivifyExptime),
			Touch: opt.Touch, TTL: ttl(opt.Exptime), CAS: opt.CAS, NewCAS: opt.NewCAS,
		}
		c, pr, err := m.client.Arith(ctx, key, po)
		if err != nil {
			if rr, ok := replyResult(err); ok {
				res = rr
				return nil
			}
			return err
		}
		res, v = writeResult(pr, store.Stored), c.Value
		if pr == peer.OK {
			it = store.Item{CAS: c.CAS, Exptime: r.exptime(c.TTL)}
		}
		return nil
	})
	if err == nil && rt.Local() {
		res, v, it, err = r.localArith(ctx, &rt, key, opt)
	}
	return res, v, it, err
}

// touchOn sets key's exptime at the first reachable owner on route rt.
func (r *Router) touchOn(ctx context.Context, rt Route, key []byte, exptime int64) (res store.Result, it store.Item, err error) {
	err = r.walk(ctx, &rt, func(m *member) error {
		pit, hit, err := m.client.Get(ctx, key, peer.GetOptions{Touch: true, TTL: ttl(exptime)})
		if err != nil {
			return err
		}
		res = store.NotFound
		if hit {
			res, it = store.Touched, r.item(&pit, len(pit.Value))
		}
		return nil
	})
	if err == nil && rt.Local() {
		res, it, err = r.localTouch(ctx, &rt, key, exptime)
	}
	return res, it, err
}
