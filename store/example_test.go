package store_test

import (
	"context"
	"fmt"

	"shoal/store"
)

func Example() {
	s, err := store.New(store.Config{MemoryLimit: 64 << 20})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }() // clock and TTL reclaimer
	defer func() { cancel(); <-done }()

	s.Set([]byte("greeting"), []byte("hello"), &store.SetOptions{Flags: 1, Exptime: s.Now() + 60})
	res, _ := s.Set([]byte("greeting"), []byte("again"), &store.SetOptions{Mode: store.ModeAdd})
	fmt.Println(res == store.NotStored)

	it, val, res := s.Get([]byte("greeting"), nil, nil)
	fmt.Println(res == store.Hit, string(val), it.Flags)

	s.Set([]byte("hits"), []byte("10"), nil)
	_, n, _ := s.Arith([]byte("hits"), &store.ArithOptions{Decr: true, Delta: 1})
	_, val, _ = s.Get([]byte("hits"), nil, nil)
	fmt.Printf("%d %q\n", n, val)
	// Output:
	// true
	// true hello 1
	// 9 "9 "
}
