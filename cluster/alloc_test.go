package cluster

import (
	"testing"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/ring"
	"shoal/store"
)

// TestRouterLocalAllocs: a get and a set this node serves, routed once,
// allocate nothing, through the synchronous Cache methods and the event
// loop's GetAsync and SetAsync alike.
func TestRouterLocalAllocs(t *testing.T) {
	r, err := ring.New(ring.Config{Shards: 16, Replicas: 1}, []string{"self"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMembers{view: &View{Epoch: 1, Members: []etcdsync.Member{{Name: "self"}}, Ring: r}, health: map[string]gossip.State{}}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: newStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.apply()
	key, val, dst := []byte("key"), []byte("value"), make([]byte, 0, 64)
	opt := &store.SetOptions{}
	doneGet := func(store.Item, []byte, store.Result) { t.Error("GetAsync of a local key went pending") }
	doneSet := func(store.Result, store.Item, error) { t.Error("SetAsync of a local key went pending") }
	for name, op := range map[string]func(){
		"Set": func() { rt.Set(key, val, opt) },
		"Get": func() { rt.Get(key, nil, dst) },
		"SetAsync": func() {
			if _, _, _, pending := rt.SetAsync(key, val, opt, doneSet); pending {
				t.Error("pending")
			}
		},
		"GetAsync": func() {
			if _, _, _, pending := rt.GetAsync(key, nil, dst, doneGet); pending {
				t.Error("pending")
			}
		},
	} {
		if n := testing.AllocsPerRun(100, op); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
