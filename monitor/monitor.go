package monitor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"

	"shoal/cluster"
	"shoal/membership"
	"shoal/server"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("monitor: invalid config")

// Stats is the node's counters. *server.Server implements it; Stats is
// called from HTTP handler goroutines concurrently.
type Stats interface {
	Stats() server.Snapshot
}

// Cluster is the node's view of the cluster. *membership.Node implements it;
// Status is called from HTTP handler goroutines concurrently.
type Cluster interface {
	Status() membership.Status
}

// Peers is the seam for routing and replication: the per-member
// forwarding and replication counters and the takeover counters of a
// cluster node (*cluster.Router), called from HTTP handler goroutines
// concurrently.
type Peers interface {
	PeerStats() []cluster.PeerStats
	Counters() cluster.Counters
}

// Config wires a Monitor to the node it shows.
type Config struct {
	// Node names this node; required. On a cluster node it is the member
	// name, on a standalone node whatever identifies it (its address).
	Node string
	// Version is reported in shoal_build_info and /cluster.
	Version string
	// Stats is required.
	Stats Stats
	// Cluster is nil on a standalone node, which shows a one-node view.
	Cluster Cluster
	// Peers is nil on a standalone node (no forwarding, no replication).
	Peers Peers
	// Logger receives HTTP server errors; nil discards them.
	Logger *slog.Logger
}

// Validate reports a missing required field.
func (c Config) Validate() error {
	if c.Node == "" {
		return fmt.Errorf("%w: no node name", ErrConfig)
	}
	if c.Stats == nil {
		return fmt.Errorf("%w: no stats source", ErrConfig)
	}
	return nil
}

// Monitor serves one node's metrics and cluster view.
type Monitor struct {
	cfg Config
	log *slog.Logger
	set *metrics.Set
	srv httpServer
}

// New returns a monitor; it starts nothing.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger, set: metrics.NewSet()}
	m.set.RegisterMetricsWriter(m.writeNode)
	m.srv.init(m)
	return m, nil
}

// Set is this node's metrics set. Components that keep their own
// VictoriaMetrics counters may register them here; series derived from
// snapshots are written by the monitor itself.
func (m *Monitor) Set() *metrics.Set { return m.set }

// WritePrometheus writes every series of this node, then the process's Go
// runtime and process series, in Prometheus text format.
func (m *Monitor) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}
