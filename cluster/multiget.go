package cluster

import (
	"context"
	"sync"

	"shoal/peer"
	"shoal/protocol"
	"shoal/store"
)

// multiResult is what a multi-get found for one key: a remote hit, a
// remote hit whose value the hold refused (dropped: asked for again), or
// that the key is this node's, read when its turn to be handed over comes.
type multiResult struct {
	it                  store.Item
	val                 []byte
	hit, dropped, local bool
	size                int // dropped: the value's size
}

// batch is the keys of one multi-get round that go to one member.
type batch struct {
	m   *member
	idx []int // indices into the request's keys
	err error
}

// GetMulti is the server.Cache's multi-get: the keys are grouped by the
// owner that serves each, every remote group goes as one pipelined batch
// (peer.GetMultiWith) on its own goroutine, and the hits are handed to
// into in key order once all are in, each local key read from the store
// at its turn: only the remote values are held at once, never a copy of
// the local ones (a one-node cluster's multi-get of 1 MB values peaked at
// 212-245 MB resident with -m 64 when they were; e2e/hostile "multiget
// read, cluster node"). The remote values held are bounded node-wide
// (hold.go): one the bound refuses ends the round once the keys before it
// are answered, and the keys from it on go again in the next round. A
// group whose owner does not answer is retried, regrouped, on each key's
// next owner; keys with no owner left are misses. Every key is routed
// once, in one view, and a retry walks on along its route. Options a
// batch cannot carry (NoBump, Vivify, RecacheBelow: meta commands only)
// are served key by key on the synchronous walk (getOn), and so is every multi-get while
// shards warm.
func (r *Router) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(i int, it store.Item, val []byte)) {
	r.tk.Awake() // recovers first when the process was paused
	// While shards warm, each local key may need settling first: key by key.
	if (opt != nil && (opt.NoBump || opt.Vivify || opt.RecacheBelow > 0)) || r.tk.AnyWarming() {
		var buf []byte
		for i, k := range keys {
			it, val, res := r.getOn(ctx, r.routed(k), k, opt, buf[:0])
			buf = val
			if res == store.Hit {
				into(i, it, val)
			}
		}
		return
	}
	mg := &multiGet{r: r, keys: keys, opt: opt, into: into,
		res:    make([]multiResult, len(keys)),
		routes: make([]Route, len(keys)), // per key: decided once, then moved on past owners that fail
	}
	ps := r.peers.Load() // one view for every key
	for i := range keys {
		mg.routes[i] = r.routeIn(ps, keys[i])
	}
	// A round the hold cut short asked for values it could not keep, and
	// the owners sent them all the same: the next asks for no more than
	// it kept; a round that answered all it asked for doubles the window.
	window := len(keys)
	tk := new(ticket)
	defer r.hold.leave(tk)
	for from := 0; from < len(keys) && ctx.Err() == nil; {
		to := min(len(keys), from+window)
		freed := r.hold.freedSince() // before any value of the round is refused
		n, kept, stopped := mg.round(ctx, from, to, tk)
		if n < to-from {
			window = max(1, kept)
		} else {
			window = min(len(keys), 2*window)
		}
		if n == 0 {
			// Others hold the bound: queue for the value that stopped
			// the round, and wait for room.
			r.hold.enqueue(tk, stopped)
			r.hold.wait(ctx, freed, tk)
			r.hold.waitFits(ctx, tk)
		} else {
			r.hold.leave(tk)
		}
		from += n
	}
}

// multiGet is one GetMulti call.
type multiGet struct {
	r      *Router
	keys   [][]byte
	opt    *store.GetOptions
	into   func(i int, it store.Item, val []byte)
	res    []multiResult
	routes []Route
}

// round fetches keys[from:to] from their owners, hands the hits over in
// order up to the first value the hold refused, gives back what it held
// and returns how many keys it answered, how many values it kept and the
// size of the value that stopped it.
//
// It fetches twice at most. The first fetch asks for every key with the
// room the hold shares out (charge.room): values larger come back as
// their sizes. The second asks, in key order, for those the hold can
// take now, each reserved at its size: so what owners send is what the
// node can hold, and a round of large values still ends in one round.
func (g *multiGet) round(ctx context.Context, from, to int, tk *ticket) (answered, kept int, stopped int64) {
	ch := &charge{h: g.r.hold, tk: tk}
	defer ch.release()
	clear(g.res[from:to])
	most := g.r.st.MaxItemSize()
	room := ch.room(to-from, most)
	if room >= most {
		room = 0 // any value fits: no A on the wire (as Start's gets)
	}
	g.fetchAll(ctx, span(from, to), room, ch.admit)
	ch.settle()
	var again []int
	size := 0
	for i := from; i < to; i++ {
		res := &g.res[i]
		if !res.dropped {
			continue
		}
		if !ch.reserve(int64(res.size)) && !(g.dropAfter(ch, i, to) && ch.reserve(int64(res.size))) {
			break // the hold is full: this one stops the round
		}
		again, size = append(again, i), max(size, res.size)
		*res = multiResult{}
	}
	if len(again) > 0 {
		g.fetchAll(ctx, again, size, ch.admitReserved)
	}
	for i := from; i < to; i++ {
		if g.res[i].hit {
			kept++
		}
	}
	n, stopped := g.handOver(from, to)
	return n, kept, stopped
}

