package server

import (
	"cmp"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"shoal/protocol"
	"shoal/store"
)

// Snapshot is the server's view for the stats command and for metrics: the
// store's counters plus the connection server's.
type Snapshot struct {
	Store            store.Stats
	Commands         map[string]int64 // cmd_get, get_hits, ... by memcached name
	CurrConnections  int64
	TotalConnections int64
	Rejected         int64
	IdleKicks        int64
	BatchedSends     BatchedSends
	// PeerReplies counts the replies Config.Batch held for the peer
	// readers that completed them (Sends) and the Batch's Sends that sent
	// them (Calls): replies per call.
	PeerReplies BatchedSends
	Uptime      time.Duration
	// ConnMem is the memory connections hold outside the store.
	ConnMem ConnMem
	// Latency holds the sampled command latencies by Family. stats reset
	// leaves them alone: they are not memcached stats.
	Latency [numFamilies]Latency
	// Watch counts the watch command's lines and watchers.
	Watch WatchStats
}

// BatchedSends counts the io_uring calls by which event loops sent the
// replies of several connections at once (Calls), and those replies
// (Sends): Sends/Calls connections per system call.
type BatchedSends struct{ Calls, Sends int64 }

// Stats returns a snapshot of every counter.
func (s *Server) Stats() Snapshot {
	s.mu.Lock()
	t := s.sumLocked()
	curr := int64(len(s.conns))
	s.mu.Unlock()
	cmds := make(map[string]int64)
	for _, f := range t.fields() {
		cmds[f.name] = f.v.Load()
	}
	snap := Snapshot{
		Store:            s.items.Stats(),
		Commands:         cmds,
		CurrConnections:  curr,
		TotalConnections: s.totalConns.Load(),
		Rejected:         s.rejectedConns.Load(),
		IdleKicks:        s.idleKicks.Load(),
		BatchedSends:     BatchedSends{Calls: s.ringCalls.Load(), Sends: s.ringSends.Load()},
		PeerReplies:      s.cfg.Batch.counts(),
		Uptime:           time.Since(s.started),
		ConnMem:          s.mem.snapshot(),
		Watch:            s.watch.Stats(),
	}
	for i := range s.latency {
		snap.Latency[i] = s.latency[i].snapshot()
	}
	return snap
}

// statWriter appends "STAT name value" lines.
type statWriter struct {
	out  []byte
	skip map[string]bool // fields left out
}

func (w *statWriter) str(name, v string) {
	if w.skip[name] {
		return
	}
	w.out = append(w.out, "STAT "...)
	w.out = append(w.out, name...)
	w.out = append(w.out, ' ')
	w.out = append(w.out, v...)
	w.out = append(w.out, '\r', '\n')
}

func (w *statWriter) int(name string, v int64) { w.str(name, strconv.FormatInt(v, 10)) }

func (c *conn) stats(cmd *protocol.Stats) {
	w := statWriter{out: c.out}
	switch string(cmd.Arg) {
	case "":
		c.srv.generalStats(&w)
	case "settings":
		c.srv.settingsStats(&w)
	case "items":
		itemStats(&w, c.srv.items.Stats(), c.srv.items.Now())
	case "slabs":
		slabStats(&w, c.srv.items.Stats())
	case "conns":
		c.srv.connStats(&w, c.srv.items.Now())
	case "cluster":
		c.srv.clusterStats(&w)
	case "ring":
		if !c.srv.ringStats(&w) {
			c.line("ERROR")
			return
		}
	case "sizes":
		w.str("sizes_status", "disabled")
	case "reset":
		c.srv.resetStats()
		c.line("RESET")
		return
	case "detail":
		c.detail(cmd.Args[1:])
		return
	case "cachedump":
		c.cachedump(cmd.Args)
		return
	default:
		c.line("ERROR")
		return
	}
	c.out = append(w.out, "END\r\n"...)
}

