package cluster

// Cluster tests with real processes: the shoal binary, built once per test
// run, joined through a real (embedded) etcd, with memberlist over loopback.
// The nodes are observed the way an operator would, with "stats cluster".

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/statsread"
	"shoal/internal/testbin"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/ring"
)

func TestMain(m *testing.M) {
	// Six tests at once unless -parallel says otherwise: they mostly
	// wait, on processes starting, gossip and leases.
	testutil.Parallel(6)
	os.Exit(m.Run())
}

// shoalBinary is the shoal command, built once for the whole test run.
func shoalBinary(t testing.TB) string { return testbin.Path(t) }

// proc is one shoal process.
type proc struct {
	name, addr string
	cmd        *exec.Cmd
	stderr     *bytes.Buffer
	done       chan struct{}
}

// startProc runs shoal as node name on a free port, joined to etcd.
func startProc(t testing.TB, etcd *testetcd.Server, name string, extra ...string) *proc {
	t.Helper()
	return startNodeAt(t, strings.Join(etcd.Endpoints(), ","), name, testutil.FreeAddr(t), extra...)
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// clusterStats asks the node for "stats cluster"; nil when it does not answer.
func clusterStats(addr string) map[string]string { return statsread.Dial(addr, "cluster") }

// clusterStatsOn asks for "stats cluster" on c, then closes it.
func clusterStatsOn(c net.Conn) map[string]string { return statsread.On(c, "cluster") }

// converged reports whether every proc sees the same epoch and exactly the
// members named, all alive.
func converged(procs []*proc, members ...string) (bool, string) {
	var epoch string
	var seen []string
	for _, p := range procs {
		st := clusterStats(p.addr)
		if st == nil {
			return false, p.name + " not answering"
		}
		seen = append(seen, fmt.Sprintf("%s: epoch=%s members=%s", p.name, st["cluster_epoch"], st["cluster_members"]))
		if epoch == "" {
			epoch = st["cluster_epoch"]
		}
		if st["cluster_epoch"] != epoch || st["cluster_members"] != fmt.Sprint(len(members)) {
			return false, strings.Join(seen, "; ")
		}
		for _, m := range members {
			if h := st["member:"+m+":health"]; h != "alive" {
				return false, fmt.Sprintf("%s sees %s as %q", p.name, m, h)
			}
		}
	}
	return true, strings.Join(seen, "; ")
}

func TestClusterConverges(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	procs := []*proc{startProc(t, etcd, "n1"), startProc(t, etcd, "n2"), startProc(t, etcd, "n3")}
	testutil.WaitUntil(t, 20*time.Second, "converged on one ring", func() (bool, string) {
		return converged(procs, "n1", "n2", "n3")
	})
	// Same epoch means the same ring: every node reports the same shard
	// counts for every member.
	ref := clusterStats(procs[0].addr)
	for _, p := range procs[1:] {
		st := clusterStats(p.addr)
		for _, m := range []string{"n1", "n2", "n3"} {
			k := "member:" + m + ":primary_shards"
			if st[k] != ref[k] {
				t.Errorf("%s: %s = %s, n1 says %s", p.name, k, st[k], ref[k])
			}
		}
	}
}

// TestClusterKilledNode: kill -9 of a node is seen by gossip first (dead,
// still in the ring), then its lease expires and it leaves the ring. The
// lease TTL (15 s) is well over gossip's detection (~5 s), as in
// production (10 s by default): the lease expires 10 to 15 s after the
// kill, as keep-alives go every third of the TTL.
func TestClusterKilledNode(t *testing.T) {
	testutil.Long(t) // waits out the 15 s lease by design
	t.Parallel()
	etcd := testetcd.Start(t)
	ttl := []string{"--lease-ttl", "15"}
	procs := []*proc{startProc(t, etcd, "n1", ttl...), startProc(t, etcd, "n2", ttl...), startProc(t, etcd, "n3", ttl...)}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procs, "n1", "n2", "n3") })
	procs[2].signal(syscall.SIGKILL)
	<-procs[2].done
	live := procs[:2]
	killed := time.Now()
	dead := testutil.WaitUntil(t, 15*time.Second, "n3 marked dead by gossip while still in the ring", func() (bool, string) {
		for _, p := range live {
			st := clusterStats(p.addr)
			if st["cluster_members"] != "3" {
				return false, p.name + " dropped n3 from the ring before gossip marked it dead: " + st["cluster_members"]
			}
			if st["member:n3:health"] != "dead" {
				return false, p.name + " sees n3 as " + st["member:n3:health"]
			}
		}
		return true, ""
	})
	testutil.WaitUntil(t, 30*time.Second, "n3 out of the ring after its lease expired", func() (bool, string) {
		return converged(live, "n1", "n2")
	})
	t.Logf("after the kill: dead in gossip at %s, out of the ring at %s", ms(dead), ms(time.Since(killed)))
}

