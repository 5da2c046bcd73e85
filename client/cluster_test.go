package client_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"shoal/internal/statsread"
	"shoal/internal/testbin"
	"shoal/internal/testetcd"
)

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// testCluster is a real etcd (in process) and shoal node processes.
type testCluster struct {
	dir   string
	etcd  *testetcd.Server
	nodes map[string]*node
}

// node is one shoal process.
type node struct {
	name, addr string
	cmd        *exec.Cmd
	stderr     bytes.Buffer
	done       chan struct{}
}

// startCluster starts etcd and the nodes named, each with --lease-ttl 120
// (a killed node stays in the ring while the test looks at fallback),
// and waits until every node serves the same ring of all of them.
func startCluster(names ...string) (*testCluster, error) {
	dir, err := os.MkdirTemp("", "shoal-client-")
	if err != nil {
		return nil, err
	}
	etcd, err := testetcd.StartProcess(dir, "127.0.0.1")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &testCluster{dir: dir, etcd: etcd, nodes: map[string]*node{}}
	for _, n := range names {
		if err := c.start(n); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitRing(names...); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// start runs node name on a free port.
func (c *testCluster) start(name string) error {
	bin, err := testbin.Build()
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	n := &node{name: name, addr: addr, done: make(chan struct{})}
	n.cmd = exec.Command(bin, "-l", "127.0.0.1", "-p", port, "-m", "16", "-t", "1", "--node", name,
		"--lease-ttl", "120", "--etcd", strings.Join(c.etcd.Endpoints(), ","))
	n.cmd.Stderr = &n.stderr
	if err := n.cmd.Start(); err != nil {
		return err
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	c.nodes[name] = n
	return nil
}

// kill stops node name with SIGKILL and waits for it.
func (c *testCluster) kill(name string) {
	n := c.nodes[name]
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (c *testCluster) stop() {
	for _, n := range c.nodes {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	}
	c.etcd.Close()
	os.RemoveAll(c.dir)
}

// logs is every node's stderr, for a failing test.
func (c *testCluster) logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- %s (%s)\n%s", n.name, n.addr, n.stderr.String())
	}
	return b.String()
}

// waitRing waits until every live node serves a ring of exactly names,
// all at one epoch.
func (c *testCluster) waitRing(names ...string) error {
	want := strings.Join(names, ",")
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen, ok := c.ringsAgree(want)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no common ring of %s after 30s: %s\n%s", want, seen, c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *testCluster) ringsAgree(want string) (string, bool) {
	var seen []string
	epochs := map[string]bool{}
	ok := true
	for _, n := range c.nodes {
		select {
		case <-n.done:
			continue
		default:
		}
		st := stats(n.addr, "ring")
		var members []string
		for k := range st {
			if m, found := strings.CutPrefix(k, "ring_member:"); found {
				members = append(members, m)
			}
		}
		slices.Sort(members)
		got := strings.Join(members, ",")
		seen = append(seen, fmt.Sprintf("%s: epoch %s members %s", n.name, st["ring_epoch"], got))
		epochs[st["ring_epoch"]] = true
		ok = ok && got == want && st["ring_epoch"] != "0"
	}
	return strings.Join(seen, "; "), ok && len(epochs) == 1
}

// stats asks addr for "stats <sub>" ("" for general stats); nil when it
// does not answer.
func stats(addr, sub string) map[string]string { return statsread.Dial(addr, sub) }
