package testutil

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// FreeAddr returns "127.0.0.1:port" for a loopback port that was free a
// moment ago. Nothing holds it: another process may take it before the
// caller binds it, which tests that start servers on it must accept.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrOn(t, "127.0.0.1")
}

// FreeAddrOn is FreeAddr on host (such as a bridge's address when nodes
// run in network namespaces); it returns host:port.
func FreeAddrOn(t testing.TB, host string) string {
	t.Helper()
	return net.JoinHostPort(host, strconv.Itoa(freePort(t, host)))
}

// FreePort is FreeAddr's port number, for commands that take a port alone.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePort(t, "127.0.0.1")
}

// Ports are picked below Linux's ephemeral range (32768 and up by
// default), where neither an outgoing connection nor a listener on port
// 0 gets one from the kernel: a port the kernel picked, free when
// FreeAddr closed it, could go to another test's client connection
// before the server bound it ("bind: address already in use", seen with
// the root package's tests in parallel). A test process walks up from a
// random point, so its own picks do not repeat; a port found in use is
// skipped.
const portLow, portHigh = 20000, 32768

var ports struct {
	once  sync.Once
	start int
	next  atomic.Int64
}

// walk hands out the next n ports of the walk; the first of them.
func walk(n int) int {
	ports.once.Do(func() { ports.start = rand.IntN(portHigh - portLow) })
	return portLow + (ports.start+int(ports.next.Add(int64(n)))-n+1)%(portHigh-portLow)
}

// portFree reports whether host:p can be bound now.
func portFree(host string, p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func freePort(t testing.TB, host string) int {
	t.Helper()
	for range 100 {
		if p := walk(1); portFree(host, p) {
			return p
		}
	}
	// The range is crowded: let the kernel pick.
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("testutil: no free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePortPair returns a free port p of 127.0.0.1 whose next, p+1, is
// free too (a --dev etcd's client and peer ports), from FreePort's walk:
// FreePort hands out neither afterwards.
func FreePortPair(t testing.TB) int {
	t.Helper()
	for range 100 {
		// A pair that would wrap around the range is not a pair.
		if p := walk(2); p+1 < portHigh && portFree("127.0.0.1", p) && portFree("127.0.0.1", p+1) {
			return p
		}
	}
	t.Fatal("testutil: no two free ports in a row")
	return 0
}

// Stop ends process p, whose exit closes done: SIGTERM, then SIGKILL if
// it has not exited 10 s later; it returns once done is closed.
func Stop(p *os.Process, done <-chan struct{}) {
	p.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.Kill()
		<-done
	}
}

// Poll intervals: the first check is immediate, then the wait between
// checks doubles from minPoll up to maxPoll, so a condition that holds
// soon is seen soon and a slow one (a cluster converging) is not polled
// hard for seconds.
const (
	minPoll = 5 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// WaitFor polls cond until it holds and returns how long that took. If it
// still does not hold within the duration, the test fails with
// "timed out after <within> waiting for <what>". cond runs on the test's
// goroutine, so it may call t.Fatal itself.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return WaitUntil(t, within, what, func() (bool, string) { return cond(), "" })
}

// WaitUntil is WaitFor for a cond that also describes the state it saw;
// the failure message ends with the last description, so it says not
// only what was awaited but what there was instead.
func WaitUntil(t testing.TB, within time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(within)
	pause := minPoll
	for {
		ok, seen := cond()
		if ok {
			return time.Since(begin)
		}
		if time.Now().After(deadline) {
			if seen != "" {
				t.Fatalf("timed out after %v waiting for %s; last seen: %s", within, what, seen)
			} else {
				t.Fatalf("timed out after %v waiting for %s", within, what)
			}
			return time.Since(begin) // t.Fatalf does not return; a fake TB's may
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPoll)
	}
}
