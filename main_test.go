package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// startNode runs a whole node in-process, as main does, on a free port and
// returns its address. It stops in t.Cleanup.
func startNode(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"-p", "0"}, args...), &bytes.Buffer{}, &stderr,
			func(a []net.Addr) { addrc <- a[0].String() })
	}()
	select {
	case addr := <-addrc:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node stopped with %v; log:\n%s", err, stderr.String())
			}
		})
		return addr
	case err := <-done:
		cancel()
		t.Fatalf("node did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("node did not start in 10s")
	}
	return ""
}

func TestParseFlags(t *testing.T) {
	cases := map[string]struct {
		args    []string
		check   func(options) bool
		wantErr string
	}{
		"defaults": {nil, func(o options) bool {
			return o.Port == 11211 && o.Listen == "127.0.0.1" && o.MemoryMB == 64 && o.MaxConns == 1024 && o.MaxItemSize == 1<<20
		}, ""},
		"short with space":    {[]string{"-p", "1234", "-m", "128"}, func(o options) bool { return o.Port == 1234 && o.MemoryMB == 128 }, ""},
		"short glued":         {[]string{"-p1234", "-c10"}, func(o options) bool { return o.Port == 1234 && o.MaxConns == 10 }, ""},
		"long with equals":    {[]string{"--port=99", "--listen=0.0.0.0"}, func(o options) bool { return o.Port == 99 && o.Listen == "0.0.0.0" }, ""},
		"long with space":     {[]string{"--memory-limit", "100"}, func(o options) bool { return o.MemoryMB == 100 }, ""},
		"vv":                  {[]string{"-vv"}, func(o options) bool { return o.verbose == 2 }, ""},
		"switch cluster":      {[]string{"-MAF"}, func(o options) bool { return o.NoEvict && o.AllowShutdown && o.DisableFlush }, ""},
		"disable watch":       {[]string{"-W"}, func(o options) bool { return o.DisableWatch }, ""},
		"disable watch long":  {[]string{"--disable-watch"}, func(o options) bool { return o.DisableWatch }, ""},
		"item size k":         {[]string{"-I", "2k"}, func(o options) bool { return o.MaxItemSize == 2048 }, ""},
		"item size m":         {[]string{"-I", "4m"}, func(o options) bool { return o.MaxItemSize == 4<<20 }, ""},
		"idle timeout":        {[]string{"-o", "idle_timeout=5,modern"}, func(o options) bool { return o.IdleTimeout == 5*time.Second }, ""},
		"udp off":             {[]string{"-U", "0"}, func(o options) bool { return o.UDPPort == 0 }, ""},
		"user ignored":        {[]string{"-u", "memcache"}, func(o options) bool { return true }, ""},
		"threads":             {[]string{"-t", "2"}, func(o options) bool { return o.Threads == 2 }, ""},
		"udp refused":         {[]string{"-U", "11211"}, nil, "UDP is not supported"},
		"unix socket":         {[]string{"-s", "/tmp/x.sock", "-a", "755"}, func(o options) bool { return o.UnixSocket == "/tmp/x.sock" && o.UnixMask == 0755 }, ""},
		"unix mask default":   {nil, func(o options) bool { return o.UnixMask == 0700 }, ""},
		"unix mask not octal": {[]string{"-a", "9"}, nil, "octal"},
		"memcached tuning": {[]string{"-f", "1.25", "-D", "/", "-P", "/tmp/p", "-R", "50", "-b", "256", "-n", "96", "-L", "-d"}, func(o options) bool {
			return o.GrowthFactor == 1.25 && o.PrefixDelim == '/' && o.PIDFile == "/tmp/p" && o.ReqsPerEvent == 50 && o.Backlog == 256 && o.daemon
		}, ""},
		"growth factor 1":     {[]string{"-f", "1"}, nil, "factor over 1"},
		"delimiter too long":  {[]string{"-D", "::"}, nil, "one character"},
		"unix in a cluster":   {[]string{"-s", "/tmp/x.sock", "--etcd", "127.0.0.1:2379"}, nil, "UNIX socket"},
		"zero conns":          {[]string{"-c", "0"}, nil, "conn-limit"},
		"zero threads":        {[]string{"-t", "0"}, nil, "threads"},
		"item size too small": {[]string{"-I", "512"}, nil, "less than 1024"},
		"item size over 1g":   {[]string{"-I", "2048m", "-m", "8192"}, nil, "invalid size"},
		"item over half mem":  {[]string{"-I", "40m"}, nil, "1/2 of memory"},
		"bad number":          {[]string{"-p", "eleven"}, nil, "invalid value"},
		"unknown short":       {[]string{"-j"}, nil, "invalid option"},
		"unknown long":        {[]string{"--nope"}, nil, "unrecognized option"},
		"missing value":       {[]string{"-p"}, nil, "requires an argument"},
		"stray argument":      {[]string{"11211"}, nil, "unexpected argument"},
		"help stops startup":  {[]string{"-h"}, nil, "help requested"},
		"cluster tls":         {[]string{"--cluster-cacert", "ca", "--cluster-cert", "c", "--cluster-key", "k"}, func(o options) bool { return o.ClusterCACert == "ca" && o.ClusterCert == "c" && o.ClusterKey == "k" }, ""},
		"cluster tls partial": {[]string{"--cluster-cert", "c"}, nil, "go together"},
		"secret and tls":      {[]string{"--cluster-secret-file", "s", "--cluster-cacert", "ca", "--cluster-cert", "c", "--cluster-key", "k"}, nil, "choose one"},
		"etcd cert, no key":   {[]string{"--etcd-cert", "c"}, nil, "--etcd-cert and --etcd-key"},
		"password, no user":   {[]string{"--etcd-password-file", "p"}, nil, "needs --etcd-user"},
		"two gossip keys":     {[]string{"--gossip-key", "a", "--gossip-key-file", "f"}, nil, "choose one"},
		"version stops":       {[]string{"--version"}, nil, "version requested"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("options not as expected: %+v", o)
			}
		})
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-U", "1"}, &out, &errb, nil)
	if err == nil || !strings.Contains(err.Error(), "UDP") {
		t.Fatalf("run with -U 1 = %v, want a UDP error", err)
	}
	if err := run(context.Background(), []string{"-V"}, &out, &errb, nil); !errors.Is(err, errVersion) {
		t.Fatalf("-V: %v", err)
	}
	if !strings.Contains(out.String(), "memcached 1.6.18 compatible") {
		t.Fatalf("-V printed %q", out.String())
	}
}

func TestShutdownCommandStopsNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-p", "0", "-A"}, &bytes.Buffer{}, &bytes.Buffer{},
			func(a []net.Addr) { addrc <- a[0].String() })
	}()
	addr := <-addrc
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("shutdown\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node still running 10s after shutdown")
	}
}

func TestShutdownBadModeKeepsNode(t *testing.T) {
	t.Parallel()
	// memcached -A: "shutdown <anything but graceful>" is refused and the
	// server goes on; "shutdown graceful" stops it.
	ctx := context.Background()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-p", "0", "-A"}, &bytes.Buffer{}, &bytes.Buffer{},
			func(a []net.Addr) { addrc <- a[0].String() })
	}()
	addr := <-addrc
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, req := range []string{"shutdown foo\r\n", "shutdown graceful now\r\n"} {
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "CLIENT_ERROR invalid shutdown mode\r\n" {
			t.Fatalf("%q: got %q, %v", req, line, err)
		}
	}
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("version after a refused shutdown: %q, %v", line, err)
	}
	if _, err := c.Write([]byte("shutdown graceful\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node still running 10s after shutdown graceful")
	}
}

func TestStatsConnsListenerOnAllIPv4(t *testing.T) {
	t.Parallel()
	// memcached -l 0.0.0.0 binds IPv4 only and shows it as such; Go's
	// "tcp" would bind a dual-stack [::] and show tcp:[::]:PORT.
	addr := startNode(t, "-l", "0.0.0.0")
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("stats conns\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "END\r\n" {
			break
		}
		lines = append(lines, strings.TrimSuffix(line, "\r\n"))
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"STAT 0:addr tcp:0.0.0.0:" + port + "\n",
		"STAT 0:state conn_listening\n",
		"STAT 0:secs_since_last_cmd ",
		":listen_addr tcp:127.0.0.1:" + port + "\n",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}
