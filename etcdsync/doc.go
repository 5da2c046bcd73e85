// Package etcdsync keeps this node's membership record in etcd and reports
// the cluster's membership as etcd holds it; it knows nothing of rings,
// gossip, stores or the wire protocol.
//
// Data flow. Run connects, then seeds the cluster settings (a transaction
// that creates /<prefix>/config only if it is absent) or adopts the ones
// already there. Two goroutines then run until the context ends:
//
//   - the registrar grants a lease, writes /<prefix>/members/<name> under it
//     and drains the keepalive channel; when the lease is lost it fences the
//     node, re-registers with a new lease and unfences;
//   - the watcher lists /<prefix>/ (Get), publishes a Snapshot at the list's
//     revision, then watches from revision+1, publishing one Snapshot per
//     watch response. A compacted or broken watch is answered by listing
//     again.
//
// Consumers read Current after every receive on Changed. Snapshot.Revision
// is the ring's epoch: it is the etcd revision of the last change the view
// reflects (or of the list that built it), so it grows with every membership
// change. After each list the registrar rewrites its own record unchanged
// (a "touch"), so that a node that listed at a revision the others never saw
// as an event leads everyone, itself included, to a common revision.
//
// Fencing. Fenced reports true while the node cannot be sure that it holds a
// live registration: before the first one, when no keepalive has been
// acknowledged for three quarters of the lease TTL (the server may be about
// to expire the lease; this includes an etcd outage, which a node cannot
// tell from a partition), after the lease is lost, and after its record was
// deleted, until a write proves the record is back.
//
// Restarts. A process registering a Name for the first time overwrites any
// record of that name: a restarted node (new Instance) replaces its previous
// incarnation at once, without waiting for the old lease to expire. Later
// re-registrations are conditional (the record must be absent or carry this
// Instance), so an old process can never take a name back. A process that
// sees its record rewritten by another Instance is superseded: it fences
// itself for good and Run returns ErrSuperseded.
//
// Validation. etcd is checked, not trusted: whoever can write under the
// prefix must not be able to size a node's tables or fill its ring. The
// settings are adopted only within Settings.Validate's bounds and
// Config.CheckSettings, and never with another shard count than the one
// adopted at start (fixed when the cluster was created); a node joining
// holds a rewritten record to the shard count of its create revision.
// Refused settings change nothing; at the first join the node keeps its
// own Config.Settings. Member records that do not parse or lack what a
// member is reached by are left out. Each refusal is logged once (per
// settings value, per member key) and counted: Rejections.
//
// Key layout (values are JSON; unknown fields are ignored):
//
//	/<prefix>/config          {"replicas":2,"shards":4096,"vnodes":1}
//	/<prefix>/members/<name>  {"name":..,"instance":..,"client":..,"peer":..,"gossip":..}
//
// Only KV, Lease and Watch calls that etcd 3.4 serves are used.
//
// Security. Config.TLS (CA, client certificate) and Username/Password go
// to the etcd client as they are. Run retries forever, right during an
// outage but silent about a misconfiguration, so Probe reads the settings
// key once, bounded by its ctx, and names what went wrong: ErrTLS (a
// certificate refused either way, found at once by a handshake of its
// own), ErrAuth (etcd's answer about the credentials) or ErrUnreachable.
package etcdsync
