package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/gossip"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/membership"
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
	t.Parallel()
	etcd := testetcd.Start(t)
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
	ca := client(a.addr)
	for _, k := range keys {
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("v1-" + k)}); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "a to hold "+k, func() bool { _, _, res := a.st.Get([]byte(k), nil, nil); return res == store.Hit }) // replicated to a
	}
	paused := func() { b.router.tk.NotePause() }
	for i, k := range keys {
		paused()
		if err := ca.Set(&memcache.Item{Key: k, Value: []byte("v2-" + k)}); err != nil {
			t.Errorf("set %s through a right after b resumed (pause %d): %v", k, i+1, err)
		}
		// b's push of v2 to a must be out before b's next "pause": its
		// recovery discards the replication queue and pulls from a, so a
		// push still queued would be lost (as a real pause right after the
		// write loses it: replication is asynchronous), and the last get
		// below would read v1.
		testutil.WaitFor(t, 5*time.Second, "a to hold v2 of "+k, func() bool {
			_, v, res := a.st.Get([]byte(k), nil, nil)
			return res == store.Hit && string(v) == "v2-"+k
		})
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
	if got := b.router.Counters().Pauses; got < uint64(len(keys)) {
		t.Errorf("b noticed %d pauses, want at least %d", got, len(keys))
	}
}

// stallingMembers is fakeMembers whose View blocks while stall is set:
// Run's loop busy for as long as the test wants.
type stallingMembers struct {
	*fakeMembers
	stall atomic.Bool
}

func (s *stallingMembers) View() *membership.View {
	for s.stall.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	return s.fakeMembers.View()
}

// TestBusyRunIsNoPause: Run's loop busy for longer than PauseAfter (as
// when it closed the client of a member cut off, waiting out its dial)
// is not a pause: requests meanwhile find the process awake, and nothing
// is dropped. e2e/history saw both healthy nodes "recover" from such a
// gap right after a partition healed, dropping every shard they owned.
func TestBusyRunIsNoPause(t *testing.T) {
	t.Parallel()
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fm := &stallingMembers{fakeMembers: &fakeMembers{health: map[string]gossip.State{}}}
	// A second, the default: with 200 ms, two missed 100 ms ticks under
	// a whole test run's load once read as a pause.
	const pauseAfter = time.Second
	rt, err := NewRouter(RouterConfig{Members: fm, Store: st, PauseAfter: pauseAfter})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rt.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 5*time.Second, "a router tick", func() bool { return !rt.tk.LastTick().IsZero() })

	fm.stall.Store(true) // Run's next apply blocks
	defer fm.stall.Store(false)
	for end := time.Now().Add(3 * pauseAfter / 2); time.Now().Before(end); {
		if !rt.tk.Awake() {
			t.Fatal("a request found the process paused while only Run's loop was busy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fm.stall.Store(false)
	if n := rt.Counters().Pauses; n != 0 {
		t.Fatalf("%d pauses recovered from; want 0", n)
	}

	// A real pause, every goroutine stopped, is still noticed.
	rt.tk.NotePause()
	if rt.tk.Awake() {
		t.Fatal("a gap of an hour since the last tick went unnoticed")
	}
	if n := rt.Counters().Pauses; n != 1 {
		t.Fatalf("%d pauses recovered from; want 1", n)
	}
}
