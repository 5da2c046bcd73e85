// Package node runs one shoal node: New checks a Config (the command
// line's settings), opens the store and listens; Run serves until its
// context ends, then stops in order and releases what New made.
//
// A standalone node is a store under the client port's server. A cluster
// node (Config.Etcd or Config.Dev) adds, in clusterParts: the membership
// (membership.Node, over etcd and gossip; member.go), the router the client
// port serves through, the peer port's server for forwarded requests and
// the replicator that pushes an owner's writes to its replicas. They start
// in cluster.go's start and stop in stopServing's order: the client port;
// the shards handed off; the membership left; the peer port; the
// replication queue drained; the HTTP server.
//
// Files: config.go (Config), node.go (New, Run, the stop order),
// client.go (the client port's server configuration and "stats
// settings"), listen.go, cluster.go, member.go, security.go (peer and etcd
// authentication), tls.go (-Z), memfile.go (-e), auth.go (-Y), dev.go
// (--dev's embedded etcd; -tags nodev leaves it out).
package node
