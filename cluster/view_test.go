package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/membership"
	"shoal/ring"
	"shoal/store"
)

// TestViewAppliedByRun: a new view is applied by the router's Run when the
// membership signals it, never by a request: requests route by the view
// applied last, and a request that decided its route keeps it.
func TestViewAppliedByRun(t *testing.T) {
	viewOf := func(epoch int64, names ...string) *membership.View {
		var members []etcdsync.Member
		for _, n := range names {
			members = append(members, etcdsync.Member{Name: n, PeerAddr: n + ":1"})
		}
		r, err := ring.New(ring.Config{Shards: 16, Replicas: 1}, names, epoch)
		if err != nil {
			t.Fatal(err)
		}
		return &membership.View{Epoch: epoch, Members: members, Ring: r}
	}
	alone, shared := viewOf(1, "self"), viewOf(2, "other", "self")
	var fm fakeMembers // membership.View is read by Run's goroutine: swapped atomically below
	var cur atomic.Pointer[membership.View]
	cur.Store(alone)
	fm.health = map[string]gossip.State{"other": gossip.Dead} // requests to it fail at once
	fm.changed = make(chan struct{}, 1)
	m := &viewMembers{&fm, &cur}
	rt, err := NewRouter(RouterConfig{Members: m, Store: newStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.apply()
	// A key "other" owns in the shared view: served here while alone.
	var key []byte
	for i := 0; key == nil; i++ {
		if k := fmt.Appendf(nil, "k%d", i); shared.Ring.Primary(shared.Ring.Shard(k)) == "other" {
			key = k
		}
	}
	before := rt.route(key)
	cur.Store(shared)
	if res, _, err := routerSet(rt, context.Background(), key, []byte("v"), &store.SetOptions{}); res != store.Stored || err != nil {
		t.Fatalf("set before Run applied the new view: %v %v, want it stored here", res, err)
	}
	if v := rt.View(); v != alone {
		t.Fatalf("a request applied view %d; only Run may", v.Epoch)
	}
	if !rt.Inline(nil) {
		t.Fatal("Inline(nil) false alone: a flush_all with no peer waits on nothing")
	}
	applied := rt.ViewApplied()
	select {
	case <-applied:
		t.Fatal("ViewApplied closed with no newer view")
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()
	fm.changed <- struct{}{}
	select {
	case <-applied:
	case <-time.After(5 * time.Second):
		t.Fatal("ViewApplied not closed after Run applied the shared view")
	}
	if v := rt.View(); v != shared {
		t.Fatalf("ViewApplied closed; membership.View is epoch %d, want the shared view", v.Epoch)
	}
	if rt.Inline(nil) {
		t.Fatal("Inline(nil) true with a peer: a flush_all reaches it, off the loop")
	}
	if _, _, err := routerSet(rt, context.Background(), key, []byte("v"), &store.SetOptions{}); err == nil {
		t.Fatal("set after Run applied the new view: served here, want ErrUnavailable (its owner is dead)")
	}
	if !before.Local() || before.View() != alone {
		t.Fatalf("a route decided before the change moved with it: local %v, epoch %d", before.Local(), before.View().Epoch)
	}
}

// viewMembers is fakeMembers with its view behind an atomic pointer.
type viewMembers struct {
	*fakeMembers
	view *atomic.Pointer[membership.View]
}

func (m *viewMembers) View() *membership.View { return m.view.Load() }
