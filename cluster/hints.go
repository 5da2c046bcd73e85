package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"shoal/gossip"
	"shoal/membership"
	"shoal/repl"
	"shoal/store"
)

// Hints: writes owed to a member that missed them (hinted hand-off, at
// the granularity of a shard).
//
// A write this node serves is pushed to the key's other owners (repl). A
// push the replicator gives up on (the owner was paused, cut off or
// restarting, and did not answer three times; or its queue was full) is
// not forgotten: the replicator tells Missed, which records that the
// member is owed this node's writes of the key's shard from that write's
// version on. The case that matters is a stand-in: while a key's primary
// is away the next owner serves its writes, and the primary, back, would
// otherwise serve its older copy for good.
//
// Once gossip sees the member alive again (checked at each of Run's
// ticks, at most once per handBackEvery per member), this node pushes it
// every item it holds in the owed shards with a version at or above the
// owed one, and every delete it remembers there (tomb), through the
// replicator: the member keeps the newer of each pair (takeover/versions.go), so
// what either side wrote last wins on both. A push missed again is owed
// again. Hints are kept only for members of the current view: one that
// leaves and comes back warms its shards by pulling from their owners.
//
// A view change owes too: when a shard gets an owner it did not have (a
// member returns after its registration lapsed, or joins), a node that
// owned it in the previous view owes that member its writes of the shard
// from the last viewOwedFor on. The newcomer pulls the shard when it
// takes it over, but this node may go on serving it until it applies the
// new view itself, after the pull went past a key; what it wrote
// meanwhile would stay here.
//
// Until the hand-back lands, the member serves what it held: reads may
// return an older value for up to a second after it is seen alive again
// (README, "What the cluster guarantees").
type hints struct {
	mu   sync.Mutex
	owed map[string]map[int]uint64 // member: shard: push versions from this on
	last map[string]time.Time      // member: last hand-back started

	running    int    // hand-backs scanning the store now
	handedBack uint64 // items and deletes pushed (stats)
}

// handBackEvery spaces the hand-backs to one member: a member that takes
// none of it (it went away again) costs a store scan per handBackEvery,
// not per tick. It was a second: writes a stand-in took in the last
// moments of a fault, pushed while the member was still refusing them,
// were missed (three tries, RetryAfter apart) just after the hand-back at
// its return, and waited out the second; reads of them on the member came
// back stale 1.1-1.3 s after the acknowledgement (e2e/history seed 20).
const handBackEvery = 250 * time.Millisecond

// viewOwedFor is how far back a view change owes writes (see above): more
// than the time views take to reach every node, a pull to run, and the
// cut before a lapse.
const viewOwedFor = 30 * time.Second

// handBackBatch items go to the replicator at a time, handBackPause apart,
// so a large hand-back does not overflow its queue (what overflows is owed
// again, and goes at the next round).
const (
	handBackBatch = 1024
	handBackPause = 20 * time.Millisecond
)

// Missed is repl.Config.Missed: peer was not given this write of key.
func (r *Router) Missed(peer string, key []byte, it repl.Item) {
	r.push.missed(r.View(), peer, key, it)
}

// missed records that peer is owed this node's writes of key's shard in
// v from it's version on.
func (p *pusher) missed(v *membership.View, peer string, key []byte, it repl.Item) {
	if v == nil || v.Ring == nil {
		return
	}
	since := it.CAS
	if since == 0 {
		since = 1 // no version (an unversioned delete): the whole shard
	}
	p.hints.owe(peer, v.Ring.Shard(key), since)
}

// owe records that member peer is owed this node's writes of shard s with
// a version of since or more.
func (h *hints) owe(peer string, s int, since uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owed == nil {
		h.owed = map[string]map[int]uint64{}
		h.last = map[string]time.Time{}
	}
	m := h.owed[peer]
	if m == nil {
		m = map[int]uint64{}
		h.owed[peer] = m
	}
	if c, ok := m[s]; !ok || since < c {
		m[s] = since
	}
}

// handBackDue starts a hand-back, on a goroutine spawn starts, to each
// member of ps owed writes that gossip sees alive; from Run's tick. Hints
// of members no longer in the view are dropped.
func (p *pusher) handBackDue(ctx context.Context, ps *peerSet, spawn func(func()) bool) {
	if ps.view == nil || ps.view.Ring == nil || p.repl == nil {
		return
	}
	h := &p.hints
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, owed := range h.owed {
		m := ps.get(name)
		if m == nil {
			delete(h.owed, name)
			continue
		}
		if p.members.Health(name) != gossip.Alive || now.Sub(h.last[name]) < handBackEvery {
			continue
		}
		delete(h.owed, name)
		h.last[name] = now
		epoch := uint64(ps.view.Epoch)
		target := repl.Target{Name: m.name, Addr: m.addr}
		h.running++
		if !spawn(func() { p.handBack(ctx, ps.view, target, epoch, owed) }) {
			h.running--
			return
		}
	}
}

// handBack pushes to target this node's items and deletes of the owed
// shards with a version at or above the owed one.
func (p *pusher) handBack(ctx context.Context, v *membership.View, target repl.Target, epoch uint64, owed map[int]uint64) {
	due := func(key []byte, cas uint64) (int, bool) {
		s := v.Ring.Shard(key)
		since, ok := owed[s]
		return s, ok && cas >= since
	}
	targets := []repl.Target{target}
	n := 0
	pace := func() bool {
		n++
		if n%handBackBatch != 0 {
			return true
		}
		t := time.NewTimer(handBackPause)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	p.st.Range(func(key []byte, it store.Item, val []byte) bool {
		s, ok := due(key, it.CAS)
		if !ok {
			return true
		}
		p.repl.Push(key, targets, repl.Item{
			Value: val, Flags: it.Flags, Exptime: it.Exptime, CAS: it.CAS, KeyBinary: it.KeyBinary,
			Epoch: epoch, Seq: p.nextSeq(s),
		})
		return pace()
	})
	p.tombs.Range(1, func(key []byte, cas uint64) bool {
		s, ok := due(key, cas)
		if !ok {
			return true
		}
		p.repl.Push(key, targets, repl.Item{Deleted: true, CAS: cas, Epoch: epoch, Seq: p.nextSeq(s)})
		return pace()
	})
	p.hints.mu.Lock()
	p.hints.handedBack += uint64(n)
	p.hints.running--
	p.hints.mu.Unlock()
	p.log.Info("handed back writes a member missed", "peer", target.Name, "shards", len(owed), "items", n)
}

// numberShards readies the per-shard replication sequence numbers when v
// is the first view with a ring applied since the router's Run started
// (running); the router's view lock is held.
func (p *pusher) numberShards(v *membership.View, running bool) {
	if v == nil || v.Ring == nil || !running || p.seq.Load() != nil {
		return
	}
	seq := make([]atomic.Uint64, v.Ring.NumShards())
	p.seq.Store(&seq)
}

// nextSeq is the next replication sequence number of shard s.
func (p *pusher) nextSeq(s int) uint64 {
	if seq := p.seq.Load(); seq != nil && s < len(*seq) {
		return (*seq)[s].Add(1)
	}
	return 0
}

// stats reports the members owed writes now, the shards owed in all,
// and the items and deletes handed back so far.
func (h *hints) stats() (members, shards int, handedBack uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, owed := range h.owed {
		members++
		shards += len(owed)
	}
	return members, shards, h.handedBack
}
