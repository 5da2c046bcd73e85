package client_test

import (
	"context"
	"fmt"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/client"
)

func Example() {
	// Three shoal nodes and an etcd, for the example.
	c, err := startCluster("n1", "n2", "n3")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.stop()
	seed := c.nodes["n1"].addr

	sel, err := client.New(client.Config{Seeds: []string{seed}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sel.Refresh(ctx); err != nil { // the first ring, from any node
		fmt.Println(err)
		return
	}
	done := make(chan error)
	go func() { done <- sel.Run(ctx) }() // follows joins, leaves and failures
	defer func() { cancel(); <-done }()  // stop Run and wait for it

	mc := sel.Client() // gomemcache, each key sent to its owner
	if err := mc.Set(&memcache.Item{Key: "greeting", Value: []byte("hello")}); err != nil {
		fmt.Println(err)
		return
	}
	it, err := mc.Get("greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(it.Value), len(sel.Info().Members), "members")
	// Output: hello 3 members
}
