// Command etcdproc runs a one-member etcd (package devetcd) for the
// tests, as a process of its own, so that a test binary need not link
// etcd's server: package testetcd starts it. It listens on free ports of
// -host with its data in -dir, writes its client URL and a newline to
// stdout once etcd serves, and stops when its stdin closes (the test
// process ended, or closed it) or on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"shoal/devetcd"
)

func main() {
	dir := flag.String("dir", "", "data directory")
	host := flag.String("host", "127.0.0.1", "host to listen on, on free ports")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := devetcd.StartLocal(ctx, *dir, *host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdproc:", err)
		os.Exit(1)
	}
	defer srv.Close()
	fmt.Println(srv.Endpoints()[0])
	stdin := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdin) }()
	select {
	case <-ctx.Done():
	case <-stdin:
	}
}
