package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/cluster"
	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/membership"
	"shoal/server"
	"shoal/store"
)

type fakeStats struct{ snap server.Snapshot }

func (f fakeStats) Stats() server.Snapshot { return f.snap }

type fakeCluster struct{ st membership.Status }

func (f fakeCluster) Status() membership.Status { return f.st }

// fakePeers is a cluster node's per-peer counters, with zero takeover
// counters.
type fakePeers []cluster.PeerStats

func (f fakePeers) PeerStats() []cluster.PeerStats { return f }
func (f fakePeers) Counters() cluster.Counters     { return cluster.Counters{} }

func testSnapshot() server.Snapshot {
	s := server.Snapshot{
		Store:            store.Stats{CurrItems: 3, Bytes: 300, LimitMaxbytes: 64 << 20, Evictions: 2, Reclaimed: 1},
		Commands:         map[string]int64{"cmd_get": 10, "get_hits": 6, "get_misses": 4, "bytes_read": 99},
		CurrConnections:  2,
		TotalConnections: 5,
		Uptime:           90 * time.Second,
	}
	s.Latency[server.FamGet].Buckets[2] = 3 // three samples ≤ 5µs
	s.Latency[server.FamGet].Buckets[len(server.LatencyBounds)] = 1
	s.Latency[server.FamGet].Count = 4
	s.Latency[server.FamGet].Sum = 2 * time.Second
	return s
}

func testCluster() fakeCluster {
	return fakeCluster{membership.Status{
		Node: "a", Epoch: 42, Shards: 8, Replicas: 2,
		Members: []membership.MemberStatus{
			{Name: "a", Addr: "127.0.0.1:1", Health: gossip.Alive, PrimaryShards: 4, OwnedShards: 8},
			{Name: `b"x`, Addr: "127.0.0.1:2", Health: gossip.Suspect, PrimaryShards: 4, OwnedShards: 8},
		},
		Unseen:   300,
		Rejected: etcdsync.Rejections{Config: 3, ConfigRefused: true, Members: 7, MembersIgnored: 5},
	}}
}

// scrape returns every sample line of m's /metrics output by series.
func scrape(t *testing.T, m *Monitor) map[string]string {
	t.Helper()
	var b strings.Builder
	m.WritePrometheus(&b)
	out := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("malformed line %q", line)
		}
		out[line[:i]] = line[i+1:]
	}
	return out
}

func TestMetrics(t *testing.T) {
	m, err := New(Config{Node: "a", Version: "v", Stats: fakeStats{testSnapshot()}, Cluster: testCluster()})
	if err != nil {
		t.Fatal(err)
	}
	got := scrape(t, m)
	want := map[string]string{
		"shoal_get_hits_total":                            "6",
		"shoal_get_misses_total":                          "4",
		`shoal_commands_total{command="get"}`:             "10",
		"shoal_read_bytes_total":                          "99",
		"shoal_items":                                     "3",
		"shoal_bytes":                                     "300",
		"shoal_limit_bytes":                               "67108864",
		"shoal_evictions_total":                           "2",
		"shoal_reclaimed_total":                           "1",
		"shoal_connections":                               "2",
		"shoal_connections_total":                         "5",
		"shoal_uptime_seconds":                            "90",
		"shoal_cluster_epoch":                             "42",
		"shoal_cluster_fenced":                            "0",
		"shoal_cluster_members":                           "2",
		"shoal_cluster_members_unseen":                    "300",
		"shoal_config_rejected_total":                     "3",
		"shoal_config_refused":                            "1",
		"shoal_member_records_rejected_total":             "7",
		"shoal_member_records_ignored":                    "5",
		`shoal_member_up{member="a",source="etcd"}`:       "1",
		`shoal_member_up{member="a",source="gossip"}`:     "1",
		`shoal_member_up{member="b\"x",source="gossip"}`:  "0",
		`shoal_member_shards{member="a",role="primary"}`:  "4",
		`shoal_member_shards{member="b\"x",role="owned"}`: "8",
		`shoal_command_duration_seconds_bucket{family="get",le="0.0000025"}`: "0",
		`shoal_command_duration_seconds_bucket{family="get",le="0.000005"}`:  "3",
		`shoal_command_duration_seconds_bucket{family="get",le="1"}`:         "3",
		`shoal_command_duration_seconds_bucket{family="get",le="+Inf"}`:      "4",
		`shoal_command_duration_seconds_count{family="get"}`:                 "4",
		`shoal_command_duration_seconds_sum{family="get"}`:                   "2",
		`shoal_command_duration_seconds_count{family="meta_set"}`:            "0",
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %q, want %q", series, got[series], v)
		}
	}
	for series := range got {
		if strings.HasPrefix(series, "shoal_forward") || strings.HasPrefix(series, "shoal_replication") {
			t.Errorf("per-peer series %s exported without a peer source", series)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime series")
	}
}

func TestMetricsStandaloneHasNoClusterSeries(t *testing.T) {
	m, err := New(Config{Node: "a", Stats: fakeStats{testSnapshot()}})
	if err != nil {
		t.Fatal(err)
	}
	for series := range scrape(t, m) {
		if strings.HasPrefix(series, "shoal_cluster_") || strings.HasPrefix(series, "shoal_member_") {
			t.Errorf("standalone node exports %s", series)
		}
	}
}

