package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"shoal/cluster"
	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/membership"
	"shoal/ring"
)

// ShardCount is the shard count of a cluster this node creates: the
// first node seeds it, and it is fixed for the life of the cluster.
const ShardCount = 4096

// newClusterNode describes this node to etcd and gossip, once etcd has
// answered with the credentials given. client and peer are the addresses
// the memcached and peer listeners actually bound.
func newClusterNode(ctx context.Context, o Config, endpoints []string, client, peer net.Addr, log *slog.Logger) (*membership.Node, error) {
	advertise := o.Advertise
	if advertise == "" {
		advertise = client.String()
		if ip := client.(*net.TCPAddr).IP; ip.IsUnspecified() {
			return nil, errors.New("--advertise is required when listening on all interfaces")
		}
	}
	host, _, err := net.SplitHostPort(advertise)
	if err != nil {
		return nil, fmt.Errorf("--advertise: %w", err)
	}
	name := o.Node
	if name == "" {
		name = advertise
	}
	gossipAddr := o.Gossip
	if gossipAddr == "" {
		gossipAddr = net.JoinHostPort(host, "0")
	}
	key, err := gossipKey(o)
	if err != nil {
		return nil, err
	}
	instance := make([]byte, 8)
	rand.Read(instance)
	_, peerPort, _ := net.SplitHostPort(peer.String())
	self := etcdsync.Member{
		Name:       name,
		Instance:   hex.EncodeToString(instance),
		ClientAddr: advertise,
		PeerAddr:   net.JoinHostPort(host, peerPort),
	}
	ecfg := etcdsync.Config{
		Endpoints: endpoints,
		Prefix:    o.Cluster,
		Self:      self,
		Settings:  etcdsync.Settings{Replicas: o.Replicas, Shards: ShardCount, VNodes: ring.DefaultVNodes},
		LeaseTTL:  o.LeaseTTL,
	}
	if err := etcdSecurity(o, &ecfg); err != nil {
		return nil, err
	}
	if err := probeEtcd(ctx, ecfg, log); err != nil {
		return nil, err
	}
	return membership.New(membership.Config{
		Etcd: ecfg,
		Gossip: gossip.Config{
			BindAddr:  gossipAddr,
			SecretKey: key,
			Label:     o.Cluster,
		},
		Logger: log,
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// waitInView returns once the view the router routes by (the one its Run
// applied) lists the node itself, ctx ends or timeout passes.
func waitInView(ctx context.Context, router *cluster.Router, self string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		applied := router.ViewApplied()
		if v := router.View(); v != nil && v.Ring != nil && slices.Contains(v.Ring.Nodes(), self) {
			return
		}
		select {
		case <-applied:
		case <-ctx.Done():
			return
		}
	}
}
