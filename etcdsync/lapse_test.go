package etcdsync

import (
	"context"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"shoal/internal/testutil"
)

// TestLapse: a's lease is revoked behind its back (as when it expires
// during a partition): b's view loses a, a registers again and reports a
// lapse that b stayed through, since a keepalive answered before the
// revoke; b reports none.
func TestLapse(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		started := time.Now()
		a := startNode(t, e, "a", withTTL(2*time.Second))
		b := startNode(t, e, "b", withTTL(2*time.Second))
		nodes := []*node{a, b}
		waitConverged(t, 5*time.Second, nodes, "a", "b")
		waitUnfenced(t, 5*time.Second, nodes...)
		if l := a.Lapse(); l.Count != 0 || a.Lapses() != 0 {
			t.Fatalf("lapse before any: %+v", l)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := newClient(t, e.Endpoints()).Revoke(ctx, clientv3.LeaseID(a.leaseID.Load())); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		testutil.WaitFor(t, 10*time.Second, "a to register again after a lapse", func() bool { return a.Lapses() == 1 && !a.Fenced() })
		if l := a.Lapse(); l.Count != 1 || !slices.Equal(l.Stayed, []string{"b"}) {
			t.Errorf("a's lapse: %+v, want 1 with b stayed", l)
		} else if !l.Since.After(started) || l.Since.After(revoked) {
			t.Errorf("a's lapse since %v, want the last keepalive answered between the start (%v) and the revoke (%v)", l.Since, started, revoked)
		}
		waitConverged(t, 5*time.Second, nodes, "a", "b")
		if b.Lapses() != 0 {
			t.Errorf("b reports %d lapses; its record stayed", b.Lapses())
		}
	})
}