func TestPeerSeries(t *testing.T) {
	peers := fakePeers{{Peer: "b", Forwarded: 7, Failures: 1, ReplLag: 1500 * time.Millisecond, ReplQueueDrops: 3}}
	m, err := New(Config{Node: "a", Stats: fakeStats{testSnapshot()}, Cluster: testCluster(), Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	got := scrape(t, m)
	for series, v := range map[string]string{
		`shoal_forwarded_total{peer="b"}`:               "7",
		`shoal_forward_failures_total{peer="b"}`:        "1",
		`shoal_replication_lag_seconds{peer="b"}`:       "1.5",
		`shoal_replication_queue_drops_total{peer="b"}`: "3",
	} {
		if got[series] != v {
			t.Errorf("%s = %q, want %q", series, got[series], v)
		}
	}
	if v := m.View(); len(v.Peers) != 1 || v.Peers[0].ReplLagSeconds != 1.5 {
		t.Errorf("view peers = %+v", v.Peers)
	}
}

// takeoverPeers is fakePeers with takeover counters.
type takeoverPeers struct {
	fakePeers
	t cluster.Counters
}

func (p takeoverPeers) Counters() cluster.Counters { return p.t }

func TestTakeoverSeries(t *testing.T) {
	peers := takeoverPeers{fakePeers{{Peer: "b", ReplLagSeq: 12, ReplQueueBytes: 4096}}, cluster.Counters{
		WarmShards: 4, Pulled: 100, Dropped: 7, ReadThrough: 9, Pauses: 1, Lapses: 3, ReplicaWrites: 55, ReplicaStaleEpochs: 2,
		MultiGetHeld: 1024, MultiGetHeldPeak: 8192,
	}}
	m, err := New(Config{Node: "a", Stats: fakeStats{testSnapshot()}, Cluster: testCluster(), Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	got := scrape(t, m)
	for series, v := range map[string]string{
		"shoal_warm_shards":                         "4",
		"shoal_warm_pulled_items_total":             "100",
		"shoal_warm_dropped_items_total":            "7",
		"shoal_warm_read_through_total":             "9",
		"shoal_pauses_total":                        "1",
		"shoal_lapses_total":                        "3",
		"shoal_replica_writes_total":                "55",
		"shoal_replica_stale_epochs_total":          "2",
		"shoal_multiget_held_bytes":                 "1024",
		"shoal_multiget_held_peak_bytes":            "8192",
		`shoal_replication_lag_sequences{peer="b"}`: "12",
		`shoal_replication_queue_bytes{peer="b"}`:   "4096",
	} {
		if got[series] != v {
			t.Errorf("%s = %q, want %q", series, got[series], v)
		}
	}
	// A standalone node (no Peers) has no such series.
	m, err = New(Config{Node: "a", Stats: fakeStats{testSnapshot()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scrape(t, m)["shoal_warm_shards"]; ok {
		t.Error("shoal_warm_shards exported by a standalone node")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]Config{
		"no node":  {Stats: fakeStats{}},
		"no stats": {Node: "a"},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
}

// TestHTTP serves every endpoint over a real listener and stops cleanly.
func TestHTTP(t *testing.T) {
	m, err := New(Config{Node: "a", Version: "v", Stats: fakeStats{testSnapshot()}, Cluster: testCluster()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (string, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return resp.Header.Get("Content-Type"), string(b)
	}
	if ct, body := get("/metrics"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(body, "# TYPE shoal_get_hits_total counter\nshoal_get_hits_total 6\n") {
		t.Errorf("/metrics: %s\n%.300s", ct, body)
	}
	ct, body := get("/cluster")
	var v View
	if err := json.Unmarshal([]byte(body), &v); err != nil || ct != "application/json" {
		t.Fatalf("/cluster: %s %v\n%s", ct, err, body)
	}
	if v.Mode != "cluster" || v.Epoch != 42 || len(v.Members) != 2 || !v.Members[0].Self || v.Members[1].Health != "suspect" || v.Stats.HitRatio != 0.6 {
		t.Errorf("/cluster = %+v", v)
	}
	if v.MembersUnseen != 300 || v.Rejected == nil || *v.Rejected != (RejectedView{Config: 3, ConfigRefused: true, Members: 7, MembersIgnored: 5}) {
		t.Errorf("/cluster: unseen %d, rejected %+v", v.MembersUnseen, v.Rejected)
	}
	for _, path := range []string{"/", "/cluster.html"} {
		if ct, body := get(path); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `fetch("cluster"`) {
			t.Errorf("%s: %s", path, ct)
		}
	}
	if resp, err := http.Get(base + "/nope"); err != nil || resp.StatusCode != 404 {
		t.Errorf("/nope: %v %v", resp, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

// TestPageIsSelfContained guards against external assets creeping in.
func TestPageIsSelfContained(t *testing.T) {
	for _, ref := range []string{"http://", "https://", "src=", "<link", "@import"} {
		if strings.Contains(string(page), ref) {
			t.Errorf("page refers to %q", ref)
		}
	}
}

// TestSeveralMonitors checks that two nodes in one process keep separate sets.
func TestSeveralMonitors(t *testing.T) {
	a, _ := New(Config{Node: "a", Stats: fakeStats{testSnapshot()}})
	snap := testSnapshot()
	snap.Commands = map[string]int64{"get_hits": 1}
	b, _ := New(Config{Node: "b", Stats: fakeStats{snap}})
	if a.Set() == b.Set() {
		t.Fatal("monitors share a set")
	}
	if ga, gb := scrape(t, a)["shoal_get_hits_total"], scrape(t, b)["shoal_get_hits_total"]; ga != "6" || gb != "1" {
		t.Fatalf("get hits a=%s b=%s", ga, gb)
	}
}
