package cluster

import (
	"context"
	"sync"

	"shoal/peer"
	"shoal/protocol"
	"shoal/store"
)

// multiResult is what a multi-get found for one key: a remote hit, or
// that the key is this node's, read when its turn to be handed over comes.
type multiResult struct {
	it         store.Item
	val        []byte
	hit, local bool
}

// batch is the keys of one multi-get round that go to one member.
type batch struct {
	m   *member
	idx []int // indices into the request's keys
	err error
}

// GetMulti implements server.MultiGetter: the keys are grouped by the
// owner that serves each, every remote group goes as one pipelined batch
// (peer.GetMulti, or TouchMulti for a gat) on its own goroutine, and the
// hits are handed to into in key order once all are in, each local key
// read from the store at its turn: only the remote values are held at
// once, never a copy of the local ones (a one-node cluster's multi-get of
// 1 MB values peaked at 212-245 MB resident with -m 64 when they were;
// e2e/hostile "multiget read, cluster node"). A group whose owner does not
// answer is retried, regrouped, on each key's next owner; keys with no owner left
// are misses. Every key is routed once, in one view, and a retry walks on
// along its route. Options a batch cannot carry (NoBump, Vivify,
// RecacheBelow: meta commands only) are served key by key through Get, and
// so is every multi-get while shards warm.
func (r *Router) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(i int, it store.Item, val []byte)) {
	r.tk.awake() // recovers first when the process was paused
	// While shards warm, each local key may need settling first: key by key.
	if (opt != nil && (opt.NoBump || opt.Vivify || opt.RecacheBelow > 0)) || r.tk.anyWarming() {
		var buf []byte
		for i, k := range keys {
			it, val, res := r.Get(ctx, k, opt, buf[:0])
			buf = val
			if res == store.Hit {
				into(i, it, val)
			}
		}
		return
	}
	res := make([]multiResult, len(keys))
	routes := make([]Route, len(keys)) // per key: decided once, then moved on past owners that fail
	pending := make([]int, len(keys))
	ps := r.peers.Load() // one view for every key
	for i := range pending {
		pending[i] = i
		routes[i] = r.routeIn(ps, keys[i])
	}
	for len(pending) > 0 {
		var batches []*batch
		byMember := map[*member]*batch{}
		for _, i := range pending {
			rt := &routes[i]
			m := rt.member()
			switch {
			case rt.Local():
				res[i].local = true
			case m == nil || !protocol.MetaKeyValid(keys[i]):
				// No owner left, or a key no peer request carries: a miss,
				// as Get makes it.
			default:
				b := byMember[m]
				if b == nil {
					b = &batch{m: m}
					byMember[m] = b
					batches = append(batches, b)
				}
				b.idx = append(b.idx, i)
			}
		}
		var wg sync.WaitGroup
		for _, b := range batches {
			b.m.forwarded.Add(1)
			wg.Go(func() { b.err = r.fetch(ctx, b, keys, opt, res) })
		}
		wg.Wait()
		pending = pending[:0]
		for _, b := range batches {
			if b.err != nil && r.failed(ctx, b.m, b.err) {
				for _, i := range b.idx {
					r.next(&routes[i])
				}
				pending = append(pending, b.idx...)
			}
		}
	}
	var scratch []byte
	for i := range res {
		if res[i].local {
			it, val, got := r.st.Get(keys[i], opt, scratch[:0])
			scratch = val
			r.wrote(&routes[i], keys[i], opt != nil && opt.Touch && got == store.Hit)
			if got == store.Hit {
				into(i, it, val)
			}
			continue
		}
		if res[i].hit {
			into(i, res[i].it, res[i].val)
		}
	}
}

// fetch reads the keys of b from its member in one batch and fills their
// results; each goroutine writes only the results of its own keys. Hits
// come back even with a reply error, which is the owner's answer: the
// keys it did not return are misses.
func (r *Router) fetch(ctx context.Context, b *batch, keys [][]byte, opt *store.GetOptions, res []multiResult) error {
	ks := make([][]byte, len(b.idx))
	for j, i := range b.idx {
		ks[j] = keys[i]
	}
	var hits []peer.Hit
	var err error
	if opt != nil && opt.Touch {
		hits, err = b.m.client.TouchMulti(ctx, ks, ttl(opt.Exptime), nil)
	} else {
		hits, err = b.m.client.GetMulti(ctx, ks, nil)
	}
	if err != nil && failover(err) {
		return err
	}
	for _, h := range hits {
		res[b.idx[h.Index]] = multiResult{it: r.item(&h.Item, len(h.Value)), val: h.Value, hit: true}
	}
	return err
}