// TestClusterSurvivesEtcdRestart: with etcd down (killed: an embedded
// etcd closed gracefully kept its clients' streams, lease keep-alives
// among them, for 7 s) the nodes keep their last ring; when it returns
// they re-register and converge again.
func TestClusterSurvivesEtcdRestart(t *testing.T) {
	t.Parallel()
	etcd := startEtcdProc(t)
	ep := etcd.endpoints()
	procs := []*proc{startNodeAt(t, ep, "n1", testutil.FreeAddr(t)), startNodeAt(t, ep, "n2", testutil.FreeAddr(t)), startNodeAt(t, ep, "n3", testutil.FreeAddr(t))}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procs, "n1", "n2", "n3") })
	before := clusterStats(procs[0].addr)["cluster_epoch"]
	etcd.kill()
	// Past the 2 s lease TTL with etcd gone: the ring must not change.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			st := clusterStats(p.addr)
			if st == nil || st["cluster_epoch"] != before || st["cluster_members"] != "3" {
				t.Fatalf("%s changed its ring while etcd was down: %v", p.name, st)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	starting := time.Now()
	etcd.restart(t)
	t.Logf("etcd restarted in %s", ms(time.Since(starting)))
	back := testutil.WaitUntil(t, 30*time.Second, "converged and unfenced after etcd returned", func() (bool, string) {
		if ok, seen := converged(procs, "n1", "n2", "n3"); !ok {
			return false, seen
		}
		for _, p := range procs {
			if st := clusterStats(p.addr); st["cluster_fenced"] != "0" {
				return false, p.name + " still fenced"
			}
		}
		return true, ""
	})
	t.Logf("converged and unfenced %s after etcd returned", ms(back))
}

// TestClusterNodeRestartsOnNewPort: the same node name on a new port
// replaces its record; two nodes joining at once end on one ring.
func TestClusterNodeRestartsOnNewPort(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	n1, n2 := startProc(t, etcd, "n1"), startProc(t, etcd, "n2")
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged([]*proc{n1, n2}, "n1", "n2") })
	n2.signal(syscall.SIGKILL)
	<-n2.done
	n2b := startProc(t, etcd, "n2") // a new process and port, same name
	n3, n4 := startProc(t, etcd, "n3"), startProc(t, etcd, "n4")
	all := []*proc{n1, n2b, n3, n4}
	testutil.WaitUntil(t, 30*time.Second, "converged with the restarted n2 and two joiners", func() (bool, string) {
		return converged(all, "n1", "n2", "n3", "n4")
	})
	if got := clusterStats(n1.addr)["member:n2:addr"]; got != n2b.addr {
		t.Fatalf("n1 has n2 at %s, want the new address %s", got, n2b.addr)
	}
}

// TestClusterGracefulStop: SIGTERM leaves gossip and revokes the lease, so
// the node is out of the ring at once, long before its 15 s lease would
// have expired, and the process exits cleanly.
func TestClusterGracefulStop(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	ttl := []string{"--lease-ttl", "15"}
	procs := []*proc{startProc(t, etcd, "n1", ttl...), startProc(t, etcd, "n2", ttl...), startProc(t, etcd, "n3", ttl...)}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procs, "n1", "n2", "n3") })
	procs[2].signal(syscall.SIGTERM)
	select {
	case <-procs[2].done:
	case <-time.After(10 * time.Second):
		t.Fatal("n3 did not exit within 10 s of SIGTERM")
	}
	if code := procs[2].cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("n3 exited with %d after SIGTERM", code)
	}
	testutil.WaitUntil(t, 5*time.Second, "n3 out of the ring without waiting for its lease", func() (bool, string) {
		return converged(procs[:2], "n1", "n2")
	})
}

