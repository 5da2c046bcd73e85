package cluster

// Helpers for the failure tests and cluster benchmarks: an etcd run as a
// child process (so it can be SIGSTOPped), shoal nodes started on fixed
// ports (so a restart reuses them, as an operator would), and memcache
// clients with timeouts long enough that a failure is the product's.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/testutil"
	"shoal/ring"
)

// etcdProc is Debian's etcd binary run as a child process.
type etcdProc struct {
	bin    string
	args   []string
	cmd    *exec.Cmd
	client string // host:port
	stderr *bytes.Buffer
	done   chan struct{}
}

// startEtcdProc runs the etcd binary on free loopback ports with a temp data
// dir; it skips the test when etcd is not installed.
func startEtcdProc(t testing.TB) *etcdProc {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd binary not installed (apt package etcd-server): ", err)
	}
	client, peer := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cu, pu := "http://"+client, "http://"+peer
	e := &etcdProc{bin: bin, client: client, stderr: &bytes.Buffer{}, args: []string{
		"--name", "shoal-test",
		"--data-dir", t.TempDir(),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "shoal-test=" + pu,
		"--heartbeat-interval", "10", "--election-timeout", "100", // one member: leader at once
		"--log-level", "error", "--logger", "zap",
	}}
	t.Cleanup(func() {
		if e.done == nil {
			return // it never started
		}
		e.signal(syscall.SIGCONT)
		e.signal(syscall.SIGKILL)
		<-e.done
		if t.Failed() {
			t.Logf("etcd output:\n%s", e.stderr.String())
		}
	})
	e.run(t)
	return e
}

