package client_test

import (
	"fmt"
	"testing"

	"shoal/client"
	"shoal/ring"
)

func testInfo() client.Info {
	return client.Info{Epoch: 9, Shards: 256, VNodes: 1, Replicas: 2, Members: []client.Member{
		{"a", "127.0.0.1:7001"}, {"b", "0.0.0.0:7002"}, {"c", "127.0.0.1:7003"},
	}}
}

// TestPickServer: the selector's owners are ring.New's for the same
// members and settings; a node marked down hands its keys to the next
// owner; an unspecified host is reached at the serving node's host.
func TestPickServer(t *testing.T) {
	sel, err := client.New(client.Config{Seeds: []string{"127.0.0.1:7001"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sel.Apply(testInfo(), "127.0.0.5:7001"); err != nil {
		t.Fatal(err)
	}
	r, err := ring.New(ring.Config{Shards: 256, VNodes: 1, Replicas: 2}, []string{"c", "a", "b"}, 9)
	if err != nil {
		t.Fatal(err)
	}
	addr := map[string]string{"a": "127.0.0.1:7001", "b": "127.0.0.5:7002", "c": "127.0.0.1:7003"}
	for i := range 1000 {
		k := fmt.Sprintf("key-%d", i)
		want := r.Owners(r.Shard([]byte(k)))
		if got := sel.Owners(k); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: owners %v, ring says %v", k, got, want)
		}
		if a, _ := sel.PickServer(k); a.String() != addr[want[0]] {
			t.Fatalf("%s: picked %v, want %s (%s)", k, a, want[0], addr[want[0]])
		}
	}
	sel.MarkDown("127.0.0.1:7001")
	for i := range 1000 {
		k := fmt.Sprintf("key-%d", i)
		want := r.Owners(r.Shard([]byte(k)))
		next := want[0]
		if next == "a" {
			next = want[1]
		}
		if a, _ := sel.PickServer(k); a.String() != addr[next] {
			t.Fatalf("%s with a down: picked %v, want %s", k, a, next)
		}
	}
}

// TestApplyKeepsNewest: a node still on an older view (an earlier epoch,
// or the same epoch before gossip saw a member) does not take the client
// back.
func TestApplyKeepsNewest(t *testing.T) {
	sel, err := client.New(client.Config{Seeds: []string{"127.0.0.1:7001"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sel.Apply(testInfo(), "127.0.0.1:7001"); err != nil {
		t.Fatal(err)
	}
	older := testInfo()
	older.Epoch = 8
	fewer := testInfo()
	fewer.Members = fewer.Members[:2]
	newer := testInfo()
	newer.Epoch, newer.Members = 10, newer.Members[:2]
	for _, step := range []struct {
		name    string
		info    client.Info
		epoch   int64
		members int
	}{
		{"earlier epoch", older, 9, 3},
		{"same epoch, fewer members", fewer, 9, 3},
		{"later epoch", newer, 10, 2},
	} {
		if err := sel.Apply(step.info, "127.0.0.1:7001"); err != nil {
			t.Fatal(err)
		}
		if got := sel.Info(); got.Epoch != step.epoch || len(got.Members) != step.members {
			t.Fatalf("after %s: epoch %d with %d members, want %d with %d", step.name, got.Epoch, len(got.Members), step.epoch, step.members)
		}
	}
}

func BenchmarkPickServer(b *testing.B) {
	sel, err := client.New(client.Config{Seeds: []string{"127.0.0.1:7001"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := sel.Apply(testInfo(), "127.0.0.1:7001"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sel.PickServer("k:123456")
	}
}
