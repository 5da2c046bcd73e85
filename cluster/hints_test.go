package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/server"
	"shoal/store"
)

// TestHandBack: while b's peer port does not answer (gossip still sees it,
// as in a one-way cut), a serves b's keys as a stand-in and its pushes to
// b are given up on; once b answers again, a hands back what b missed: b
// ends up holding every newer write, and the key a deleted is gone from b
// and does not come back.
func TestHandBack(t *testing.T) {
	t.Parallel()
	a, b, keys, ca := startPairOld(t, "b", "hb-", 40)
	for _, k := range keys { // both copies in place
		for _, n := range []*fullNode{a, b} {
			testutil.WaitFor(t, 5*time.Second, n.name+" to hold the old "+k, func() bool { _, v, res := n.st.Get([]byte(k), nil, nil); return res == store.Hit && string(v) == "old" })
		}
	}

	b.proxy.frozen.Store(true)
	for i, k := range keys {
		if i == 0 {
			if err := ca.Delete(k); err != nil {
				t.Fatalf("delete %s through a while b is cut off: %v", k, err)
			}
			continue
		}
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("new")}); err != nil {
			t.Fatalf("set %s through a while b is cut off: %v", k, err)
		}
	}
	// Every write of the cut was given up on at least once (and owed): a
	// b that gets them did so by a hand-back.
	testutil.WaitFor(t, 10*time.Second, "a gave up pushing the writes to b", func() bool {
		for _, ps := range a.repl.Stats() {
			if ps.Peer == "b" && ps.Failures+ps.Dropped >= uint64(len(keys)) {
				return true
			}
		}
		return false
	})
	if _, v, _ := b.st.Get([]byte(keys[1]), nil, nil); string(v) != "old" {
		t.Fatalf("b got %q while cut off: the cut did not hold", v)
	}

	b.proxy.frozen.Store(false)
	testutil.WaitFor(t, 10*time.Second, "b holds a's writes", func() bool {
		for i, k := range keys {
			_, v, res := b.st.Get([]byte(k), nil, nil)
			if (i == 0) != (res == store.Miss) || (i > 0 && string(v) != "new") {
				return false
			}
		}
		return true
	})
	if _, _, handed := a.router.push.hints.stats(); handed < uint64(len(keys)) {
		t.Errorf("handed back %d, want at least %d", handed, len(keys))
	}
	// A late copy of the deleted key, older than the delete (a push that
	// left before it), does not bring it back on either node.
	for _, n := range []*fullNode{a, b} {
		if _, _, err := n.router.PeerPort().replicaSet([]byte(keys[0]), []byte("old"), &store.SetOptions{NewCAS: 1}, server.Origin{Epoch: uint64(n.router.View().Epoch)}); err != nil {
			t.Fatal(err)
		}
		if _, _, res := n.st.Get([]byte(keys[0]), nil, nil); res != store.Miss {
			t.Fatalf("%s: the deleted key came back from a late copy", n.name)
		}
	}
	if _, err := client(b.addr).Get(keys[0]); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("get %s through b: %v, want a miss", keys[0], err)
	}
}

// TestVersionedDelete: a replicated delete removes only an older item and
// is remembered, so a late copy older than it is refused and a newer write
// is kept.
func TestVersionedDelete(t *testing.T) {
	rig := startRig(t, testutil.FreeAddr(t), 2, server.Config{})
	pc := rig.rt.PeerPort()
	o := server.Origin{Epoch: uint64(rig.view.Epoch)}
	key := []byte("vd-key")
	set := func(val string, cas uint64) {
		t.Helper()
		if _, _, err := pc.replicaSet(key, []byte(val), &store.SetOptions{NewCAS: cas}, o); err != nil {
			t.Fatal(err)
		}
	}
	del := func(cas uint64) {
		t.Helper()
		if _, _, err := pc.replicaDelete(key, &store.DeleteOptions{NewCAS: cas}, o); err != nil {
			t.Fatal(err)
		}
	}
	holds := func(want string) {
		t.Helper()
		_, v, res := rig.st.Get(key, nil, nil)
		if got := fmt.Sprintf("%s%v", v, res == store.Hit); got != want+fmt.Sprint(want != "") {
			t.Fatalf("store holds %q (hit %v), want %q", v, res == store.Hit, want)
		}
	}
	set("a", 100)
	del(200)
	holds("")
	set("late", 150) // left its source before the delete
	holds("")
	del(180) // an older delete arriving late changes nothing
	set("after", 250)
	holds("after")
	del(240) // older than what is held
	holds("after")
}

