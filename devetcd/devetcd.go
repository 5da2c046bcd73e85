// Package devetcd runs a single-member etcd inside the process: the etcd
// behind shoal's --dev mode, and a real etcd for tests. It knows nothing of
// shoal's keys or membership; it only starts, reports and stops an etcd.
package devetcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("devetcd: invalid config")

// Config places the etcd. Every field is required but the logging level.
type Config struct {
	Dir        string // data directory; reuse it to restart with the same data
	ClientAddr string // host:port for clients, e.g. 127.0.0.1:2379
	PeerAddr   string // host:port for raft peers (unused by others, but etcd binds it)
	// LogLevel is etcd's zap level: "" means "error", which keeps a
	// healthy etcd silent.
	LogLevel string
}

// Server is a running embedded etcd.
type Server struct {
	e     *embed.Etcd
	cfg   Config
	close sync.Once // embed.Etcd.Close panics when called twice
}

// Start starts etcd and waits until it serves clients or ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" || cfg.ClientAddr == "" || cfg.PeerAddr == "" {
		return nil, fmt.Errorf("%w: Dir, ClientAddr and PeerAddr are required", ErrConfig)
	}
	ec := embed.NewConfig()
	ec.Name = "shoal-dev"
	ec.Dir = cfg.Dir
	client := url.URL{Scheme: "http", Host: cfg.ClientAddr}
	peer := url.URL{Scheme: "http", Host: cfg.PeerAddr}
	ec.ListenClientUrls = []url.URL{client}
	ec.AdvertiseClientUrls = []url.URL{client}
	ec.ListenPeerUrls = []url.URL{peer}
	ec.AdvertisePeerUrls = []url.URL{peer}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.LogLevel = cfg.LogLevel
	if ec.LogLevel == "" {
		ec.LogLevel = "error"
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("devetcd: start: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &Server{e: e, cfg: cfg}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("devetcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("devetcd: not ready after 30s")
	}
}

// Endpoints are the client URLs to give an etcd client.
func (s *Server) Endpoints() []string { return []string{"http://" + s.cfg.ClientAddr} }

// Config returns the config the server was started with, so a test can
// restart it on the same data and ports.
func (s *Server) Config() Config { return s.cfg }

// Close stops etcd and waits for it. It is idempotent.
func (s *Server) Close() { s.close.Do(s.e.Close) }