func (s *Server) resetStats() {
	s.mu.Lock()
	s.closed.reset()
	for c := range s.conns {
		c.ctr.reset()
	}
	s.mu.Unlock()
	s.totalConns.Store(0)
	s.rejectedConns.Store(0)
	s.watch.resetStats()
	s.items.ResetStats()
	s.detail.clear() // memcached's stats_reset: stats_prefix_clear
}

func (s *Server) generalStats(w *statWriter) {
	w.skip = s.statsOff
	defer func() { w.skip = nil }()
	snap := s.Stats()
	st := snap.Store
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	w.int("pid", int64(os.Getpid()))
	w.int("uptime", int64(snap.Uptime/time.Second))
	w.int("time", s.items.Now())
	w.str("version", Version)
	w.str("libevent", "none")
	w.int("pointer_size", 64)
	w.str("rusage_user", timeval(ru.Utime))
	w.str("rusage_system", timeval(ru.Stime))
	w.int("max_connections", int64(s.cfg.MaxConns))
	w.int("curr_connections", snap.CurrConnections)
	w.int("total_connections", snap.TotalConnections)
	w.int("rejected_connections", snap.Rejected)
	w.int("connection_structures", snap.CurrConnections)
	cm := snap.ConnMem
	w.int("response_obj_oom", cm.ResponseOOM)
	w.int("response_obj_count", cm.ResponseCount)
	w.int("response_obj_bytes", cm.ResponseBytes)
	w.int("read_buf_count", cm.ReadBufCount)
	w.int("read_buf_bytes", cm.ReadBufBytes)
	w.int("read_buf_bytes_free", 0)
	w.int("read_buf_oom", cm.ReadBufOOM)
	w.int("reserved_fds", s.reservedFDs())
	for _, name := range commandOrder[:cmdHeadLen] {
		w.int(name, snap.Commands[name])
	}
	w.int("get_expired", st.GetExpired)
	w.int("get_flushed", st.GetFlushed)
	for _, name := range commandOrder[cmdHeadLen:] {
		if name == "bytes_read" {
			w.int("auth_cmds", s.auth.cmds.Load())
			w.int("auth_errors", s.auth.errors.Load())
			if s.cfg.IdleTimeout > 0 {
				w.int("idle_kicks", snap.IdleKicks) // as memcached: only with one
			}
		}
		w.int(name, snap.Commands[name])
	}
	w.int("limit_maxbytes", st.LimitMaxbytes)
	w.int("accepting_conns", 1)
	zeros(w, "listen_disabled_num", "time_in_listen_disabled_us")
	w.int("threads", int64(s.cfg.Threads))
	zeros(w, "conn_yields", "hash_power_level", "hash_bytes", "hash_is_expanding")
	w.int("slab_reassign_rescues", st.Rescued)
	zeros(w, "slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem",
		"slab_reassign_inline_reclaim", "slab_reassign_busy_items", "slab_reassign_busy_deletes",
		"slab_reassign_running", "slabs_moved", "lru_crawler_running", "lru_crawler_starts",
		"lru_maintainer_juggles", "malloc_fails", "log_worker_dropped")
	w.int("log_worker_written", snap.Watch.Written)
	w.int("log_watcher_skipped", snap.Watch.Skipped)
	w.int("log_watcher_sent", snap.Watch.Sent)
	w.int("log_watchers", snap.Watch.Watchers)
	if t := s.cfg.TLS; t != nil {
		w.int("ssl_handshake_errors", t.HandshakeErrors())
		w.int("time_since_server_cert_refresh", t.SinceRefresh())
	}
	zeros(w, "unexpected_napi_ids", "round_robin_fallback")
	w.int("bytes", st.Bytes)
	w.int("curr_items", st.CurrItems)
	w.int("total_items", st.TotalItems)
	w.int("slab_global_page_pool", st.PoolPages)
	w.int("expired_unfetched", st.ExpiredUnfetched)
	w.int("evicted_unfetched", st.EvictedUnfetched)
	w.int("evicted_active", 0)
	w.int("evictions", st.Evictions)
	w.int("reclaimed", st.Reclaimed)
	zeros(w, "crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked",
		"moves_to_cold", "moves_to_warm", "moves_within_lru")
	// Every eviction is made by the writer that needs the memory: what
	// memcached counts as a direct reclaim.
	w.int("direct_reclaims", st.Evictions)
	w.int("lru_bumps_dropped", 0)
}

