package node

import (
	"cmp"
	"errors"
	"os"
	"runtime"
	"strconv"

	"shoal/protocol"
	"shoal/server"
	"shoal/store"
)

// settings are the "stats settings" lines only the node's Config knows.
func settings(o Config) [][2]string {
	ev := "on"
	if o.NoEvict {
		ev = "off"
	}
	growth := o.GrowthFactor
	if growth == 0 {
		growth = store.DefaultGrowthFactor
	}
	inter, socket := o.Listen, "NULL"
	if o.UnixSocket != "" {
		inter, socket = "NULL", o.UnixSocket
	}
	return append([][2]string{
		{"tcpport", strconv.Itoa(o.Port)},
		{"udpport", "0"},
		{"inter", inter},
		{"evictions", ev},
		{"domain_socket", socket},
		{"umask", strconv.FormatUint(uint64(o.UnixMask), 8)},
		{"growth_factor", strconv.FormatFloat(growth, 'f', 2, 64)},
		{"stat_key_prefix", string(o.PrefixDelim)},
		{"reqs_per_event", strconv.Itoa(o.ReqsPerEvent)},
		{"tcp_backlog", strconv.Itoa(o.Backlog)},
		{"auth_enabled_ascii", cmp.Or(o.AuthFile, "no")},
		{"memory_file", cmp.Or(o.MemoryFile, "(null)")},
		{"cas_enabled", yesNo(!o.NoCAS)},
		{"maxconns_fast", yesNo(!o.Off.MaxconnsFast)},
		{"slab_reassign", yesNo(!o.Off.SlabReassign)},
		{"lru_crawler", yesNo(!o.Off.LRUCrawler)},
	}, tlsSettings(o.TLS)...)
}

// checkModes refuses the flag combinations memcached refuses, and those a
// cluster cannot honour, and reads -S's password file.
func checkModes(o Config) (server.Authenticator, error) {
	var sasl server.Authenticator
	if o.SASL {
		// memcached's password-file mode: user:password lines, as -Y's.
		switch path := os.Getenv("MEMCACHED_SASL_PWDB"); {
		case o.Binding == protocol.BindASCII:
			return nil, errors.New("you cannot allow the ASCII protocol while using SASL")
		case o.AuthFile != "":
			return nil, errors.New("-S and -Y cannot be used together")
		case path == "":
			return nil, errors.New("-S needs a password file: set MEMCACHED_SASL_PWDB to a file of user:password lines")
		default:
			users, err := readAuthFile(path)
			if err != nil {
				return nil, err
			}
			sasl = users
		}
	}
	if o.NoCAS && o.Clustered() {
		return nil, errors.New("-C cannot be used in a cluster: the copies of a key are ordered by CAS")
	}
	if o.AuthFile != "" && o.Binding == protocol.BindBinary {
		return nil, errors.New("you cannot allow the BINARY protocol while using ascii authentication tokens")
	}
	return sasl, nil
}

// loops decides how the client port is served and sets GOMAXPROCS: event
// loops (or a goroutine per connection) and how many.
func loops(o Config) (eventLoop bool, threads int) {
	var procs int
	// Event loops serve the client port with fewer scheduler hand-offs
	// than a goroutine per connection: a standalone node's cache, the local
	// store, never waits on the network, and a cluster node's router
	// never makes a loop wait (forwarded gets complete on the peer client's
	// reader, other forwarded commands run on goroutines of their own).
	eventLoop = !o.ConnGoroutines
	threads, procs = o.Threads, o.Threads
	if threads == 0 {
		procs = runtime.GOMAXPROCS(0) // all cores, or the container's share
		threads = procs
		if eventLoop && o.Clustered() {
			// A core for the peer traffic: the peer port's event loop and
			// the peer clients' readers (which complete forwarded gets). On
			// 2 cores, one client loop costs the forwarding node 12-13
			// CPU-µs per forwarded get against 15 with two
			// (BenchmarkForwarding).
			threads = max(1, procs-1)
		}
	}
	if eventLoop && !o.Clustered() {
		// A standalone node's loops each hold a thread, waiting in
		// epoll_wait: one P more for the rest of the process (see
		// server.Config.Loops). A cluster node's loops park in Go's
		// poller and need none.
		procs = threads + 1
	}
	if procs > 0 {
		// -t N: N worker threads' worth of Go code, as memcached's.
		runtime.GOMAXPROCS(procs)
	}
	return eventLoop, threads
}

// clientConfig is the client port's server configuration; onShutdown is
// what a client's shutdown command does.
func (n *Node) clientConfig(onShutdown func(graceful bool)) (server.Config, error) {
	o := n.cfg
	scfg := server.Config{
		MaxConns:        o.MaxConns,
		MaxItemSize:     o.MaxItemSize,
		IdleTimeout:     o.IdleTimeout,
		ConnMemLimit:    o.ConnMemLimit(),
		PrefixDelimiter: o.PrefixDelim,
		EnableShutdown:  o.AllowShutdown,
		DisableFlush:    o.DisableFlush,
		DisableWatch:    o.DisableWatch,
		Watch:           n.watch,
		Binding:         o.Binding,
		SASL:            n.sasl,
		Threads:         n.threads,
		Settings:        settings(o),
		Logger:          n.log,
		OnShutdown:      onShutdown,
		Off:             o.Off,
		EventLoop:       n.eventLoop,
		NoIOUring:       o.NoIOUring,
		Loops:           n.threads,
	}
	if n.clientTLS != nil {
		scfg.TLS = n.clientTLS
	}
	if o.AuthFile != "" {
		users, err := readAuthFile(o.AuthFile)
		if err != nil {
			return scfg, err
		}
		scfg.Auth = users
	}
	return scfg, nil
}
