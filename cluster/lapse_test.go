package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"shoal/etcdsync"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/ring"
	"shoal/server"
	"shoal/store"
)

// TestWarmAfterLapse: a's lease is revoked behind its back, as when it
// expires during a partition; b stays. While a was out, b took newer
// writes and a delete (straight into its store and its tombstones, as the
// stand-in owner would). When a registers again it drops its copies from before it was
// cut off and pulls b's: no value from before, no deleted key back, and
// what a wrote since the cut kept, unless b deleted it later (b's dump
// carries its deletes).
func TestWarmAfterLapse(t *testing.T) {
	t.Parallel()
	etcd, a, b := startPair(t)
	const n = 100
	key := func(i int) []byte { return []byte(fmt.Sprintf("wl-%d", i)) }
	for i := range n {
		// Both own every shard (two nodes, two replicas).
		a.st.Set(key(i), []byte("old"), &store.SetOptions{})
	}
	// b's writes come later, on the clock the CAS follows (in the same
	// millisecond, two nodes' writes are concurrent: either may win).
	time.Sleep(2 * time.Millisecond)
	for i := 1; i < n; i++ {
		b.st.Set(key(i), []byte("new"), &store.SetOptions{})
	}
	// key(0): b held a's copy and deleted it while a was out (a delete
	// with a version, remembered: a late copy of "old" does not undo it).
	it, val, _ := a.st.Get(key(0), nil, nil)
	b.router.ver.ApplyCopy(key(0), val, &store.SetOptions{NewCAS: it.CAS})
	if res, _ := b.router.ver.DeleteVersioned(key(0), nil, 0); res != store.Deleted {
		t.Fatalf("delete of %s on b: %v", key(0), res)
	}
	// a is cut off from here on (as its ticks would record), and takes a
	// write of its own meanwhile: newer than anything it missed, it stays.
	time.Sleep(2 * time.Millisecond)
	a.router.tk.SawCut(uint64(time.Now().UnixMilli()) << 16)
	time.Sleep(2 * time.Millisecond)
	a.st.Set([]byte("wl-mine"), []byte("mine"), &store.SetOptions{})
	// wl-gone: a's too, but b got it and deleted it later (newest wins).
	gone := []byte("wl-gone")
	_, it = a.st.Set(gone, []byte("mine"), &store.SetOptions{})
	time.Sleep(2 * time.Millisecond)
	b.router.ver.ApplyCopy(gone, []byte("mine"), &store.SetOptions{NewCAS: it.CAS})
	if res, _ := b.router.ver.DeleteVersioned(gone, nil, 0); res != store.Deleted {
		t.Fatalf("delete of %s on b: %v", gone, res)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/shoal/members/a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("a's record: %v, %v", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "a lapse on a", func() bool { return a.router.Counters().Lapses == 1 })
	if l := a.node.Lapse(); !slices.Equal(l.Stayed, []string{"b"}) || l.Since.IsZero() {
		t.Fatalf("a's lapse: %+v, want b stayed, since a keepalive answered", l)
	}
	waitMembers(t, a, b)
	waitRouted(t, a)
	waitWarm(t, a)
	for i := range n {
		_, v, res := a.st.Get(key(i), nil, nil)
		switch {
		case i == 0 && res == store.Hit:
			t.Errorf("%s, deleted while a was out, is back in a's store as %q", key(i), v)
		case i > 0 && (res != store.Hit || string(v) != "new"):
			t.Errorf("a's store holds %q (%v) for %s after the lapse, want new (pulled %d dropped %d)", v, res, key(i), a.router.Counters().Pulled, a.router.Counters().Dropped)
		}
	}
	if _, v, res := a.st.Get([]byte("wl-mine"), nil, nil); res != store.Hit || string(v) != "mine" {
		t.Errorf("a's own write since the cut: %q (%v) after the lapse, want it kept", v, res)
	}
	if _, v, res := a.st.Get(gone, nil, nil); res == store.Hit {
		t.Errorf("a's write since the cut that b deleted later is back as %q after the lapse", v)
	}
	if b.router.Counters().Lapses != 0 {
		t.Errorf("b recovered from a lapse it did not have")
	}
}

// startPair starts nodes a and b on a fresh etcd and waits until both
// route by the view with both and warm nothing.
func startPair(t *testing.T) (*testetcd.Server, *fullNode, *fullNode) {
	t.Helper()
	etcd := testetcd.Start(t)
	a := startFullNode(t, etcd, "a")
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	for _, n := range []*fullNode{a, b} {
		waitRouted(t, n)
		waitWarm(t, n)
	}
	waitHandedBack(t, a, b)
	return etcd, a, b
}

// waitHandedBack waits until no node owes another a hand-back or runs
// one (hints.go): a, alone before b joined, owes b its writes of the last
// viewOwedFor, and a hand-back still due would carry to b what a test
// then writes into a's store alone (TestSettleAfterLapse: b then held the
// key a's settle should have found missing, 2 runs in 300).
func waitHandedBack(t *testing.T, nodes ...*fullNode) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "the hand-backs done", func() bool {
		for _, n := range nodes {
			h := &n.router.push.hints
			h.mu.Lock()
			busy := len(h.owed) > 0 || h.running > 0
			h.mu.Unlock()
			if busy {
				return false
			}
		}
		return true
	})
}