// TestReverifyOnReturn: b was cut off from a long enough to be skipped,
// and meanwhile took newer writes of a's keys (as it would for clients on
// its side of a cut; here straight into its store, so no push or
// hand-back carries them). Once a reaches b again it re-verifies the
// shards they share from b: reads through a return b's newer values
// while a reaches b, and a key only a holds stays.
func TestReverifyOnReturn(t *testing.T) {
	t.Parallel()
	a, b, keys, ca := startPairOld(t, "a", "rv-", 20)
	for _, k := range keys {
		testutil.WaitFor(t, 5*time.Second, "b to hold the old "+k, func() bool { _, v, res := b.st.Get([]byte(k), nil, nil); return res == store.Hit && string(v) == "old" })
	}
	b.proxy.frozen.Store(true)
	// A request a forwards to b times out: b is skipped from then on.
	bk := ownedBy(a.router.View(), "b", "rv-b-", 1)[0]
	ca.Get(bk)
	testutil.WaitFor(t, 5*time.Second, "a skips b", func() bool { return !usable(a.router.peers.Load().get("b")) })
	for i, k := range keys {
		if i == 0 {
			continue // only a's copy: kept
		}
		b.st.Set([]byte(k), []byte("new"), nil) // a fresh, newer version
	}
	time.Sleep(pairReplTimeout*5 + tickEvery) // away longer than a down mark
	b.proxy.frozen.Store(false)
	testutil.WaitFor(t, 10*time.Second, "a re-verifies from b", func() bool { return a.router.Counters().Reverified > 0 })
	for i, k := range keys {
		want := "new"
		if i == 0 {
			want = "old"
		}
		// A read through b that times out (a loaded machine: the pair's
		// peer timeout is 200 ms) marks b down, and a's own copy then
		// stands in, by design (merge mode drops nothing it cannot
		// check); a stale value while a reaches b is the failure.
		testutil.WaitFor(t, 10*time.Second, "a to read "+k+" as "+want, func() bool {
			it, err := ca.Get(k)
			if err == nil && string(it.Value) == want {
				return true
			}
			if usable(a.router.peers.Load().get("b")) {
				t.Fatalf("get %s through a after b came back, b usable: %+v, %v; want %q", k, it, err, want)
			}
			return false
		})
	}
}

