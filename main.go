// Command shoal is a memcached-compatible cache node. main alone reads the
// command line, the signals and -d; package node runs the node.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"shoal/node"
	"shoal/server"
)

const memcachedVersion = server.Version

func main() {
	if daemonize(os.Args[1:]) {
		return // the daemon runs on in the background
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGUSR1 stops the node as SIGTERM does and saves the memory file
	// (-e) for a warm restart, as memcached's graceful stop.
	ctx, stopGraceful := context.WithCancelCause(ctx)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		stopGraceful(node.ErrGracefulStop)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	switch {
	case err == nil, errors.Is(err, errHelp), errors.Is(err, errVersion):
	default:
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(64)
	}
}

// run starts a node with args and serves until ctx ends or a client sends
// shutdown (with -A). ready, when not nil, receives the listening addresses
// once the node accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]net.Addr)) error {
	o, err := parseFlags(args)
	switch {
	case errors.Is(err, errHelp):
		printHelp(stdout)
		return err
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "shoal %s (memcached %s compatible)\n", node.Version, memcachedVersion)
		return err
	case err != nil:
		return err
	}
	cfg := o.Config
	cfg.Logger, cfg.Ready = newLogger(stderr, o), ready
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

func newLogger(w io.Writer, o options) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case o.verbose >= 2:
		level = slog.LevelDebug
	case o.verbose == 1:
		level = slog.LevelInfo
	}
	hopts := &slog.HandlerOptions{Level: level}
	if o.logJSON {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}
