package etcdsync

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// TestRefusedSettings: settings written to etcd after the cluster was
// created are refused when they change the shard count or leave the
// bounds, logged once and counted, and the node keeps its settings; a
// change within bounds that keeps the shard count is adopted. A node
// joining while etcd holds refused settings keeps its own.
func TestRefusedSettings(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		a := startNode(t, e, "a")
		before := waitConverged(t, 5*time.Second, []*node{a}, "a")
		cli := newClient(t, e.Endpoints())
		put := func(key, val string) {
			t.Helper()
			if _, err := cli.Put(context.Background(), key, val); err != nil {
				t.Fatal(err)
			}
		}
		refused := []string{
			`{"replicas":2,"shards":5000000}`,            // the measured attack: 644 MB per node
			`{"replicas":2,"shards":128,"vnodes":160}`,   // valid, but another shard count
			`{"replicas":50,"shards":4096,"vnodes":160}`, // replicas out of bounds
			`{"replicas":2,`,                             // unreadable
		}
		for i, val := range refused {
			put("/test/config", val)
			testutil.WaitFor(t, 5*time.Second, "refusal of "+val, func() bool { return a.Rejections().Config == uint64(i+1) })
			if snap, _ := a.Current(); snap.Settings != before.Settings || !slices.Equal(snap.Members, before.Members) {
				t.Fatalf("after %s: view %+v, want it unchanged: %+v", val, snap, before)
			}
			if !a.Rejections().ConfigRefused {
				t.Fatalf("after %s: ConfigRefused is false", val)
			}
		}
		// The same value again is neither counted nor logged again.
		put("/test/config", refused[3])
		put("/test/config", refused[3])
		// A change within bounds is adopted (and ends the refusal).
		want := Settings{Replicas: 3, Shards: testSettings.Shards, VNodes: testSettings.VNodes}
		put("/test/config", encodeSettings(want))
		testutil.WaitFor(t, 5*time.Second, "replicas 3 adopted", func() bool {
			snap, _ := a.Current()
			return snap.Settings == want
		})
		if r := a.Rejections(); r.Config != uint64(len(refused)) || r.ConfigRefused {
			t.Errorf("rejections %+v, want %d and no refusal now", r, len(refused))
		}
		if n := strings.Count(a.logs.String(), "refusing the cluster settings"); n != len(refused) {
			t.Errorf("%d refusals logged, want %d:\n%s", n, len(refused), a.logs)
		}

		// A node joining now keeps its own settings rather than adopt absurd ones.
		put("/test/config", refused[0])
		testutil.WaitFor(t, 5*time.Second, "a's fifth refusal", func() bool { return a.Rejections().Config == uint64(len(refused)+1) })
		b := startNode(t, e, "b")
		snap := waitConverged(t, 5*time.Second, []*node{b}, "a", "b")
		if snap.Settings != testSettings {
			t.Errorf("b's settings %+v, want its own %+v", snap.Settings, testSettings)
		}
		if r := b.Rejections(); r.Config != 1 || !r.ConfigRefused {
			t.Errorf("b's rejections %+v, want one, refusing now", r)
		}
		if snap, _ := a.Current(); snap.Settings != want {
			t.Errorf("a's settings %+v, want %+v kept", snap.Settings, want)
		}

		// Valid settings with another shard count: a node joining now
		// reads the count the cluster was created with and keeps it,
		// though its own flags say otherwise.
		put("/test/config", refused[1])
		own := Settings{Replicas: 2, Shards: 256, VNodes: 160}
		c := startNode(t, e, "c", withSettings(own))
		waitConverged(t, 5*time.Second, []*node{c}, "a", "b", "c")
		snap, _ = c.Current()
		if want := (Settings{Replicas: 2, Shards: testSettings.Shards, VNodes: 160}); snap.Settings != want {
			t.Errorf("c's settings %+v, want the creation's shard count: %+v", snap.Settings, want)
		}
		if r := c.Rejections(); r.Config != 1 || !r.ConfigRefused {
			t.Errorf("c's rejections %+v, want one, refusing now", r)
		}
	})
}