// waitRouted waits until n's router has taken n's current view (so the
// warm-up it starts, if any, is under way).
func waitRouted(t *testing.T, n *fullNode) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, n.name+"'s router to take its view", func() bool {
		v, rv := n.node.View(), n.router.View()
		return v != nil && rv != nil && rv.Epoch == v.Epoch
	})
}

// TestSettleAfterLapse: while a shard a's lapse wiped warms, a read of a
// key settles it against the source by version: what a wrote since the
// cut (at or above keptFrom) stays when the source lacks it and
// remembers no delete of it, and goes when the source deleted it later;
// what a held from before the cut goes when the source lacks it; the
// source's newer copy wins.
func TestSettleAfterLapse(t *testing.T) {
	t.Parallel()
	_, a, b := startPair(t)
	old, newer := []byte("sl-old"), []byte("sl-newer")
	a.st.Set(old, []byte("before the cut"), &store.SetOptions{})
	a.st.Set(newer, []byte("before the cut"), &store.SetOptions{})
	time.Sleep(2 * time.Millisecond)
	cut := uint64(time.Now().UnixMilli()) << 16
	time.Sleep(2 * time.Millisecond)
	mine, gone := []byte("sl-mine"), []byte("sl-gone")
	a.st.Set(mine, []byte("since the cut"), &store.SetOptions{})
	_, it := a.st.Set(gone, []byte("since the cut"), &store.SetOptions{})
	time.Sleep(2 * time.Millisecond)
	b.router.ver.ApplyCopy(gone, []byte("since the cut"), &store.SetOptions{NewCAS: it.CAS})
	if res, _ := b.router.ver.DeleteVersioned(gone, nil, 0); res != store.Deleted {
		t.Fatalf("delete of %s on b: %v", gone, res)
	}
	b.st.Set(newer, []byte("b's"), &store.SetOptions{})

	// a's shards of these keys warm as after a lapse that kept from cut,
	// with b to settle from; nothing queued, so only reads settle them.
	warmAsLapsed(t, a, cut, "b", old, newer, mine, gone)

	for _, c := range []struct {
		key  []byte
		want string // "" for gone
	}{
		{old, ""}, {newer, "b's"}, {mine, "since the cut"}, {gone, ""},
	} {
		rt := a.router.route(c.key)
		a.router.tk.Settle(context.Background(), rt.placed(), c.key)
		_, v, res := a.st.Get(c.key, nil, nil)
		switch {
		case c.want == "" && res == store.Hit:
			t.Errorf("%s settled to %q, want it gone", c.key, v)
		case c.want != "" && string(v) != c.want:
			t.Errorf("%s settled to %q (%v), want %q", c.key, v, res, c.want)
		}
	}
}

