package etcdsync_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"shoal/etcdsync"
)

// A node registers itself and rebuilds its ring on every change of view.
func Example() {
	s, err := etcdsync.New(etcdsync.Config{
		Endpoints: []string{"http://127.0.0.1:2379"},
		Prefix:    "prod",
		Self: etcdsync.Member{
			Name: "10.0.0.1:11211", Instance: "3f9c0a",
			ClientAddr: "10.0.0.1:11211", PeerAddr: "10.0.0.1:11212", GossipAddr: "10.0.0.1:7946",
		},
		Settings: etcdsync.Settings{Replicas: 2, Shards: 4096, VNodes: 160},
		LeaseTTL: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	for range s.Changed() {
		snap, _ := s.Current()
		fmt.Println("epoch", snap.Revision, "members", len(snap.Members), "may act as primary:", !s.Fenced())
		break
	}
	stop() // deregisters
	if err := <-done; err != nil {
		log.Print(err)
	}
}