// TestIgnoredMembers: member records that do not parse or lack what a
// member is reached by are left out of the view, logged once per key
// (whatever else happens in etcd, a relist included) and counted;
// deleting them clears them.
func TestIgnoredMembers(t *testing.T) {
	forEachEtcd(t, func(t *testing.T, e testEtcd) {
		p := startProxy(t, e.Endpoints()[0])
		a := startNode(t, e, "a", withEndpoints(p.URL()))
		waitConverged(t, 5*time.Second, []*node{a}, "a")
		cli := newClient(t, e.Endpoints())
		ctx := context.Background()
		put := func(key, val string) {
			t.Helper()
			if _, err := cli.Put(ctx, key, val); err != nil {
				t.Fatal(err)
			}
		}
		bad := map[string]string{
			"/test/members/junk":     `not json`,
			"/test/members/missing":  `{"name":"missing"}`,
			"/test/members/types":    `{"name":"types","instance":"x","client":11211,"peer":"h:2"}`,
			"/test/members/renamed":  `{"name":"a","instance":"x","client":"h:1","peer":"h:2"}`,
			"/test/members/noport":   `{"name":"noport","instance":"x","client":"h","peer":"h:2"}`,
			"/test/members/trailing": `{"name":"trailing","instance":"x","client":"h:1","peer":"h:2"}}`,
		}
		for key, val := range bad {
			put(key, val)
		}
		// A valid record written after them: once it is in the view, so
		// are they (or not).
		z := Member{Name: "z", Instance: "z-1", ClientAddr: "z:1", PeerAddr: "z:2"}
		put("/test/members/z", encodeMember(z))
		waitConverged(t, 5*time.Second, []*node{a}, "a", "z")
		if r := a.Rejections(); r.Members != uint64(len(bad)) || r.MembersIgnored != len(bad) {
			t.Fatalf("rejections %+v, want %d records refused and ignored", r, len(bad))
		}
		// More events, including new bad values for the same keys: no new
		// log line, no new count.
		for i := range 5 {
			put("/test/members/junk", `still {not json`)
			z.Instance = "z-" + string(rune('2'+i))
			put("/test/members/z", encodeMember(z))
		}
		waitInstance(t, []*node{a}, "z", z.Instance)
		// A watch that cannot resume (its revision compacted away): a
		// lists everything again.
		relists := strings.Count(a.logs.String(), "listing again")
		p.SetDown(true)
		put("/elsewhere", "x")
		resp, err := cli.Put(ctx, "/elsewhere", "y")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
			t.Fatal(err)
		}
		p.SetDown(false)
		testutil.WaitFor(t, 10*time.Second, "a to list again", func() bool {
			return strings.Count(a.logs.String(), "listing again") > relists
		})
		z.Instance = "z-relisted"
		put("/test/members/z", encodeMember(z))
		waitInstance(t, []*node{a}, "z", z.Instance)
		if r := a.Rejections(); r.Members != uint64(len(bad)) {
			t.Errorf("rejections %+v after rewrites, want still %d", r, len(bad))
		}
		lines := strings.Split(a.logs.String(), "\n")
		for key := range bad {
			n := 0
			for _, l := range lines {
				if strings.Contains(l, "ignoring a member record") && strings.Contains(l, " key="+key+" ") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s logged %d times, want once", key, n)
			}
		}
		// A valid record turned bad leaves the view.
		put("/test/members/z", `{"name":"z"}`)
		waitConverged(t, 5*time.Second, []*node{a}, "a")
		for key := range bad {
			if _, err := cli.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cli.Delete(ctx, "/test/members/z"); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the ignored records to be forgotten", func() bool { return a.Rejections().MembersIgnored == 0 })
		if r := a.Rejections(); r.Members != uint64(len(bad)+1) {
			t.Errorf("rejections %+v, want %d", r, len(bad)+1)
		}
	})
}
