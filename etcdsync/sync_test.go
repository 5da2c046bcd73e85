package etcdsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"shoal/internal/testutil"
)

var testSettings = Settings{Replicas: 2, Shards: 4096, VNodes: 160}

// node is one running Sync.
type node struct {
	*Sync
	cancel context.CancelFunc
	done   chan error
	logs   *testutil.LogBuffer
}

type nodeOpt func(*Config)

func withTTL(d time.Duration) nodeOpt     { return func(c *Config) { c.LeaseTTL = d } }
func withSettings(st Settings) nodeOpt    { return func(c *Config) { c.Settings = st } }
func withEndpoints(eps ...string) nodeOpt { return func(c *Config) { c.Endpoints = eps } }
func withInstance(id, client string) nodeOpt {
	return func(c *Config) { c.Self.Instance, c.Self.ClientAddr = id, client }
}
func withPrefix(prefix string) nodeOpt { return func(c *Config) { c.Prefix = prefix } }

// startNode runs a Sync named name until the test ends.
func startNode(t testing.TB, e testEtcd, name string, opts ...nodeOpt) *node {
	t.Helper()
	logs := &testutil.LogBuffer{}
	cfg := Config{
		Endpoints: e.Endpoints(),
		Prefix:    "test",
		Self: Member{
			Name: name, Instance: name + "-1",
			ClientAddr: name + ":11211", PeerAddr: name + ":11212", GossipAddr: name + ":7946",
		},
		Settings:    testSettings,
		DialTimeout: time.Second,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{Sync: s, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { n.done <- s.Run(ctx) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop cancels Run and waits for it; it returns Run's error.
func (n *node) stop(t testing.TB) error {
	t.Helper()
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err // keep it for a second stop
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return 10s after cancel", n.cfg.Self.Name)
		return nil
	}
}

// crash stops n without revoking its lease, as a killed process would.
func (n *node) crash(t testing.TB) {
	n.skipRevoke = true
	n.stop(t)
}

func names(snap Snapshot) []string {
	var ns []string
	for _, m := range snap.Members {
		ns = append(ns, m.Name)
	}
	return ns
}

// waitConverged waits until every node holds the same Snapshot with
// exactly the members want, and returns it.
func waitConverged(t testing.TB, within time.Duration, nodes []*node, want ...string) Snapshot {
	t.Helper()
	var last []string
	var snap Snapshot
	ok := poll(within, func() bool {
		last = last[:0]
		for i, n := range nodes {
			s, ok := n.Current()
			if !ok {
				last = append(last, n.cfg.Self.Name+": none")
				return false
			}
			last = append(last, fmt.Sprintf("%s: rev %d %v", n.cfg.Self.Name, s.Revision, names(s)))
			if i == 0 {
				snap = s
			} else if !s.equal(snap) {
				return false
			}
		}
		return slices.Equal(names(snap), want)
	})
	if !ok {
		t.Fatalf("views did not converge on %v within %v: %s", want, within, strings.Join(last, "; "))
	}
	return snap
}

// waitInstance waits until every node's view holds member name with the
// given instance id.
func waitInstance(t testing.TB, nodes []*node, name, instance string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, name+" to be instance "+instance, func() bool {
		for _, n := range nodes {
			snap, _ := n.Current()
			i := slices.IndexFunc(snap.Members, func(m Member) bool { return m.Name == name })
			if i < 0 || snap.Members[i].Instance != instance {
				return false
			}
		}
		return true
	})
}

func waitUnfenced(t testing.TB, within time.Duration, nodes ...*node) {
	t.Helper()
	testutil.WaitFor(t, within, "nodes to be unfenced", func() bool {
		for _, n := range nodes {
			if n.Fenced() {
				return false
			}
		}
		return true
	})
}

func TestConverge(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		a := startNode(t, e, "a")
		b := startNode(t, e, "b")
		c := startNode(t, e, "c")
		nodes := []*node{a, b, c}
		snap := waitConverged(t, 5*time.Second, nodes, "a", "b", "c")
		waitUnfenced(t, 5*time.Second, nodes...)
		if snap.Settings != testSettings {
			t.Errorf("settings %+v, want %+v", snap.Settings, testSettings)
		}
		want := Member{Name: "b", Instance: "b-1", ClientAddr: "b:11211", PeerAddr: "b:11212", GossipAddr: "b:7946"}
		if snap.Members[1] != want {
			t.Errorf("member b = %+v, want %+v", snap.Members[1], want)
		}
		// A later join raises every view's revision.
		d := startNode(t, e, "d")
		snap2 := waitConverged(t, 5*time.Second, append(nodes, d), "a", "b", "c", "d")
		if snap2.Revision <= snap.Revision {
			t.Errorf("revision went from %d to %d on a join", snap.Revision, snap2.Revision)
		}
	})
}

