package node

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"shoal/protocol"
	"shoal/server"
)

// Config is a node's settings, named and defaulted as memcached's flags
// (Defaults); the shoal command fills it from its command line.
type Config struct {
	Port          int
	Listen        string // comma-separated addresses
	MemoryMB      int64
	MaxConns      int
	Threads       int // 0: all cores
	MaxItemSize   int
	NoEvict       bool
	NoCAS         bool // -C
	UDPPort       int
	AllowShutdown bool
	DisableFlush  bool
	DisableWatch  bool
	Binding       protocol.Binding // -B
	SASL          bool             // -S: users from $MEMCACHED_SASL_PWDB
	IdleTimeout   time.Duration
	UnixSocket    string      // -s: serve this UNIX socket instead of TCP
	TLS           TLS         // -Z and -o ssl_*
	AuthFile      string      // -Y
	GrowthFactor  float64     // -f; 0: the store's default
	PrefixDelim   byte        // -D
	PIDFile       string      // -P
	MemoryFile    string      // -e: item memory in this file (warm restart)
	ReqsPerEvent  int         // -R, reported only
	Backlog       int         // -b, reported only
	UnixMask      os.FileMode // -a
	ConnMemMB     int         // -o read_buf_mem_limit; 0: max(32, MemoryMB/8)
	Off           server.Off  // -o no_lru_crawler, no_lru_maintainer, ...
	// ConnGoroutines serves each client connection on a goroutine of its
	// own instead of event loops.
	ConnGoroutines bool
	// NoIOUring: event loops write each connection's replies with its own
	// send(2), not a wake-up's together through io_uring (--no-io-uring).
	NoIOUring bool
	HTTPAddr  string // --http: /metrics and /cluster; empty means off

	// Cluster mode (any of Etcd or Dev set).
	Etcd      string // comma-separated endpoints; empty means standalone
	Cluster   string // key prefix in etcd, and the gossip label
	Node      string // node name; default the advertised client address
	Advertise string // host:port other nodes and clients reach us at
	Gossip    string // host:port memberlist binds; port 0 picks one
	Peer      string // host:port for forwarded requests; port 0 picks one
	GossipKey string // base64 memberlist key (16, 24 or 32 bytes)
	// GossipKeyFile holds the same; else $SHOAL_GOSSIP_KEY (security.go)
	GossipKeyFile string
	Replicas      int
	Dev           bool   // run an embedded single-member etcd
	DevEtcd       string // its client address
	LeaseTTL      time.Duration
	// RestoreMargin: a warm restart pulls what changed since this long
	// before the save; 0 means the router's default.
	RestoreMargin time.Duration

	// Peer port authentication (security.go): a secret, or mutual TLS.
	ClusterSecretFile string
	ClusterCACert     string
	ClusterCert       string
	ClusterKey        string
	// etcd's TLS and authentication, as etcdctl's flags.
	EtcdCACert       string
	EtcdCert         string
	EtcdKey          string
	EtcdUser         string
	EtcdPasswordFile string // else $SHOAL_ETCD_PASSWORD

	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Ready, when not nil, receives the listening addresses once the node
	// serves them.
	Ready func([]net.Addr)
}

// TLS is -Z and memcached's -o ssl_* options.
type TLS struct {
	Enabled                 bool
	ChainCert, Key, CACert  string
	VerifyMode              int
	MinVersion              string
	KeyFormat, Ciphers      string // accepted, reported
	WbufSize                int    // accepted, reported (KB)
	SessionCache, KernelTLS bool   // accepted, reported
}

// Defaults are memcached's defaults, and a cluster's.
func Defaults() Config {
	return Config{
		Port:         11211,
		Listen:       "127.0.0.1",
		MemoryMB:     64,
		MaxConns:     1024,
		MaxItemSize:  1 << 20,
		UnixMask:     0700,
		PrefixDelim:  ':',
		ReqsPerEvent: 20,
		Backlog:      1024,
		Cluster:      "shoal",
		Replicas:     2,
		DevEtcd:      "127.0.0.1:2379",
	}
}

// Clustered reports whether the node joins a cluster.
func (o Config) Clustered() bool { return o.Etcd != "" || o.Dev }

// ConnMemLimit is the bytes connections may hold outside the store
// (server.Config.ConnMemLimit): -o read_buf_mem_limit, memcached's name for
// the limit on its read buffers, or by default an eighth of -m, at least
// 32 MB.
func (o Config) ConnMemLimit() int64 {
	if o.ConnMemMB > 0 {
		return int64(o.ConnMemMB) << 20
	}
	return max(32, int64(o.MemoryMB)/8) << 20
}

// Validate refuses what memcached refuses, with its reasons, and the
// security settings that do not go together.
func (o Config) Validate() error {
	switch {
	case o.UDPPort != 0:
		return errors.New("UDP is not supported: shoal serves TCP only; use -U 0")
	case o.UnixSocket != "" && o.Clustered():
		return errors.New("-s serves clients on a UNIX socket only, which a cluster node cannot advertise; use -l")
	case o.MaxItemSize < 1024:
		return errors.New("item max size cannot be less than 1024 bytes")
	case o.MaxItemSize > 1<<30:
		return errors.New("cannot set item size limit higher than 1 gigabyte")
	case int64(o.MaxItemSize) > o.MemoryMB<<20/2:
		return errors.New("cannot set item size limit higher than 1/2 of memory max")
	}
	return o.validateSecurity()
}