// run starts the etcd process and waits until it is healthy.
func (e *etcdProc) run(t testing.TB) {
	t.Helper()
	cmd, done := exec.Command(e.bin, e.args...), make(chan struct{})
	cmd.Stderr = e.stderr
	cmd.Stdout = e.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd, e.done = cmd, done
	go func() { cmd.Wait(); close(done) }()
	hc := &http.Client{Timeout: time.Second}
	testutil.WaitUntil(t, 20*time.Second, "etcd healthy", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("etcd exited at start: %s", e.stderr.String())
		default:
		}
		resp, err := hc.Get("http://" + e.client + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

// kill ends the etcd process at once, as a crash does.
func (e *etcdProc) kill() {
	e.signal(syscall.SIGKILL)
	<-e.done
}

// restart runs etcd again on its ports and data, once kill has ended it.
func (e *etcdProc) restart(t testing.TB) {
	t.Helper()
	testutil.WaitUntil(t, 5*time.Second, "etcd's client port free for the restart", func() (bool, string) {
		l, err := net.Listen("tcp", e.client)
		if err != nil {
			return false, err.Error()
		}
		l.Close()
		return true, ""
	})
	e.run(t)
}

func (e *etcdProc) endpoints() string { return "http://" + e.client }

func (e *etcdProc) signal(sig syscall.Signal) {
	select {
	case <-e.done:
	default:
		e.cmd.Process.Signal(sig)
	}
}

// pnode is a shoal process with fixed client and peer addresses.
type pnode struct {
	*proc
	peerAddr string
	args     []string // extra flags, kept for restarts
}

// startNodeAt runs shoal as node name on client address addr, joined to the
// etcd at endpoints (comma separated). Like startProc, it passes
// --lease-ttl 2 first, so extra flags given later override it.
func startNodeAt(t testing.TB, endpoints, name, addr string, extra ...string) *proc {
	t.Helper()
	return runNode(t, name, addr, exec.Command(shoalBinary(t), nodeArgs(endpoints, name, addr, extra...)...))
}

// nodeArgs are shoal's flags for node name on client address addr
// (its port), --lease-ttl 2, then extra.
func nodeArgs(endpoints, name, addr string, extra ...string) []string {
	_, port, _ := net.SplitHostPort(addr)
	return append([]string{
		"-p", port, "-m", "16", "--node", name, "--lease-ttl", "2",
		"--etcd", endpoints,
	}, extra...)
}

// runNode starts cmd, a shoal node named name serving clients on addr,
// and kills it (SIGCONT first, should it be stopped) in t.Cleanup.
func runNode(t testing.TB, name, addr string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, addr: addr, cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() || os.Getenv("SHOAL_TEST_STDERR") != "" {
			t.Logf("%s (pid %d) stderr:\n%s", name, cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

// startPeerNode starts a clustered node on fresh client and peer ports.
func startPeerNode(t testing.TB, endpoints, name string, extra ...string) *pnode {
	t.Helper()
	n := &pnode{peerAddr: testutil.FreeAddr(t)}
	n.args = append([]string{"--peer", n.peerAddr}, extra...)
	n.proc = startNodeAt(t, endpoints, name, testutil.FreeAddr(t), n.args...)
	return n
}

// restart starts a new process with the same name, client port, peer port
// and flags; the old one must have exited.
func (n *pnode) restart(t testing.TB, endpoints string) {
	t.Helper()
	select {
	case <-n.done:
	default:
		t.Fatalf("restart of %s while it is still running", n.name)
	}
	// The ports were released by the old process; wait until the client
	// port is free to bind (it should be at once).
	testutil.WaitUntil(t, 5*time.Second, n.name+"'s client port free for the restart", func() (bool, string) {
		l, err := net.Listen("tcp", n.addr)
		if err != nil {
			return false, err.Error()
		}
		l.Close()
		return true, ""
	})
	n.proc = startNodeAt(t, endpoints, n.name, n.addr, n.args...)
}

func procsOf(nodes []*pnode) []*proc {
	ps := make([]*proc, len(nodes))
	for i, n := range nodes {
		ps[i] = n.proc
	}
	return ps
}

// mc is a memcache client with a 3 s timeout and enough idle connections
// for conc concurrent users (no connection churn under load).
// clientsOf returns one gomemcache client per node, in order.
func clientsOf(nodes []*pnode) []*memcache.Client {
	clients := make([]*memcache.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = mc(n.addr, 1)
	}
	return clients
}

func mc(addr string, conc int) *memcache.Client {
	c := memcache.New(addr)
	c.Timeout = 3 * time.Second
	if conc > 2 {
		c.MaxIdleConns = conc
	}
	return c
}

// waitReplicated waits until every key holds value(key) in the stores of
// at least two nodes, read through their peer ports.
// seed sets every key to value(key) through the first node and waits
// until each is on two nodes.
func seed(t testing.TB, nodes []*pnode, keys []string, value func(string) string) {
	t.Helper()
	c := mc(nodes[0].addr, 1)
	for _, k := range keys {
		if err := c.Set(&memcache.Item{Key: k, Value: []byte(value(k))}); err != nil {
			t.Fatalf("set %s through n1: %v", k, err)
		}
	}
	waitReplicated(t, nodes, keys, value, 20*time.Second)
}

// ownersOf returns the owners of a key in the ring of n1, n2, n3 with two
// replicas, as the cluster computes them (default ring config).
func ownersOf(t testing.TB) func(key string) []string {
	t.Helper()
	rg, err := ring.New(ring.Config{Replicas: 2}, []string{"n1", "n2", "n3"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return func(k string) []string { return rg.Owners(rg.Shard([]byte(k))) }
}

func waitReplicated(t testing.TB, nodes []*pnode, keys []string, value func(string) string, timeout time.Duration) {
	t.Helper()
	peers := make([]*memcache.Client, len(nodes))
	for i, n := range nodes {
		peers[i] = mc(n.peerAddr, 1)
	}
	testutil.WaitUntil(t, timeout, "every key on two nodes", func() (bool, string) {
		counts := make(map[string]int, len(keys))
		for i, p := range peers {
			got, err := p.GetMulti(keys)
			if err != nil {
				return false, fmt.Sprintf("peer port of %s: %v", nodes[i].name, err)
			}
			for k, it := range got {
				if string(it.Value) == value(k) {
					counts[k]++
				}
			}
		}
		for _, k := range keys {
			if counts[k] < 2 {
				return false, fmt.Sprintf("%s on %d nodes", k, counts[k])
			}
		}
		return true, ""
	})
}

// errKind names a get/set outcome for reports.
func errKind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, memcache.ErrCacheMiss):
		return "miss"
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		s := err.Error()
		if strings.Contains(s, "connection refused") {
			return "refused"
		}
		return "error"
	}
}

// examples keeps the first few lines of a kind, and counts the rest.
type examples struct {
	max   int
	n     int
	lines []string
}

func (e *examples) add(format string, args ...any) {
	e.n++
	if len(e.lines) < e.max {
		e.lines = append(e.lines, fmt.Sprintf(format, args...))
	}
}

func (e *examples) String() string {
	if e.n == 0 {
		return "none"
	}
	s := fmt.Sprintf("%d, first %d:\n\t%s", e.n, len(e.lines), strings.Join(e.lines, "\n\t"))
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
