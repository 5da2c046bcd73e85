package takeover

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"shoal/membership"
	"shoal/peer"
	"shoal/ring"
	"shoal/store"
)

// Warm-up: taking over a shard without serving what others overwrote.
//
// A shard is "warming" on this node from the moment the node becomes one
// of its owners (it joined, came back, or a member left) or comes back
// from a pause (pause.go), until it has pulled the shard from a member that
// held it throughout (a source: an owner in the previous view, or another
// current owner). While a shard warms:
//
//   - after a pause its items are dropped first (the others took writes
//     meanwhile); then the source's items are stored over what it holds,
//     unless what it holds is newer (a larger CAS; peer.Client.Dump, the
//     peer-only sd command), and the deletes the source remembers
//     (tombstones, a minute) remove what it holds that is older. Items of
//     a shard the node owned before, lost and owns again are not dropped:
//     a view can flap (etcd leases expiring after an etcd outage) and the
//     source may then hold less than this node; the cost is that a key
//     deleted while this node did not own it can come back once the
//     source has forgotten the delete, unless its own registration lapsed
//     meanwhile (a partition: lapse.go drops what it held);
//   - a key the node has not settled yet is read from a source before it is
//     served or changed (read-through), so neither a miss nor a stale
//     value is served during the pull; when no source answers for a key of
//     a wiped shard, a read misses and a change that depends on the item
//     fails (settle, own);
//   - every key the node settles, writes or receives a replicated write for
//     is "fresh": the pull and the drop leave it alone. A replicated write
//     is applied when it is newer than the local item (by CAS), even over
//     a write this node made itself, but not over its delete.
//
// w.mu orders these against each other; nothing of it is on the path of a
// shard that is not warming (one atomic load says none is).
type warm struct {
	active atomic.Int32 // shards warming now

	// flags is per shard: warming. Sized by the first view (the shard
	// count never changes in a cluster); read without w.mu.
	flags []atomic.Bool
	wake  chan struct{} // made by Init

	// mu guards the fields below, and a local write to a warming shard
	// holds it so that it is ordered against the pull of that key.
	mu sync.Mutex
	// fresh holds the keys settled since warm-up began; true means
	// written by this node (a replicated write does not overwrite it).
	fresh map[string]bool
	src   map[int][]string // per warming shard: members to pull from, preferred first
	// drop: shards whose local items go before the worker's next pulls;
	// warming ones, and any a lapse found stale (lapse.go)
	drop map[int]bool
	// keepFrom: the next drop keeps the items with a CAS at or above it
	// (0: keeps none). A lapse sets it to when this node was cut off:
	// what it wrote since, during the cut or after the heal, is newer
	// than what it may have missed, and the pull's newest-wins keeps the
	// newer of the two copies (versions.go).
	keepFrom uint64
	// keptFrom is the keepFrom of the last pause or lapse, which settle
	// goes on using after the drop: a key of a wiped shard that the source
	// lacks, and has no delete of, stays when its version is at or above
	// it (this node wrote it since the cut; its push may not have landed).
	keptFrom uint64
	// wiped: shards whose local items were dropped, or are about to be,
	// and not pulled since (a view change may end their warm-up and start
	// it again meanwhile). Their local copy is no fallback, so settle and
	// the pull try each source whatever gossip and down marks say (right
	// after a heal they lag: gossip still calls the others dead).
	wiped map[int]bool
	queue []int // warming shards the worker has not pulled yet
	// since: warming shards to pull only what changed since this version
	// (a warm restart, restart.go); a shard not here is pulled whole.
	since map[int]uint64
	// restored is the since of a warm restart (0: the store started
	// empty), for the claims of the shards still unverified: per shard,
	// true until it is pulled or dropped (nil before the first view with
	// this node).
	restored   uint64
	unverified []bool
	// claims is per shard: how many times it was queued. A pull ends the
	// warm-up only if no claim came while it ran (pullDone).
	claims []uint64
	// merge: warming shards re-verified after a co-owner came back
	// (claim.merge): a key their source lacks is kept.
	merge map[int]bool
	// dropOthers: after a pause, drop the items of shards this node does
	// not own too; it held them from before and they may be stale.
	dropOthers bool
	// unreached, per member: when settle stops waiting for it as a source
	// of wiped shards, set when it fails and dropped when it answers; per
	// member and shared by the keys, so that a multi-get waits for a
	// silent source once, not once per key, whatever other sources answer.
	unreached map[string]time.Time
	// changedAt is per shard: the epoch of the latest view in which its
	// owners changed; replicated writes from an older epoch are refused.
	changedAt []int64

	pulled, dropped, fetched atomic.Uint64 // items, for stats
	deltas, noDeltas         atomic.Uint64 // shards pulled by what changed; refused that (restart.go)
	lapses                   atomic.Uint64 // the membership's lapses recovered from (lapse.go)
}