// TestSettleWithoutSource: a's shards warm as after a lapse, wiped, and
// b, their only source, does not answer (a heal whose first seconds fail
// a's connects). A read must not serve what a held from before the cut
// (b overwrote it meanwhile): settle tries b until settleWait, longer
// than a forwarding peer waits, then drops a's old copy as the drop
// would. What the drop keeps (a version at or above keptFrom) stays in
// a's store but is not served either: a cannot tell its writes since the
// cut from those just before it, which b may have overwritten. Once b
// answers again, the old key settles to b's copy and the kept one, which
// b lacks, is served.
func TestSettleWithoutSource(t *testing.T) {
	t.Parallel()
	const timeout = silentTimeout
	a, b := startSilenceablePair(t)
	old, mine := []byte("sw-old"), []byte("sw-mine")
	a.st.Set(old, []byte("before the cut"), &store.SetOptions{})
	time.Sleep(2 * time.Millisecond)
	cut := uint64(time.Now().UnixMilli()) << 16
	time.Sleep(2 * time.Millisecond)
	a.st.Set(mine, []byte("since the cut"), &store.SetOptions{})
	b.st.Set(old, []byte("b's"), &store.SetOptions{}) // b's newer copy

	warmAsLapsed(t, a, cut, "b", old, mine)

	b.proxy.frozen.Store(true)
	unreached := func() time.Time { return a.router.tk.SettleGiveUp("b") }
	var giveUp time.Time // when a stops waiting for b, set by the first read
	for i, key := range [][]byte{old, mine} {
		start := time.Now()
		_, v, res := routerGet(a.router, context.Background(), key, nil, nil)
		if res == store.Hit {
			t.Errorf("%s read as %q with its source silent, want a miss", key, v)
		}
		t.Logf("%s: %v after %v", key, res, time.Since(start))
		// The wait is per source and shared by the keys: spent on the
		// first, not started again for the next while b stays silent.
		switch u := unreached(); {
		case u.IsZero():
			t.Errorf("after %s: no wait for b recorded", key)
		case i == 0:
			giveUp = u
		case !u.Equal(giveUp):
			t.Errorf("after %s: the wait for b moved from %v to %v", key, giveUp, u)
		}
	}
	if _, _, res := a.st.Get(old, nil, nil); res == store.Hit {
		t.Errorf("%s, from before the cut, still in a's store", old)
	}
	if _, v, _ := a.st.Get(mine, nil, nil); string(v) != "since the cut" {
		t.Errorf("%s, kept by version, is %q in a's store, want it kept", mine, v)
	}
	if ts := a.router.tk.SettleWait(); ts != 2*timeout {
		t.Errorf("settleWait %v, want twice the peer request timeout %v", ts, 2*timeout)
	}

	b.proxy.frozen.Store(false)
	for key, want := range map[string]string{string(old): "b's", string(mine): "since the cut"} {
		testutil.WaitFor(t, 10*time.Second, key+" settled to "+want, func() bool {
			_, v, _ := routerGet(a.router, context.Background(), []byte(key), nil, nil)
			return string(v) == want
		})
	}
}

