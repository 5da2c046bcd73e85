//go:build nodev

package node

import (
	"context"
	"errors"
)

// startDevEtcd: this binary was built with -tags nodev, without etcd's
// server (see dev.go).
func startDevEtcd(ctx context.Context, o Config) ([]string, func(), error) {
	return nil, nil, errors.New("--dev: this shoal was built with -tags nodev, without the embedded etcd; use --etcd")
}
