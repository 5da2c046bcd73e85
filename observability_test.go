package main

// End-to-end tests of the HTTP endpoints (--http): a node started in
// process the way main does, driven with a raw memcached client, observed
// through /metrics, /cluster and the page in headless Chromium.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/statsread"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/monitor"
	"shoal/node"
)

// httpGet returns the body of GET url.
func httpGet(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b
}

// scrapeMetrics returns the unlabelled and labelled samples of /metrics.
func scrapeMetrics(t testing.TB, httpAddr string) map[string]float64 {
	t.Helper()
	m, err := statsread.Metrics(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func clusterView(t testing.TB, httpAddr string) monitor.View {
	t.Helper()
	var v monitor.View
	if err := json.Unmarshal(httpGet(t, "http://"+httpAddr+"/cluster"), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// roundTrip writes req to nc and reads n reply lines.
func roundTrip(t testing.TB, nc net.Conn, r *bufio.Reader, req string, n int) string {
	t.Helper()
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(line)
	}
	return out.String()
}

// statsOf sends "stats" and returns its lines by name.
func statsOf(t testing.TB, nc net.Conn, r *bufio.Reader) map[string]string {
	t.Helper()
	if _, err := io.WriteString(nc, "stats\r\n"); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "END" {
			return out
		}
		if len(f) == 3 && f[0] == "STAT" {
			out[f[1]] = f[2]
		}
	}
}

func TestHTTPStandalone(t *testing.T) {
	t.Parallel()
	h := testutil.FreeAddr(t)
	addr := startNode(t, "--http", h)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	before := scrapeMetrics(t, h)
	const sets = 200
	for i := range sets {
		roundTrip(t, nc, r, "set k"+strconv.Itoa(i)+" 0 0 5\r\nhello\r\n", 1)
	}
	for i := range sets {
		roundTrip(t, nc, r, "get k"+strconv.Itoa(i)+"\r\n", 3)
	}
	roundTrip(t, nc, r, "get missing\r\n", 1)

	m := scrapeMetrics(t, h)
	for series, want := range map[string]float64{
		"shoal_get_hits_total":                sets,
		"shoal_get_misses_total":              1,
		`shoal_commands_total{command="set"}`: sets,
		`shoal_commands_total{command="get"}`: sets + 1,
		"shoal_items":                         sets,
		"shoal_connections":                   1,
		"shoal_limit_bytes":                   64 << 20,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v (before: %v)", series, m[series], want, before[series])
		}
	}
	if m["shoal_bytes"] <= 0 || m["shoal_read_bytes_total"] <= before["shoal_read_bytes_total"] {
		t.Errorf("bytes %v, read %v", m["shoal_bytes"], m["shoal_read_bytes_total"])
	}
	// 401 commands: the sampler (about 1 in 64) timed some of them.
	sampled := m[`shoal_command_duration_seconds_count{family="get"}`] + m[`shoal_command_duration_seconds_count{family="set"}`]
	if sampled < 1 || sampled > 2*sets {
		t.Errorf("%v latency samples for %d commands", sampled, 2*sets+1)
	}
	// The stats command reads the same counters under memcached's names.
	st := statsOf(t, nc, r)
	for stat, series := range map[string]string{
		"get_hits": "shoal_get_hits_total", "get_misses": "shoal_get_misses_total",
		"curr_items": "shoal_items", "limit_maxbytes": "shoal_limit_bytes", "total_connections": "shoal_connections_total",
	} {
		if st[stat] != strconv.FormatFloat(m[series], 'f', -1, 64) {
			t.Errorf("stats %s = %s, /metrics %s = %v", stat, st[stat], series, m[series])
		}
	}
	v := clusterView(t, h)
	if v.Mode != "standalone" || v.Node != addr || len(v.Members) != 1 || !v.Members[0].Self ||
		v.Stats.CurrItems != sets || v.Stats.GetHits != sets || v.Stats.HitRatio != float64(sets)/(sets+1) {
		t.Errorf("/cluster = %+v", v)
	}
	if page := httpGet(t, "http://"+h+"/"); !bytes.Contains(page, []byte("<title>shoal cluster</title>")) {
		t.Errorf("/ is not the page")
	}
}

// startHTTPCluster runs nodes in process, joined through a real etcd, each
// with --http, and waits until every node sees every member alive.
func startHTTPCluster(t *testing.T, names ...string) []string {
	t.Helper()
	etcd := testetcd.Start(t)
	var https []string
	for _, name := range names {
		h := testutil.FreeAddr(t)
		startNode(t, "--node", name, "--http", h, "-m", "16", "--lease-ttl", "2",
			"--etcd", strings.Join(etcd.Endpoints(), ","))
		https = append(https, h)
	}
	testutil.WaitUntil(t, 20*time.Second, "every member alive in every /cluster", func() (bool, string) {
		for i, h := range https {
			v := clusterView(t, h)
			for _, m := range v.Members {
				if m.Health != "alive" {
					return false, names[i] + " sees " + m.Name + " as " + m.Health
				}
			}
			if len(v.Members) != len(names) {
				return false, names[i] + " sees " + strconv.Itoa(len(v.Members)) + " members"
			}
		}
		return true, ""
	})
	return https
}

func TestHTTPCluster(t *testing.T) {
	t.Parallel()
	https := startHTTPCluster(t, "alpha", "bravo")
	v := clusterView(t, https[1])
	if v.Mode != "cluster" || v.Node != "bravo" || v.Epoch == 0 || v.Fenced || v.Shards != node.ShardCount {
		t.Fatalf("/cluster = %+v", v)
	}
	owned := 0
	for _, m := range v.Members {
		owned += m.PrimaryShards
		if !m.Etcd || m.Self != (m.Name == "bravo") || m.OwnedShards == 0 {
			t.Errorf("member %+v", m)
		}
	}
	if owned != node.ShardCount {
		t.Errorf("primaries add to %d, want %d", owned, node.ShardCount)
	}
	m := scrapeMetrics(t, https[1])
	for _, series := range []string{
		`shoal_member_up{member="alpha",source="gossip"}`, `shoal_member_up{member="alpha",source="etcd"}`,
		`shoal_member_up{member="bravo",source="gossip"}`, `shoal_member_up{member="bravo",source="etcd"}`,
	} {
		if m[series] != 1 {
			t.Errorf("%s = %v, want 1", series, m[series])
		}
	}
	// Scraped after the page was read: the epoch may only have moved on
	// (a view published in between, CI saw 6 against the page's 5).
	if m["shoal_cluster_epoch"] < float64(v.Epoch) || m["shoal_cluster_fenced"] != 0 || m["shoal_cluster_members"] != 2 {
		t.Errorf("epoch %v (page: %d) fenced %v members %v", m["shoal_cluster_epoch"], v.Epoch, m["shoal_cluster_fenced"], m["shoal_cluster_members"])
	}
}

// TestClusterPageInChromium renders the page in headless Chromium (Debian's
// chromium package; skipped when absent): --dump-dom proves the script
// fetched /cluster and drew every member, and a screenshot is taken. Set
// SHOAL_SCREENSHOT=path to keep the screenshot for a look.
func TestClusterPageInChromium(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	https := startHTTPCluster(t, "alpha", "bravo")
	url := "http://" + https[0] + "/"
	chromium := func(extra ...string) []byte {
		args := append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
		}, extra...)
		cmd := exec.Command(bin, append(args, url)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return out
	}
	// One run renders the page, prints its DOM and takes the screenshot
	// (two runs took 7 s of the package's 14).
	png := filepath.Join(t.TempDir(), "cluster.png")
	dom := chromium("--dump-dom", "--screenshot="+png, "--window-size=1200,800")
	for _, want := range []string{`<td class="member">alpha`, `<td class="member">bravo`, "(this node)", `class="badge alive"`, "hit ratio"} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("rendered DOM lacks %q:\n%s", want, dom)
		}
	}
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10_000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is %d bytes, not a rendered page", len(b))
	}
	if keep := os.Getenv("SHOAL_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClusterWatchLines: a cluster node's watch lines say what its store
// holds (server.Config.Items): the size class of a value set through the
// router, and the item a write replaces, as a standalone node's do.
func TestClusterWatchLines(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	addr := startNode(t, "--node", "solo", "-m", "16", "--lease-ttl", "2", "--etcd", strings.Join(etcd.Endpoints(), ","))
	testutil.WaitUntil(t, 20*time.Second, "the node on its ring", func() (bool, string) {
		st := statsread.Dial(addr, "cluster")
		return st["cluster_members"] == "1", st["cluster_members"] + " members"
	})
	w, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(w, "watch fetchers mutations\r\n")
	wr := bufio.NewReader(w)
	if ok, _ := wr.ReadString('\n'); ok != "OK\r\n" {
		t.Fatalf("watch: %q", ok)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cr := bufio.NewReader(c)
	for _, set := range []string{"set k 0 0 3\r\nabc\r\n", "set k 0 0 4\r\ndefg\r\n"} {
		io.WriteString(c, set)
		if got, err := cr.ReadString('\n'); err != nil || got != "STORED\r\n" {
			t.Fatalf("set: %q %v", got, err)
		}
	}
	var lines []string
	for range 4 {
		l, err := wr.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, l)
	}
	store := regexp.MustCompile(`type=item_store key=k status=stored cmd=set ttl=0 clsid=[1-9]\d* `)
	replaced := regexp.MustCompile(`type=item_get key=k status=found clsid=[1-9]\d* cfd=\d+ size=3\n`)
	if !store.MatchString(lines[1]) || !replaced.MatchString(lines[2]) || !store.MatchString(lines[3]) {
		t.Fatalf("lines:\n%q", lines)
	}
}