func (w *warm) init(shards int) {
	if w.flags != nil {
		return
	}
	w.flags = make([]atomic.Bool, shards)
	w.changedAt = make([]int64, shards)
	w.claims = make([]uint64, shards)
	w.fresh = map[string]bool{}
	w.src = map[int][]string{}
	w.drop = map[int]bool{}
	w.wiped = map[int]bool{}
	w.merge = map[int]bool{}
	w.since = map[int]uint64{}
	w.unreached = map[string]time.Time{}
}

// claim is one shard to warm.
type claim struct {
	shard int
	src   []string
	drop  bool
	// merge: re-verify a shard this node kept (a co-owner is back,
	// returns.go): a source's newer copies are taken, a key the source
	// lacks is kept. Ignored for a shard that warms already.
	merge bool
	// since: pull only what changed since this version (restart.go).
	since uint64
}

// start marks shards warming and wakes the worker; w.mu is held. The
// view the claims were made in must be the one requests route by already
// (the worker pulls by it): transition, which runs before its view is
// published, claims, and apply wakes the worker once it is.
func (w *warm) start(cs []claim) {
	w.claim(cs)
	if len(cs) > 0 || len(w.drop) > 0 || w.dropOthers {
		w.kick()
	}
}

// claim marks shards warming and queues them for the worker; w.mu is
// held.
func (w *warm) claim(cs []claim) {
	for _, c := range cs {
		if c.merge && w.flags[c.shard].Load() {
			continue // warming for real: its sources include the co-owners
		}
		if c.merge {
			w.merge[c.shard] = true
		} else {
			delete(w.merge, c.shard)
		}
		if !w.flags[c.shard].Swap(true) {
			w.active.Add(1)
		}
		w.queue = append(w.queue, c.shard) // again if warming: pulled again
		w.claims[c.shard]++
		w.src[c.shard] = c.src
		if c.since != 0 && !c.drop {
			w.since[c.shard] = c.since
		} else {
			delete(w.since, c.shard)
		}
		if c.drop {
			w.drop[c.shard] = true
			w.wiped[c.shard] = true
			clear(w.unreached) // settle waits for its sources anew
		}
	}
}

// kick wakes the worker.
func (w *warm) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// pullDone ends warm-up of shard s after a pull that started at claim
// count claim, unless s was claimed again meanwhile (a pause or a lapse
// dropped it and wants it pulled again); w.mu is held.
func (w *warm) pullDone(s int, claim uint64) {
	if w.claims[s] == claim {
		w.finish(s)
	}
}

// finish ends warm-up of shard s; w.mu is held.
func (w *warm) finish(s int) {
	if w.flags[s].Swap(false) {
		if w.active.Add(-1) == 0 {
			clear(w.fresh)
		}
	}
	delete(w.src, s)
	delete(w.merge, s)
	delete(w.since, s)
}

// trySource reports whether a warming shard may be read or pulled from
// m: when usable, or when the shard was wiped and m is in the view at all
// (its request times out if m is really gone).
func trySource(m Source, wiped bool) bool {
	if wiped {
		return m != nil
	}
	return m != nil && m.Usable()
}

// others returns the members of owners other than self, appended to dst
// unless already there.
func others(dst, owners []string, self string) []string {
	for _, o := range owners {
		if o != self && !slices.Contains(dst, o) {
			dst = append(dst, o)
		}
	}
	return dst
}

