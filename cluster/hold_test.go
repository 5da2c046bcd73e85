package cluster

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"shoal/internal/testetcd"
	"shoal/store"
)

// TestMultiGetHoldBounded: a node's multi-gets hold at most its
// MultiGetHold of other owners' values at once (hold.go), whatever the
// keys: 4 multi-gets at once, each of 24 values of 256 KB that the other
// node owns, through a node bounded at 1 MiB, hold 1 MiB at most, where
// each call held its 24 values (6 MiB) before, and every value still
// arrives, in key order.
func TestMultiGetHoldBounded(t *testing.T) {
	t.Parallel()
	const limit, size, calls = 1 << 20, 256 << 10, 4
	etcd := testetcd.Start(t)
	a := startFullNodeWith(t, etcd, "a", fullOpts{hold: limit})
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	for _, n := range []*fullNode{a, b} {
		waitRouted(t, n)
		waitWarm(t, n)
	}
	var keys [][]byte
	value := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, size) }
	for i, k := range ownedBy(a.router.View(), "b", "hold-", 24) {
		if res, _ := b.st.Set([]byte(k), value(i), nil); res != store.Stored {
			t.Fatalf("set %s: %v", k, res)
		}
		keys = append(keys, []byte(k))
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			next := 0
			a.router.GetMulti(context.Background(), keys, nil, func(i int, _ store.Item, val []byte) {
				if i != next || !bytes.Equal(val, value(i)) {
					errs <- fmt.Errorf("key %d (want %d): %d bytes of %q", i, next, len(val), val[:min(len(val), 1)])
				}
				next++
			})
			if next != len(keys) {
				errs <- fmt.Errorf("%d of %d keys answered", next, len(keys))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	held, peak := a.router.hold.stats()
	if held != 0 || peak == 0 || peak > limit {
		t.Fatalf("held %d after the calls, peak %d: want 0, and a peak of 1 to %d", held, peak, limit)
	}
	t.Logf("peak held %d bytes of %d requested at once", peak, calls*len(keys)*size)
}
