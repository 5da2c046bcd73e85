package takeover

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"shoal/peer"
	"shoal/protocol"
	"shoal/store"
)

// handoffWorkers bounds the concurrent pushes of a handoff; each worker
// pipelines on the shared peer connections.
const handoffWorkers = 32

// Handoff pushes, before this node leaves the cluster, every item it holds
// in a shard it owns to each member that will own the shard once this
// node is gone and does not own it now, so that leaving loses nothing even
// with one replica, and the new owners warm up from a copy (warm.go) rather
// than from nothing. The items travel as replicated writes (with their CAS
// and this view's epoch). Handoff returns the items pushed and those that
// failed, when all are sent or ctx ends (cluster's Router.Handoff).
func (t *Takeover) Handoff(ctx context.Context) (sent, failed uint64) {
	ps := t.h.Current()
	v := ps.View()
	if v == nil || v.Ring == nil {
		return 0, 0
	}
	without := t.ringWithout(v)
	if without == nil {
		return 0, 0
	}
	n := v.Ring.NumShards()
	heirs := make([][]Source, n) // per shard: who takes it over
	some := false
	for s := range n {
		owners := v.Ring.Owners(s)
		if !slices.Contains(owners, t.Self) {
			continue
		}
		for _, o := range without.Owners(s) {
			if m := ps.Peer(o); m != nil && !slices.Contains(owners, o) && m.Usable() {
				heirs[s] = append(heirs[s], m)
				some = true
			}
		}
	}
	if !some {
		return 0, 0
	}
	type job struct {
		m        Source
		key, val []byte
		it       store.Item
	}
	jobs := make(chan job, 4*handoffWorkers)
	var ok, bad atomic.Uint64
	var wg sync.WaitGroup
	for range handoffWorkers {
		wg.Go(func() {
			for j := range jobs {
				_, _, err := j.m.Client().Set(ctx, j.key, j.val, peer.SetOptions{
					Flags: j.it.Flags, TTL: protocol.MetaTTL(j.it.Exptime), NewCAS: j.it.CAS, Epoch: uint64(v.Epoch),
					KeyBinary: j.it.KeyBinary,
				})
				if err != nil {
					bad.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	t.Store.Range(func(key []byte, it store.Item, val []byte) bool {
		for _, m := range heirs[v.Ring.Shard(key)] {
			buf := make([]byte, len(key)+len(val))
			copy(buf, key)
			copy(buf[len(key):], val)
			select {
			case jobs <- job{m: m, key: buf[:len(key)], val: buf[len(key):], it: it}:
			case <-ctx.Done():
				return false
			}
		}
		return true
	})
	close(jobs)
	wg.Wait()
	return ok.Load(), bad.Load()
}
