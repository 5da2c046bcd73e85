package cluster

import (
	"fmt"
	"testing"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/membership"
	"shoal/ring"
	"shoal/store"
)

// TestRouterRefresh: a push a replica refused as stale is made again
// while the replica owns the key in this node's view, whichever owner
// serves it, from the store, with the current view's epoch.
func TestRouterRefresh(t *testing.T) {
	names := []string{"self", "r1", "r2"}
	var members []etcdsync.Member
	for _, n := range names {
		members = append(members, etcdsync.Member{Name: n, PeerAddr: n + ":1"})
	}
	r, err := ring.New(ring.Config{Shards: 16, Replicas: 2}, names, 7)
	if err != nil {
		t.Fatal(err)
	}
	view := &membership.View{Epoch: 7, Members: members, Ring: r}
	// keyWith finds a key whose owners are primary, then replica.
	keyWith := func(primary string) (key []byte, replica string) {
		for i := 0; ; i++ {
			k := fmt.Appendf(nil, "k%d", i)
			if o := r.Owners(r.Shard(k)); o[0] == primary {
				return k, o[1]
			}
		}
	}
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMembers{view: view, health: map[string]gossip.State{"r1": gossip.Alive, "r2": gossip.Alive}}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.apply() // as Run would, which this test does not run

	mine, replica := keyWith("self")
	other := "r1"
	if replica == "r1" {
		other = "r2"
	}
	theirs, _ := keyWith(other)
	st.Set(mine, []byte("now"), &store.SetOptions{Flags: 5})
	st.Set(theirs, []byte("v"), &store.SetOptions{})

	t.Run("served here, replica still an owner", func(t *testing.T) {
		it, ok := rt.Refresh(mine, replica)
		if !ok || string(it.Value) != "now" || it.Flags != 5 || it.Epoch != 7 || it.Deleted {
			t.Fatalf("Refresh = %+v, %v; want the stored item at epoch 7", it, ok)
		}
	})
	t.Run("deleted since", func(t *testing.T) {
		st.Delete(mine, nil)
		if it, ok := rt.Refresh(mine, replica); !ok || !it.Deleted {
			t.Fatalf("Refresh = %+v, %v; want a delete", it, ok)
		}
	})
	t.Run("peer no longer an owner", func(t *testing.T) {
		if it, ok := rt.Refresh(mine, other); ok {
			t.Fatalf("Refresh to a non-owner = %+v, want nothing to send", it)
		}
	})
	t.Run("another node serves the key", func(t *testing.T) {
		// This node served it before a view change made other its
		// primary, which refused the push as older than its view: it
		// may have pulled the key before the write, so it gets it again.
		it, ok := rt.Refresh(theirs, other)
		if !ok || string(it.Value) != "v" || it.Epoch != 7 {
			t.Fatalf("Refresh to the key's primary %s = %+v, %v; want the stored item at epoch 7", other, it, ok)
		}
		st.Delete(theirs, nil)
		if it, ok := rt.Refresh(theirs, other); ok {
			t.Fatalf("Refresh of a key %s serves and this node no longer holds = %+v, want nothing to send (an unversioned delete would remove its copy)", other, it)
		}
	})
}
