package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/peer"
	"shoal/ring"
	"shoal/server"
	"shoal/store"
)

// namedMembers is fakeMembers under another name than "self".
type namedMembers struct {
	fakeMembers
	name string
}

func (n *namedMembers) Name() string { return n.name }

// TestForwardedToNonOwner: a write forwarded to a node whose own view
// does not list it among the key's owners (it has just restarted and not
// yet applied the view that makes it one) is refused there, stored on
// nothing, and the sender passes it on to the next owner, itself here,
// without marking the refusing node down. Served where it was sent, it
// was stored on a node that pushed it to nobody (e2e/history seed 24).
// Both the synchronous and the event-loop write paths.
func TestForwardedToNonOwner(t *testing.T) {
	viewOf := func(epoch int64, members []etcdsync.Member) *membership.View {
		names := make([]string, len(members))
		for i, m := range members {
			names[i] = m.Name
		}
		r, err := ring.New(ring.Config{Shards: 16, Replicas: 2}, names, epoch)
		if err != nil {
			t.Fatal(err)
		}
		return &membership.View{Epoch: epoch, Members: members, Ring: r}
	}

	// "late" serves a peer port; its view is from before it was a member.
	lateStore := newStore(t)
	lateMembers := &namedMembers{name: "late", fakeMembers: fakeMembers{
		view:   viewOf(1, []etcdsync.Member{{Name: "self", PeerAddr: "127.0.0.1:1"}, {Name: "other", PeerAddr: "127.0.0.1:1"}}),
		health: map[string]gossip.State{"self": gossip.Alive, "other": gossip.Alive},
	}}
	late, lateAddr := servePeerPort(t, lateMembers, lateStore)

	// The sender's view is newer: late is a member, and the primary of
	// the keys below.
	st := newStore(t)
	fm := &fakeMembers{
		view:   viewOf(2, []etcdsync.Member{{Name: "late", PeerAddr: lateAddr}, {Name: "self"}}),
		health: map[string]gossip.State{"late": gossip.Alive},
	}
	rt, err := NewRouter(RouterConfig{Members: fm, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.apply()
	var keys [][]byte
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if fm.view.Ring.Primary(fm.view.Ring.Shard(k)) == "late" {
			keys = append(keys, k)
		}
	}

	if _, _, err := late.PeerPort().set(context.Background(), keys[0], []byte("v"), nil); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("forwarded set on a non-owner: %v, want ErrNotOwner", err)
	}
	if res, _, err := routerSet(rt, context.Background(), keys[0], []byte("sync"), &store.SetOptions{}); res != store.Stored || err != nil {
		t.Fatalf("set: %v %v", res, err)
	}
	done := make(chan error, 1)
	outcome := func(req *server.Request) {
		err := req.Err
		if err == nil && req.Res != store.Stored {
			err = fmt.Errorf("result %v", req.Res)
		}
		done <- err
	}
	req := &server.Request{Op: server.OpSet, Key: keys[1], Value: []byte("async"), Set: &store.SetOptions{}}
	pending := rt.Start(context.Background(), req, outcome)
	rt.Flush()
	if !pending {
		outcome(req)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("async set: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("async set: no answer")
	}

	for i, want := range []string{"sync", "async"} {
		if _, v, res := st.Get(keys[i], nil, nil); res != store.Hit || string(v) != want {
			t.Errorf("%s: the sender holds %v %q, want %q: it should have taken the write as the next owner", keys[i], res, v, want)
		}
		if _, v, res := lateStore.Get(keys[i], nil, nil); res != store.Miss {
			t.Errorf("%s: the non-owner holds %v %q, want nothing", keys[i], res, v)
		}
	}
	ps := rt.PeerStats()
	if len(ps) != 1 || ps[0].Down || ps[0].Failures != 0 || ps[0].Forwarded < 2 {
		t.Errorf("peer stats %+v: want both writes forwarded to late, and late neither failed nor down", ps)
	}
}

// servePeerPort starts a router of members (named, with a view of its
// own) over st, applies its view and serves its PeerPort, as a node's
// peer port, until the test ends. It returns the router and the port.
func servePeerPort(t *testing.T, members Membership, st *store.Store) (*Router, string) {
	t.Helper()
	r, err := NewRouter(RouterConfig{Members: members, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() }) // after the server's shutdown
	r.apply()
	_, addr := serveCache(t, server.Config{PeerExtensions: true, NoAdmin: true, Dumps: r.PeerPort(), Items: st}, r.PeerPort())
	return r, addr
}

// TestFailoverErrors: which peer errors mean the owner did not answer (the
// next owner is tried, the member marked down) and which are its answer.
// A connect with no route (a partition, the moments after its heal) was
// taken for an answer: a warming node then served its own stale copy.
func TestFailoverErrors(t *testing.T) {
	for _, e := range []error{peer.ErrDown, peer.ErrTimeout, peer.ErrUnreachable, peer.ErrConnLost, peer.ErrClosed, peer.ErrProtocol, peer.ErrHandshake} {
		if err := fmt.Errorf("%w: 10.0.0.1:11311", e); !failover(err) {
			t.Errorf("%v is taken for the owner's answer", err)
		}
	}
	for _, e := range []error{peer.ErrReply, peer.ErrNonNumeric, peer.ErrOutOfMemory, peer.ErrTooLarge, peer.ErrRefusedNotOwner} {
		if failover(e) {
			t.Errorf("%v, the owner's answer, is taken for no answer", e)
		}
	}
}

// TestPeerPortClassicMultiGet: a classic get of several keys on the peer
// port (an operator's tool; members send mg) goes through PeerPort's
// GetMulti: the hits in key order, a key listed twice answered twice, the
// misses left out, one END.
func TestPeerPortClassicMultiGet(t *testing.T) {
	r, err := ring.New(ring.Config{Shards: 16, Replicas: 1}, []string{"p"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	for k, v := range map[string]string{"a": "x", "c": "yy"} {
		if res, _ := st.Set([]byte(k), []byte(v), &store.SetOptions{}); res != store.Stored {
			t.Fatalf("set %s: %v", k, res)
		}
	}
	members := &namedMembers{name: "p", fakeMembers: fakeMembers{
		view:   &membership.View{Epoch: 1, Members: []etcdsync.Member{{Name: "p", PeerAddr: "127.0.0.1:1"}}, Ring: r},
		health: map[string]gossip.State{"p": gossip.Alive},
	}}
	_, addr := servePeerPort(t, members, st)
	want := []string{"VALUE c 0 2", "yy", "VALUE a 0 1", "x", "VALUE c 0 2", "yy", "END"}
	got, err := testutil.TextLines(addr, "get c b a c\r\n", len(want))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("get c b a c: %q, %v; want %q", got, err, want)
	}
}
