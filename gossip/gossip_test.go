package gossip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/testutil"
)

var instanceSeq atomic.Int64

// testLogger discards unless SHOAL_TEST_LOG is set; it never uses t.Log,
// because memberlist goroutines may still log after a test ends.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testNode struct {
	node   string
	g      *Gossip
	cancel context.CancelFunc
	done   chan error
}

func testConfig(node string) Config {
	return Config{
		Node:              node,
		Instance:          fmt.Sprintf("i%d", instanceSeq.Add(1)),
		BindAddr:          "127.0.0.1:0",
		ReconcileInterval: 300 * time.Millisecond,
		Logger:            testLogger(),
	}
}

// start runs a Gossip until the test ends and waits until it has bound.
func start(t *testing.T, cfg Config) *testNode {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startGossip(t, g)
}

// startGossip runs g until the test ends and waits until it has bound.
func startGossip(t *testing.T, g *Gossip) *testNode {
	t.Helper()
	cfg := g.cfg
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{node: cfg.Node, g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- g.Run(ctx) }()
	t.Cleanup(func() { n.stop(t) })
	testutil.WaitFor(t, 5*time.Second, cfg.Node+" bound", func() bool {
		select {
		case err := <-n.done:
			t.Fatalf("Run: %v", err)
		default:
		}
		return g.LocalAddr() != ""
	})
	return n
}

// startN starts nodes n0..n(count-1) that know each other through SetPeers.
func startN(t *testing.T, count int, edit func(*Config)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, count)
	for i := range nodes {
		cfg := testConfig(fmt.Sprintf("n%d", i))
		if edit != nil {
			edit(&cfg)
		}
		nodes[i] = start(t, cfg)
	}
	setPeers(nodes, nodes...)
	return nodes
}

// setPeers tells every node in to about the nodes in list, as etcd would.
func setPeers(to []*testNode, list ...*testNode) {
	peers := make(map[string]string)
	for _, n := range list {
		peers[n.node] = n.g.LocalAddr()
	}
	for _, n := range to {
		n.g.SetPeers(peers)
	}
}

// stop cancels Run and waits for it; idempotent.
func (n *testNode) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	select {
	case err, ok := <-n.done:
		if !ok {
			return
		}
		if err != nil {
			t.Errorf("%s Run: %v", n.node, err)
		}
		close(n.done)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return", n.node)
	}
}

// crash stops the node without Leave, so peers must detect the failure.
func (n *testNode) crash(t *testing.T) {
	n.g.noLeave.Store(true)
	n.stop(t)
}

func waitHealth(t *testing.T, timeout time.Duration, observers []*testNode, node string, want State) time.Duration {
	t.Helper()
	return testutil.WaitFor(t, timeout, fmt.Sprintf("%s %v everywhere", node, want), func() bool {
		for _, o := range observers {
			if o.g.Health(node) != want {
				return false
			}
		}
		return true
	})
}

func TestConverge(t *testing.T) {
	t.Parallel()
	nodes := startN(t, 3, nil)
	for _, n := range nodes {
		d := waitHealth(t, 5*time.Second, nodes, n.node, Alive)
		t.Logf("%s alive everywhere after %v", n.node, d)
	}
	for _, n := range nodes {
		select {
		case <-n.g.Changed():
		default:
			t.Errorf("%s: no Changed notification", n.node)
		}
		if got := n.g.Health("stranger"); got != Unknown {
			t.Errorf("%s: Health(stranger) = %v, want unknown", n.node, got)
		}
	}
}

// TestFailureDetection measures how long the survivors take to see a node
// dead after a crash (no Leave: memberlist must probe and suspect) and after
// a graceful stop (Leave broadcasts at once).
func TestFailureDetection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		crash bool
		limit time.Duration
	}{
		{"crash", true, 40 * time.Second}, // ~5 s idle; generous for a loaded CI box
		{"graceful", false, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes := startN(t, 3, nil)
			for _, n := range nodes {
				waitHealth(t, 5*time.Second, nodes, n.node, Alive)
			}
			victim, survivors := nodes[2], nodes[:2]
			begin := time.Now()
			if tc.crash {
				victim.crash(t)
			} else {
				victim.stop(t)
			}
			sawSuspect := false
			testutil.WaitFor(t, tc.limit, victim.node+" dead on survivors", func() bool {
				dead := true
				for _, n := range survivors {
					switch n.g.Health(victim.node) {
					case Suspect:
						sawSuspect = true
						dead = false
					case Dead:
					default:
						dead = false
					}
				}
				return dead
			})
			t.Logf("%s: %s dead on both survivors after %v (suspect seen: %v)",
				tc.name, victim.node, time.Since(begin), sawSuspect)
			if tc.crash && !sawSuspect {
				t.Errorf("crash: never saw %s suspect on the way to dead", victim.node)
			}
			for _, n := range survivors {
				if got := n.g.Health(survivors[0].node); got != Alive {
					t.Errorf("%s sees %s %v", n.node, survivors[0].node, got)
				}
			}
		})
	}
}

