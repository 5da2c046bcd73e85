package cluster

import (
	"testing"

	"shoal/internal/testutil"
	"shoal/server"
	"shoal/store"
)

// TestReplicaSetNewestWins: a replicated write is applied over an older
// copy and ignored over a newer one (a stand-in's write that the primary's
// late push must not undo), whatever order the copies arrive in.
func TestReplicaSetNewestWins(t *testing.T) {
	rig := startRig(t, testutil.FreeAddr(t), 2, server.Config{})
	pc := rig.rt.PeerPort()
	key := []byte("conv-key")
	apply := func(val string, cas uint64) {
		t.Helper()
		if _, _, err := pc.replicaSet(key, []byte(val), &store.SetOptions{NewCAS: cas}, server.Origin{Epoch: uint64(rig.view.Epoch)}); err != nil {
			t.Fatalf("replicaSet %s: %v", val, err)
		}
	}
	holds := func(want string, cas uint64) {
		t.Helper()
		it, v, res := rig.st.Get(key, nil, nil)
		if res != store.Hit || string(v) != want || it.CAS != cas {
			t.Fatalf("store holds %q CAS %d (%v), want %q CAS %d", v, it.CAS, res, want, cas)
		}
	}
	apply("first", 100)
	holds("first", 100)
	apply("newer", 200)
	holds("newer", 200)
	apply("late push of an older write", 150)
	holds("newer", 200)
}
