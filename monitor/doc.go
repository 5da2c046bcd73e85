// Package monitor shows one node to operators over HTTP: Prometheus metrics
// on /metrics, the cluster view as JSON on /cluster and as a small page on /.
// It reads snapshots (server.Server.Stats, membership.Node.Status) when a
// request arrives and counts nothing itself, so the request path is
// untouched and the `stats` command and /metrics can never disagree. It must
// not know how requests are served or how membership is kept: it only
// formats what those snapshots say.
//
// Data flows at scrape time only:
//
//	GET /metrics ─► metrics.Set.WritePrometheus ─► Monitor.writeNode
//	                  ├─ Server.Stats()   (counters, store, sampled latency)
//	                  ├─ Cluster.Status() (epoch, fencing, members, health)
//	                  └─ Peers.PeerStats() (forwarding, replication; issue 5)
//	GET /cluster  ─► the same snapshots ─► JSON (View)
//	GET /         ─► a self-contained page that fetches /cluster
//
// Each Monitor owns its own *metrics.Set (never the global one), so one
// process can run several nodes.
package monitor
