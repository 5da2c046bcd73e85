package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	clientv3 "go.etcd.io/etcd/client/v3"

	"shoal/internal/statsread"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
)

// TestClusterEtcdNotTrusted (issue 11): three real processes against a
// real etcd into which the test writes settings with five million shards
// (which once raised every node to ~644 MB), 300 records of members that
// do not exist (their addresses refuse connections, or accept them and
// never answer) and records that do not parse (which once made every node
// fail 49 sets in 50). Each node keeps its settings and its memory; every
// set and get through every node succeeds; the refusals show in `stats
// cluster` and /metrics. A real node joining afterwards becomes an owner
// and serves.
func TestClusterEtcdNotTrusted(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	endpoints := strings.Join(etcd.Endpoints(), ",")
	httpAddr := testutil.FreeAddr(t)
	names := []string{"n1", "n2", "n3"}
	nodes := []*pnode{
		startPeerNode(t, endpoints, "n1", "--replicas", "2", "--http", httpAddr),
		startPeerNode(t, endpoints, "n2", "--replicas", "2"),
		startPeerNode(t, endpoints, "n3", "--replicas", "2"),
	}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procsOf(nodes), names...) })
	rssBefore := make([]int64, len(nodes))
	for i, n := range nodes {
		rssBefore[i] = rssKB(t, n.cmd.Process.Pid)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	put("/shoal/config", `{"replicas":2,"shards":5000000}`)
	junk := []string{`not json`, `{"name":"junk-1"}`, `{"name":"junk-2","instance":"x","client":1,"peer":"127.0.0.1:2"}`}
	for i, val := range junk {
		put(fmt.Sprintf("/shoal/members/junk-%d", i), val)
	}
	refused := testutil.FreeAddr(t)
	silent := make([]string, 5)
	for i := range silent {
		l, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: connections hang
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		silent[i] = l.Addr().String()
	}
	const ghosts = 300
	for i := range ghosts {
		addr := refused
		if i%6 == 0 {
			addr = silent[i%len(silent)]
		}
		put(fmt.Sprintf("/shoal/members/ghost-%03d", i),
			fmt.Sprintf(`{"name":"ghost-%03d","instance":"g","client":"%s","peer":"%s","gossip":"%s"}`, i, addr, addr, addr))
	}
	want := map[string]string{
		"cluster_members":                "3",
		"cluster_members_unseen":         strconv.Itoa(ghosts),
		"cluster_shards":                 "4096",
		"cluster_config_rejected":        "1",
		"cluster_config_refused":         "1",
		"cluster_member_records_ignored": strconv.Itoa(len(junk)),
	}
	waitStats(t, nodes, want)

	// Memory stays flat: no table sized by five million shards.
	for i, n := range nodes {
		rss := rssKB(t, n.cmd.Process.Pid)
		t.Logf("%s: RSS %d MB before, %d MB after", n.name, rssBefore[i]>>10, rss>>10)
		if rss > rssBefore[i]+64<<10 {
			t.Errorf("%s: RSS grew from %d to %d MB", n.name, rssBefore[i]>>10, rss>>10)
		}
	}
	m, err := statsread.Metrics(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	for series, v := range map[string]float64{
		"shoal_config_rejected_total": 1, "shoal_config_refused": 1,
		"shoal_member_records_rejected_total": float64(len(junk)), "shoal_cluster_members_unseen": ghosts,
	} {
		if m[series] != v {
			t.Errorf("/metrics %s = %v, want %v", series, m[series], v)
		}
	}
	setGetEverywhere(t, "ghosts", nodes, 100)

	// A real node joins: it keeps the cluster's settings, becomes an owner
	// and serves.
	n4 := startPeerNode(t, endpoints, "n4", "--replicas", "2")
	nodes = append(nodes, n4)
	names = append(names, "n4")
	testutil.WaitUntil(t, 20*time.Second, "converged with n4", func() (bool, string) { return converged(procsOf(nodes), names...) })
	want["cluster_members"] = "4"
	waitStats(t, nodes, want)
	if st := clusterStats(nodes[0].addr); st["member:n4:primary_shards"] == "0" || st["member:n4:primary_shards"] == "" {
		t.Errorf("n4 is the primary of %q shards in n1's ring", st["member:n4:primary_shards"])
	}
	setGetEverywhere(t, "n4 joined", nodes, 100)
}

// waitStats waits until every node's "stats cluster" has the values want.
func waitStats(t *testing.T, nodes []*pnode, want map[string]string) {
	t.Helper()
	testutil.WaitUntil(t, 20*time.Second, "stats cluster as wanted", func() (bool, string) {
		for _, n := range nodes {
			st := clusterStats(n.addr)
			for k, v := range want {
				if st[k] != v {
					return false, fmt.Sprintf("%s: %s=%q, want %q", n.name, k, st[k], v)
				}
			}
		}
		return true, ""
	})
}

// setGetEverywhere sets count keys through each node and reads each one
// back through every node: any error fails the test.
func setGetEverywhere(t *testing.T, what string, nodes []*pnode, count int) {
	t.Helper()
	clients := make([]*memcache.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = mc(n.addr, 1)
	}
	failed := 0
	for i, c := range clients {
		for k := range count {
			key := fmt.Sprintf("%s-%s-%d", strings.ReplaceAll(what, " ", "-"), nodes[i].name, k)
			if err := c.Set(&memcache.Item{Key: key, Value: []byte(key)}); err != nil {
				if failed++; failed <= 5 {
					t.Errorf("%s: set %s through %s: %v", what, key, nodes[i].name, err)
				}
				continue
			}
			for j, r := range clients {
				if it, err := r.Get(key); err != nil || string(it.Value) != key {
					if failed++; failed <= 5 {
						t.Errorf("%s: get %s through %s: %v", what, key, nodes[j].name, err)
					}
				}
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%s: %d of %d operations failed", what, failed, count*len(nodes)*(len(nodes)+1))
	}
}

// rssKB is the resident set size of process pid, in kB.
func rssKB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
