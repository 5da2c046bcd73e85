//go:build linux

package server

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"

	"shoal/internal/uring"
	"shoal/store"
)

// TestLoopSendsTogether: 32 connections on one event loop each send a
// get before any reads, round after round, so that a wake-up finds
// several ready. Every reply arrives whole, to its own connection, with
// io_uring (the replies of a wake-up that served several go in one call:
// fewer calls than replies) and without (Config.NoIOUring: none batched).
func TestLoopSendsTogether(t *testing.T) {
	t.Parallel()
	for name, noRing := range map[string]bool{"io_uring": false, "send(2)": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !noRing {
				r, err := uring.New(4)
				if err != nil {
					t.Skipf("no io_uring here: %v", err)
				}
				r.Close()
			}
			st, err := store.New(store.Config{MemoryLimit: 8 << 20})
			if err != nil {
				t.Fatal(err)
			}
			srv, addr := serve(t, Config{EventLoop: true, Loops: 1, NoIOUring: noRing}, Local{st})
			const conns, rounds = 32, 100
			var rs []*bufio.Reader
			var ws []io.Writer
			for i := range conns {
				c := dial(t, addr)
				fmt.Fprintf(c, "set k%d 0 0 %d\r\n%s\r\n", i, 10+i, strings.Repeat("v", 10+i))
				r := bufio.NewReader(c)
				if line, err := r.ReadString('\n'); line != "STORED\r\n" {
					t.Fatalf("set: %q %v", line, err)
				}
				rs, ws = append(rs, r), append(ws, c)
			}
			for range rounds {
				for i, w := range ws {
					fmt.Fprintf(w, "get k%d\r\n", i)
				}
				for i, r := range rs {
					want := fmt.Sprintf("VALUE k%d 0 %d\r\n%s\r\nEND\r\n", i, 10+i, strings.Repeat("v", 10+i))
					got := make([]byte, len(want))
					if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
						t.Fatalf("connection %d: %q %v, want %q", i, got, err, want)
					}
				}
			}
			b := srv.Stats().BatchedSends
			t.Logf("%d replies in %d calls", b.Sends, b.Calls)
			switch {
			case noRing && (b.Calls != 0 || b.Sends != 0):
				t.Errorf("without io_uring: %d replies in %d batched calls", b.Sends, b.Calls)
			case !noRing && b.Sends < conns*rounds/4:
				// A wake-up that found one connection sends with send(2).
				t.Errorf("%d replies batched, want most of the %d gets'", b.Sends, conns*rounds)
			case !noRing && b.Calls >= b.Sends:
				t.Errorf("%d replies in %d calls: never two in one", b.Sends, b.Calls)
			}
		})
	}
}
