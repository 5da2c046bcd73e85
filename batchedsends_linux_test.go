//go:build linux

package main

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/internal/uring"
)

// TestBatchedSendsFlag: a node's loops send a wake-up's replies together
// through io_uring (shoal_loop_batched_sends_total counts them), and
// --no-io-uring, through node and server, leaves each to its own
// send(2).
func TestBatchedSendsFlag(t *testing.T) {
	t.Parallel()
	if err := uring.Available(); err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	for name, flags := range map[string][]string{"default": nil, "--no-io-uring": {"--no-io-uring"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := testutil.FreeAddr(t)
			addr := startNode(t, append([]string{"--http", h, "-t", "1"}, flags...)...)
			var conns []net.Conn
			var readers []*bufio.Reader
			for range 32 {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				conns, readers = append(conns, nc), append(readers, bufio.NewReader(nc))
			}
			for range 50 { // each round: 32 gets sent before any reply is read
				for _, nc := range conns {
					io.WriteString(nc, "get nothing\r\n")
				}
				for i, r := range readers {
					if line, err := r.ReadString('\n'); line != "END\r\n" {
						t.Fatalf("connection %d: %q %v", i, line, err)
					}
				}
			}
			m := scrapeMetrics(t, h)
			sends, calls := m["shoal_loop_batched_sends_total"], m["shoal_loop_batched_send_calls_total"]
			t.Logf("%v replies in %v calls", sends, calls)
			if batched := sends > 0 && calls < sends; batched != (flags == nil) {
				t.Errorf("%v replies in %v batched calls", sends, calls)
			}
		})
	}
}