func TestSettingsSeededByFirst(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		a := startNode(t, e, "a")
		waitConverged(t, 5*time.Second, []*node{a}, "a")
		other := Settings{Replicas: 3, Shards: 128, VNodes: 10}
		b := startNode(t, e, "b", withSettings(other))
		snap := waitConverged(t, 5*time.Second, []*node{a, b}, "a", "b")
		if snap.Settings != testSettings {
			t.Errorf("settings %+v, want the first node's %+v", snap.Settings, testSettings)
		}
		resp, err := newClient(t, e.Endpoints()).Get(context.Background(), "/test/config")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get config: %v %v", resp, err)
		}
		if got := string(resp.Kvs[0].Value); got != `{"replicas":2,"shards":4096,"vnodes":160}` {
			t.Errorf("config in etcd = %s", got)
		}
	})
}

func TestGracefulLeave(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		a, b, c := startNode(t, e, "a"), startNode(t, e, "b"), startNode(t, e, "c") // default 10s TTL
		waitConverged(t, 5*time.Second, []*node{a, b, c}, "a", "b", "c")
		waitUnfenced(t, 5*time.Second, c)
		if err := c.stop(t); err != nil {
			t.Fatalf("Run returned %v", err)
		}
		if !c.Fenced() {
			t.Error("a stopped node is not fenced")
		}
		// Well under the 10s TTL: the lease was revoked.
		waitConverged(t, 2*time.Second, []*node{a, b}, "a", "b")
	})
}

func TestCrashedNodeExpires(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		a := startNode(t, e, "a", withTTL(2*time.Second))
		b := startNode(t, e, "b", withTTL(2*time.Second))
		waitConverged(t, 5*time.Second, []*node{a, b}, "a", "b")
		waitUnfenced(t, 5*time.Second, b)
		b.crash(t)
		resp, err := newClient(t, e.Endpoints()).Get(context.Background(), "/test/members/b")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("the crashed node's record should outlive it until its lease expires: %v %v", resp, err)
		}
		waitConverged(t, 5*time.Second, []*node{a}, "a")
	})
}

func TestEtcdRestart(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		a := startNode(t, e, "a", withTTL(2*time.Second))
		b := startNode(t, e, "b", withTTL(2*time.Second))
		nodes := []*node{a, b}
		before := waitConverged(t, 5*time.Second, nodes, "a", "b")
		waitUnfenced(t, 5*time.Second, nodes...)
		leases := []int64{a.leaseID.Load(), b.leaseID.Load()}

		t0 := time.Now()
		e.Stop(t)
		t.Logf("etcd stopped in %v", time.Since(t0))
		// Keepalives go unanswered: both fence, then drop their leases.
		testutil.WaitFor(t, 5*time.Second, "leases to be given up", func() bool {
			return a.Fenced() && b.Fenced() && a.leaseID.Load() == 0 && b.leaseID.Load() == 0
		})
		// Members and settings: a view event raised before the stop (a
		// record re-put as the nodes unfenced) may still reach a node
		// after before was taken, with the same members at a higher
		// revision; with etcd down nothing else can arrive.
		for _, n := range nodes {
			if got, _ := n.Current(); got.Settings != before.Settings || !slices.Equal(got.Members, before.Members) {
				t.Errorf("%s: view changed while etcd was down: %+v", n.cfg.Self.Name, got)
			}
		}

		t.Logf("leases given up after %v", time.Since(t0))
		e.Start(t)
		t.Logf("etcd restarted after %v", time.Since(t0))
		waitUnfenced(t, 10*time.Second, nodes...)
		t.Logf("unfenced after %v", time.Since(t0))
		after := waitConverged(t, 5*time.Second, nodes, "a", "b")
		if after.Revision <= before.Revision {
			t.Errorf("re-registration did not raise the revision: %d -> %d", before.Revision, after.Revision)
		}
		if a.leaseID.Load() == leases[0] || b.leaseID.Load() == leases[1] {
			t.Errorf("leases %v not replaced: %d %d", leases, a.leaseID.Load(), b.leaseID.Load())
		}
		// The watches work again.
		c := startNode(t, e, "c", withTTL(2*time.Second))
		waitConverged(t, 5*time.Second, append(nodes, c), "a", "b", "c")
	})
}

