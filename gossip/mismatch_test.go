package gossip

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// recorder keeps the Warn records a node logs, as "message peer=...".
type recorder struct {
	mu    sync.Mutex
	warns []string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *recorder) WithGroup(string) slog.Handler                { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "peer" {
			s += " " + a.Key + "=" + a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.warns = append(r.warns, s)
	r.mu.Unlock()
	return nil
}

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, w := range r.warns {
		if w == msg {
			n++
		}
	}
	return n
}

// A node with another gossip key is logged once on each side, however
// many times the reconcile loop tries it.
func TestKeyMismatchLoggedOnce(t *testing.T) {
	t.Parallel()
	logs := map[string]*recorder{"n0": {}, "x": {}}
	cfg := func(node string, key string) Config {
		c := testConfig(node)
		c.SecretKey, c.Label = []byte(key), "shoal-test"
		c.Logger = slog.New(logs[node])
		return c
	}
	n0 := start(t, cfg("n0", "0123456789abcdef"))
	x := start(t, cfg("x", "fedcba9876543210"))
	all := []*testNode{n0, x}
	setPeers(all, all...)
	for _, n := range all {
		before := n.g.joinFailures.Load()
		testutil.WaitFor(t, 10*time.Second, n.node+" retried joins", func() bool { return n.g.joinFailures.Load() >= before+4 })
	}
	const refused = "gossip: a peer was refused: " + mismatchHint
	join := "gossip: cannot join a listed peer: " + mismatchHint
	for node, want := range map[string][]string{
		"n0": {refused, join + " peer=x"},
		"x":  {refused, join + " peer=n0"},
	} {
		for _, msg := range want {
			if got := logs[node].count(msg); got != 1 {
				t.Errorf("%s logged %q %d times, want once; all warnings: %q", node, msg, got, logs[node].warns)
			}
		}
	}
	if n0.g.Health("x") != Unknown || x.g.Health("n0") != Unknown {
		t.Errorf("health across keys: n0 sees x %v, x sees n0 %v", n0.g.Health("x"), x.g.Health("n0"))
	}
}