// TestRMWWithoutSource: a's shards warm as after a lapse, wiped, and b,
// their only source, does not answer. A key a kept by version only (at or
// above keptFrom: it cannot tell its writes since the cut from those just
// before it, which b may have overwritten) is not served, and a write
// that depends on it fails instead of pushing a value made from a's copy:
// an incr of a stale count, once pushed, would have replaced b's newer one.
// A plain set, which depends on nothing, still goes through.
func TestRMWWithoutSource(t *testing.T) {
	t.Parallel()
	a, b := startSilenceablePair(t)
	cut := uint64(time.Now().UnixMilli()) << 16
	time.Sleep(2 * time.Millisecond)
	count, plain := []byte("rmw-count"), []byte("rmw-plain")
	a.st.Set(count, []byte("10"), &store.SetOptions{})
	warmAsLapsed(t, a, cut, "b", count, plain)
	b.proxy.frozen.Store(true)
	defer b.proxy.frozen.Store(false)

	r := a.router
	rt := r.route(count)
	if _, _, _, err := r.localArith(context.Background(), &rt, count, &store.ArithOptions{Delta: 1}); !errors.Is(err, ErrUnvouched) {
		t.Errorf("incr of %s with its source silent: %v, want ErrUnvouched", count, err)
	}
	rt = r.route(count)
	if _, _, err := r.localSet(context.Background(), &rt, count, []byte("x"), &store.SetOptions{Mode: store.ModeAppend}); !errors.Is(err, ErrUnvouched) {
		t.Errorf("append to %s with its source silent: %v, want ErrUnvouched", count, err)
	}
	if _, v, _ := a.st.Get(count, nil, nil); string(v) != "10" {
		t.Errorf("%s holds %q after the refused writes, want \"10\"", count, v)
	}
	rt = r.route(plain)
	if res, _, err := r.localSet(context.Background(), &rt, plain, []byte("new"), &store.SetOptions{}); err != nil || res != store.Stored {
		t.Errorf("set of %s with its source silent: %v %v, want stored", plain, res, err)
	}
}

