package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/store"
)

// TestPausedPeerAnswers: requests forwarded to a node that finds, on
// their arrival, that it was paused (its last tick long ago, as after
// SIGCONT before its ticker has run) are answered correctly: a set is
// refused by that node (it may predate the pause) and asked again once it
// has recovered, so the client sees STORED, not the refusal; a get is
// served after the recovery, reading through from the owner that stood
// in, so the client sees the value, not a miss.
func TestPausedPeerAnswers(t *testing.T) {
	etcd := startEtcd(t)
	a := startFullNode(t, etcd, "a")
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	waitWarm(t, a)
	waitWarm(t, b)
	// Keys b serves (its primary), so a forwards them to b's peer port.
	v := b.node.View()
	var keys []string
	for i := 0; len(keys) < 20; i++ {
		k := fmt.Sprintf("pp-%d", i)
		if v.Ring.Primary(v.Ring.Shard([]byte(k))) == "b" {
			keys = append(keys, k)
		}
	}
	ca := memcache.New(a.addr)
	ca.Timeout = 5 * time.Second
	for _, k := range keys {
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("v1-" + k)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, _, res := a.st.Get([]byte(k), nil, nil); return res == store.Hit }) // replicated to a
	}
	paused := func() { b.router.tick.Store(b.router.mono() - int64(time.Hour)) }
	for i, k := range keys {
		paused()
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("v2-" + k)}); err != nil {
			t.Errorf("set %s through a right after b resumed (pause %d): %v", k, i+1, err)
		}
		paused()
		other := keys[(i+1)%len(keys)]
		want := "v1-" + other
		if i+1 == len(keys) {
			want = "v2-" + other
		}
		it, err := ca.Get(other)
		if err != nil || string(it.Value) != want {
			t.Errorf("get %s through a right after b resumed (pause %d): %v, %v; want %s", other, i+1, it, err, want)
		}
	}
	if got := b.router.pauses.Load(); got < uint64(len(keys)) {
		t.Errorf("b noticed %d pauses, want at least %d", got, len(keys))
	}
}
