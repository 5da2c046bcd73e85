package etcdsync

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"shoal/internal/testutil"
)

// testEtcd is a single-member etcd the test can stop and start again on
// the same data directory and ports.
type testEtcd interface {
	Endpoints() []string
	Stop(t testing.TB)
	Start(t testing.TB)
}

// debianEtcd is Debian's etcd-server binary (etcd 3.4).
const debianEtcd = "/usr/bin/etcd"

// forEachEtcd runs body against an embedded etcd 3.5 and, when installed,
// Debian's etcd 3.4, each fresh and in parallel, and in parallel with
// the other tests that use it.
func forEachEtcd(t *testing.T, body func(t *testing.T, e testEtcd)) {
	t.Parallel()
	t.Run("embed", func(t *testing.T) {
		t.Parallel()
		body(t, startEmbed(t))
	})
	t.Run("etcd3.4", func(t *testing.T) {
		if _, err := os.Stat(debianEtcd); err != nil {
			t.Skipf("%s not installed (apt-get install etcd-server)", debianEtcd)
		}
		t.Parallel()
		body(t, startProc(t))
	})
}

// etcdAddrs picks free loopback ports for a client and a peer URL.
func etcdAddrs(t testing.TB) (client, peer string) {
	return "http://" + testutil.FreeAddr(t), "http://" + testutil.FreeAddr(t)
}

// embedEtcd is an in-process etcd 3.5. Clients reach it through front, a
// proxy that lets Stop drop their connections at once.
type embedEtcd struct {
	dir, client, peer string
	e                 *embed.Etcd
	front             *proxy
}

func startEmbed(t testing.TB) *embedEtcd {
	e := &embedEtcd{dir: t.TempDir()}
	e.client, e.peer = etcdAddrs(t)
	e.front = startProxy(t, e.client)
	e.Start(t)
	t.Cleanup(func() {
		if e.e != nil {
			e.front.SetDown(true)
			e.e.Close()
		}
	})
	return e
}

func (e *embedEtcd) Endpoints() []string { return []string{e.front.URL()} }

func (e *embedEtcd) Start(t testing.TB) {
	t.Helper()
	cu, _ := url.Parse(e.client)
	pu, _ := url.Parse(e.peer)
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = filepath.Join(e.dir, "data")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(e.dir, "etcd.log")}
	cfg.TickMs, cfg.ElectionMs = 10, 100 // one member: leader at once (as the process's flags)
	var err error
	for range 20 { // the ports may still be held briefly after a Stop
		if e.e, err = embed.StartEtcd(cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	select {
	case <-e.e.Server.ReadyNotify():
	case <-time.After(10 * time.Second):
		t.Fatal("embedded etcd not ready after 10s")
	}
	e.front.SetDown(false)
}

func (e *embedEtcd) Stop(t testing.TB) {
	// Cut the clients first, as a dying process would: Close otherwise
	// waits out its request timeout (7s) for their watch streams.
	e.front.SetDown(true)
	e.e.Close()
	e.e = nil
}

type procEtcd struct {
	dir, client, peer string
	cmd               *exec.Cmd
	done              chan struct{}
}

func startProc(t testing.TB) *procEtcd {
	e := &procEtcd{dir: t.TempDir()}
	e.client, e.peer = etcdAddrs(t)
	e.Start(t)
	t.Cleanup(func() {
		if e.cmd != nil {
			e.cmd.Process.Kill()
			<-e.done
		}
	})
	return e
}

func (e *procEtcd) Endpoints() []string { return []string{e.client} }

func (e *procEtcd) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(e.dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	e.cmd = exec.Command(debianEtcd,
		"--name", "test",
		"--data-dir", filepath.Join(e.dir, "data"),
		"--listen-client-urls", e.client, "--advertise-client-urls", e.client,
		"--listen-peer-urls", e.peer, "--initial-advertise-peer-urls", e.peer,
		"--initial-cluster", "test="+e.peer,
		"--heartbeat-interval", "10", "--election-timeout", "100", // one member: leader at once
		"--log-level", "error", "--logger", "zap")
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", debianEtcd, err)
	}
	e.done = make(chan struct{})
	go func() { e.cmd.Wait(); close(e.done) }()
	cli := newClient(t, e.Endpoints())
	testutil.WaitFor(t, 10*time.Second, "etcd 3.4 answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := cli.Get(ctx, "health")
		return err == nil
	})
}

func (e *procEtcd) Stop(t testing.TB) {
	testutil.Stop(e.cmd.Process, e.done)
	e.cmd = nil
}

// newClient is a plain etcd client for the test's own reads and writes.
func newClient(t testing.TB, endpoints []string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zapNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// proxy forwards TCP to an etcd and can cut every connection, so a client
// loses etcd while etcd itself keeps running.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards down and conns
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, targetURL string) *proxy {
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.SetDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c) })
	}
}

func (p *proxy) pipe(c net.Conn) {
	defer p.forget(c)
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		u.Close()
		return
	}
	p.conns[u] = struct{}{}
	p.mu.Unlock()
	defer p.forget(u)
	done := make(chan struct{})
	go func() { io.Copy(u, c); u.Close(); close(done) }()
	io.Copy(c, u)
	c.Close()
	<-done
}

func (p *proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// SetDown(true) closes every connection and refuses new ones until
// SetDown(false).
func (p *proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// poll reports whether cond held before the deadline.
func poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
