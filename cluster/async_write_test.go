package cluster

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"shoal/server"
	"shoal/store"
)

// TestAsyncWritesSameReplies: one connection pipelines storage commands of
// every kind (noreply ones, cas hits and misses, a value larger than the
// read buffer), ms (modes, q, c, k), deletes and md with gets, on keys served here and by a peer; an event
// loop (forwarded sets and gets asynchronous) answers byte for byte as a
// goroutine per connection (synchronous forwarding) over the same setup.
func TestAsyncWritesSameReplies(t *testing.T) {
	big := strings.Repeat("b", 100<<10) // > the reader's 16 KiB, > the peer's kept write buffer
	replies := func(cfg server.Config) (string, *asyncRig) {
		pst, px := startPeer(t)
		rig := startRig(t, px.addr, 1, cfg)
		remote, local := ownedBy(rig.view, "p", "r", 4), ownedBy(rig.view, "self", "l", 4)
		for _, k := range remote[:2] {
			pst.Set([]byte(k), []byte("p-"+k), &store.SetOptions{Flags: 7})
		}
		var req strings.Builder
		for i := range 4 {
			for _, k := range []string{remote[i], local[i]} {
				fmt.Fprintf(&req, "add %s 1 0 2\r\naa\r\n", k)                                 // NOT_STORED for remote[:2]
				fmt.Fprintf(&req, "replace %s 2 0 2 noreply\r\nrr\r\n", k)                     // no reply
				fmt.Fprintf(&req, "append %s 0 0 2\r\n-a\r\nprepend %s 0 0 2\r\np-\r\n", k, k) // STORED
				fmt.Fprintf(&req, "gets %s\r\n", k)
				fmt.Fprintf(&req, "cas %s 3 0 1 %d\r\nc\r\n", k, 1<<40) // EXISTS
				fmt.Fprintf(&req, "cas missing-%s 3 0 1 5\r\nc\r\n", k) // NOT_FOUND
				fmt.Fprintf(&req, "set %s 4 0 %d\r\n%s\r\nget %s\r\n", k, len(big), big, k)
				fmt.Fprintf(&req, "set %s 5 0 1 noreply\r\nn\r\nmg %s v f\r\n", k, k)
				fmt.Fprintf(&req, "ms %s 2 c F3 T0 k O1\r\nms\r\nms %s 2 ME c\r\nme\r\nms %s 2 MA q\r\nmq\r\n", k, k, k)
				fmt.Fprintf(&req, "ms %s 1 C1 c\r\nx\r\nms %s 1 C0\r\nx\r\nmg %s v f c\r\n", k, k, k)
				fmt.Fprintf(&req, "md %s C1 k\r\nmd %s I T30\r\nmg %s v c\r\nmd missing-%s q\r\ndelete %s\r\n", k, k, k, k, k)
				fmt.Fprintf(&req, "delete missing-%s noreply\r\ndelete missing-%s\r\nmd missing-%s C0\r\nget %s\r\n", k, k, k, k)
			}
		}
		req.WriteString("mn\r\n")
		nc, br := connect(t, rig.addr)
		go io.WriteString(nc, req.String())
		var out bytes.Buffer
		for !bytes.HasSuffix(out.Bytes(), []byte("MN\r\n")) {
			line, err := br.ReadBytes('\n')
			out.Write(line)
			if err != nil {
				t.Fatalf("after %d bytes: %v", out.Len(), err)
			}
		}
		return out.String(), rig
	}
	want, _ := replies(server.Config{})
	got, rig := replies(server.Config{EventLoop: true, Loops: 1})
	if got != want {
		t.Fatalf("event loop answered\n%.2000q\nwant\n%.2000q", got, want)
	}
	for _, s := range []string{"NOT_STORED", "EXISTS", "NOT_FOUND", "VALUE r", "HD c", "NS c0", "EX c0", "DELETED", "EX k", "NF"} {
		if !strings.Contains(got, s) {
			t.Fatalf("replies lack %s:\n%.2000q", s, got)
		}
	}
	if ps := rig.rt.PeerStats(); len(ps) != 1 || ps[0].Forwarded == 0 || ps[0].Failures != 0 {
		t.Fatalf("peer stats %+v: want forwarded requests, no failures", ps)
	}
	for _, m := range rig.rt.peers.Load().byName {
		if st := m.client.Stats(); st.Requests == 0 || st.InFlight != 0 {
			t.Fatalf("peer client stats %+v", st)
		}
	}
}

// TestAsyncSetPeerTimeout: the owner stops answering while forwarded sets
// wait on it; once the peer timeout passes, with a second owner (this
// node) they fail over and are stored here, and the owner is marked down;
// with none, they are answered SERVER_ERROR, as the synchronous Set does.
// A delete behind them goes the same way (to the second owner: DELETED).
func TestAsyncSetPeerTimeout(t *testing.T) {
	t.Parallel()
	for _, replicas := range []int{2, 1} {
		t.Run(fmt.Sprint("replicas ", replicas), func(t *testing.T) {
			_, px := startPeer(t)
			rig := startAsyncRig(t, px.addr, replicas)
			warmPeer(t, rig)
			keys := ownedBy(rig.view, "p", "k", 4)
			px.frozen.Store(true)
			nc, br := connect(t, rig.addr)
			start := time.Now()
			for _, k := range keys {
				fmt.Fprintf(nc, "set %s 9 0 3\r\nnew\r\n", k)
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case replicas == 2 && line != "STORED\r\n":
					t.Fatalf("set %s: %q, want STORED (failover)", k, line)
				case replicas == 1 && !strings.HasPrefix(line, "SERVER_ERROR "):
					t.Fatalf("set %s: %q, want SERVER_ERROR", k, line)
				}
				if it, val, res := rig.st.Get([]byte(k), nil, nil); replicas == 2 && (res != store.Hit || string(val) != "new" || it.Flags != 9) {
					t.Fatalf("%s here after the failover: %q %+v %v", k, val, it, res)
				}
			}
			fmt.Fprintf(nc, "delete %s\r\n", keys[0])
			if line, err := br.ReadString('\n'); err != nil || (replicas == 2) != (line == "DELETED\r\n") || (replicas == 1) != strings.HasPrefix(line, "SERVER_ERROR ") {
				t.Fatalf("delete: %q, %v", line, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("failover took %v", d)
			}
			if ps := rig.rt.PeerStats(); len(ps) != 1 || ps[0].Failures == 0 || !ps[0].Down {
				t.Fatalf("peer stats %+v: want failures and the peer down", ps)
			}
		})
	}
}