// offStats are the stats fields memcached leaves out when the machinery
// they count is switched off.
func offStats(off Off) map[string]bool {
	m := map[string]bool{}
	add := func(on bool, names ...string) {
		for _, n := range names {
			m[n] = on
		}
	}
	add(off.LRUCrawler, "lru_crawler_running", "lru_crawler_starts")
	add(off.LRUMaintainer, "direct_reclaims", "evicted_active", "lru_bumps_dropped",
		"lru_maintainer_juggles", "moves_to_cold", "moves_to_warm", "moves_within_lru")
	add(off.SlabReassign, "slab_reassign_rescues", "slab_reassign_chunk_rescues",
		"slab_reassign_evictions_nomem", "slab_reassign_inline_reclaim",
		"slab_reassign_busy_items", "slab_reassign_busy_deletes", "slab_reassign_running", "slabs_moved")
	add(off.MaxconnsFast, "rejected_connections")
	return m
}

// zeros writes memcached fields that describe machinery shoal does not
// have (STATS.md says which and why) as 0, so that tools reading them find
// them.
func zeros(w *statWriter, names ...string) {
	for _, n := range names {
		w.int(n, 0)
	}
}

// reservedFDs is what memcached's reserved_fds counts: descriptors that
// are not client connections (listeners, and each event loop's epoll and
// eventfd).
func (s *Server) reservedFDs() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.listeners) + 2*len(s.loops))
}

// commandOrder is memcached's order of the connection counters in stats;
// get_expired and get_flushed (store counters) sit after the first
// cmdHeadLen names.
var commandOrder = [...]string{
	"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta", "get_hits", "get_misses",
	"delete_misses", "delete_hits", "incr_misses", "incr_hits", "decr_misses", "decr_hits",
	"cas_misses", "cas_hits", "cas_badval", "touch_hits", "touch_misses",
	"store_too_large", "store_no_memory", "bytes_read", "bytes_written",
}

const cmdHeadLen = 7

func timeval(tv syscall.Timeval) string {
	us := strconv.FormatInt(int64(tv.Usec)+1e6, 10)[1:]
	return strconv.FormatInt(int64(tv.Sec), 10) + "." + us
}

func (s *Server) settingsStats(w *statWriter) {
	st := s.items.Stats()
	vals := map[string]string{}
	for _, kv := range fixedSettings {
		vals[kv[0]] = kv[1]
	}
	for name, v := range map[string]string{
		"maxbytes":            strconv.FormatInt(st.LimitMaxbytes, 10),
		"maxconns":            strconv.Itoa(s.cfg.MaxConns),
		"verbosity":           strconv.FormatInt(s.verbosity.Load(), 10),
		"shutdown_command":    yesNo(s.cfg.EnableShutdown),
		"num_threads":         strconv.Itoa(s.cfg.Threads),
		"num_threads_per_udp": strconv.Itoa(s.cfg.Threads),
		"detail_enabled":      yesNo(s.detail.on.Load()),
		"item_size_max":       strconv.Itoa(s.cfg.MaxItemSize),
		"slab_chunk_max":      strconv.FormatInt(st.PageSize, 10),
		"flush_enabled":       yesNo(!s.cfg.DisableFlush),
		"idle_timeout":        strconv.FormatInt(int64(s.cfg.IdleTimeout/time.Second), 10),
		"read_buf_mem_limit":  strconv.FormatInt(s.mem.limit>>20, 10),
		"binding_protocol":    s.cfg.Binding.String(),
		"auth_enabled_sasl":   yesNo(s.cfg.SASL != nil),
	} {
		vals[name] = v
	}
	for _, kv := range s.cfg.Settings {
		vals[kv[0]] = kv[1]
	}
	for _, name := range settingsOrder {
		if v, ok := vals[name]; ok {
			w.str(name, v)
		}
	}
}

