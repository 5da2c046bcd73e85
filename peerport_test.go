package main

import (
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	"shoal/internal/testetcd"
	"shoal/internal/testutil"
)

// Without credentials the peer port listens on the advertised host only,
// never on every interface, and says once that it is open.
func TestUnauthenticatedPeerPort(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	endpoints := strings.Join(etcd.Endpoints(), ",")
	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
	ctx, cancel := context.WithCancel(context.Background())
	var log testutil.LogBuffer
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-p", port, "-l", "0.0.0.0", "--advertise", "127.0.0.1:" + port, "--node", "n1", "--etcd", endpoints},
			io.Discard, &log, func([]net.Addr) { close(started) })
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("node did not start: %v\n%s", err, log.String())
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node stopped with %v", err)
		}
	}()
	warn := regexp.MustCompile(`peer port is unauthenticated.* addr=(\S+)`)
	m := warn.FindAllStringSubmatch(log.String(), -1)
	if len(m) != 1 {
		t.Fatalf("want one warning about the open peer port, log:\n%s", log.String())
	}
	if host, _, _ := net.SplitHostPort(m[0][1]); host != "127.0.0.1" {
		t.Fatalf("peer port bound %s, want the advertised host 127.0.0.1", m[0][1])
	}

	// --peer on every interface without credentials is refused.
	err := run(context.Background(), []string{"-p", "0", "--node", "n2", "--etcd", endpoints, "--peer", "0.0.0.0:0"}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "every interface") {
		t.Fatalf("--peer 0.0.0.0:0 without authentication: %v", err)
	}
}
