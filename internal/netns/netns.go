// Package netns makes a private network for real-process tests: one Linux network namespace per
// node, each with a veth pair into a bridge in the test's own namespace, on
// a private /24. The test process reaches every node over the bridge; a node
// is partitioned off by taking its bridge port down (its packets are
// dropped, nobody gets a reset: a host that stops answering).
//
// Needs root and iproute2. Every namespace, veth and bridge is named after
// the test process's pid, so parallel runs do not collide, and a later run
// removes what a killed run left behind.
//
// Only tests import it (e2e/cluster, e2e/history).
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	// netnsSeq tells apart the networks of one test process.
	netnsSeq atomic.Int32
	// sweepOnce: leftovers are looked for once per test process.
	sweepOnce sync.Once
)

// Net is a bridge and its namespaces.
type Net struct {
	ip     string // path to the ip command
	id     string // <pid in base 36>-<seq>: in every name
	bridge string
	prefix string // "10.a.b."
	hosts  []*host
}

// host is one namespace on the bridge.
type host struct {
	ns   string // namespace name
	port string // veth end on the bridge, in the test's namespace
	addr string // IP inside the namespace
}

// New creates a bridge with n namespaces on it, removed by t.Cleanup; it
// returns an error when namespaces cannot be made here (not root, no
// iproute2, a container without the capability): the caller skips.
func New(t testing.TB, n int) (*Net, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, errors.New("network namespaces need root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("iproute2 (ip) not installed: %w", err)
	}
	nn := &Net{ip: ip, id: strconv.FormatInt(int64(os.Getpid()), 36) + "-" + strconv.Itoa(int(netnsSeq.Add(1)))}
	sweepOnce.Do(func() { nn.sweep(t) })
	// A namespace first: if this is forbidden, nothing else is tried.
	probe := "shoal-" + nn.id + "-probe"
	if out, err := exec.Command(ip, "netns", "add", probe).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cannot create a network namespace here (%v): %s", err, bytes.TrimSpace(out))
	}
	nn.run(t, "netns", "del", probe)

	nn.bridge = "shb" + nn.id
	nn.prefix = freeSubnet(t)
	// Cleanups run last-registered first: processes started in the
	// namespaces later are killed before these are removed.
	t.Cleanup(func() { nn.remove(t) })
	nn.run(t, "link", "add", nn.bridge, "type", "bridge")
	nn.run(t, "addr", "add", nn.BridgeIP()+"/24", "dev", nn.bridge)
	nn.run(t, "link", "set", nn.bridge, "up")
	for i := range n {
		h := &host{
			ns:   fmt.Sprintf("shoal-%s-%d", nn.id, i+1),
			port: fmt.Sprintf("shv%sa%d", nn.id, i+1),
			addr: nn.prefix + strconv.Itoa(11+i),
		}
		inner := fmt.Sprintf("shv%sb%d", nn.id, i+1)
		nn.hosts = append(nn.hosts, h)
		nn.run(t, "netns", "add", h.ns)
		nn.run(t, "link", "add", h.port, "type", "veth", "peer", "name", inner)
		nn.run(t, "link", "set", h.port, "master", nn.bridge, "up")
		nn.run(t, "link", "set", inner, "netns", h.ns)
		nn.run(t, "-n", h.ns, "addr", "add", h.addr+"/24", "dev", inner)
		nn.run(t, "-n", h.ns, "link", "set", inner, "up")
		nn.run(t, "-n", h.ns, "link", "set", "lo", "up")
	}
	return nn, nil
}

// Addr is host i's IP address, inside its namespace.
func (nn *Net) Addr(i int) string { return nn.hosts[i].addr }

// Hosts is the number of namespaces.
func (nn *Net) Hosts() int { return len(nn.hosts) }

// BridgeIP is the test namespace's address on the bridge.
func (nn *Net) BridgeIP() string { return nn.prefix + "1" }

// Cut takes host i's bridge port down: it can reach nothing and nothing
// reaches it, packets are silently dropped.
func (nn *Net) Cut(t testing.TB, i int) {
	t.Helper()
	nn.run(t, "link", "set", nn.hosts[i].port, "down")
}

// Heal brings host i's bridge port back up.
func (nn *Net) Heal(t testing.TB, i int) {
	t.Helper()
	nn.run(t, "link", "set", nn.hosts[i].port, "up")
}

// Command runs name inside host i's namespace.
func (nn *Net) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command(nn.ip, append([]string{"netns", "exec", nn.hosts[i].ns, name}, args...)...)
}

// Dial connects to addr from inside host i's namespace: a side door to a
// host that is cut off. The socket stays in that namespace; only the
// thread that makes it enters it.
func (nn *Net) Dial(i int, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer self.Close()
		ns, err := os.Open("/run/netns/" + nn.hosts[i].ns)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer ns.Close()
		if err := setns(ns.Fd()); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns %s: %w", nn.hosts[i].ns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if setns(self.Fd()) == nil {
			runtime.UnlockOSThread() // else the thread ends with this goroutine
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func (nn *Net) run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(nn.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// remove deletes the namespaces (which takes their veth pairs with them)
// and the bridge, reporting but not failing on errors.
func (nn *Net) remove(t testing.TB) {
	for _, h := range nn.hosts {
		if out, err := exec.Command(nn.ip, "netns", "del", h.ns).CombinedOutput(); err != nil {
			t.Logf("cleanup: ip netns del %s: %v: %s", h.ns, err, bytes.TrimSpace(out))
		}
		// Gone with the namespace, unless the move into it failed.
		exec.Command(nn.ip, "link", "del", h.port).Run()
	}
	if out, err := exec.Command(nn.ip, "link", "del", nn.bridge).CombinedOutput(); err != nil {
		t.Logf("cleanup: ip link del %s: %v: %s", nn.bridge, err, bytes.TrimSpace(out))
	}
}

// sweep removes the namespaces and links that test processes no longer
// running left behind (a run killed by its timeout skips its cleanups).
func (nn *Net) sweep(t testing.TB) {
	// dead reports whether name is prefix, then a pid in base 36 and a
	// "-", and that process is gone.
	dead := func(name, prefix string) bool {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return false
		}
		p, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.ParseInt(p, 36, 32)
		if !ok || err != nil || int(pid) == os.Getpid() {
			return false
		}
		return syscall.Kill(int(pid), 0) == syscall.ESRCH
	}
	if out, err := exec.Command(nn.ip, "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 && dead(f[0], "shoal-") {
				t.Logf("removing namespace %s left by an earlier run", f[0])
				exec.Command(nn.ip, "netns", "del", f[0]).Run()
			}
		}
	}
	links, _ := net.Interfaces()
	for _, l := range links {
		if dead(l.Name, "shb") || dead(l.Name, "shv") {
			t.Logf("removing link %s left by an earlier run", l.Name)
			exec.Command(nn.ip, "link", "del", l.Name).Run()
		}
	}
}

// freeSubnet picks a 10.x.y.0/24 that no local interface is on.
func freeSubnet(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		cand := net.IPv4(10, byte(100+rand.N(100)), byte(rand.N(256)), 1)
		used := false
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && (n.Contains(cand) || (&net.IPNet{IP: cand.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).Contains(n.IP)) {
				used = true
			}
		}
		if !used {
			c := cand.To4()
			return fmt.Sprintf("10.%d.%d.", c[1], c[2])
		}
	}
	t.Fatal("no free 10.x.y.0/24 subnet")
	return ""
}
