package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"shoal/internal/testca"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/ring"
)

// BenchmarkForwardingSecured: what authenticating the peer port costs a
// forwarded get (set through the owner, read through the other node), on
// an open peer port, with a cluster secret (a handshake per connection,
// then plain TCP) and with mutual TLS (encryption, and a goroutine per
// peer connection on the owner):
//
//	go test -run '^$' -bench ForwardingSecured -benchtime 20000x ./e2e/cluster
//
// On 2 cores shared with other work (load average 17-23, so the spread is
// wide), one connection: open 96-228 µs/op, secret 108, mutual TLS
// 354-464; 32 connections, two runs: open 30-38 µs/op (n1 14-17.5
// CPU-µs/op, n2 3-3.5), secret 38-49 (18.5, 4), mutual TLS 39-59 (25-27,
// 5-7.5). A secret costs one
// handshake per peer connection and nothing after it; TLS costs the
// encryption and, for a *tls.Conn, the hand-offs of a goroutine per
// connection on the owner and of a writer goroutine per flush on the
// forwarding node (peer's non-blocking write needs a raw socket).
func BenchmarkForwardingSecured(b *testing.B) {
	secret := filepath.Join(b.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("a cluster secret of some length"), 0o600); err != nil {
		b.Fatal(err)
	}
	ca := testca.New(b, "cluster")
	modes := []struct {
		name  string
		flags func(node string) []string
	}{
		{"open", func(string) []string { return nil }},
		{"secret", func(string) []string { return []string{"--cluster-secret-file", secret} }},
		{"mtls", func(node string) []string {
			cert, key := ca.Issue(b, node)
			return []string{"--cluster-cacert", ca.Path("ca.pem"), "--cluster-cert", cert, "--cluster-key", key}
		}},
	}
	r, err := ring.New(ring.Config{Replicas: 1}, []string{"n1", "n2"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	var keys []string // owned by n2
	for i := 0; len(keys) < 100; i++ {
		k := fmt.Sprintf("key:%d", i)
		if r.Primary(r.Shard([]byte(k))) == "n2" {
			keys = append(keys, k)
		}
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			etcd := testetcd.Start(b)
			n1 := startProc(b, etcd, "n1", append([]string{"--replicas", "1"}, m.flags("n1")...)...)
			n2 := startProc(b, etcd, "n2", append([]string{"--replicas", "1"}, m.flags("n2")...)...)
			testutil.WaitUntil(b, 20*time.Second, "converged", func() (bool, string) { return converged([]*proc{n1, n2}, "n1", "n2") })
			c2 := rawConn(b, n2.addr)
			for _, k := range keys {
				c2.roundTrip(b, "set "+k+" 0 0 100\r\n"+string(make([]byte, 100))+"\r\n", 1)
			}
			b.Run("forwarded", func(b *testing.B) {
				c := rawConn(b, n1.addr)
				i := 0
				for b.Loop() {
					c.roundTrip(b, "get "+keys[i%len(keys)]+"\r\n", 3)
					i++
				}
			})
			b.Run("forwarded-32conns", func(b *testing.B) {
				defer reportCPU(b, map[string]*proc{"n1": n1, "n2": n2})()
				parallelRequests(b, n1.addr, 3, func(i int) string { return "get " + keys[i%len(keys)] + "\r\n" })
			})
		})
	}
}