func sameOwners(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// Transition starts warm-up of the shards this node owns in nv but did
// not own in old (every owned shard when old is nil: the process just
// started). The view lock is held; the caller publishes nv, then wakes the
// worker.
func (t *Takeover) Transition(old, nv *membership.View) {
	if nv == nil || nv.Ring == nil || !t.running {
		return
	}
	w := &t.w
	n := nv.Ring.NumShards()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init(n)
	if len(w.flags) != n {
		t.Log.Error("shard count changed; warm-up disabled", "was", len(w.flags), "now", n)
		return
	}
	if old != nil && (old.Ring == nil || old.Ring.NumShards() != n) {
		old = nil
	}
	var without *ring.Ring // the ring without this node: who held our shards before we joined
	if old == nil {
		without = t.ringWithout(nv)
	}
	if slices.Contains(nv.Ring.Nodes(), t.Self) {
		w.restoredView(n)
	}
	var cs []claim
	owedFrom := uint64(time.Now().Add(-t.OwedFor).UnixMilli()) << 16
	for s := range n {
		owners := nv.Ring.Owners(s)
		in := slices.Contains(owners, t.Self)
		var prev []string
		if old != nil {
			prev = old.Ring.Owners(s)
			if !sameOwners(prev, owners) {
				w.changedAt[s] = nv.Epoch
			}
		}
		wasIn := slices.Contains(prev, t.Self)
		if wasIn {
			for _, o := range owners {
				if o != t.Self && !slices.Contains(prev, o) {
					t.h.Owe(o, s, owedFrom)
				}
			}
		}
		switch {
		case in && (old == nil || !wasIn):
			src := others(nil, prev, t.Self)
			src = others(src, owners, t.Self)
			if without != nil {
				src = others(src, without.Owners(s), t.Self)
			}
			cs = append(cs, claim{shard: s, src: src, since: w.restoredSince(s)})
		case !in && wasIn && !w.wiped[s]:
			w.finish(s)
		case !in && wasIn:
			// A shard a lapse or a pause dropped (wiped), not pulled
			// since, keeps warming: its local copy is no answer. The
			// view without this node can be applied after the lapse's
			// recovery claimed the shard (the membership published it
			// before the lapse was noticed); ending the warm-up there
			// served, to a peer that already routed to this node again,
			// a value from before the cut of a key deleted during it
			// (TestClusterPartitionedNode, 1 run in 30).
		}
	}
	w.claim(cs) // the caller wakes the worker once nv is published
}

// ringWithout returns v's ring without this node, or nil when this node
// is not in it or is alone.
func (t *Takeover) ringWithout(v *membership.View) *ring.Ring {
	nodes := v.Ring.Nodes()
	if !slices.Contains(nodes, t.Self) || len(nodes) < 2 {
		return nil
	}
	rest := make([]string, 0, len(nodes)-1)
	for _, n := range nodes {
		if n != t.Self {
			rest = append(rest, n)
		}
	}
	return t.ringOf(v, rest)
}

// ringWith returns v's ring with this node added, or nil when it is in it
// already.
func (t *Takeover) ringWith(v *membership.View) *ring.Ring {
	nodes := v.Ring.Nodes()
	if slices.Contains(nodes, t.Self) {
		return nil
	}
	return t.ringOf(v, append(slices.Clone(nodes), t.Self))
}

// ringOf returns the ring of nodes with v's settings, or nil.
func (t *Takeover) ringOf(v *membership.View, nodes []string) *ring.Ring {
	rg, err := ring.New(ring.Config{Shards: v.Settings.Shards, VNodes: v.Settings.VNodes, Replicas: v.Settings.Replicas}, nodes, v.Epoch)
	if err != nil {
		t.Log.Error("cannot build a ring for warm-up", "nodes", nodes, "err", err)
		return nil
	}
	return rg
}

// Warming reports whether the shard of at warms now.
func (t *Takeover) Warming(at Placement) bool {
	if t.w.active.Load() == 0 || at.Shard < 0 {
		return false
	}
	return at.Shard < len(t.w.flags) && t.w.flags[at.Shard].Load()
}

// Settle makes key fresh when its shard warms: the local store gets what
// a source holds for it, by version (a newer copy or a newer delete the
// source remembers wins), or loses it when the source has none, but for a
// merge and for what a lapse keeps (keptFrom). When no source answers,
// the local copy stands, unless the shard was wiped (a pause or a lapse:
// it may have been overwritten or deleted meanwhile). Then the sources
// are tried again until each has been silent for settleWait since it last
// answered (w.unreached), longer than a forwarding peer waits (it fails
// over to the key's next owner, which holds the newer copy); after that
// the key goes as the drop takes it, and what the drop keeps (a version
// at or above keptFrom: written since the cut, or in the moments before
// it that this node cannot tell from after) is kept but not vouched for:
// Settle reports false, and a read misses. Right after a heal a node's
// own connects can fail for a second (its neighbour entries for the
// others expire while the others already reach it); serving the local
// copy then served values overwritten or deleted during the cut
// (TestClusterPartitionedNode).
func (t *Takeover) Settle(ctx context.Context, at Placement, key []byte) (vouched bool) {
	if !t.Warming(at) {
		return true
	}
	var bo time.Duration
	for {
		answered, wiped, deadline := t.settleOnce(ctx, at, key)
		if !answered && ctx.Err() != nil && t.Warming(at) {
			return false // the request is gone: vouch for nothing, drop nothing
		}
		if answered || !wiped || !t.Warming(at) {
			return true
		}
		now := time.Now()
		if !now.Before(deadline) {
			return !t.dropUnsettled(at.Shard, key)
		}
		bo = min(max(2*bo, 20*time.Millisecond), 200*time.Millisecond)
		sleep(ctx, min(bo, deadline.Sub(now)))
	}
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// SettleWait is how long Settle tries the sources of a wiped shard: twice
// the peer request timeout, so that a peer forwarding the read gives up
// first and asks the key's next owner.
func (t *Takeover) SettleWait() time.Duration {
	d := t.PeerTimeout
	if d <= 0 {
		d = time.Second
	}
	return 2 * d
}

// settleOnce asks key's sources once (see settle); answered: the key is
// settled (or was already, or its shard no longer warms); wiped: its
// shard's local copy is no fallback; until: when none answered, the last
// of the sources' give-up times (w.unreached).
func (t *Takeover) settleOnce(ctx context.Context, at Placement, key []byte) (answered, wiped bool, until time.Time) {
	s := at.Shard
	w := &t.w
	w.mu.Lock()
	_, done := w.fresh[string(key)]
	src := w.src[s]
	wiped = w.wiped[s]
	lacks := sourceLacks{merge: w.merge[s], wiped: wiped, keptFrom: w.keptFrom}
	w.mu.Unlock()
	if done || len(src) == 0 {
		// Settled already; or no other member to ask (a one-node
		// cluster back from a pause): nobody could have written the
		// key meanwhile, so what this node holds stands.
		return true, wiped, until
	}
	var silent []string // sources that did not answer
	defer func() {
		if !answered && wiped {
			until = t.giveUpAt(silent)
		}
	}()
	for _, name := range src {
		m := at.Peers.Peer(name)
		if !trySource(m, wiped) {
			silent = append(silent, name)
			continue
		}
		pit, hit, err := m.Client().Get(ctx, key, peer.GetOptions{NoBump: true, LocalOnly: true})
		if err != nil && ctx.Err() != nil {
			return false, wiped, until // the request is gone; the source is not at fault
		}
		if err != nil {
			if m.Failed(ctx, err) || wiped {
				silent = append(silent, name)
				continue // an error reply vouches for nothing either
			}
			return true, wiped, until
		}
		t.settled(at, key, name, &pit, hit, lacks)
		return true, wiped, until
	}
	return false, wiped, until
}

// giveUpAt records the sources of a wiped shard that did not answer
// (w.unreached) and returns the last of their give-up times: settle stops
// waiting for a source settleWait after it first failed.
func (t *Takeover) giveUpAt(silent []string) time.Time {
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	give := time.Now().Add(t.SettleWait())
	until := give
	for i, name := range silent {
		t, ok := w.unreached[name]
		if !ok {
			t = give
			w.unreached[name] = t
		}
		if i == 0 || t.After(until) {
			until = t
		}
	}
	return until
}

// sourceLacks is what settle does to a key its source lacks and has no
// delete of, decided by the shard's state when the read began: nothing
// in a merge, else the key goes, but for what a lapse keeps (keptFrom) in
// a wiped shard.
type sourceLacks struct {
	merge, wiped bool
	keptFrom     uint64
}

// settled applies source name's answer for key (pit, hit) to the local
// store, by version, and marks the key fresh (see settle).
func (t *Takeover) settled(at Placement, key []byte, name string, pit *peer.Item, hit bool, lacks sourceLacks) {
	s := at.Shard
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.unreached, name)
	_, done := w.fresh[string(key)]
	switch {
	case done:
	case !w.flags[s].Load() && t.h.Current().View() == at.Peers.View():
		// The warm-up ended while the source answered (in the same
		// view: the shard is still this node's): its copy is still
		// applied by version (newest wins, remembered deletes stand),
		// as the pull would have; what the pull left out is otherwise a
		// miss here (TestPausedPeerAnswers, under load: two recoveries
		// in a row, the second's pull ending during this read). Nothing
		// is deleted on the source's word alone: a write here since the
		// end may be newer.
		t.applySourced(key, pit, hit)
	default:
		if !t.applySourced(key, pit, hit) {
			switch {
			case lacks.merge:
			case lacks.wiped && lacks.keptFrom != 0:
				t.Store.Delete(key, &store.DeleteOptions{Before: lacks.keptFrom})
			default:
				t.Store.Delete(key, nil)
			}
		}
		w.fresh[string(key)] = false
		w.fetched.Add(1)
	}
}

// applySourced applies a source's copy of key (a hit) or its delete (a
// miss with the delete's version) by version; false when the source had
// neither.
func (t *Takeover) applySourced(key []byte, pit *peer.Item, hit bool) bool {
	switch {
	case hit:
		t.Versions.ApplyCopy(key, pit.Value, &store.SetOptions{Flags: pit.Flags, Exptime: exptimeAt(t.Store, pit.TTL), NewCAS: pit.CAS})
	case pit.Deleted:
		t.Versions.DeleteVersioned(key, nil, pit.CAS)
	default:
		return false
	}
	return true
}

// dropUnsettled does to key what the drop of its wiped shard s does (or
// did): it goes unless this node wrote it since warm-up began (fresh) or
// its version is at or above the bound the drop keeps from. It stays
// unsettled: the pull, or a read once a source answers, still brings the
// source's copy. It reports whether the key is still unvouched for: it
// is kept by version only, or its shard is still wiped.
func (t *Takeover) dropUnsettled(s int, key []byte) bool {
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, fresh := w.fresh[string(key)]; fresh || !w.flags[s].Load() || !w.wiped[s] {
		return false
	}
	keep := w.keptFrom
	if w.drop[s] {
		keep = w.keepFrom // the drop to come keeps from there
	}
	if res, _ := t.Store.Delete(key, &store.DeleteOptions{Before: keep}); res == store.Deleted {
		w.dropped.Add(1)
	}
	return true
}

// Own runs a local write of key. When its shard warms, a write that
// depends on the current item (rmw) first settles the key, and fails
// with ErrUnvouched when settle cannot vouch for it; the write marks the
// key as this node's own.
func (t *Takeover) Own(ctx context.Context, at Placement, key []byte, rmw bool, op func() bool) (changed bool, err error) {
	if !t.Warming(at) {
		return op(), nil
	}
	s := at.Shard
	if rmw && !t.Settle(ctx, at, key) {
		// Not vouched for: no source answered, and what this node holds
		// may have been overwritten or deleted elsewhere meanwhile. A
		// read misses; a write that depends on the item fails, or it
		// would push a value made from a stale one over the newer.
		return false, ErrUnvouched
	}
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	changed = op()
	if w.flags[s].Load() {
		w.fresh[string(key)] = true
	}
	return changed, nil
}

// ReplicaNewer runs a replicated set of key, which the store applies only
// over an older item (newest wins, so it may overwrite a write this node
// made since warm-up began: that one is older). When the shard warms and
// this node wrote the key itself since warm-up began, op gets replace
// true: a key this node deleted meanwhile stays deleted (a delete has no
// version to compare). The key is settled when its shard warms.
func (t *Takeover) ReplicaNewer(at Placement, key []byte, op func(replace bool)) {
	if !t.Warming(at) {
		op(false)
		return
	}
	s := at.Shard
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	own, done := w.fresh[string(key)]
	op(own)
	if !done && w.flags[s].Load() {
		w.fresh[string(key)] = false
	}
}

// Replica runs a replicated delete of key (op reports whether it removed
// an item). When its shard warms and this node wrote the key itself since
// warm-up began, an unversioned delete (versioned false: from a sender
// that sends no version) is skipped, as it cannot be ordered against that
// write; a versioned one runs, and removes the write only if it is older.
// Skipping those too kept a write made here during the warm-up after the
// cluster had deleted the key later, and the pull leaves a fresh key
// alone.
func (t *Takeover) Replica(at Placement, key []byte, versioned bool, op func() (removed bool)) {
	if !t.Warming(at) {
		op()
		return
	}
	s := at.Shard
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	own, done := w.fresh[string(key)]
	if own && !versioned {
		return
	}
	removed := op()
	if (!done || own && removed) && w.flags[s].Load() {
		// Settled; and no longer this node's own write once a newer
		// delete removed it: a still newer replicated set then stores
		// (replicaNewer), where ModeReplace would refuse it.
		w.fresh[string(key)] = false
	}
}
