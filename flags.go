package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"shoal/node"
	"shoal/protocol"
	"shoal/server"
)

// errHelp and errVersion stop startup after -h or -V printed their text.
var (
	errHelp    = errors.New("help requested")
	errVersion = errors.New("version requested")
)

// options are the command-line settings: a node's, and those of the
// command itself.
type options struct {
	node.Config
	verbose int  // -v: info, -vv: debug; else warnings and errors
	logJSON bool // logs as JSON
	daemon  bool // -d
}

func defaultOptions() options { return options{Config: node.Defaults()} }

// flagSpec is one option: its short letter, long name, whether it takes a
// value, and how it applies.
type flagSpec struct {
	short byte
	long  string
	arg   string // value placeholder in help; empty for switches
	help  string
	set   func(o *options, v string) error
}

var flagSpecs = []flagSpec{
	{'p', "port", "<num>", "TCP port to listen on (default: 11211; -1 or 0: any free port, written to $MEMCACHED_PORT_FILENAME when set)", func(o *options, v string) error { return intFlag(&o.Port, v, -1, 65535) }},
	{'U', "udp-port", "<num>", "UDP port; only 0 (off) is accepted: shoal serves TCP only", func(o *options, v string) error { return intFlag(&o.UDPPort, v, 0, 65535) }},
	{'l', "listen", "<addr>", "interfaces to listen on, comma separated (default: 127.0.0.1)", func(o *options, v string) error { o.Listen = v; return nil }},
	{'m', "memory-limit", "<num>", "item memory in megabytes (default: 64)", func(o *options, v string) error { return int64Flag(&o.MemoryMB, v, 1, 1<<30) }},
	{'c', "conn-limit", "<num>", "max simultaneous connections (default: 1024)", func(o *options, v string) error { return intFlag(&o.MaxConns, v, 1, 1<<24) }},
	{'t', "threads", "<num>", "number of threads to use: event loops, with GOMAXPROCS one more (the same for -t in a cluster, whose loops park); sets GOMAXPROCS with --conn-goroutines (default: all cores; a cluster node with event loops, one loop less)", func(o *options, v string) error { return intFlag(&o.Threads, v, 1, 4096) }},
	{'I', "max-item-size", "<num>", "max item size, with k or m suffix (default: 1m, min: 1k, max: 1024m)", func(o *options, v string) error { return sizeFlag(&o.MaxItemSize, v) }},
	{'M', "disable-evictions", "", "return error on memory exhausted instead of evicting", func(o *options, _ string) error { o.NoEvict = true; return nil }},
	{'C', "disable-cas", "", "disable use of CAS: every CAS is 0 and a command naming one answers EXISTS (standalone only: a cluster orders copies by CAS)", func(o *options, _ string) error { o.NoCAS = true; return nil }},
	{'A', "enable-shutdown", "", "enable the ascii \"shutdown\" command", func(o *options, _ string) error { o.AllowShutdown = true; return nil }},
	{'F', "disable-flush-all", "", "disable flush_all command", func(o *options, _ string) error { o.DisableFlush = true; return nil }},
	{'W', "disable-watch", "", "disable watch commands (live logging)", func(o *options, _ string) error { o.DisableWatch = true; return nil }},
	{'B', "protocol", "<name>", "protocol: one of ascii, binary, or auto (default: auto-negotiate)", func(o *options, v string) error {
		switch v {
		case "auto":
			o.Binding = protocol.BindAuto
		case "ascii":
			o.Binding = protocol.BindASCII
		case "binary":
			o.Binding = protocol.BindBinary
		default:
			return fmt.Errorf("invalid value for binding protocol: %s -- should be one of auto, binary, or ascii", v)
		}
		return nil
	}},
	{'S', "enable-sasl", "", "turn on SASL authentication (binary protocol, PLAIN; users and passwords from the file $MEMCACHED_SASL_PWDB, user:password per line)", func(o *options, _ string) error { o.SASL = true; return nil }},
	{'v', "verbose", "", "verbose (print errors/warnings while in event loop); -vv is more verbose", func(o *options, _ string) error { o.verbose++; return nil }},
	{'s', "unix-socket", "<file>", "UNIX socket to listen on (disables network support)", func(o *options, v string) error { o.UnixSocket = v; return nil }},
	{'a', "unix-mask", "<mask>", "access mask for UNIX socket, in octal (default: 700)", func(o *options, v string) error {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0777 {
			return fmt.Errorf("invalid value %q (want an octal mask)", v)
		}
		o.UnixMask = os.FileMode(m)
		return nil
	}},
	{'f', "slab-growth-factor", "<factor>", "chunk size growth factor between size classes, over 1 (default: 1.08; memcached's is 1.25)", func(o *options, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 1 && f <= 2) {
			return fmt.Errorf("invalid value %q (want a factor over 1, at most 2)", v)
		}
		o.GrowthFactor = f
		return nil
	}},
	{'D', "prefix-delimiter", "<char>", "delimiter between key prefix and id in stats detail (default: \":\")", func(o *options, v string) error {
		if len(v) != 1 {
			return fmt.Errorf("invalid value %q (want one character)", v)
		}
		o.PrefixDelim = v[0]
		return nil
	}},
	{'P', "pidfile", "<file>", "save the process id in this file", func(o *options, v string) error { o.PIDFile = v; return nil }},
	{'e', "memory-file", "<file>", "keep item memory in this file (on a RAM disk); stopped by SIGUSR1 or \"shutdown graceful\", the node saves it and the next start with the same file and -m, -I, -f restores the items", func(o *options, v string) error { o.MemoryFile = v; return nil }},
	{'d', "daemon", "", "run as a daemon: in the background, detached from the terminal", func(o *options, _ string) error { o.daemon = true; return nil }},
	{'R', "max-reqs-per-event", "<num>", "accepted for compatibility: a connection's buffered commands all run in one turn (stats settings reqs_per_event shows it)", func(o *options, v string) error { return intFlag(&o.ReqsPerEvent, v, 1, 1<<30) }},
	{'b', "listen-backlog", "<num>", "accepted for compatibility: the kernel's somaxconn sets the backlog (stats settings tcp_backlog shows it)", func(o *options, v string) error { return intFlag(&o.Backlog, v, 1, 1<<30) }},
	{'n', "slab-min-size", "<bytes>", "accepted for compatibility: the smallest chunk is 48 bytes", func(o *options, v string) error { var n int; return intFlag(&n, v, 1, 1<<20) }},
	{'L', "enable-largepages", "", "accepted for compatibility: the item arena is left to the kernel's transparent huge pages", func(*options, string) error { return nil }},
	{'Y', "auth-file", "<file>", "require ASCII authentication: a connection's first command is a set of \"<user> <password>\" matching a user:password line of this file", func(o *options, v string) error { o.AuthFile = v; return nil }},
	{'Z', "enable-ssl", "", "TLS on the client port (-o ssl_chain_cert=<file>,ssl_key=<file>[,ssl_ca_cert=<file>,ssl_verify_mode=0..3,ssl_min_version=tlsv1.2|tlsv1.3]); certificates reloaded on refresh_certs", func(o *options, _ string) error { o.TLS.Enabled = true; return nil }},
	{'u', "user", "<user>", "accepted for compatibility; shoal does not switch users", func(*options, string) error { return nil }},
	{'o', "extended", "<opts>", "comma separated options; idle_timeout=<secs> and read_buf_mem_limit=<MB> (memory of all connections' buffers; default max(32, -m/8), at least twice -I) are used, others are ignored", func(o *options, v string) error { return extendedFlag(o, v) }},
	{0, "etcd", "<urls>", "etcd endpoints, comma separated: join a cluster (default: standalone)", func(o *options, v string) error { o.Etcd = v; return nil }},
	{0, "cluster", "<name>", "cluster name: etcd key prefix and gossip label (default: shoal)", func(o *options, v string) error { o.Cluster = v; return nil }},
	{0, "node", "<name>", "node name, unique in the cluster (default: the advertised address)", func(o *options, v string) error { o.Node = v; return nil }},
	{0, "advertise", "<host:port>", "address other nodes and clients use for this node (default: listen address and port)", func(o *options, v string) error { o.Advertise = v; return nil }},
	{0, "gossip", "<host:port>", "gossip (memberlist) bind address (default: advertised host, any free port)", func(o *options, v string) error { o.Gossip = v; return nil }},
	{0, "peer", "<host:port>", "listener for requests forwarded by other nodes, served from this node's store (default: listen host, any free port)", func(o *options, v string) error { o.Peer = v; return nil }},
	{0, "gossip-key", "<base64>", "encrypt gossip with this 16, 24 or 32 byte key (visible to ps: prefer --gossip-key-file or $SHOAL_GOSSIP_KEY)", func(o *options, v string) error { o.GossipKey = v; return nil }},
	{0, "gossip-key-file", "<file>", "read the --gossip-key (base64) from this file", func(o *options, v string) error { o.GossipKeyFile = v; return nil }},
	{0, "replicas", "<num>", "copies of each shard, primary included, when this node creates the cluster (default: 2)", func(o *options, v string) error { return intFlag(&o.Replicas, v, 1, 16) }},
	{0, "lease-ttl", "<secs>", "etcd lease TTL of this node's registration: how long a crashed node stays in the ring (default: 10)", func(o *options, v string) error {
		var secs int
		err := intFlag(&secs, v, 2, 3600)
		o.LeaseTTL = time.Duration(secs) * time.Second
		return err
	}},
	{0, "restore-margin", "<secs>", "with -e in a cluster: a warm restart pulls what the others changed since this long before the save (the skew between the nodes' clocks, and writes in flight at the stop; default: 10)", func(o *options, v string) error {
		var secs int
		err := intFlag(&secs, v, 1, 3600)
		o.RestoreMargin = time.Duration(secs) * time.Second
		return err
	}},
	{0, "cluster-secret-file", "<file>", "authenticate peer connections by challenge-response with the secret in this file (at least 16 bytes), shared by every member", func(o *options, v string) error { o.ClusterSecretFile = v; return nil }},
	{0, "cluster-cacert", "<file>", "peer port over mutual TLS: accept only certificates signed by this CA (PEM), with --cluster-cert and --cluster-key", func(o *options, v string) error { o.ClusterCACert = v; return nil }},
	{0, "cluster-cert", "<file>", "this node's certificate (PEM), presented on the peer port and to other members", func(o *options, v string) error { o.ClusterCert = v; return nil }},
	{0, "cluster-key", "<file>", "the key of --cluster-cert (PEM)", func(o *options, v string) error { o.ClusterKey = v; return nil }},
	{0, "etcd-cacert", "<file>", "verify etcd's certificate with this CA bundle (as etcdctl --cacert)", func(o *options, v string) error { o.EtcdCACert = v; return nil }},
	{0, "etcd-cert", "<file>", "client certificate for etcd (as etcdctl --cert)", func(o *options, v string) error { o.EtcdCert = v; return nil }},
	{0, "etcd-key", "<file>", "key of --etcd-cert (as etcdctl --key)", func(o *options, v string) error { o.EtcdKey = v; return nil }},
	{0, "etcd-user", "<name>", "etcd user name; the password comes from --etcd-password-file or $SHOAL_ETCD_PASSWORD", func(o *options, v string) error { o.EtcdUser = v; return nil }},
	{0, "etcd-password-file", "<file>", "file holding the --etcd-user password", func(o *options, v string) error { o.EtcdPasswordFile = v; return nil }},
	{0, "dev", "", "run an embedded single-member etcd (on --dev-etcd) and join it: a cluster on one machine without installing etcd", func(o *options, _ string) error { o.Dev = true; return nil }},
	{0, "dev-etcd", "<host:port>", "client address of the --dev etcd (default: 127.0.0.1:2379)", func(o *options, v string) error { o.DevEtcd = v; return nil }},
	{0, "http", "<host:port>", "serve /metrics (Prometheus), /cluster (JSON) and a status page on this address (default: off)", func(o *options, v string) error { o.HTTPAddr = v; return nil }},
	{0, "conn-goroutines", "", "serve each connection on its own goroutine instead of epoll event loops", func(o *options, _ string) error { o.ConnGoroutines = true; return nil }},
	{0, "no-io-uring", "", "event loops send each connection's replies with its own send(2), not a wake-up's together through io_uring", func(o *options, _ string) error { o.NoIOUring = true; return nil }},
	{0, "log-json", "", "write logs as JSON instead of text", func(o *options, _ string) error { o.logJSON = true; return nil }},
	{'V', "version", "", "print version and exit", func(*options, string) error { return errVersion }},
	{'h', "help", "", "print this help and exit", func(*options, string) error { return errHelp }},
}

