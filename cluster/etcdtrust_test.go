package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	clientv3 "go.etcd.io/etcd/client/v3"

	"shoal/gossip"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/server"
)

// TestEtcdNotTrusted runs real nodes against a real etcd into which the
// test writes what a careless or hostile writer could: 300 records of
// members that do not exist (their addresses refuse connections or never
// answer), records that do not parse, and cluster settings with a shard
// count of five million. Every set and get through every node succeeds,
// the settings and the ring stay as they were, memory stays flat, the
// records are counted; and a real node joining afterwards becomes an owner
// and serves, its first view already holding the others.
func TestEtcdNotTrusted(t *testing.T) {
	// Not parallel: the heap check below reads the whole process's heap,
	// which other tests running beside it would grow (CI runs saw 45 MB,
	// and 37 MB once af1b83d had made it parallel again).
	// Parallel tests start only after every sequential one has ended.
	etcd := testetcd.Start(t)
	a := startRoutedNode(t, etcd, "a", server.Config{})
	b := startRoutedNode(t, etcd, "b", server.Config{})
	waitRing(t, []*routedNode{a, b}, "a", "b")
	settings := a.node.View().Settings

	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	put := func(key, val string) int64 {
		t.Helper()
		resp, err := cli.Put(ctx, key, val)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	junk := []string{
		`not json`,
		`{"name":"junk-1"}`,
		`{"name":"junk-2","instance":"x","client":11211,"peer":"127.0.0.1:2"}`,
		`{"name":"junk-3","instance":"x","client":"127.0.0.1","peer":"127.0.0.1:2"}`,
		`{"name":"someone-else","instance":"x","client":"127.0.0.1:1","peer":"127.0.0.1:2"}`,
	}
	for i, val := range junk {
		put(fmt.Sprintf("/shoal/members/junk-%d", i), val)
	}
	const ghosts = 300
	refused := testutil.FreeAddr(t)
	silent := make([]string, 10)
	for i := range silent {
		silent[i] = silentAddr(t)
	}
	var last int64
	for i := range ghosts {
		addr := refused
		if i%6 == 0 { // one in six swallows what it is sent
			addr = silent[i%len(silent)]
		}
		m := fmt.Sprintf(`{"name":"ghost-%03d","instance":"g","client":"%s","peer":"%s","gossip":"%s"}`, i, addr, addr, addr)
		last = put(fmt.Sprintf("/shoal/members/ghost-%03d", i), m)
	}
	for _, n := range []*routedNode{a, b} {
		testutil.WaitFor(t, 10*time.Second, n.node.Name()+" to list the ghosts", func() bool {
			v := n.node.View()
			return v.Epoch >= last && len(v.Unseen) == ghosts
		})
		v := n.node.View()
		if !slices.Equal(v.Ring.Nodes(), []string{"a", "b"}) || len(v.Members) != 2 {
			t.Fatalf("%s: ring %v, members %d: ghosts are in the ring", n.node.Name(), v.Ring.Nodes(), len(v.Members))
		}
		if r := n.node.Rejections(); r.Members != uint64(len(junk)) || r.MembersIgnored != len(junk) {
			t.Errorf("%s: rejections %+v, want %d records refused", n.node.Name(), r, len(junk))
		}
		if st := stats(n.node.ClusterStats()); st["cluster_members_unseen"] != "300" || st["cluster_member_records_ignored"] != "5" {
			t.Errorf("%s: stats cluster %v", n.node.Name(), st)
		}
		// What ring-aware clients build their ring from: the placed
		// members only, never the ghosts.
		st := stats(n.node.RingStats())
		var listed []string
		for k := range st {
			if m, ok := strings.CutPrefix(k, "ring_member:"); ok {
				listed = append(listed, m)
			}
		}
		slices.Sort(listed)
		if !slices.Equal(listed, []string{"a", "b"}) || st["ring_members"] != "2" || st["ring_unseen"] != "300" {
			t.Errorf("%s: stats ring lists %v: %v", n.node.Name(), listed, st)
		}
	}
	setGetThroughAll(t, "ghosts", []*routedNode{a, b}, 100)

	// Settings that would size every node's tables by five million shards.
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	put("/shoal/config", `{"replicas":2,"shards":5000000}`)
	put("/shoal/config", `{"replicas":2,"shards":128,"vnodes":1}`) // valid, but not the cluster's shard count
	for _, n := range []*routedNode{a, b} {
		testutil.WaitFor(t, 10*time.Second, n.node.Name()+" to refuse the settings", func() bool { return n.node.Rejections().Config == 2 })
		v := n.node.View()
		if v.Settings != settings || v.Ring.NumShards() != settings.Shards {
			t.Errorf("%s: settings %+v, ring of %d shards; want %+v kept", n.node.Name(), v.Settings, v.Ring.NumShards(), settings)
		}
		if st := stats(n.node.ClusterStats()); st["cluster_config_rejected"] != "2" || st["cluster_config_refused"] != "1" {
			t.Errorf("%s: stats cluster %v", n.node.Name(), st)
		}
	}
	setGetThroughAll(t, "absurd settings", []*routedNode{a, b}, 100)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grew > 32<<20 {
		t.Errorf("heap grew by %d MB after the absurd settings", grew>>20)
	}

	// A real node joins: it becomes an owner at once and serves.
	logs := &testutil.LogBuffer{}
	started := time.Now()
	c := startRoutedNode(t, etcd, "c", server.Config{}, func(cfg *membership.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	nodes := []*routedNode{a, b, c}
	testutil.WaitFor(t, 10*time.Second, "c in a's ring", func() bool {
		return slices.Contains(a.node.View().Ring.Nodes(), "c")
	})
	t.Logf("c in a's ring %v after c started", time.Since(started).Round(time.Millisecond))
	waitRing(t, nodes, "a", "b", "c")
	// Its views hold a and b from the first: a view without them would
	// claim every shard (and serve it cold). The first one may predate
	// c's own registration.
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="cluster view"`) && (strings.Contains(l, " members=0 ") || strings.Contains(l, " members=1 ")) {
			t.Errorf("c had a view without a and b: %s", l)
		}
	}
	if r := c.node.Rejections(); r.Config != 1 || !r.ConfigRefused || r.MembersIgnored != len(junk) {
		t.Errorf("c: rejections %+v", r)
	}
	if v := c.node.View(); v.Settings != settings {
		t.Errorf("c: settings %+v, want its own %+v, not the refused ones", v.Settings, settings)
	}
	owned := 0
	v := a.node.View()
	for s := range v.Ring.NumShards() {
		if v.Ring.Owners(s)[0] == "c" {
			owned++
		}
	}
	if owned == 0 {
		t.Fatal("c is the primary of no shard in a's ring")
	}
	itemsBefore := c.st.Stats().CurrItems
	setGetThroughAll(t, "after c joined", nodes, 100)
	if c.st.Stats().CurrItems == itemsBefore {
		t.Error("c stored none of the keys written through the cluster")
	}
	// Ghosts are logged once each, whatever happens to the view.
	for i := range 10 {
		if _, err := cli.Delete(ctx, fmt.Sprintf("/shoal/members/ghost-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "c to drop ten ghosts", func() bool { return len(c.node.View().Unseen) == ghosts-10 })
	if n := strings.Count(logs.String(), "never seen by gossip"); n != ghosts {
		t.Errorf("c logged %d unseen members, want %d, one each", n, ghosts)
	}
}

// waitRing waits until every node's ring holds exactly names and every
// node sees the others alive.
func waitRing(t *testing.T, nodes []*routedNode, names ...string) {
	t.Helper()
	for _, n := range nodes {
		testutil.WaitFor(t, 20*time.Second, n.node.Name()+"'s ring to be "+strings.Join(names, ","), func() bool {
			v := n.node.View()
			if v == nil || !slices.Equal(v.Ring.Nodes(), names) {
				return false
			}
			for _, o := range names {
				if n.node.Health(o) != gossip.Alive {
					return false
				}
			}
			return true
		})
	}
}

// setGetThroughAll sets count keys through each node and reads every one
// back through every node; any error fails the test.
func setGetThroughAll(t *testing.T, what string, nodes []*routedNode, count int) {
	t.Helper()
	clients := make([]*memcache.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = client(n.addr)
		clients[i].Timeout = 2 * time.Second
	}
	for i, c := range clients {
		for k := range count {
			key := fmt.Sprintf("%s/%d/%d", strings.ReplaceAll(what, " ", "-"), i, k)
			if err := c.Set(&memcache.Item{Key: key, Value: []byte(key)}); err != nil {
				t.Fatalf("%s: set %s through %s: %v", what, key, nodes[i].node.Name(), err)
			}
			for j, r := range clients {
				it, err := r.Get(key)
				if err != nil || string(it.Value) != key {
					t.Fatalf("%s: get %s (set through %s) through %s: %v", what, key, nodes[i].node.Name(), nodes[j].node.Name(), err)
				}
			}
		}
	}
}

func stats(kv [][2]string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, p := range kv {
		m[p[0]] = p[1]
	}
	return m
}

// silentAddr is a listener that never accepts: connections complete into
// its backlog and nothing ever answers, as with a host that swallows
// packets.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}
