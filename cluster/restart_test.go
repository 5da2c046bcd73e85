package cluster

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/ring"
	"shoal/store"
)

// healthMembers is fakeMembers whose health can change while the router
// runs.
type healthMembers struct {
	fakeMembers
	mu sync.Mutex
}

func (h *healthMembers) Health(name string) gossip.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health[name]
}

func (h *healthMembers) set(name string, s gossip.State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.health[name] = s
}

// TestRestoredShardWaitsForASource: a node restarted from its memory file
// whose sources are unreachable for a moment (gossip still calls them
// dead, as under load right after a restart) does not end the warm-up of
// its restored shards with what it restored: it tries the sources again,
// and when one answers that it flushed since the save, drops the restored
// items and pulls in full. Keeping them served a key flushed while the
// node was down (TestClusterWarmRestart, "full: k324 through n1").
func TestRestoredShardWaitsForASource(t *testing.T) {
	t.Parallel()
	newHybrid := func() *store.Store {
		st, err := store.New(store.Config{MemoryLimit: 4 << 20, HybridCAS: true})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	rg, err := ring.New(ring.Config{Shards: 8, Replicas: 2}, []string{"self", "src"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	viewWith := func(srcAddr string) *membership.View {
		return &membership.View{Epoch: 1, Members: []etcdsync.Member{{Name: "self", PeerAddr: "127.0.0.1:1"}, {Name: "src", PeerAddr: srcAddr}}, Ring: rg}
	}

	// The restored node's store: what it held at its save, a minute ago.
	st := newHybrid()
	for _, k := range []string{"a", "b", "c", "d"} {
		if res, _ := st.Set([]byte(k), []byte("before the flush"), &store.SetOptions{}); res != store.Stored {
			t.Fatalf("set %s: %v", k, res)
		}
	}
	saved := time.Now().Add(-time.Minute)

	// The source flushed everything since.
	srcSt := newHybrid()
	srcSt.FlushAll(0)
	srcMembers := &namedMembers{name: "src", fakeMembers: fakeMembers{view: viewWith("127.0.0.1:1"), health: map[string]gossip.State{"self": gossip.Alive}}}
	_, srcAddr := servePeerPort(t, srcMembers, srcSt)

	fm := &healthMembers{fakeMembers: fakeMembers{view: viewWith(srcAddr), health: map[string]gossip.State{"src": gossip.Dead}, changed: make(chan struct{}, 1)}}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: st, Restored: saved, RestoreMargin: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()

	time.Sleep(100 * time.Millisecond) // the first pull finds no source
	fm.set("src", gossip.Alive)
	testutil.WaitUntil(t, 20*time.Second, "the restored shards warmed", func() (bool, string) {
		tk := rt.Counters()
		return tk.WarmShards == 0, fmtTakeover(tk)
	})
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, v, res := st.Get([]byte(k), nil, nil); res != store.Miss {
			t.Errorf("%s: the restored node holds %q after warming; the source flushed it since the save", k, v)
		}
	}
	if tk := rt.Counters(); tk.DeltaRefused == 0 {
		t.Errorf("no delta refused (%s): the shards were not pulled from the source", fmtTakeover(tk))
	}
}

func fmtTakeover(t Counters) string {
	return "warming " + strconv.Itoa(t.WarmShards) + ", delta refused " + strconv.Itoa(int(t.DeltaRefused)) + ", pulled " + strconv.Itoa(int(t.Pulled))
}