// parseFlags reads memcached-style arguments: -p 11211, -p11211, -vv,
// --port=11211 and --port 11211.
func parseFlags(args []string) (options, error) {
	o := defaultOptions()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			return o, fmt.Errorf("unexpected argument %q", a)
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a[2:], "=")
			spec := findLong(name)
			if spec == nil {
				return o, fmt.Errorf("unrecognized option '--%s'", name)
			}
			if spec.arg != "" && !hasVal {
				if i+1 >= len(args) {
					return o, fmt.Errorf("option '--%s' requires an argument", name)
				}
				i++
				val = args[i]
			}
			if err := spec.set(&o, val); err != nil {
				return o, optErr(spec, err)
			}
			continue
		}
		// A cluster of short options: switches may be combined (-vv), and
		// the first option taking a value eats the rest or the next arg.
		for j := 1; j < len(a); j++ {
			spec := findShort(a[j])
			if spec == nil {
				return o, fmt.Errorf("invalid option -- '%c'", a[j])
			}
			if spec.arg == "" {
				if err := spec.set(&o, ""); err != nil {
					return o, optErr(spec, err)
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return o, fmt.Errorf("option requires an argument -- '%c'", a[j])
				}
				i++
				val = args[i]
			}
			if err := spec.set(&o, val); err != nil {
				return o, optErr(spec, err)
			}
			break
		}
	}
	return o, o.Validate()
}

