//go:build !nodev

package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"shoal/devetcd"
)

// The --dev embedded etcd links etcd's server into the binary; building
// with -tags nodev leaves it out (dev_nodev.go), which takes about 20 MB
// of startup RSS (etcd's packages' code and init-time globals) off a node
// that does not need it: see README's performance section.

// startDevEtcd runs the --dev etcd in a fresh temporary directory and
// returns it with a function that stops it and removes the directory.
func startDevEtcd(ctx context.Context, o Config) ([]string, func(), error) {
	host, port, err := net.SplitHostPort(o.DevEtcd)
	if err != nil {
		return nil, nil, fmt.Errorf("--dev-etcd: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, nil, fmt.Errorf("--dev-etcd: bad port %q", port)
	}
	dir, err := os.MkdirTemp("", "shoal-dev-etcd-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := devetcd.Start(ctx, devetcd.Config{
		Dir:        dir,
		ClientAddr: o.DevEtcd,
		PeerAddr:   net.JoinHostPort(host, strconv.Itoa(p+1)),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv.Endpoints(), func() { srv.Close(); os.RemoveAll(dir) }, nil
}
