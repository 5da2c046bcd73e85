package cluster

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"shoal/internal/testetcd"
	"shoal/internal/testutil"
)

// TestBinaryKeyTravels: a key a client sent base64-encoded (meta b) stays
// marked so on every owner, whether it got there forwarded or
// replicated: meta k on either node's own store returns it encoded.
func TestBinaryKeyTravels(t *testing.T) {
	t.Parallel() // an etcd and nodes of its own
	etcd := testetcd.Start(t)
	a := startFullNode(t, etcd, "a")
	b := startFullNode(t, etcd, "b")
	waitMembers(t, a, b)
	for _, raw := range []string{"plain-key-1", "plain-key-2", "plain-key-3", "with space"} {
		k := base64.StdEncoding.EncodeToString([]byte(raw))
		if got := metaLine(t, a.addr, "ms "+k+" 1 b\r\nx\r\n"); got != "HD" {
			t.Fatalf("ms %s b through a: %q", k, got)
		}
		want := "VA 1 b k" + k // memcached returns the flags in request order: b, then k
		for _, n := range []*fullNode{a, b} {
			var got string
			testutil.WaitFor(t, 5*time.Second, n.name+" to hold "+k, func() bool { got = metaLine(t, n.peerAt, "mg "+k+" b k v\r\n"); return !strings.HasPrefix(got, "EN") })
			if got != want && got != "VA 1 k"+k+" b" {
				t.Fatalf("%s's store answers %q for %q, want the key base64-encoded with b", n.name, got, raw)
			}
		}
	}
}

// metaLine sends req on a fresh connection and returns the first reply
// line without "\r\n".
func metaLine(t *testing.T, addr, req string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(line, "\r\n")
}
