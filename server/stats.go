package server

import (
	"net"
	"os"
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
	Uptime           time.Duration
	// ConnMem is the memory connections hold outside the store.
	ConnMem ConnMem
	// Latency holds the sampled command latencies by Family. stats reset
	// leaves them alone: they are not memcached stats.
	Latency [numFamilies]Latency
}

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
		Store:            s.cache.Stats(),
		Commands:         cmds,
		CurrConnections:  curr,
		TotalConnections: s.totalConns.Load(),
		Rejected:         s.rejectedConns.Load(),
		IdleKicks:        s.idleKicks.Load(),
		Uptime:           time.Since(s.started),
		ConnMem:          s.mem.snapshot(),
	}
	for i := range s.latency {
		snap.Latency[i] = s.latency[i].snapshot()
	}
	return snap
}

// statWriter appends "STAT name value" lines.
type statWriter struct{ out []byte }

func (w *statWriter) str(name, v string) {
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
		itemStats(&w, c.cache.Stats(), c.cache.Now())
	case "slabs":
		slabStats(&w, c.cache.Stats())
	case "conns":
		c.srv.connStats(&w, c.cache.Now())
	case "cluster":
		c.srv.clusterStats(&w)
	case "sizes":
		w.str("sizes_status", "disabled")
	case "reset":
		c.srv.resetStats()
		c.line("RESET")
		return
	case "detail":
		c.line("CLIENT_ERROR usage: stats detail on|off|dump")
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
	s.cache.ResetStats()
}

func (s *Server) generalStats(w *statWriter) {
	snap := s.Stats()
	st := snap.Store
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	w.int("pid", int64(os.Getpid()))
	w.int("uptime", int64(snap.Uptime/time.Second))
	w.int("time", s.cache.Now())
	w.str("version", Version)
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
	for _, name := range commandOrder[:cmdHeadLen] {
		w.int(name, snap.Commands[name])
	}
	w.int("get_expired", st.GetExpired)
	w.int("get_flushed", st.GetFlushed)
	for _, name := range commandOrder[cmdHeadLen:] {
		if name == "bytes_read" && s.cfg.IdleTimeout > 0 {
			w.int("idle_kicks", snap.IdleKicks) // as memcached: only with one
		}
		w.int(name, snap.Commands[name])
	}
	w.int("limit_maxbytes", st.LimitMaxbytes)
	w.int("accepting_conns", 1)
	w.int("threads", int64(s.cfg.Threads))
	w.int("bytes", st.Bytes)
	w.int("curr_items", st.CurrItems)
	w.int("total_items", st.TotalItems)
	w.int("expired_unfetched", st.ExpiredUnfetched)
	w.int("evicted_unfetched", st.EvictedUnfetched)
	w.int("evictions", st.Evictions)
	w.int("reclaimed", st.Reclaimed)
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
	st := s.cache.Stats()
	vals := map[string]string{
		"maxbytes":           strconv.FormatInt(st.LimitMaxbytes, 10),
		"maxconns":           strconv.Itoa(s.cfg.MaxConns),
		"verbosity":          strconv.FormatInt(s.verbosity.Load(), 10),
		"shutdown_command":   yesNo(s.cfg.EnableShutdown),
		"num_threads":        strconv.Itoa(s.cfg.Threads),
		"cas_enabled":        "yes",
		"binding_protocol":   s.cfg.Binding.String(),
		"item_size_max":      strconv.Itoa(s.cfg.MaxItemSize),
		"slab_chunk_max":     strconv.FormatInt(st.PageSize, 10),
		"flush_enabled":      yesNo(!s.cfg.DisableFlush),
		"idle_timeout":       strconv.FormatInt(int64(s.cfg.IdleTimeout/time.Second), 10),
		"read_buf_mem_limit": strconv.FormatInt(s.mem.limit>>20, 10),
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

// settingsOrder is memcached's order of "stats settings" lines.
var settingsOrder = [...]string{
	"maxbytes", "maxconns", "tcpport", "udpport", "inter", "verbosity", "evictions",
	"domain_socket", "umask", "shutdown_command", "num_threads", "cas_enabled", "binding_protocol",
	"item_size_max", "slab_chunk_max", "flush_enabled", "idle_timeout",
	"read_buf_mem_limit",
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
	for ln := range s.listeners {
		w.str("0:addr", connAddr(ln.Addr()))
		w.str("0:state", "conn_listening")
	}
	for c := range s.conns {
		p := strconv.FormatUint(c.id, 10) + ":"
		w.str(p+"addr", connAddr(c.raddr))
		w.str(p+"listen_addr", connAddr(c.laddr))
		w.str(p+"state", "conn_parse_cmd")
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

// connAddr is an address as memcached's stats conns shows it: "tcp:" or
// "unix:" and the address; a unix client has none ("?:<AF 0>").
func connAddr(a net.Addr) string {
	if a.Network() == "unix" {
		if a.String() == "" || a.String() == "@" {
			return "?:<AF 0>"
		}
		return "unix:" + a.String()
	}
	return "tcp:" + a.String()
}