// TestClusterRouting: keys set through one node read back through every
// node, one by one and in one multi-get; after kill -9 of a node, reads and
// writes through the survivors fail over to the next owner with at most
// one client error per client (the lease is long, so the ring still lists
// the dead node throughout).
func TestClusterRouting(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	ttl := []string{"--lease-ttl", "25"}
	procs := []*proc{startProc(t, etcd, "n1", ttl...), startProc(t, etcd, "n2", ttl...), startProc(t, etcd, "n3", ttl...)}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procs, "n1", "n2", "n3") })
	clients := make([]*memcache.Client, len(procs))
	for i, p := range procs {
		clients[i] = memcache.New(p.addr)
		clients[i].Timeout = 3 * time.Second
	}
	const n = 300
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
		if err := clients[0].Set(&memcache.Item{Key: keys[i], Value: []byte("v1-" + keys[i]), Flags: uint32(i)}); err != nil {
			t.Fatalf("set %s through n1: %v", keys[i], err)
		}
	}
	t.Run("every key through every node", func(t *testing.T) {
		for ci, c := range clients[1:] {
			for i, k := range keys {
				it, err := c.Get(k)
				if err != nil || string(it.Value) != "v1-"+k || it.Flags != uint32(i) {
					t.Fatalf("get %s through %s: %+v, %v", k, procs[ci+1].name, it, err)
				}
			}
		}
	})
	t.Run("multi-get through one node", func(t *testing.T) {
		got, err := clients[2].GetMulti(keys)
		if err != nil || len(got) != n {
			t.Fatalf("multi-get through n3: %d of %d keys, %v", len(got), n, err)
		}
		for _, k := range keys {
			if string(got[k].Value) != "v1-"+k {
				t.Fatalf("multi-get %s: %q", k, got[k].Value)
			}
		}
	})
	t.Run("stats cluster counts forwarding per peer", func(t *testing.T) {
		// n1 served 300 sets, about two thirds of them owned elsewhere.
		st := clusterStats(procs[0].addr)
		if st["peer:n2:forwarded"] == "" || st["peer:n2:forwarded"] == "0" || st["peer:n2:forward_failures"] != "0" {
			t.Fatalf("n1's peer lines: forwarded=%q failures=%q", st["peer:n2:forwarded"], st["peer:n2:forward_failures"])
		}
	})
	if t.Failed() {
		return
	}
	procs[2].signal(syscall.SIGKILL)
	<-procs[2].done
	live := clients[:2]
	errs := make([]int, len(live))
	noteErr := func(ci int, what string, err error) {
		errs[ci]++
		if errs[ci] > 1 {
			t.Fatalf("%s through %s: %v (client error %d; only the first is allowed)", what, procs[ci].name, err, errs[ci])
		}
		t.Logf("first client error through %s, allowed: %s: %v", procs[ci].name, what, err)
	}
	// Old values: right or (owned by n3 alone) a miss, never an error.
	for ci, c := range live {
		for _, k := range keys {
			it, err := c.Get(k)
			switch {
			case errors.Is(err, memcache.ErrCacheMiss):
			case err != nil:
				noteErr(ci, "get "+k, err)
			case string(it.Value) != "v1-"+k:
				t.Fatalf("get %s through %s after the kill: %q", k, procs[ci].name, it.Value)
			}
		}
	}
	// New writes through either survivor read back through both.
	for i, k := range keys {
		ci := i % len(live)
		v := "v2-" + k
		if err := live[ci].Set(&memcache.Item{Key: k, Value: []byte(v)}); err != nil {
			noteErr(ci, "set "+k, err)
			continue
		}
		for cj, c := range live {
			it, err := c.Get(k)
			if err != nil {
				noteErr(cj, "get "+k, err)
				continue
			}
			if string(it.Value) != v {
				t.Fatalf("get %s through %s after the kill: %q, want %q", k, procs[cj].name, it.Value, v)
			}
		}
	}
	if st := clusterStats(procs[0].addr); st["cluster_members"] != "3" {
		t.Fatalf("n3 left the ring during the test (lease too short?): %v", st["cluster_members"])
	}
}