// TestRestart: a node crashes and comes back with a new instance on a new
// port; it is alive again, and its old incarnation's death (noticed later)
// does not hide it.
func TestRestart(t *testing.T) {
	t.Parallel()
	nodes := startN(t, 3, nil)
	for _, n := range nodes {
		waitHealth(t, 5*time.Second, nodes, n.node, Alive)
	}
	a, c, old := nodes[0], nodes[1], nodes[2]
	oldName := old.g.name
	old.crash(t)

	fresh := start(t, testConfig(old.node))
	if fresh.g.LocalAddr() == old.g.LocalAddr() {
		t.Logf("restart reused port %s", fresh.g.LocalAddr())
	}
	survivors := []*testNode{a, c}
	all := []*testNode{a, c, fresh}
	setPeers(all, all...)
	d := testutil.WaitFor(t, 5*time.Second, "new incarnation alive", func() bool {
		for _, n := range survivors {
			if instanceState(n.g, fresh.g.name) != Alive || n.g.Health(old.node) != Alive {
				return false
			}
		}
		return true
	})
	t.Logf("restarted %s alive everywhere after %v", old.node, d)

	// Wait for the old incarnation to be declared dead (or already pruned,
	// which only happens to dead ones), then check again. Detection takes
	// ~5 s on an idle machine; the bound is generous for a loaded CI box.
	d = testutil.WaitFor(t, 40*time.Second, "old incarnation dead", func() bool {
		for _, n := range survivors {
			if st := instanceState(n.g, oldName); st != Dead && st != Unknown {
				return false
			}
		}
		return true
	})
	t.Logf("old incarnation dead %v after the restart joined", d)
	for _, n := range survivors {
		if got := n.g.Health(old.node); got != Alive {
			t.Errorf("%s: Health(%s) = %v after old incarnation died, want alive", n.node, old.node, got)
		}
	}
}

func instanceState(g *Gossip, name string) State {
	node, id, _ := splitName(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	if in := g.nodes[node][id]; in != nil {
		return in.state
	}
	return Unknown
}

// TestReconcileJoinsLater: a listed peer that is not up yet is joined by the
// periodic reconcile loop once it starts, though it knows nobody itself.
func TestReconcileJoinsLater(t *testing.T) {
	t.Parallel()
	a := start(t, testConfig("a"))
	addr := testutil.FreeAddr(t)
	a.g.SetPeers(map[string]string{"a": a.g.LocalAddr(), "b": addr})
	testutil.WaitFor(t, 5*time.Second, "a failed join", func() bool { return a.g.joinFailures.Load() > 0 })
	if got := a.g.Health("b"); got != Unknown {
		t.Fatalf("Health(b) = %v before b started, want unknown", got)
	}

	cfg := testConfig("b")
	cfg.BindAddr = addr
	b := start(t, cfg)
	d := waitHealth(t, 5*time.Second, []*testNode{a}, "b", Alive)
	t.Logf("a joined b %v after b started", d)
	// b has no peer list: a node etcd does not list is not reported.
	if got := b.g.Health("a"); got != Unknown {
		t.Errorf("b: Health(a) = %v with no peers listed, want unknown", got)
	}
	b.g.SetPeers(map[string]string{"a": a.g.LocalAddr()})
	if got := b.g.Health("a"); got != Alive {
		t.Errorf("b: Health(a) = %v once listed, want alive", got)
	}
}

// TestSecurity: nodes sharing key and label converge; one whose label or key
// differs never joins, however often reconcile tries.
func TestSecurity(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef")
	secure := func(c *Config) { c.SecretKey, c.Label = key, "shoal-test" }
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"other label", func(c *Config) { c.SecretKey, c.Label = key, "other" }},
		{"other key", func(c *Config) { c.SecretKey, c.Label = []byte("fedcba9876543210"), "shoal-test" }},
		{"no key", func(c *Config) { c.Label = "shoal-test" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes := startN(t, 2, secure)
			for _, n := range nodes {
				waitHealth(t, 5*time.Second, nodes, n.node, Alive)
			}
			cfg := testConfig("x")
			tc.edit(&cfg)
			x := start(t, cfg)
			all := append(nodes, x)
			setPeers(all, all...)
			for _, n := range all {
				before := n.g.joinFailures.Load()
				testutil.WaitFor(t, 5*time.Second, n.node+" retried joins", func() bool {
					return n.g.joinFailures.Load() >= before+2
				})
			}
			for _, n := range nodes {
				if got := n.g.Health("x"); got != Unknown {
					t.Errorf("%s: Health(x) = %v, want unknown", n.node, got)
				}
				if got := x.g.Health(n.node); got != Unknown {
					t.Errorf("x: Health(%s) = %v, want unknown", n.node, got)
				}
			}
			if got := nodes[0].g.Health(nodes[1].node); got != Alive {
				t.Errorf("secure pair split: %v", got)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
