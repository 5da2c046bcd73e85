//go:build linux

package server

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shoal/store"
)

// TestLoopWakeAfterShutdown: once Shutdown has stopped the event loops,
// which closes their eventfds, a second Shutdown (a test's cleanup after
// the test's own) or a DropConns must not write the wake-up word to the
// number the eventfd had: the process may have reused it for any socket,
// which then gets "\x01\0\0\0\0\0\0\0" in its stream. A peer connection
// that got them had its next request answered ERROR (the NUL cuts the
// line to "\x01"), and its data block ERROR again: TestRouterTwoNodes
// failed "SERVER_ERROR peer: ERROR" with event-loop tests in parallel.
func TestLoopWakeAfterShutdown(t *testing.T) {
	for _, second := range []string{"Shutdown", "DropConns"} {
		t.Run(second, func(t *testing.T) {
			st, err := store.New(store.Config{})
			if err != nil {
				t.Fatal(err)
			}
			srv, addr := serve(t, Config{EventLoop: true, Loops: 1}, Local{Store: st})
			// One exchange: the loop runs.
			nc := dial(t, addr)
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write([]byte("version\r\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Read(make([]byte, 64)); err != nil {
				t.Fatal(err)
			}
			nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			// Descriptors are handed out lowest first: these socket pairs
			// take the loop's old numbers (the eventfd's among them).
			var pairs [][2]int
			defer func() {
				for _, p := range pairs {
					unix.Close(p[0])
					unix.Close(p[1])
				}
			}()
			for range 32 {
				p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				pairs = append(pairs, p)
			}
			switch second {
			case "Shutdown":
				if err := srv.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			case "DropConns":
				srv.DropConns()
			}
			buf := make([]byte, 64)
			for _, p := range pairs {
				for _, fd := range p {
					// What was written to one end is read at the other.
					if n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err == nil && n > 0 {
						t.Fatalf("after %s: %q written to a descriptor the server no longer owns", second, buf[:n])
					}
				}
			}
		})
	}
}