// TestViewChangeOwes: when a view gives a shard an owner it did not have
// (here a join), the nodes that owned it hand that owner their recent
// writes of it, whatever its own pull got: the counters show the
// hand-back, and the newcomer holds the newest copy of every key.
func TestViewChangeOwes(t *testing.T) {
	t.Parallel() // an etcd and nodes of its own
	etcd := testetcd.Start(t)
	a := startFullNode(t, etcd, "a")
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	ca := client(a.addr)
	for i := range 50 {
		if err := ca.Set(&memcache.Item{Key: fmt.Sprintf("vc-%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	c := startFullNode(t, etcd, "c")
	waitMembers(t, a, b, c)
	testutil.WaitFor(t, 10*time.Second, "a and b hand c their recent writes of its shards", func() bool {
		_, _, ha := a.router.push.hints.stats()
		_, _, hb := b.router.push.hints.stats()
		return ha+hb > 0
	})
	v := c.router.View()
	waitWarm(t, c)
	for i := range 50 {
		k := []byte(fmt.Sprintf("vc-%d", i))
		if !slices.Contains(v.Ring.Owners(v.Ring.Shard(k)), "c") {
			continue
		}
		if _, val, res := c.st.Get(k, nil, nil); res != store.Hit || string(val) != "v" {
			t.Fatalf("c holds %q (%v) for %s, one of its keys", val, res, k)
		}
	}
}

// pairReplTimeout is startPairOld's replication timeout.
const pairReplTimeout = 200 * time.Millisecond

// startPairOld starts nodes a and b (proxying, short replication
// timeout), waits until both are members and warm, and sets n keys owned
// by owner, named with prefix, to "old" through a; ca is a's client.
func startPairOld(t *testing.T, owner, prefix string, n int) (a, b *fullNode, keys []string, ca *memcache.Client) {
	t.Helper()
	etcd := testetcd.Start(t)
	opts := fullOpts{proxy: true, replTimeout: pairReplTimeout}
	a = startFullNodeWith(t, etcd, "a", opts)
	b = startFullNodeWith(t, etcd, "b", opts)
	waitMembers(t, a, b)
	waitWarm(t, a)
	waitWarm(t, b)
	keys = ownedBy(a.router.View(), owner, prefix, n)
	ca = client(a.addr)
	for _, k := range keys {
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, keys, ca
}

// TestForwardedWritePushed: a write forwarded to b for a key whose primary
// is a (its sender skipped a, which b still sees alive) is served by b as
// a stand-in and pushed to a: a ends up holding it.
func TestForwardedWritePushed(t *testing.T) {
	t.Parallel()
	a, b, keys, _ := startPairOld(t, "a", "fw-", 3)
	for _, k := range keys {
		testutil.WaitFor(t, 5*time.Second, "b to hold the old "+k, func() bool { _, v, res := b.st.Get([]byte(k), nil, nil); return res == store.Hit && string(v) == "old" })
	}
	pc := b.router.PeerPort()
	for _, k := range keys {
		if res, _, err := pc.set(context.Background(), []byte(k), []byte("new"), nil); err != nil || res != store.Stored {
			t.Fatalf("forwarded set %s on b: %v %v", k, res, err)
		}
	}
	for _, k := range keys {
		testutil.WaitFor(t, 5*time.Second, "a holds "+k+"=new", func() bool {
			_, v, res := a.st.Get([]byte(k), nil, nil)
			return res == store.Hit && string(v) == "new"
		})
	}
	// A forwarded touch (gat) is a write too.
	exp := b.st.Now() + 3600
	if _, _, res := pc.get(context.Background(), []byte(keys[0]), &store.GetOptions{Touch: true, Exptime: exp}, nil); res != store.Hit {
		t.Fatalf("forwarded gat %s on b: %v", keys[0], res)
	}
	testutil.WaitFor(t, 5*time.Second, "a holds "+keys[0]+" touched", func() bool {
		it, _, res := a.st.Get([]byte(keys[0]), &store.GetOptions{NoBump: true}, nil)
		return res == store.Hit && it.Exptime == exp
	})
}

// TestShardsNumbered: once Run applies a view with a ring, each shard has
// its replication sequence (numberShards), and a write this node serves
// as primary takes the next number of its shard.
func TestShardsNumbered(t *testing.T) {
	t.Parallel()
	_, a, _ := startPair(t)
	seq := a.router.push.seq.Load()
	if seq == nil || len(*seq) != a.router.View().Ring.NumShards() {
		t.Fatalf("a's shards are not numbered after Run applied its view: %v", seq)
	}
	s := a.router.route([]byte("numbered")).shard
	before := (*seq)[s].Load()
	if n := a.router.push.nextSeq(s); n != before+1 {
		t.Errorf("nextSeq(%d) = %d, want %d", s, n, before+1)
	}
}