// fixedSettings are "stats settings" lines whose value shoal does not
// change: memcached machinery shoal has in another form or not at all,
// reported as memcached 1.6.18 reports its defaults so that tools find
// them (STATS.md says what each means for shoal). The node's flags
// (Config.Settings) override them where shoal has the setting.
var fixedSettings = [...][2]string{
	{"oldest", "0"}, {"evictions", "on"}, {"domain_socket", "NULL"}, {"umask", "700"},
	{"growth_factor", "1.08"}, {"chunk_size", "48"}, {"stat_key_prefix", ":"},
	{"reqs_per_event", "20"}, {"cas_enabled", "yes"}, {"tcp_backlog", "1024"},
	{"binding_protocol", "ascii"}, {"auth_enabled_sasl", "no"}, {"auth_enabled_ascii", "no"},
	{"maxconns_fast", "yes"}, {"hashpower_init", "0"}, {"slab_reassign", "yes"},
	{"slab_automove", "1"}, {"slab_automove_ratio", "0.80"}, {"slab_automove_window", "30"},
	{"lru_crawler", "yes"}, {"lru_crawler_sleep", "100"}, {"lru_crawler_tocrawl", "0"},
	{"tail_repair_time", "0"}, {"dump_enabled", "yes"}, {"hash_algorithm", "maphash"},
	{"lru_maintainer_thread", "no"}, {"lru_segmented", "no"}, {"hot_lru_pct", "20"},
	{"warm_lru_pct", "40"}, {"hot_max_factor", "0.20"}, {"warm_max_factor", "2.00"},
	{"temp_lru", "no"}, {"temporary_ttl", "61"}, {"watcher_logbuf_size", strconv.Itoa(WatcherBufSize)},
	{"worker_logbuf_size", "65536"}, {"track_sizes", "no"}, {"inline_ascii_response", "no"},
	{"ext_item_size", "512"}, {"ext_item_age", "4294967295"}, {"ext_low_ttl", "0"},
	{"ext_recache_rate", "2000"}, {"ext_wbuf_size", "4194304"}, {"ext_compact_under", "0"},
	{"ext_drop_under", "0"}, {"ext_max_sleep", "1000000"}, {"ext_max_frag", "0.80"},
	{"slab_automove_freeratio", "0.010"}, {"ext_drop_unread", "no"}, {"ssl_enabled", "no"},
	{"ssl_chain_cert", "(null)"}, {"ssl_key", "(null)"}, {"ssl_verify_mode", "0"},
	{"ssl_keyformat", "1"}, {"ssl_ciphers", "NULL"}, {"ssl_ca_cert", "NULL"},
	{"ssl_wbuf_size", "16384"}, {"ssl_session_cache", "no"}, {"ssl_kernel_tls", "no"},
	{"ssl_min_version", "tlsv1.2"}, {"num_napi_ids", "(null)"}, {"memory_file", "(null)"},
}

