// Package devetcd runs a single-member etcd inside the process: the etcd
// behind shoal's --dev mode, and a real etcd for tests. It knows nothing of
// shoal's keys or membership; it only starts, reports and stops an etcd.
package devetcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"syscall"
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
	// One member has no one to lose an election to: a 10 ms tick makes
	// it leader in ~50 ms instead of ~700 ms (every test that starts an
	// etcd waited that), for ~6 ms more CPU per second idle.
	ec.TickMs, ec.ElectionMs = 10, 100
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

// StartLocal starts etcd on free ports of host (such as 127.0.0.1) with
// its data in dir. A port found free can be taken by another process
// before etcd binds it, as when test binaries run side by side; StartLocal
// then tries again on fresh ports, up to five times.
func StartLocal(ctx context.Context, dir, host string) (*Server, error) {
	var err error
	for range 5 {
		var client, peer string
		if client, peer, err = twoFreePorts(host); err != nil {
			return nil, err
		}
		var s *Server
		s, err = Start(ctx, Config{Dir: dir, ClientAddr: client, PeerAddr: peer})
		if !errors.Is(err, syscall.EADDRINUSE) {
			return s, err
		}
	}
	return nil, err
}

// twoFreePorts returns two distinct free host:port addresses on host.
func twoFreePorts(host string) (string, string, error) {
	a, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", "", fmt.Errorf("devetcd: %w", err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", "", fmt.Errorf("devetcd: %w", err)
	}
	defer b.Close()
	return a.Addr().String(), b.Addr().String(), nil
}

// Endpoints are the client URLs to give an etcd client.
func (s *Server) Endpoints() []string { return []string{"http://" + s.cfg.ClientAddr} }

// Config returns the config the server was started with, so a test can
// restart it on the same data and ports.
func (s *Server) Config() Config { return s.cfg }

// Close stops etcd and waits for it. It is idempotent.
func (s *Server) Close() { s.close.Do(s.e.Close) }
