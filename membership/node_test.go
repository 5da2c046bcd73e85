package membership

import (
	"context"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testetcd"
)

// TestNodesShareOneView runs two nodes in-process against a real etcd and
// real memberlist: both must end on the same epoch, the same ring and see
// each other alive; the first node's settings win.
func TestNodesShareOneView(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t) // closed after the nodes' cleanups: they deregister first
	start := func(name string, replicas int) *Node {
		n, err := New(Config{
			Etcd: etcdsync.Config{
				Endpoints: etcd.Endpoints(),
				Self:      etcdsync.Member{Name: name, Instance: name + "-1", ClientAddr: name + ":1", PeerAddr: name + ":2"},
				Settings:  etcdsync.Settings{Replicas: replicas, Shards: 64, VNodes: 1},
				LeaseTTL:  2 * time.Second,
			},
			Gossip: gossip.Config{BindAddr: "127.0.0.1:0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		})
		return n
	}
	a := start("a", 2)
	for a.View() == nil || len(a.View().Members) != 1 { // a seeds the settings
		select {
		case <-a.Changed():
		case <-time.After(10 * time.Second):
			t.Fatal("a has no view of itself")
		}
	}
	b := start("b", 3) // joins an existing cluster: adopts replicas=2
	deadline := time.Now().Add(20 * time.Second)
	for {
		va, vb := a.View(), b.View()
		if va != nil && vb != nil && va.Epoch == vb.Epoch && len(va.Members) == 2 &&
			a.Health("b") == gossip.Alive && b.Health("a") == gossip.Alive && !a.Fenced() && !b.Fenced() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no common view: a=%+v b=%+v", va, vb)
		}
		select {
		case <-a.Changed():
		case <-b.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	va, vb := a.View(), b.View()
	if va.Settings.Replicas != 2 || vb.Settings.Replicas != 2 {
		t.Fatalf("replicas a=%d b=%d, want the first node's 2", va.Settings.Replicas, vb.Settings.Replicas)
	}
	for s := range 64 {
		oa, ob := va.Ring.Owners(s), vb.Ring.Owners(s)
		if len(oa) != 2 || oa[0] != ob[0] || oa[1] != ob[1] {
			t.Fatalf("shard %d: a says %v, b says %v", s, oa, ob)
		}
	}
	if m, ok := va.Member("b"); !ok || m.GossipAddr == "" || m.ClientAddr != "b:1" {
		t.Fatalf("b's record in a's view: %+v, %v", m, ok)
	}
	stats := map[string]string{}
	for _, kv := range a.ClusterStats() {
		stats[kv[0]] = kv[1]
	}
	if stats["cluster_members"] != "2" || stats["member:b:health"] != "alive" || stats["cluster_fenced"] != "0" {
		t.Fatalf("ClusterStats: %v", stats)
	}
}

// TestCheckSettings: the settings etcdsync may adopt are the ones the ring
// can be built with.
func TestCheckSettings(t *testing.T) {
	cases := map[string]struct {
		st etcdsync.Settings
		ok bool
	}{
		"default":             {etcdsync.Settings{Replicas: 2, Shards: 4096, VNodes: 1}, true},
		"ring-based vnodes":   {etcdsync.Settings{Replicas: 2, Shards: 4096, VNodes: 160}, false},
		"most shards":         {etcdsync.Settings{Replicas: 8, Shards: etcdsync.MaxShards, VNodes: 1}, true},
		"five million shards": {etcdsync.Settings{Replicas: 2, Shards: 5000000, VNodes: 1}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := checkSettings(tc.st)
			if err == nil {
				err = tc.st.Validate()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("settings %+v: %v, want ok=%v", tc.st, err, tc.ok)
			}
		})
	}
	cfg := Config{Etcd: etcdsync.Config{
		Endpoints: []string{"http://127.0.0.1:1"},
		Self:      etcdsync.Member{Name: "a", Instance: "a-1", ClientAddr: "a:1", PeerAddr: "a:2"},
		Settings:  etcdsync.Settings{Replicas: 2, Shards: 4096, VNodes: 160},
	}, Gossip: gossip.Config{BindAddr: "127.0.0.1:0"}}
	if _, err := New(cfg); err == nil {
		t.Error("New accepted settings the ring cannot be built with")
	}
}