// settingsOrder is memcached 1.6.18's order of "stats settings" lines.
var settingsOrder = [...]string{
	"maxbytes", "maxconns", "tcpport", "udpport", "inter", "verbosity", "oldest", "evictions",
	"domain_socket", "umask", "shutdown_command", "growth_factor", "chunk_size", "num_threads",
	"num_threads_per_udp", "stat_key_prefix", "detail_enabled", "reqs_per_event", "cas_enabled",
	"tcp_backlog", "binding_protocol", "auth_enabled_sasl", "auth_enabled_ascii", "item_size_max",
	"maxconns_fast", "hashpower_init", "slab_reassign", "slab_automove", "slab_automove_ratio",
	"slab_automove_window", "slab_chunk_max", "lru_crawler", "lru_crawler_sleep",
	"lru_crawler_tocrawl", "tail_repair_time", "flush_enabled", "dump_enabled", "hash_algorithm",
	"lru_maintainer_thread", "lru_segmented", "hot_lru_pct", "warm_lru_pct", "hot_max_factor",
	"warm_max_factor", "temp_lru", "temporary_ttl", "idle_timeout", "watcher_logbuf_size",
	"worker_logbuf_size", "read_buf_mem_limit", "track_sizes", "inline_ascii_response",
	"ext_item_size", "ext_item_age", "ext_low_ttl", "ext_recache_rate", "ext_wbuf_size",
	"ext_compact_under", "ext_drop_under", "ext_max_sleep", "ext_max_frag",
	"slab_automove_freeratio", "ext_drop_unread", "ssl_enabled", "ssl_chain_cert", "ssl_key",
	"ssl_verify_mode", "ssl_keyformat", "ssl_ciphers", "ssl_ca_cert", "ssl_wbuf_size",
	"ssl_session_cache", "ssl_kernel_tls", "ssl_min_version", "num_napi_ids", "memory_file",
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func itemStats(w *statWriter, st store.Stats, now int64) {
	for _, cl := range st.Classes {
		if cl.Items == 0 {
			continue
		}
		p := "items:" + strconv.Itoa(cl.ID) + ":"
		w.int(p+"number", cl.Items)
		w.int(p+"age", cl.OldestAge)
		w.int(p+"evicted", cl.Evicted)
		w.int(p+"evicted_time", cl.OldestAge)
		w.int(p+"reclaimed", cl.Reclaimed)
	}
}

func slabStats(w *statWriter, st store.Stats) {
	active := 0
	for _, cl := range st.Classes {
		if cl.Pages == 0 {
			continue
		}
		active++
		p := strconv.Itoa(cl.ID) + ":"
		perPage := int64(st.PageSize) / int64(cl.ChunkSize)
		w.int(p+"chunk_size", int64(cl.ChunkSize))
		w.int(p+"chunks_per_page", perPage)
		w.int(p+"total_pages", int64(cl.Pages))
		w.int(p+"total_chunks", perPage*int64(cl.Pages))
		w.int(p+"used_chunks", cl.UsedChunks)
		w.int(p+"free_chunks", cl.FreeChunks)
	}
	w.int("active_slabs", int64(active))
	w.int("total_malloced", st.Pages*st.PageSize)
}

func (s *Server) connStats(w *statWriter, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln, since := range s.listeners {
		w.str("0:addr", connAddr(ln.Addr()))
		w.str("0:state", "conn_listening")
		w.int("0:secs_since_last_cmd", now-since)
	}
	// In the order they came, as memcached lists them by descriptor.
	for _, c := range slices.SortedFunc(maps.Keys(s.conns), func(a, b *conn) int { return cmp.Compare(a.id, b.id) }) {
		p := strconv.FormatUint(c.id, 10) + ":"
		w.str(p+"addr", connAddr(c.raddr))
		w.str(p+"listen_addr", connAddr(c.laddr))
		w.str(p+"state", phaseNames[c.phase.Load()])
		w.int(p+"secs_since_last_cmd", now-c.last.Load())
	}
}

// clusterStats answers "stats cluster": the cluster view, or a single line
// saying the node is standalone.
func (s *Server) clusterStats(w *statWriter) {
	if s.cfg.Cluster == nil {
		w.str("cluster_mode", "standalone")
		return
	}
	w.str("cluster_mode", "cluster")
	for _, kv := range s.cfg.Cluster.ClusterStats() {
		w.str(kv[0], kv[1])
	}
}

// connAddr is an address as memcached's stats conns shows it: "tcp:"
// before an IPv4 address, "tcp6:" before an IPv6 one, "unix:" before a
// socket path; a unix client has none ("?:<AF 0>").
func connAddr(a net.Addr) string {
	if a.Network() == "unix" {
		if a.String() == "" || a.String() == "@" {
			return "?:<AF 0>"
		}
		return "unix:" + a.String()
	}
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.To4() == nil {
		return "tcp6:" + a.String()
	}
	return "tcp:" + a.String()
}
