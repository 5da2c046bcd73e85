package testutil

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestFreeAddrBindable(t *testing.T) {
	for _, addr := range []string{FreeAddr(t), FreeAddrOn(t, "127.0.0.1"), fmt.Sprintf("127.0.0.1:%d", FreePort(t))} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		l.Close()
	}
}

func TestWaitForHolds(t *testing.T) {
	n := 0
	WaitFor(t, time.Second, "third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond ran %d times, want 3", n)
	}
}

func TestWaitUntilTimesOut(t *testing.T) {
	f := &fakeTB{TB: t}
	WaitUntil(f, 30*time.Millisecond, "the impossible", func() (bool, string) { return false, "nothing yet" })
	want := "timed out after 30ms waiting for the impossible; last seen: nothing yet"
	if f.failed != want {
		t.Fatalf("failure %q, want %q", f.failed, want)
	}
	f = &fakeTB{TB: t}
	WaitFor(f, 10*time.Millisecond, "never", func() bool { return false })
	if !strings.HasSuffix(f.failed, "waiting for never") {
		t.Fatalf("failure %q", f.failed)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
