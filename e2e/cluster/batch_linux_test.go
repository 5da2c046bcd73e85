package cluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"shoal/internal/statsread"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/internal/uring"
	"shoal/ring"
)

// TestForwardedRepliesBatched: the client replies of gets a node forwards
// come back right when its peer reader sends them together
// (shoal_peer_replies_batched_total counts them, fewer sends than
// replies), and --no-io-uring leaves each to its own send(2): none held.
func TestForwardedRepliesBatched(t *testing.T) {
	t.Parallel()
	if err := uring.Available(); err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	for _, tc := range []struct {
		flags   []string
		batched bool
	}{{nil, true}, {[]string{"--no-io-uring"}, false}} {
		flags := tc.flags
		t.Run(fmt.Sprint("flags ", flags), func(t *testing.T) {
			t.Parallel()
			etcd := testetcd.Start(t)
			h := testutil.FreeAddr(t)
			n1 := startProc(t, etcd, "n1", append([]string{"--replicas", "1", "-t", "1", "--http", h}, flags...)...)
			n2 := startProc(t, etcd, "n2", append([]string{"--replicas", "1", "-t", "1"}, flags...)...)
			testutil.WaitUntil(t, 20*time.Second, "converged", func() (bool, string) { return converged([]*proc{n1, n2}, "n1", "n2") })
			r, err := ring.New(ring.Config{Replicas: 1}, []string{"n1", "n2"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for i := 0; len(keys) < 32; i++ {
				if k := fmt.Sprintf("bk%d", i); r.Primary(r.Shard([]byte(k))) == "n2" {
					keys = append(keys, k)
				}
			}
			conns := make([]net.Conn, len(keys))
			readers := make([]*bufio.Reader, len(keys))
			for i, k := range keys {
				nc, err := net.Dial("tcp", n1.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				conns[i], readers[i] = nc, bufio.NewReader(nc)
				fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\n", k, len(k)+2, "v-"+k)
				if line, err := readers[i].ReadString('\n'); line != "STORED\r\n" {
					t.Fatalf("set %s through n1: %q %v", k, line, err)
				}
			}
			for range 50 { // each round: every get sent before any reply is read
				for i, nc := range conns {
					io.WriteString(nc, "get "+keys[i]+"\r\n")
				}
				for i, r := range readers {
					want := fmt.Sprintf("VALUE %s 0 %d\r\nv-%s\r\nEND\r\n", keys[i], len(keys[i])+2, keys[i])
					got := make([]byte, len(want))
					if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
						t.Fatalf("connection %d: %q %v; want %q", i, got, err, want)
					}
				}
			}
			m, err := statsread.Metrics(h)
			if err != nil {
				t.Fatal(err)
			}
			held, sends := m["shoal_peer_replies_batched_total"], m["shoal_peer_replies_batch_sends_total"]
			t.Logf("%v replies held, sent in %v sends", held, sends)
			if batched := held > 0 && sends < held; batched != tc.batched {
				t.Errorf("%v replies held, sent in %v sends", held, sends)
			}
		})
	}
}
