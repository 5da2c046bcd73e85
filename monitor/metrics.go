package monitor

import (
	"io"
	"math"
	"strconv"
	"strings"

	"shoal/cluster"
	"shoal/gossip"
	"shoal/server"
)

// promWriter appends Prometheus text lines, each family with its HELP and
// TYPE, to one buffer written out at the end.
type promWriter struct{ b []byte }

func (p *promWriter) family(name, typ, help string) {
	p.b = append(p.b, "# HELP "...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ' ')
	p.b = append(p.b, help...)
	p.b = append(p.b, "\n# TYPE "...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ' ')
	p.b = append(p.b, typ...)
	p.b = append(p.b, '\n')
}

// sample writes name{labels} v; labels alternate name, value.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.b = append(p.b, name...)
	if len(labels) > 0 {
		p.b = append(p.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.b = append(p.b, ',')
			}
			p.b = append(p.b, labels[i]...)
			p.b = append(p.b, `="`...)
			p.b = append(p.b, labelEscaper.Replace(labels[i+1])...)
			p.b = append(p.b, '"')
		}
		p.b = append(p.b, '}')
	}
	p.b = append(p.b, ' ')
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		p.b = strconv.AppendInt(p.b, int64(v), 10)
	} else {
		p.b = strconv.AppendFloat(p.b, v, 'g', -1, 64)
	}
	p.b = append(p.b, '\n')
}