func optErr(spec *flagSpec, err error) error {
	if errors.Is(err, errHelp) || errors.Is(err, errVersion) {
		return err
	}
	return fmt.Errorf("--%s: %w", spec.long, err)
}

func findLong(name string) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].long == name {
			return &flagSpecs[i]
		}
	}
	return nil
}

func findShort(c byte) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].short == c && c != 0 {
			return &flagSpecs[i]
		}
	}
	return nil
}

func intFlag(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("invalid value %q (want an integer from %d to %d)", v, lo, hi)
	}
	*dst = n
	return nil
}

func int64Flag(dst *int64, v string, lo, hi int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("invalid value %q (want an integer from %d to %d)", v, lo, hi)
	}
	*dst = n
	return nil
}

// sizeFlag parses memcached's -I: bytes with an optional k or m suffix.
func sizeFlag(dst *int, v string) error {
	mult := 1
	num := v
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			mult, num = 1<<10, v[:n-1]
		case 'm', 'M':
			mult, num = 1<<20, v[:n-1]
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > (1<<30)/mult {
		return fmt.Errorf("invalid size %q", v)
	}
	*dst = n * mult
	return nil
}

func extendedFlag(o *options, v string) error {
	for _, kv := range strings.Split(v, ",") {
		name, val, _ := strings.Cut(kv, "=")
		if name == "idle_timeout" {
			var secs int
			if err := intFlag(&secs, val, 0, 1<<30); err != nil {
				return fmt.Errorf("idle_timeout: %w", err)
			}
			o.IdleTimeout = time.Duration(secs) * time.Second
		}
		if name == "read_buf_mem_limit" {
			if err := intFlag(&o.ConnMemMB, val, 1, 1<<20); err != nil {
				return fmt.Errorf("read_buf_mem_limit: %w", err)
			}
		}
		// memcached machinery shoal lacks; switched off, stats omits its
		// counters and stats settings says no, as memcached's.
		switch name {
		case "no_lru_crawler":
			o.Off.LRUCrawler = true
		case "lru_crawler":
			o.Off.LRUCrawler = false
		case "no_lru_maintainer":
			o.Off.LRUMaintainer = true
		case "lru_maintainer":
			o.Off.LRUMaintainer = false
		case "no_slab_reassign":
			o.Off.SlabReassign = true
		case "slab_reassign":
			o.Off.SlabReassign = false
		case "no_maxconns_fast":
			o.Off.MaxconnsFast = true
		case "maxconns_fast":
			o.Off.MaxconnsFast = false
		case "no_modern":
			o.Off = server.Off{LRUCrawler: true, LRUMaintainer: true, SlabReassign: true, MaxconnsFast: true}
		}
		if err := sslOption(o, name, val); err != nil {
			return err
		}
	}
	return nil
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "shoal %s (memcached %s compatible)\n", node.Version, memcachedVersion)
	for _, s := range flagSpecs {
		short := "   "
		if s.short != 0 {
			short = "-" + string(s.short) + ","
		}
		fmt.Fprintf(w, "%s --%-28s %s\n", short, strings.TrimSpace(s.long+" "+s.arg), s.help)
	}
}

// sslOption applies one -o ssl_* option; others are left alone.
func sslOption(o *options, name, val string) error {
	t := &o.TLS
	switch name {
	case "ssl_chain_cert":
		t.ChainCert = val
	case "ssl_key":
		t.Key = val
	case "ssl_ca_cert":
		t.CACert = val
	case "ssl_verify_mode":
		return intFlag(&t.VerifyMode, val, 0, 3)
	case "ssl_min_version":
		t.MinVersion = val
	case "ssl_keyformat":
		t.KeyFormat = val
	case "ssl_ciphers":
		t.Ciphers = val
	case "ssl_wbuf_size":
		return intFlag(&t.WbufSize, val, 1, 1<<20)
	case "ssl_session_cache":
		t.SessionCache = true
	case "ssl_kernel_tls":
		t.KernelTLS = true
	}
	return nil
}
