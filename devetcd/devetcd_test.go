package devetcd

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"shoal/internal/testutil"
)

// TestStartRestart starts an etcd, writes a key, restarts it on the same
// directory and ports, and reads the key back.
func TestStartRestart(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Dir: t.TempDir(), ClientAddr: testutil.FreeAddr(t), PeerAddr: testutil.FreeAddr(t)}
	srv, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close() // idempotent
	srv, err = Start(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.Get(rctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: %v", resp.Kvs)
	}
}

func TestConfigRequired(t *testing.T) {
	if _, err := Start(context.Background(), Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

// TestStartLocal: StartLocal serves on host, and a port taken between the
// search and the bind shows as EADDRINUSE, the error StartLocal retries on
// (this is how parallel test binaries collided in CI).
func TestStartLocal(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = Start(context.Background(), Config{Dir: t.TempDir(), ClientAddr: testutil.FreeAddr(t), PeerAddr: taken.Addr().String()})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("start on a taken peer port: %v, want EADDRINUSE", err)
	}
	srv, err := StartLocal(context.Background(), t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
}