// dropAfter gives back what the round kept of keys[i+1:to], so that key
// i's value may be reserved in their place (alone, when it is larger
// than the bound); they become values to ask for again, with their sizes
// (in this round's second ask when the hold takes them, else the next
// round), never misses. It reports whether it gave anything back.
func (g *multiGet) dropAfter(ch *charge, i, to int) bool {
	n := int64(0)
	for j := i + 1; j < to; j++ {
		if res := &g.res[j]; res.hit {
			n += int64(len(res.val))
			*res = multiResult{dropped: true, size: len(res.val)}
		}
	}
	if n == 0 {
		return false
	}
	ch.unkeep(n)
	return true
}

// span is the indices from to to.
func span(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// fetchAll fills the results of the keys at pending: every remote group
// as one batch on its own goroutine, and a group whose owner does not
// answer again on each key's next owner.
func (g *multiGet) fetchAll(ctx context.Context, pending []int, room int, admit func(int) bool) {
	r := g.r
	for len(pending) > 0 {
		var batches []*batch
		byMember := map[*member]*batch{}
		for _, i := range pending {
			rt := &g.routes[i]
			r.moveTo(rt, rt.at) // past owners that failed since it was routed (an earlier round)
			m := rt.member()
			switch {
			case rt.Local():
				g.res[i].local = true
			case m == nil || !protocol.MetaKeyValid(g.keys[i]):
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
			wg.Go(func() { b.err = g.fetch(ctx, b, room, admit) })
		}
		wg.Wait()
		pending = pending[:0]
		for _, b := range batches {
			if b.err != nil && b.m.Failed(ctx, b.err) {
				for _, i := range b.idx {
					r.next(&g.routes[i])
				}
				pending = append(pending, b.idx...)
			}
		}
	}
}

// handOver hands the hits of keys[from:to] to into in key order, each
// local key read from the store at its turn, up to the first value the
// hold refused: it returns how many keys it answered and that value's
// size.
func (g *multiGet) handOver(from, to int) (answered int, stopped int64) {
	r := g.r
	var scratch []byte
	for i := from; i < to; i++ {
		res := &g.res[i]
		switch {
		case res.dropped:
			stopped = int64(res.size)
			clear(g.res[i:to]) // the values after it go again: none stays referenced while the call waits
			return i - from, stopped
		case res.local:
			it, val, got := r.st.Get(g.keys[i], g.opt, scratch[:0])
			scratch = val
			r.push.wrote(&g.routes[i], g.keys[i], g.opt != nil && g.opt.Touch && got == store.Hit)
			if got == store.Hit {
				g.into(i, it, val)
			}
		case res.hit:
			g.into(i, res.it, res.val)
			res.val = nil
		}
	}
	return to - from, 0
}

// fetch reads the keys of b from its member in one batch and fills their
// results; each goroutine writes only the results of its own keys. Hits
// come back even with a reply error, which is the owner's answer: the
// keys it did not return are misses.
func (g *multiGet) fetch(ctx context.Context, b *batch, room int, admit func(int) bool) error {
	ks := make([][]byte, len(b.idx))
	for j, i := range b.idx {
		ks[j] = g.keys[i]
	}
	opts := peer.GetOptions{Admit: admit, Room: room}
	if g.opt != nil && g.opt.Touch {
		opts.Touch, opts.TTL = true, ttl(g.opt.Exptime)
	}
	hits, err := b.m.client.GetMultiWith(ctx, ks, opts, nil)
	if err != nil && failover(err) {
		return err
	}
	for _, h := range hits {
		if h.Dropped {
			g.res[b.idx[h.Index]] = multiResult{dropped: true, size: h.Size}
			continue
		}
		g.res[b.idx[h.Index]] = multiResult{it: g.r.item(&h.Item, len(h.Value)), val: h.Value, hit: true}
	}
	return err
}