// TestClusterReplication: with two copies of each shard, writes through one
// node reach both owners (forwarded writes are replicated by their owner),
// so kill -9 of any one node loses no key.
func TestClusterReplication(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	names := []string{"n1", "n2", "n3"}
	procs := make([]*proc, len(names))
	peers := make([]*memcache.Client, len(names)) // each node's store, through its peer port
	for i, name := range names {
		peerAddr := testutil.FreeAddr(t)
		procs[i] = startProc(t, etcd, name, "--lease-ttl", "25", "--replicas", "2", "--peer", peerAddr)
		peers[i] = memcache.New(peerAddr)
		peers[i].Timeout = 3 * time.Second
	}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procs, names...) })
	n1 := memcache.New(procs[0].addr)
	n1.Timeout = 3 * time.Second
	const n = 300
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("rkey-%03d", i)
		if err := n1.Set(&memcache.Item{Key: keys[i], Value: []byte("r1-" + keys[i]), Flags: uint32(i)}); err != nil {
			t.Fatalf("set %s through n1: %v", keys[i], err)
		}
	}
	// Caught up: every key is in the stores of two nodes.
	testutil.WaitUntil(t, 20*time.Second, "every key on two nodes", func() (bool, string) {
		counts := make(map[string]int, n)
		for i, p := range peers {
			got, err := p.GetMulti(keys)
			if err != nil {
				return false, fmt.Sprintf("peer port of %s: %v", names[i], err)
			}
			for k, it := range got {
				if string(it.Value) == "r1-"+k {
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
	const victim = 1 // n2: primary of keys n1 forwarded to it, replica of some of n1's
	procs[victim].signal(syscall.SIGKILL)
	<-procs[victim].done
	for ci, p := range procs {
		if ci == victim {
			continue
		}
		c := memcache.New(p.addr)
		c.Timeout = 3 * time.Second
		for i, k := range keys {
			it, err := c.Get(k)
			if err != nil || string(it.Value) != "r1-"+k || it.Flags != uint32(i) {
				t.Fatalf("get %s through %s after kill -9 of %s: %+v, %v", k, p.name, names[victim], it, err)
			}
		}
	}
}

// TestClusterCASFailover: replicas store the primary's CAS (ms E on the
// peer port), so a gets token taken while the primary serves a key still
// works with cas after kill -9 of the primary, when its replica serves it.
func TestClusterCASFailover(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	names := []string{"n1", "n2", "n3"}
	procs := make([]*proc, len(names))
	peerAddrs := make(map[string]string, len(names))
	for i, name := range names {
		peerAddrs[name] = testutil.FreeAddr(t)
		procs[i] = startProc(t, etcd, name, "--lease-ttl", "25", "--replicas", "2", "--peer", peerAddrs[name])
	}
	testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged(procs, names...) })
	r, err := ring.New(ring.Config{Replicas: 2}, names, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Keys whose primary is n2 (the victim), read and written through n1:
	// some with n1 as the replica, some with n3.
	const victim = 1
	type key struct{ name, replica, token string }
	var keys []key
	withN1, withN3 := 0, 0
	for i := 0; withN1 < 3 || withN3 < 3; i++ {
		k := fmt.Sprintf("caskey-%d", i)
		o := r.Owners(r.Shard([]byte(k)))
		if o[0] != names[victim] {
			continue
		}
		switch {
		case o[1] == "n1" && withN1 < 3:
			withN1++
		case o[1] == "n3" && withN3 < 3:
			withN3++
		default:
			continue
		}
		keys = append(keys, key{name: k, replica: o[1]})
	}
	n1 := procs[0].addr
	for i := range keys {
		k := &keys[i]
		got, err := testutil.TextLines(n1, "set "+k.name+" 0 0 2\r\nv1\r\ngets "+k.name+"\r\n", 4)
		if err != nil || got[0] != "STORED" || got[2] != "v1" || got[3] != "END" {
			t.Fatalf("set/gets %s through n1: %q, %v", k.name, got, err)
		}
		f := strings.Fields(got[1]) // VALUE <key> <flags> <bytes> <cas>
		if len(f) != 5 {
			t.Fatalf("gets %s: %q", k.name, got[1])
		}
		k.token = f[4]
		// The primary holds the item with that CAS.
		if got, err := testutil.TextLines(peerAddrs[names[victim]], "mg "+k.name+" c\r\n", 1); err != nil || got[0] != "HD c"+k.token {
			t.Fatalf("mg %s on the primary's peer port: %q, %v; want c%s", k.name, got, err, k.token)
		}
	}
	for _, k := range keys {
		testutil.WaitUntil(t, 10*time.Second, k.name+" replicated with its CAS", func() (bool, string) {
			got, err := testutil.TextLines(peerAddrs[k.replica], "mg "+k.name+" c\r\n", 1)
			if err != nil {
				return false, err.Error()
			}
			return got[0] == "HD c"+k.token, fmt.Sprintf("%s on %s: %q, want c%s", k.name, k.replica, got, k.token)
		})
	}
	procs[victim].signal(syscall.SIGKILL)
	<-procs[victim].done
	for _, k := range keys {
		got, err := testutil.TextLines(n1, "cas "+k.name+" 0 0 2 "+k.token+"\r\nv2\r\n", 1)
		if err != nil || got[0] != "STORED" {
			t.Fatalf("cas %s through n1 after kill -9 of the primary: %q, %v", k.name, got, err)
		}
		got, err = testutil.TextLines(n1, "get "+k.name+"\r\n", 3)
		if err != nil || got[1] != "v2" {
			t.Fatalf("get %s after cas: %q, %v", k.name, got, err)
		}
	}
}
