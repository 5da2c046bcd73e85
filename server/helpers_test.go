package server

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/store"
)

// startShoal starts an in-process shoal (store + server) on a free loopback
// port and returns its address. It understands the memcached flags the tests
// use: -m MB, -I size[k|m], -c conns, -M, -F, -A. Everything stops in
// t.Cleanup.
func startShoal(t testing.TB, args ...string) string {
	t.Helper()
	var scfg store.Config
	var cfg Config
	for i := 0; i < len(args); i++ {
		next := func() string {
			i++
			if i >= len(args) {
				t.Fatalf("startShoal: %s needs a value", args[i-1])
			}
			return args[i]
		}
		switch args[i] {
		case "-m":
			mb, err := strconv.ParseInt(next(), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			scfg.MemoryLimit = mb << 20
		case "-I":
			scfg.MaxItemSize = testSize(t, next())
			cfg.MaxItemSize = scfg.MaxItemSize
		case "-c":
			n, err := strconv.Atoi(next())
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = n
		case "-M":
			scfg.NoEvict = true
		case "-C":
			scfg.NoCAS = true
			cfg.Settings = append(cfg.Settings, [2]string{"cas_enabled", "no"})
		case "-F":
			cfg.DisableFlush = true
		case "-A":
			cfg.EnableShutdown = true
		default:
			t.Fatalf("startShoal: unsupported flag %q", args[i])
		}
	}
	return startServer(t, scfg, cfg)
}

// startShoalConfig starts an in-process shoal with a server config that no
// memcached flag expresses (such as an idle timeout).
func startShoalConfig(t testing.TB, cfg Config) string {
	t.Helper()
	return startServer(t, store.Config{}, cfg)
}

// eventLoopEnv, when set to 1, makes every server the tests start over a
// local store use the event loop (Config.EventLoop), so the whole suite runs
// under either driver:
//
//	SHOAL_TEST_EVENT_LOOP=1 go test ./server
const eventLoopEnv = "SHOAL_TEST_EVENT_LOOP"

func startServer(t testing.TB, scfg store.Config, cfg Config) string {
	t.Helper()
	if os.Getenv(eventLoopEnv) == "1" {
		cfg.EventLoop = true
	}
	st, err := store.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	storeDone := make(chan error, 1)
	go func() { storeDone <- st.Run(ctx) }()
	t.Cleanup(func() { // registered first: runs after the server's cleanup
		cancel()
		<-storeDone
	})
	_, addr := serve(t, cfg, Local{st})
	return addr
}

// serve runs a server over cache on a free loopback port until the test
// ends, and returns it with its address.
func serve(t testing.TB, cfg Config, cache Cache) (*Server, string) {
	t.Helper()
	if cfg.Items == nil {
		cfg.Items, _ = cache.(Items) // the test caches wrap a Local
	}
	srv, err := New(cfg, cache)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return srv, serveOn(t, srv, ln)
}

// serveOn runs srv on ln until the test ends, and returns ln's address.
func serveOn(t testing.TB, srv *Server, ln net.Listener) string {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}
func testSize(t testing.TB, s string) int {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n * mult
}
