package etcdsync

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults applied to zero Config fields.
const (
	DefaultPrefix      = "shoal"
	DefaultLeaseTTL    = 10 * time.Second
	DefaultDialTimeout = 5 * time.Second
	// MinLeaseTTL is etcd's minimum lease TTL.
	MinLeaseTTL = 2 * time.Second
)

// Errors returned by Validate, New and Run.
var (
	ErrConfig = errors.New("etcdsync: invalid config")
	// ErrSuperseded means another process registered this node's Name after
	// this one did (a restart of the same node): this process is fenced for
	// good and should stop.
	ErrSuperseded = errors.New("etcdsync: superseded by another instance of this name")
)

// Member is one node's record in etcd.
type Member struct {
	Name       string // node name, unique in the cluster (package node defaults it to host:port)
	Instance   string // per-process incarnation id (random), so that a restart is distinguishable
	ClientAddr string // memcached protocol address
	PeerAddr   string // peer (forwarding, replication) address
	GossipAddr string // memberlist address
}

// Settings are cluster-wide and fixed by the first node: every node adopts
// what etcd holds under /<prefix>/config, within bounds (Validate), and
// never a change of Shards.
type Settings struct {
	Replicas int // copies of each shard, primary included: 1..MaxReplicas
	Shards   int // shard count, 1..MaxShards; never changes for the life of a cluster
	VNodes   int // ring points per node: 1..MaxVNodes
}

// Bounds of Settings. A node sizes per-shard tables by Shards, so a record
// in etcd must not be able to make it allocate without limit.
const (
	MaxShards   = 1 << 16
	MaxReplicas = 8
	MaxVNodes   = 1024
)

// ErrSettings is wrapped by the errors of Settings.Validate.
var ErrSettings = errors.New("etcdsync: settings out of bounds")

// Validate reports a field out of its bounds, wrapping ErrSettings.
func (st Settings) Validate() error {
	if st.Replicas < 1 || st.Replicas > MaxReplicas || st.Shards < 1 || st.Shards > MaxShards ||
		st.VNodes < 1 || st.VNodes > MaxVNodes {
		return fmt.Errorf("%w: %+v: want replicas 1..%d, shards 1..%d, vnodes 1..%d",
			ErrSettings, st, MaxReplicas, MaxShards, MaxVNodes)
	}
	return nil
}

// Config configures a Sync.
type Config struct {
	// Endpoints are etcd client URLs ("http://127.0.0.1:2379"). Required.
	Endpoints []string
	// Prefix is the key prefix, the cluster's name: keys live under
	// /<Prefix>/. "" means DefaultPrefix. It must not contain '/'.
	Prefix string
	// Self is this node's record. Name, Instance, ClientAddr and PeerAddr
	// are required; Name must not contain '/', the addresses are
	// host:port; GossipAddr may be empty. Other nodes ignore a record
	// that breaks these rules.
	Self Member
	// Settings are seeded into etcd by the first node (created only if
	// absent); later nodes adopt what etcd has and ignore these, unless
	// what etcd has is refused (unreadable, out of bounds, or failing
	// CheckSettings): then this node keeps these and says so (see
	// Rejections). They must pass Validate and CheckSettings.
	Settings Settings
	// CheckSettings, when not nil, further restricts the settings this
	// node seeds or adopts (the glue passes what its ring accepts). It is
	// called from Run's goroutines.
	CheckSettings func(Settings) error
	// LeaseTTL is the registration lease's TTL, rounded up to whole seconds.
	// 0 means DefaultLeaseTTL; below MinLeaseTTL is an error.
	LeaseTTL time.Duration
	// DialTimeout bounds each etcd request (and the lease's first
	// keepalive). 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// Logger receives state changes (registered, fenced, relisted). nil
	// discards.
	Logger *slog.Logger
	// TLS, when not nil, is used with https:// endpoints: the CA that
	// signed etcd's certificate (RootCAs), and this node's client
	// certificate if etcd asks for one (--client-cert-auth). nil with
	// https:// endpoints means the system's roots and no client
	// certificate.
	TLS *tls.Config
	// Username and Password authenticate to etcd when its auth is
	// enabled; empty means no authentication.
	Username, Password string
}

// Validate reports the first problem in c, wrapped in ErrConfig. It does not
// apply defaults.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if len(c.Endpoints) == 0 {
		return bad("no endpoints")
	}
	for _, ep := range c.Endpoints {
		if ep == "" {
			return bad("empty endpoint")
		}
	}
	if strings.Contains(c.Prefix, "/") {
		return bad("prefix %q contains '/'", c.Prefix)
	}
	if c.Self.Name == "" || strings.Contains(c.Self.Name, "/") {
		return bad("member name %q is empty or contains '/'", c.Self.Name)
	}
	if err := checkMember(c.Self.Name, c.Self); err != nil {
		return bad("%v", err)
	}
	if err := c.Settings.Validate(); err != nil {
		return bad("%v", err)
	}
	if c.CheckSettings != nil {
		if err := c.CheckSettings(c.Settings); err != nil {
			return bad("settings %+v: %v", c.Settings, err)
		}
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < MinLeaseTTL {
		return bad("lease TTL %v is below %v", c.LeaseTTL, MinLeaseTTL)
	}
	if c.DialTimeout < 0 {
		return bad("negative dial timeout")
	}
	if (c.Username == "") != (c.Password == "") {
		return bad("a user name needs a password, and a password a user name")
	}
	return nil
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Endpoints = append([]string(nil), c.Endpoints...)
	return c
}

// ttlSeconds is the lease TTL in whole seconds, rounded up.
func (c Config) ttlSeconds() int64 {
	return int64((c.LeaseTTL + time.Second - 1) / time.Second)
}
