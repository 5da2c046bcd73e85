package server

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// startMemcached runs the real memcached on a free loopback port with the
// extra flags args and returns its address. The test is skipped when
// memcached is not on PATH, so suites that compare against it still pass on
// machines without it. The process is killed when the test ends.
func startMemcached(t testing.TB, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not on PATH")
	}
	// Picking a free port and binding it are two steps, so a parallel test
	// can steal the port in between; memcached then exits and we retry.
	const attempts = 3
	for i := 1; ; i++ {
		addr, err := runMemcached(t, bin, args)
		if err == nil {
			return addr
		}
		if i == attempts {
			t.Fatalf("memcached %q: %v", args, err)
		}
	}
}

// runMemcached makes one attempt at starting memcached; on success the
// process is owned by t's cleanup.
func runMemcached(t testing.TB, bin string, args []string) (string, error) {
	port := testutil.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := append([]string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-u", "root"}, args...)
	cmd := exec.Command(bin, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	// exited is closed once Wait returns; waitErr is safe to read after.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		// SIGKILL: memcached takes a second to honour SIGTERM.
		_ = cmd.Process.Kill()
		<-exited
	}
	if err := waitListening(addr, exited, 5*time.Second); err != nil {
		stop()
		return "", fmt.Errorf("%w (exit: %v); stderr: %s", err, waitErr, stderr.Bytes())
	}
	t.Cleanup(stop)
	return addr, nil
}

// waitListening polls addr until it accepts a connection, the process exits
// (exited is closed), or the deadline passes.
func waitListening(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before listening")
		case <-deadline.C:
			return fmt.Errorf("not listening on %s after %v: %v", addr, timeout, err)
		case <-tick.C:
		}
	}
}
