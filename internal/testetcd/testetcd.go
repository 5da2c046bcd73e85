// Package testetcd starts a real, single-member etcd inside the test
// process (devetcd's embedded server) for tests that need etcd, and stops
// it when the test ends. Only tests import it.
//
// Tests that must kill etcd as a process (kill -9, SIGSTOP) or serve it
// over TLS run the etcd binary instead, and do not use this package.
package testetcd

import (
	"context"
	"testing"

	"shoal/devetcd"
)

// Start runs etcd on free loopback ports with its data in a temporary
// directory, and closes it when t and its subtests are done.
func Start(t testing.TB) *devetcd.Server {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn is Start on free ports of host, such as a bridge's address
// when nodes run in network namespaces.
func StartOn(t testing.TB, host string) *devetcd.Server {
	t.Helper()
	srv, err := devetcd.StartLocal(context.Background(), t.TempDir(), host)
	if err != nil {
		t.Fatalf("testetcd: start etcd on %s: %v", host, err)
	}
	t.Cleanup(srv.Close)
	return srv
}