// TestCancelledRMWDuringWarm: a write that depends on the item, whose
// client's connection has ended while the key's shard warms (here a merge
// warm-up, as after a co-owner's return, whose local copy is the fallback
// when the source is silent), neither settles the key nor runs on the
// local copy: no source was asked, so nothing vouches for it.
func TestCancelledRMWDuringWarm(t *testing.T) {
	t.Parallel()
	a, b := startSilenceablePair(t)
	key := servedHere(a, "cw")
	a.st.Set(key, []byte("10"), &store.SetOptions{})
	b.proxy.frozen.Store(true) // the pull cannot end the warm-up
	defer b.proxy.frozen.Store(false)
	a.router.tk.Reverify(a.router.peers.Load().view, []string{"b"})
	rt := a.router.route(key)
	if !a.router.tk.Warming(rt.placed()) {
		t.Fatalf("%s's shard does not warm", key)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, _, err := a.router.localArith(ended, &rt, key, &store.ArithOptions{Delta: 1}); !errors.Is(err, ErrUnvouched) {
		t.Errorf("incr of %s for a connection that ended: %v, want ErrUnvouched", key, err)
	}
	if _, v, _ := a.st.Get(key, nil, nil); string(v) != "10" {
		t.Errorf("%s holds %q, want \"10\" (untouched)", key, v)
	}
	// Had the incr counted the key as this node's own write (fresh), an
	// unversioned replicated delete would now be skipped (replica): the
	// shard still warms, and only that mark keeps the key.
	if !a.router.tk.Warming(rt.placed()) {
		t.Fatalf("%s's shard no longer warms", key)
	}
	o := server.Origin{Epoch: uint64(a.router.View().Epoch)}
	if _, _, err := a.router.PeerPort().replicaDelete(key, nil, o); err != nil {
		t.Fatal(err)
	}
	if _, v, res := a.st.Get(key, nil, nil); res == store.Hit {
		t.Errorf("%s counted as settled though no source was asked: an unversioned replicated delete left %q", key, v)
	}
}

// TestForwardedRMWUnvouched: b forwards an incr of a key a serves, while
// a's shard warms as after a lapse and a cannot reach b, its source. a
// refuses (ErrUnvouched) rather than build on its copy, and b, the key's
// next owner, which held it throughout, serves it: the client gets the
// count b holds plus one, not an error and not a's stale count plus one.
func TestForwardedRMWUnvouched(t *testing.T) {
	t.Parallel()
	a, b := startSilenceablePair(t)
	key := servedHere(a, "fu")
	cut := uint64(time.Now().UnixMilli()) << 16
	time.Sleep(2 * time.Millisecond)
	a.st.Set(key, []byte("10"), &store.SetOptions{}) // kept by version, stale
	time.Sleep(2 * time.Millisecond)
	b.st.Set(key, []byte("20"), &store.SetOptions{}) // b's newer count
	warmAsLapsed(t, a, cut, "b", key)
	b.proxy.frozen.Store(true)
	defer b.proxy.frozen.Store(false)

	res, n, _, err := routerArith(b.router, context.Background(), key, &store.ArithOptions{Delta: 1})
	if err != nil || res != store.Stored || n != 21 {
		t.Fatalf("incr through b: %v %d %v, want stored 21", res, n, err)
	}
	// b pushes its 21 to a; a never makes 11 of its own copy.
	if _, v, _ := a.st.Get(key, nil, nil); string(v) != "10" && string(v) != "21" {
		t.Errorf("a holds %q, want its copy untouched (\"10\") or b's push (\"21\")", v)
	}
}

// silentTimeout is the peer timeout of startSilenceablePair's a.
const silentTimeout = 200 * time.Millisecond

// startSilenceablePair starts a (peer timeout silentTimeout) and b, whose
// peer port is behind a proxy the test can freeze (b.proxy.frozen), both
// routed and warm.
func startSilenceablePair(t *testing.T) (a, b *fullNode) {
	etcd := testetcd.Start(t)
	a = startFullNodeWith(t, etcd, "a", fullOpts{replTimeout: silentTimeout})
	b = startFullNodeWith(t, etcd, "b", fullOpts{proxy: true})
	waitMembers(t, a, b)
	for _, n := range []*fullNode{a, b} {
		waitRouted(t, n)
		waitWarm(t, n)
	}
	// b hands back to a what a missed while b saw it away (at start, a
	// was not alive in b's gossip yet), and a to b its writes from before
	// b joined: once that is done, nothing carries what the test writes
	// into one store to the other but the reads that settle it.
	waitHandedBack(t, a, b)
	return a, b
}

// servedHere is a key n serves itself, one of two owners: prefix-0,
// prefix-1, ...
func servedHere(n *fullNode, prefix string) []byte {
	for i := 0; ; i++ {
		k := []byte(fmt.Sprintf("%s-%d", prefix, i))
		if rt := n.router.route(k); rt.Local() && len(rt.owners) == 2 {
			return k
		}
	}
}

// warmAsLapsed makes the shards of keys warm on n as after a lapse that
// kept from cut, wiped, with src to settle from, until the test ends;
// nothing is queued, so only reads settle them.
func warmAsLapsed(t *testing.T, n *fullNode, cut uint64, src string, keys ...[]byte) {
	var shards []int
	for _, k := range keys {
		rt := n.router.route(k)
		if n.router.tk.Suspect(rt.shard, []string{src}, cut) {
			shards = append(shards, rt.shard)
		}
	}
	t.Cleanup(func() {
		for _, s := range shards {
			n.router.tk.Trust(s)
		}
	})
}

// TestReplicatedDeleteOfOwnWrite: while a's shard warms, a writes a key
// itself, then a replicated delete of it arrives. One newer than a's
// write removes it (the pull leaves a's own keys alone, so nothing else
// would); one older than it, or without a version, leaves it.
func TestReplicatedDeleteOfOwnWrite(t *testing.T) {
	t.Parallel()
	_, a, _ := startPair(t)
	pc := a.router.PeerPort()
	o := server.Origin{Epoch: uint64(a.router.View().Epoch)}
	newer, older, unversioned := []byte("rd-newer"), []byte("rd-older"), []byte("rd-unversioned")
	warmAsLapsed(t, a, 1, "b", newer, older, unversioned)
	write := func(key []byte) uint64 {
		t.Helper()
		rt := a.router.route(key)
		var cas uint64
		a.router.tk.Own(context.Background(), rt.placed(), key, false, func() bool {
			_, it := a.st.Set(key, []byte("a's"), &store.SetOptions{})
			cas = it.CAS
			return true
		})
		return cas
	}
	for _, c := range []struct {
		key  []byte
		d    func(own uint64) uint64 // the delete's version
		want store.Result
	}{
		{newer, func(own uint64) uint64 { return own + 1 }, store.Miss},
		{older, func(own uint64) uint64 { return own - 1 }, store.Hit},
		{unversioned, func(uint64) uint64 { return 0 }, store.Hit},
	} {
		own := write(c.key)
		if _, _, err := pc.replicaDelete(c.key, &store.DeleteOptions{NewCAS: c.d(own)}, o); err != nil {
			t.Fatal(err)
		}
		if _, _, res := a.st.Get(c.key, nil, nil); res != c.want {
			t.Errorf("%s after a replicated delete: %v, want %v", c.key, res, c.want)
		}
	}
}

// TestLapseWarmSurvivesLateViewWithoutSelf: a's lapse recovery claimed
// and wiped its shards in the view from before the cut (with a); the view
// without a, published by the membership before the lapse was noticed,
// is applied only after it. That transition must not end the warm-up of
// the wiped shards: a forwarded read (a peer already routes to a in the
// view after the heal) would serve a's copy from before the cut of a key
// b deleted meanwhile. (Found by reading the log of a failed
// TestClusterPartitionedNode: the recovery logged the epoch before the
// view without the node, and the node's hand-backs owed what only that
// view's transition owes.)
func TestLapseWarmSurvivesLateViewWithoutSelf(t *testing.T) {
	t.Parallel()
	_, a, b := startPair(t)
	key := []byte("lv-deleted")
	_, it := a.st.Set(key, []byte("v1"), &store.SetOptions{})
	time.Sleep(2 * time.Millisecond)
	b.router.ver.ApplyCopy(key, []byte("v1"), &store.SetOptions{NewCAS: it.CAS})
	if res, _ := b.router.ver.DeleteVersioned(key, nil, 0); res != store.Deleted {
		t.Fatalf("delete on b: %v", res)
	}
	// The lapse keeps from before the write (keepFrom, the last keepalive
	// etcd answered, can fall before writes made just before the cut): a's
	// v1 survives the drop, and only settling against b removes it.
	warmAsLapsed(t, a, it.CAS-1, "b", key)

	r := a.router
	v := r.View()
	members := slices.DeleteFunc(slices.Clone(v.Members), func(m etcdsync.Member) bool { return m.Name == "a" })
	late := &membership.View{Epoch: v.Epoch + 1, Members: members, Settings: v.Settings, Ring: ringWithout(t, v, "a")}
	r.mu.Lock()
	r.tk.Transition(v, late) // apply's transition, run after the recovery
	r.mu.Unlock()

	if _, val, res := r.PeerPort().get(context.Background(), key, nil, nil); res == store.Hit {
		t.Errorf("forwarded get of %s, deleted on b while a was out: %q", key, val)
	}
}

// TestReplicatedSetAfterDeleteOfOwnWrite: while a's shard warms, a writes a
// key, a newer replicated delete removes it, and a still newer replicated
// set of it arrives: a stores it. (The key stayed marked as a's own write,
// and the set ran as a replace of a key no longer there.)
func TestReplicatedSetAfterDeleteOfOwnWrite(t *testing.T) {
	t.Parallel()
	_, a, _ := startPair(t)
	pc := a.router.PeerPort()
	o := server.Origin{Epoch: uint64(a.router.View().Epoch)}
	key := []byte("rs-key")
	warmAsLapsed(t, a, 1, "b", key)
	rt := a.router.route(key)
	var own uint64
	a.router.tk.Own(context.Background(), rt.placed(), key, false, func() bool {
		_, it := a.st.Set(key, []byte("a's"), &store.SetOptions{})
		own = it.CAS
		return true
	})
	if _, _, err := pc.replicaDelete(key, &store.DeleteOptions{NewCAS: own + 1}, o); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pc.replicaSet(key, []byte("b's"), &store.SetOptions{NewCAS: own + 2}, o); err != nil {
		t.Fatal(err)
	}
	if _, v, res := a.st.Get(key, nil, nil); string(v) != "b's" {
		t.Errorf("after a newer delete, then a newer set: %v %q, want \"b's\"", res, v)
	}
}

// TestPullWhileNotOwnerKeepsWiped: a's lapse wiped a shard, and the view
// without a arrived after (TestLapseWarmSurvivesLateViewWithoutSelf): the
// shard keeps warming and the worker pulls it, in a view in which a does
// not own it. It stays wiped: no writes reach a's copy until a owns the
// shard again, so reads must settle it then. A pull in a view in which a
// owns it ends the wipe.
func TestPullWhileNotOwnerKeepsWiped(t *testing.T) {
	t.Parallel()
	_, a, b := startPair(t)
	key := []byte("pw-key")
	_, it := b.st.Set(key, []byte("v1"), &store.SetOptions{})
	warmAsLapsed(t, a, it.CAS+1, "b", key)
	r := a.router
	v := r.View()
	s := r.route(key).shard
	members := slices.DeleteFunc(slices.Clone(v.Members), func(m etcdsync.Member) bool { return m.Name == "a" })
	late := &membership.View{Epoch: v.Epoch + 1, Members: members, Settings: v.Settings, Ring: ringWithout(t, v, "a")}
	src := r.peers.Load().Peer("b")
	if src == nil {
		t.Fatal("a has no client for b")
	}
	wiped := func() bool { return r.tk.Wiped(s) }
	// The pull as the worker runs it (takeover's pullRun.pullFrom), the
	// shard taken at its current claim count; Run's ticks re-apply the
	// membership's view, so the late view is given to the pull, not
	// published.
	pull := func(in *membership.View) {
		if retry := r.tk.Pull(t.Context(), in, src, []int{s}); len(retry) > 0 {
			t.Fatalf("pull of shard %d from b failed", s)
		}
	}
	pull(late)
	if !wiped() {
		t.Errorf("shard %d pulled while a did not own it is no longer wiped", s)
	}
	r.tk.Suspect(s, []string{"b"}, it.CAS+1) // claimed again in the view with a
	pull(v)
	if wiped() {
		t.Errorf("shard %d pulled while a owns it is still wiped", s)
	}
}

// TestSettleWithNoSource: a wiped shard with no source at all (a one-node
// cluster back from a pause: nobody else could have written its keys)
// serves and changes what this node holds at once, without waiting for
// an answer that cannot come.
func TestSettleWithNoSource(t *testing.T) {
	t.Parallel()
	_, a, _ := startPair(t)
	key := []byte("ns-count")
	a.st.Set(key, []byte("10"), &store.SetOptions{})
	warmAsLapsed(t, a, 1, "b", key)
	r := a.router
	rt := r.route(key)
	r.tk.Suspect(rt.shard, nil, 1) // no source at all
	type result struct {
		res store.Result
		n   uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, n, _, err := r.localArith(context.Background(), &rt, key, &store.ArithOptions{Delta: 1})
		done <- result{res, n, err}
	}()
	select {
	case got := <-done:
		if got.err != nil || got.res != store.Stored || got.n != 11 {
			t.Errorf("incr with no source: %v %d %v, want stored 11", got.res, got.n, got.err)
		}
	case <-time.After(r.tk.SettleWait()):
		// It waited for a source; with none, it waited for good
		// (each round set a new give-up time).
		t.Fatalf("incr with no source still waiting after %v", r.tk.SettleWait())
	}
}

// ringWithout returns v's ring without node name, as the view after name
// left has it.
func ringWithout(t *testing.T, v *membership.View, name string) *ring.Ring {
	t.Helper()
	nodes := slices.DeleteFunc(slices.Clone(v.Ring.Nodes()), func(n string) bool { return n == name })
	rg, err := ring.New(ring.Config{Shards: v.Settings.Shards, VNodes: v.Settings.VNodes, Replicas: v.Settings.Replicas}, nodes, v.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	return rg
}
