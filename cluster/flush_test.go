package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/store"
)

// TestFlushAllReachesEveryNode: flush_all through one node empties the
// stores of all of them, as a client of the cluster expects.
func TestFlushAllReachesEveryNode(t *testing.T) {
	t.Parallel() // an etcd and nodes of its own
	etcd := testetcd.Start(t)
	a := startFullNode(t, etcd, "a")
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	ca := client(a.addr)
	const n = 50
	for i := range n {
		if err := ca.Set(&memcache.Item{Key: fmt.Sprintf("fl-%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	// Both nodes own every shard (two nodes, two replicas): wait for b's copies.
	for i := range n {
		k := []byte(fmt.Sprintf("fl-%d", i))
		testutil.WaitFor(t, 5*time.Second, "b to hold "+string(k), func() bool { _, _, res := b.st.Get(k, nil, nil); return res == store.Hit })
	}
	if err := ca.FlushAll(); err != nil {
		t.Fatal(err)
	}
	cb := client(b.addr)
	for i := range n {
		k := fmt.Sprintf("fl-%d", i)
		if _, _, res := b.st.Get([]byte(k), nil, nil); res == store.Hit {
			t.Fatalf("%s still in b's store after flush_all through a", k)
		}
		if it, err := cb.Get(k); !errors.Is(err, memcache.ErrCacheMiss) {
			t.Fatalf("get %s through b after flush_all: %+v, %v", k, it, err)
		}
	}
}