func TestWatchRecoversFromCompaction(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		p := startProxy(t, e.Endpoints()[0])
		a := startNode(t, e, "a", withEndpoints(p.URL()))
		b := startNode(t, e, "b")
		waitConverged(t, 5*time.Second, []*node{a, b}, "a", "b")

		p.SetDown(true)
		if err := b.stop(t); err != nil {
			t.Fatal(err)
		}
		c := startNode(t, e, "c")
		waitConverged(t, 5*time.Second, []*node{c}, "a", "c")
		cli := newClient(t, e.Endpoints())
		resp, err := cli.Put(context.Background(), "/elsewhere", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(context.Background(), resp.Header.Revision); err != nil {
			t.Fatal(err)
		}
		p.SetDown(false)

		waitConverged(t, 10*time.Second, []*node{a, c}, "a", "c")
		if !strings.Contains(a.logs.String(), "compacted") {
			t.Errorf("a's watch did not report the compaction; logs:\n%s", a.logs)
		}
	})
}

func TestSameNameReplaces(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		t.Run("old process alive", func(t *testing.T) {
			old := startNode(t, e, "a", withPrefix("alive"))
			b := startNode(t, e, "b", withPrefix("alive"))
			waitConverged(t, 5*time.Second, []*node{old, b}, "a", "b")
			waitUnfenced(t, 5*time.Second, old)

			a2 := startNode(t, e, "a", withPrefix("alive"), withInstance("a-2", "a:22222"))
			waitInstance(t, []*node{a2, b}, "a", "a-2")
			snap := waitConverged(t, 5*time.Second, []*node{a2, b}, "a", "b")
			if m := snap.Members[0]; m.Instance != "a-2" || m.ClientAddr != "a:22222" {
				t.Errorf("record of a = %+v, want the new instance", m)
			}
			select {
			case err := <-old.done:
				old.done <- err
				if !errors.Is(err, ErrSuperseded) {
					t.Errorf("old Run returned %v, want ErrSuperseded", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("old Run did not return after being superseded")
			}
			if !old.Fenced() {
				t.Error("superseded process not fenced")
			}
			waitUnfenced(t, 5*time.Second, a2)
			if got, _ := a2.Current(); !slices.Equal(got.Members, snap.Members) {
				t.Errorf("the old process's exit changed the members: %+v", got.Members)
			}
		})
		t.Run("old process crashed", func(t *testing.T) {
			old := startNode(t, e, "a", withPrefix("crashed"), withTTL(2*time.Second))
			waitConverged(t, 5*time.Second, []*node{old}, "a")
			waitUnfenced(t, 5*time.Second, old)
			oldLease := clientv3.LeaseID(old.leaseID.Load())
			old.crash(t)

			a2 := startNode(t, e, "a", withPrefix("crashed"), withInstance("a-2", "a:22222"), withTTL(2*time.Second))
			waitInstance(t, []*node{a2}, "a", "a-2")
			cli := newClient(t, e.Endpoints())
			testutil.WaitFor(t, 5*time.Second, "the old lease to expire", func() bool {
				r, err := cli.TimeToLive(context.Background(), oldLease)
				return err == nil && r.TTL == -1
			})
			resp, err := cli.Get(context.Background(), "/crashed/members/a")
			if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), "a-2") {
				t.Fatalf("the old lease's expiry took the new record: %v %v", resp, err)
			}
		})
	})
}

func TestSimultaneousJoin(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		for i := range 3 {
			prefix := fmt.Sprintf("join%d", i)
			var wg sync.WaitGroup
			nodes := make([]*node, 2)
			for j, name := range []string{"a", "b"} {
				wg.Go(func() { nodes[j] = startNode(t, e, name, withPrefix(prefix)) })
			}
			wg.Wait()
			waitConverged(t, 5*time.Second, nodes, "a", "b")
			waitUnfenced(t, 5*time.Second, nodes...)
		}
	})
}

func TestRunWithoutEtcd(t *testing.T) {
	s, err := New(Config{Endpoints: []string{"http://" + testutil.FreeAddr(t)}, Self: Member{Name: "a", Instance: "1", ClientAddr: "a:1", PeerAddr: "a:2"}, Settings: testSettings, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run = %v, want nil after ctx ends", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v to return after its context ended", d)
	}
	if _, ok := s.Current(); ok || !s.Fenced() {
		t.Errorf("without etcd: Current ok=%v, Fenced=%v; want false, true", ok, s.Fenced())
	}
}