// one writes a family with a single unlabelled sample.
func (p *promWriter) one(name, typ, help string, v float64) {
	p.family(name, typ, help)
	p.sample(name, v)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// counterNames maps memcached's connection counters (server.Snapshot
// Commands) to series. cmd_* become one family with a command label; the
// rest keep memcached's name.
var counterNames = []struct{ stat, series, help string }{
	{"get_hits", "shoal_get_hits_total", "Reads that found the item (memcached get_hits)."},
	{"get_misses", "shoal_get_misses_total", "Reads that found nothing (memcached get_misses)."},
	{"delete_hits", "shoal_delete_hits_total", "Deletes that removed an item."},
	{"delete_misses", "shoal_delete_misses_total", "Deletes of absent keys."},
	{"incr_hits", "shoal_incr_hits_total", "incr on existing items."},
	{"incr_misses", "shoal_incr_misses_total", "incr on absent keys."},
	{"decr_hits", "shoal_decr_hits_total", "decr on existing items."},
	{"decr_misses", "shoal_decr_misses_total", "decr on absent keys."},
	{"cas_hits", "shoal_cas_hits_total", "CAS writes applied."},
	{"cas_misses", "shoal_cas_misses_total", "CAS writes on absent keys."},
	{"cas_badval", "shoal_cas_badval_total", "CAS writes refused for a stale CAS value."},
	{"touch_hits", "shoal_touch_hits_total", "Touches of existing items."},
	{"touch_misses", "shoal_touch_misses_total", "Touches of absent keys."},
	{"store_too_large", "shoal_store_too_large_total", "Writes refused as larger than the item size limit."},
	{"store_no_memory", "shoal_store_no_memory_total", "Writes refused for lack of memory (-M)."},
	{"bytes_read", "shoal_read_bytes_total", "Bytes read from clients."},
	{"bytes_written", "shoal_written_bytes_total", "Bytes written to clients."},
}

var commandNames = []struct{ stat, label string }{
	{"cmd_get", "get"}, {"cmd_set", "set"}, {"cmd_touch", "touch"}, {"cmd_flush", "flush"}, {"cmd_meta", "meta"},
}

// writeNode writes the series derived from one snapshot of each source.
// Counters follow memcached's: `stats reset` sets them back to zero, which
// Prometheus' rate() reads as a counter reset.
func (m *Monitor) writeNode(w io.Writer) {
	var p promWriter
	snap := m.cfg.Stats.Stats()
	p.family("shoal_build_info", "gauge", "Always 1; labels carry the versions.")
	p.sample("shoal_build_info", 1, "version", m.cfg.Version, "memcached", server.Version, "node", m.cfg.Node)
	writeServer(&p, snap)
	if m.cfg.Cluster != nil {
		m.writeCluster(&p)
	}
	if m.cfg.Peers != nil {
		writeCounters(&p, m.cfg.Peers.Counters())
		writePeers(&p, m.cfg.Peers.PeerStats())
	}
	w.Write(p.b)
}

func writeServer(p *promWriter, snap server.Snapshot) {
	st := snap.Store
	p.one("shoal_uptime_seconds", "gauge", "Seconds since the node started.", snap.Uptime.Seconds())
	p.one("shoal_connections", "gauge", "Open client connections (curr_connections).", float64(snap.CurrConnections))
	p.one("shoal_connections_total", "counter", "Client connections accepted (total_connections).", float64(snap.TotalConnections))
	p.one("shoal_connections_rejected_total", "counter", "Connections refused at the -c limit.", float64(snap.Rejected))
	p.one("shoal_connections_idle_kicked_total", "counter", "Connections closed for the idle timeout (idle_kicks).", float64(snap.IdleKicks))
	p.one("shoal_loop_batched_send_calls_total", "counter", "io_uring calls by which event loops sent several connections' replies at once.", float64(snap.BatchedSends.Calls))
	p.one("shoal_loop_batched_sends_total", "counter", "Replies event loops sent in those calls.", float64(snap.BatchedSends.Sends))
	p.one("shoal_peer_replies_batched_total", "counter", "Client replies of requests forwarded to a peer, held to go out together after the peer reader's completions.", float64(snap.PeerReplies.Sends))
	p.one("shoal_peer_replies_batch_sends_total", "counter", "Sends of those held replies, together: io_uring calls, or one send(2) for a lone reply.", float64(snap.PeerReplies.Calls))
	cm := snap.ConnMem
	p.one("shoal_connection_read_buffer_bytes", "gauge", "Bytes of connections' read buffers, values being received included (read_buf_bytes).", float64(cm.ReadBufBytes))
	p.one("shoal_connection_reply_buffer_bytes", "gauge", "Bytes of connections' reply buffers (response_obj_bytes).", float64(cm.ResponseBytes))
	p.one("shoal_connection_memory_held_bytes", "gauge", "Connection memory counted against the limit (-o read_buf_mem_limit).", float64(cm.Held))
	p.one("shoal_connection_memory_limit_bytes", "gauge", "The limit on connection memory (-o read_buf_mem_limit).", float64(cm.Limit))
	p.one("shoal_connection_memory_refused_total", "counter", "Values refused with SERVER_ERROR out of memory for the connection memory limit (read_buf_oom).", float64(cm.ReadBufOOM))
	p.one("shoal_connection_memory_waits_total", "counter", "Retrievals made to wait because connections held more than the limit (response_obj_oom).", float64(cm.ResponseOOM))
	p.one("shoal_connections_unread_closed_total", "counter", "Connections closed because their replies waited unread while the replies held more than the connection memory limit.", float64(cm.Evicted))
	p.family("shoal_commands_total", "counter", "Commands by memcached's cmd_* counter.")
	for _, c := range commandNames {
		p.sample("shoal_commands_total", float64(snap.Commands[c.stat]), "command", c.label)
	}
	for _, c := range counterNames {
		p.one(c.series, "counter", c.help, float64(snap.Commands[c.stat]))
	}
	p.one("shoal_get_expired_total", "counter", "Lookups (reads and writes) that found an expired item.", float64(st.GetExpired))
	p.one("shoal_get_flushed_total", "counter", "Lookups (reads and writes) that found a flushed item.", float64(st.GetFlushed))
	p.one("shoal_items", "gauge", "Items stored (curr_items).", float64(st.CurrItems))
	p.one("shoal_items_total", "counter", "Items ever stored (total_items).", float64(st.TotalItems))
	p.one("shoal_bytes", "gauge", "Bytes of items stored (bytes).", float64(st.Bytes))
	p.one("shoal_limit_bytes", "gauge", "Memory limit for items (limit_maxbytes, -m).", float64(st.LimitMaxbytes))
	p.one("shoal_malloced_bytes", "gauge", "Slab pages allocated, in bytes (total_malloced).", float64(st.Pages*st.PageSize))
	p.one("shoal_evictions_total", "counter", "Live items evicted to make room (evictions).", float64(st.Evictions))
	p.one("shoal_evicted_unfetched_total", "counter", "Evicted items that were never read.", float64(st.EvictedUnfetched))
	p.one("shoal_reclaimed_total", "counter", "Expired items whose memory was reused (reclaimed).", float64(st.Reclaimed))
	p.one("shoal_expired_unfetched_total", "counter", "Expired items that were never read.", float64(st.ExpiredUnfetched))
	writeLatency(p, snap)
}

// writeLatency writes the sampled command latencies as one Prometheus
// histogram per family. Only about 1 command in server.SampleEvery is timed,
// so _count is a sample count: use it for quantiles, shoal_commands_total
// for rates.
func writeLatency(p *promWriter, snap server.Snapshot) {
	const name = "shoal_command_duration_seconds"
	p.family(name, "histogram", "Execution time of a random sample of about 1 in "+
		strconv.Itoa(server.SampleEvery)+" commands, by command family.")
	for f, l := range snap.Latency {
		fam := server.Families[f]
		var cum int64
		for i, bound := range server.LatencyBounds {
			cum += l.Buckets[i]
			p.sample(name+"_bucket", float64(cum), "family", fam, "le", strconv.FormatFloat(bound.Seconds(), 'f', -1, 64))
		}
		p.sample(name+"_bucket", float64(l.Count), "family", fam, "le", "+Inf")
		p.sample(name+"_sum", l.Sum.Seconds(), "family", fam)
		p.sample(name+"_count", float64(l.Count), "family", fam)
	}
}

func (m *Monitor) writeCluster(p *promWriter) {
	st := m.cfg.Cluster.Status()
	p.one("shoal_cluster_epoch", "gauge", "etcd revision of the membership this node's ring was built from.", float64(st.Epoch))
	p.one("shoal_cluster_fenced", "gauge", "1 while this node has no live registration in etcd.", b2f(st.Fenced))
	p.one("shoal_cluster_members", "gauge", "Members in this node's ring.", float64(len(st.Members)))
	p.one("shoal_cluster_members_unseen", "gauge", "Members etcd lists that gossip has never seen alive, left out of the ring.", float64(st.Unseen))
	p.one("shoal_config_rejected_total", "counter", "Cluster settings in etcd refused: out of bounds, unreadable, or changing the shard count.", float64(st.Rejected.Config))
	p.one("shoal_config_refused", "gauge", "1 while the cluster settings in etcd are refused and this node keeps its own.", b2f(st.Rejected.ConfigRefused))
	p.one("shoal_member_records_rejected_total", "counter", "Member records in etcd refused as unreadable or invalid.", float64(st.Rejected.Members))
	p.one("shoal_member_records_ignored", "gauge", "Member records in etcd ignored now as unreadable or invalid.", float64(st.Rejected.MembersIgnored))
	p.family("shoal_member_up", "gauge", "1 if the member is up as the source sees it: etcd lists it with a live lease, gossip finds it alive.")
	for _, mb := range st.Members {
		p.sample("shoal_member_up", 1, "member", mb.Name, "source", "etcd")
		p.sample("shoal_member_up", b2f(mb.Health == gossip.Alive), "member", mb.Name, "source", "gossip")
	}
	p.family("shoal_member_shards", "gauge", "Shards the member owns in this node's ring, as primary or as any copy.")
	for _, mb := range st.Members {
		p.sample("shoal_member_shards", float64(mb.PrimaryShards), "member", mb.Name, "role", "primary")
		p.sample("shoal_member_shards", float64(mb.OwnedShards), "member", mb.Name, "role", "owned")
	}
}

// writeCounters writes a cluster node's warm-up, pause and replica series.
func writeCounters(p *promWriter, t cluster.Counters) {
	p.one("shoal_warm_shards", "gauge", "Shards this node is taking over (warming) now.", float64(t.WarmShards))
	p.one("shoal_warm_pulled_items_total", "counter", "Items pulled from another node while warming shards.", float64(t.Pulled))
	p.one("shoal_warm_dropped_items_total", "counter", "Items dropped as possibly stale before a shard was pulled again.", float64(t.Dropped))
	p.one("shoal_warm_read_through_total", "counter", "Keys read through from another node while their shard warmed.", float64(t.ReadThrough))
	p.one("shoal_pauses_total", "counter", "Times this process found it had been paused.", float64(t.Pauses))
	p.one("shoal_lapses_total", "counter", "Times this node registered again after the cluster had gone on without it.", float64(t.Lapses))
	p.one("shoal_replica_writes_total", "counter", "Replicated writes applied.", float64(t.ReplicaWrites))
	p.one("shoal_replica_stale_epochs_total", "counter", "Replicated writes refused for an epoch older than their shard's owners.", float64(t.ReplicaStaleEpochs))
	p.one("shoal_hint_members", "gauge", "Members owed writes they missed, to hand back once they answer.", float64(t.HintMembers))
	p.one("shoal_hint_shards", "gauge", "Shards owed to members that missed writes, summed over members.", float64(t.HintShards))
	p.one("shoal_handed_back_items_total", "counter", "Items and deletes handed back to members that missed them.", float64(t.HandedBack))
	p.one("shoal_reverified_shards_total", "counter", "Shards re-verified from a co-owner that came back.", float64(t.Reverified))
	p.one("shoal_tombstones", "gauge", "Deletes remembered with their version.", float64(t.Tombstones))
	p.one("shoal_tombstones_evicted_total", "counter", "Deletes forgotten before their time for lack of room.", float64(t.TombstonesEvicted))
	p.one("shoal_multiget_held_bytes", "gauge", "Bytes of other owners' values multi-gets hold now, within the node's bound.", float64(t.MultiGetHeld))
	p.one("shoal_multiget_held_peak_bytes", "gauge", "The most bytes of other owners' values multi-gets held at once.", float64(t.MultiGetHeldPeak))
}

// writePeers writes the per-peer forwarding and replication series.
func writePeers(p *promWriter, peers []cluster.PeerStats) {
	if len(peers) == 0 {
		return
	}
	fams := []struct {
		name, typ, help string
		v               func(cluster.PeerStats) float64
	}{
		{"shoal_forwarded_total", "counter", "Requests forwarded to the peer.", func(s cluster.PeerStats) float64 { return float64(s.Forwarded) }},
		{"shoal_forward_failures_total", "counter", "Forwarded requests that failed.", func(s cluster.PeerStats) float64 { return float64(s.Failures) }},
		{"shoal_replication_lag_seconds", "gauge", "Age of the oldest write not yet acknowledged by the peer.", func(s cluster.PeerStats) float64 { return s.ReplLag.Seconds() }},
		{"shoal_replication_lag_sequences", "gauge", "Writes to the peer not yet acknowledged (sequence numbers behind, over all shards).", func(s cluster.PeerStats) float64 { return float64(s.ReplLagSeq) }},
		{"shoal_replication_queue_bytes", "gauge", "Bytes of keys and values queued for the peer or being sent.", func(s cluster.PeerStats) float64 { return float64(s.ReplQueueBytes) }},
		{"shoal_replication_queue_drops_total", "counter", "Writes to the peer dropped because its queue was full.", func(s cluster.PeerStats) float64 { return float64(s.ReplQueueDrops) }},
		{"shoal_peer_down", "gauge", "1 while requests skip the peer after a failure (until a probe gets an answer).", func(s cluster.PeerStats) float64 { return b2f(s.Down) }},
		{"shoal_replication_stale_total", "counter", "Writes the peer refused as older than its view, sent again with the current one.", func(s cluster.PeerStats) float64 { return float64(s.ReplStale) }},
	}
	for _, f := range fams {
		p.family(f.name, f.typ, f.help)
		for _, s := range peers {
			p.sample(f.name, f.v(s), "peer", s.Peer)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
