package gossip

import (
	"fmt"
	"net"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// swallower is a TCP listener that never accepts: connects complete (into
// the backlog), then nothing answers, as with a host that swallows packets.
func swallower(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// TestSyncedAndSeen: a node that lists the members of a running cluster
// beside a hundred records that point nowhere (refused, or answering
// nothing) is synced as soon as it has joined one real member, and by
// then Seen knows every real member and none of the others; the real
// members see it too. Seen outlives the node's death.
func TestSyncedAndSeen(t *testing.T) {
	t.Parallel()
	nodes := startN(t, 2, nil)
	for _, n := range nodes {
		waitHealth(t, 5*time.Second, nodes, n.node, Alive)
	}
	c := start(t, testConfig("c"))
	select {
	case <-c.g.Synced():
		t.Fatal("synced before SetPeers")
	default:
	}
	peers := map[string]string{"c": c.g.LocalAddr()}
	for i := range 50 {
		peers[fmt.Sprintf("refused%d", i)] = testutil.FreeAddr(t)
	}
	for i := range 10 {
		addr := swallower(t)
		for j := range 5 {
			peers[fmt.Sprintf("silent%d-%d", i, j)] = addr
		}
	}
	for _, n := range nodes {
		peers[n.node] = n.g.LocalAddr()
	}
	began := time.Now()
	c.g.SetPeers(peers)
	select {
	case <-c.g.Synced():
		t.Logf("synced %v after SetPeers", time.Since(began))
	case <-time.After(10 * time.Second):
		t.Fatal("not synced 10 s after SetPeers")
	}
	for name := range peers {
		real := name == "c" || name == nodes[0].node || name == nodes[1].node
		if got := c.g.Seen(name); got != real {
			t.Errorf("once synced, Seen(%s) = %v, want %v", name, got, real)
		}
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 5*time.Second, n.node+" to see c", func() bool { return n.g.Seen("c") })
	}
	nodes[1].crash(t)
	// ~5 s as a rule; up to the maximum suspicion timeout (~18 s, see
	// TestPartitionHeals) when the other member's suspicion does not reach
	// c in time to confirm its own, as under a whole test run's load (it
	// took over 20 s there once).
	waitHealth(t, 40*time.Second, []*testNode{c}, nodes[1].node, Dead)
	if !c.g.Seen(nodes[1].node) {
		t.Error("a dead node is no longer seen")
	}
}

// TestSyncedAlone: a node whose list names nobody it can reach is synced
// once its first round of joins has ended.
func TestSyncedAlone(t *testing.T) {
	t.Parallel()
	a := start(t, testConfig("a"))
	a.g.SetPeers(map[string]string{"a": a.g.LocalAddr(), "b": testutil.FreeAddr(t), "s": swallower(t)})
	select {
	case <-a.g.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("not synced 10 s after SetPeers")
	}
	if !a.g.Seen("a") || a.g.Seen("b") || a.g.Seen("s") {
		t.Errorf("Seen: a=%v b=%v s=%v, want only self", a.g.Seen("a"), a.g.Seen("b"), a.g.Seen("s"))
	}
}
