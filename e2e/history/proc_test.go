package history

// Real processes for the history test: the shoal binary, Debian's etcd,
// both on fixed loopback ports so that a restart reuses them, as an
// operator would.
//
// Copied and adapted from e2e/cluster's cluster_test.go and
// etcdproc_test.go (shoalBinary, etcdProc, runNode, nodeArgs, clusterStats,
// converged): a package cannot import another's test files. Free ports and
// waiting on a condition come from internal/testutil; etcd is the binary
// here, not internal/testetcd's embedded one, because the faults kill and
// restart it as a process.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shoal/internal/netns"
	"shoal/internal/statsread"
	"shoal/internal/testbin"
	"shoal/internal/testutil"
)

// shoalBinary is the shoal command, built once for the whole test run.
func shoalBinary(t testing.TB) string { return testbin.Path(t) }

// waitFree waits until addr can be bound again (a killed process's ports).
func waitFree(t testing.TB, addr string) {
	t.Helper()
	testutil.WaitUntil(t, 10*time.Second, addr+" free", func() (bool, string) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		l.Close()
		return true, ""
	})
}

// proc is one child process; done closes when it has exited.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer // guarded by the exec package's copying goroutine until done
	done   chan struct{}
}

func start(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// kill SIGCONTs (should it be stopped), SIGKILLs and waits.
func (p *proc) kill() {
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// etcd is Debian's etcd binary on fixed ports and data dir.
type etcd struct {
	bin, dir, client, peer string
	p                      *proc
}

// startEtcd runs etcd on free ports of host (127.0.0.1, or the bridge's
// address when nodes run in network namespaces).
func startEtcd(t testing.TB, host string) *etcd {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd binary not installed (apt package etcd-server): ", err)
	}
	e := &etcd{bin: bin, dir: t.TempDir(), client: testutil.FreeAddrOn(t, host), peer: testutil.FreeAddr(t)}
	e.start(t)
	t.Cleanup(func() {
		e.p.kill()
		if t.Failed() {
			t.Logf("etcd output:\n%s", e.p.stderr.String())
		}
	})
	return e
}

func (e *etcd) endpoints() string { return "http://" + e.client }

// start runs etcd (again: same name, ports and data) and waits until healthy.
func (e *etcd) start(t testing.TB) {
	t.Helper()
	cu, pu := "http://"+e.client, "http://"+e.peer
	e.p = start(t, exec.Command(e.bin,
		"--name", "shoal-history",
		"--data-dir", e.dir,
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "shoal-history="+pu,
		"--log-level", "error", "--logger", "zap"))
	hc := &http.Client{Timeout: time.Second}
	testutil.WaitUntil(t, 20*time.Second, "etcd healthy", func() (bool, string) {
		if e.p.exited() {
			t.Fatalf("etcd exited at start: %s", e.p.stderr.String())
		}
		resp, err := hc.Get(cu + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

// node is a shoal process with fixed client and peer addresses; up says
// whether clients may send to it (the injector clears it while the node
// is down or stopped).
type node struct {
	name, addr, peerAddr string
	args                 []string
	up                   atomic.Bool
	host                 int        // index of a host in nn; -1 on loopback
	nn                   *netns.Net // nil on loopback
	// incarnation counts starts: clients drop connections to an earlier
	// process (a pooled connection to a killed one fails on first use,
	// which is the client library's doing, not the cluster's).
	incarnation atomic.Int64

	mu sync.Mutex // guards p across restarts
	p  *proc
	// gone: every stderr of earlier incarnations, for a failure report
	gone []string
}

func (n *node) proc() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// startNode runs shoal as node name with --replicas 2 on the cluster's
// etcd: on fresh loopback ports, or on a free host of the cluster's
// network namespaces when it has them. It is killed in t.Cleanup.
func startNode(t testing.TB, cl *cluster, name string, extra ...string) *node {
	t.Helper()
	n := &node{name: name, host: -1}
	if cl.nn != nil {
		n.host = cl.takeHost(t)
		ip := cl.nn.Addr(n.host)
		n.addr, n.peerAddr = net.JoinHostPort(ip, "11211"), net.JoinHostPort(ip, "11311")
		extra = append([]string{"-l", ip}, extra...)
	} else {
		n.addr, n.peerAddr = testutil.FreeAddr(t), testutil.FreeAddr(t)
	}
	n.nn = cl.nn
	_, port, _ := net.SplitHostPort(n.addr)
	n.args = append([]string{
		"-p", port, "-m", "16", "--node", name, "--replicas", "2", "-v", // -v: info lines (hand-backs, re-verifies) in the logs a failure prints
		"--peer", n.peerAddr, "--etcd", cl.etcd.endpoints(),
	}, extra...)
	n.run(t)
	t.Cleanup(func() {
		p := n.proc()
		p.kill()
		if t.Failed() {
			for i, s := range n.gone {
				t.Logf("%s incarnation %d stderr:\n%s", n.name, i+1, s)
			}
			t.Logf("%s (pid %d) stderr:\n%s", n.name, p.cmd.Process.Pid, p.stderr.String())
		}
		n.keepLogs(t, p)
	})
	return n
}

// keepLogs writes every incarnation's stderr to -logs, when set: the
// nodes' side of a run that passed but did something worth reading.
func (n *node) keepLogs(t testing.TB, p *proc) {
	if *logsFlag == "" {
		return
	}
	all := append(append([]string(nil), n.gone...), p.stderr.String())
	for i, s := range all {
		f := filepath.Join(*logsFlag, fmt.Sprintf("%s.%d.log", n.name, i+1))
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Errorf("keeping %s's log: %v", n.name, err)
		}
	}
}

func (n *node) run(t testing.TB) {
	cmd := exec.Command(shoalBinary(t), n.args...)
	if n.nn != nil {
		cmd = n.nn.Command(n.host, shoalBinary(t), n.args...) // ip netns exec: execs shoal, same pid
	}
	p := start(t, cmd)
	n.mu.Lock()
	if n.p != nil {
		n.gone = append(n.gone, n.p.stderr.String())
	}
	n.p = p
	n.mu.Unlock()
	n.incarnation.Add(1)
}

// restart starts a new process with the same name, ports and flags once
// the old one has exited and (on loopback) its ports are free.
func (n *node) restart(t testing.TB) {
	t.Helper()
	<-n.proc().done
	if n.nn == nil {
		waitFree(t, n.addr)
		waitFree(t, n.peerAddr)
	}
	n.run(t)
}

// clusterStats asks addr for "stats cluster"; nil when it does not answer.
func clusterStats(addr string) map[string]string { return statsread.Dial(addr, "cluster") }

// converged reports whether every node sees the same epoch and exactly
// these nodes as members, all alive, is not fenced and warms no shard:
// what "settled" means in the history.
func converged(nodes []*node) (bool, string) {
	var epoch string
	var seen []string
	for _, p := range nodes {
		st := clusterStats(p.addr)
		if st == nil {
			return false, p.name + " not answering"
		}
		seen = append(seen, fmt.Sprintf("%s: epoch=%s members=%s fenced=%s warming=%s", p.name, st["cluster_epoch"], st["cluster_members"], st["cluster_fenced"], st["warm_shards"]))
		if epoch == "" {
			epoch = st["cluster_epoch"]
		}
		if st["cluster_epoch"] != epoch || st["cluster_members"] != fmt.Sprint(len(nodes)) || st["cluster_fenced"] != "0" || st["warm_shards"] != "0" {
			return false, strings.Join(seen, "; ")
		}
		for _, m := range nodes {
			if h := st["member:"+m.name+":health"]; h != "alive" {
				return false, fmt.Sprintf("%s sees %s as %q", p.name, m.name, h)
			}
			if st["peer:"+m.name+":down"] == "1" {
				return false, fmt.Sprintf("%s skips %s after a failed request", p.name, m.name)
			}
		}
	}
	return true, strings.Join(seen, "; ")
}
