package history

import (
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/internal/netns"
	"shoal/internal/testutil"
)

var (
	long     = flag.Bool("long", false, "run every fault kind, one at a time, for -duration (use with -timeout 0 or a -timeout well over -duration)")
	seedFlag = flag.Int64("seed", 0, "seed for fault choice, targets and durations (0: from the clock); printed so that a run can be replayed")
	duration = flag.Duration("duration", 10*time.Minute, "long mode: inject faults until this much time has passed")
	cutFlag  = flag.Duration("cut", 0, "when set, every partition lasts exactly this long (to replay one length, e.g. 9s, just under the 10 s lease)")
	logsFlag = flag.String("logs", "", "write every node's stderr (all incarnations) to files in this directory at the end, failed or not")
	kindFlag = flag.String("faults", "", "comma-separated fault kinds: long mode draws from them (default: all), short mode injects each once, in order (default: "+strings.Join(shortKinds, ",")+"); all: "+strings.Join(allKinds, ","))
)

var allKinds = []string{KindKill, KindStop, KindEtcdKill, KindRolling, KindJoin, KindLeave, KindPartition}

// shortKinds are the faults of short mode: every kind but a partition,
// each once, in the order listed. They kept the README's promises in
// every run since the fixes of 2026-12-06 (three 10-minute long runs on
// the final code: no lost write, no stale read after settling, no
// divergence; see README, Under faults). Until then SIGSTOP, kill -9 and
// rolling restarts were left out for stale reads after settling.
var shortKinds = []string{KindEtcdKill, KindJoin, KindLeave, KindKill, KindStop, KindRolling}

// leftOut names what short mode leaves out, and why.
const leftOut = KindPartition + ": it needs root (network namespaces), and a cut longer than the 10 s lease, the case that matters, would take short mode past a minute"

// TestHistory runs a 3-node cluster (--replicas 2, Debian's etcd) under
// writers and readers through every node, injects faults one at a time,
// and checks the history (see the package doc).
//
// Short mode (without -long; go test ./... runs it when SHOAL_TEST_LONG=1,
// as .ci/run sets, and -faults runs it always): a baseline, then one
// each of the faults in shortKinds (etcd kill -9 and restart, a join, a
// graceful leave, kill -9 and restart of a node, a SIGSTOP, a rolling
// restart), asserting what the README promises: no lost acknowledged
// write (beyond the kill's in-flight allowance), no stale read more than
// a second after settling, owners that agree, and no error nor stale read
// without a fault. -faults runs any kinds, short, in the order given.
//
// Long mode:
//
//	go test ./e2e/history -run TestHistory -v -timeout 0 -long -duration 10m [-seed N] [-faults "kill -9,sigstop"]
//
// draws faults from the seed until -duration has passed, prints the same
// table and fails on the same violations. A partition (a node's bridge
// port taken down for 2–15 s) needs network namespaces, so root: with it
// among the faults every node runs in its own namespace; without root it
// is left out, with a log line.
func TestHistory(t *testing.T) {
	if !*long && *kindFlag == "" {
		testutil.Long(t) // short mode still takes ~35 s: six faults, each settled
	}
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	replay := fmt.Sprintf("go test ./e2e/history -run TestHistory -seed %d", seed)
	if *long {
		replay = fmt.Sprintf("go test ./e2e/history -run TestHistory -timeout 0 -long -duration %v -seed %d", *duration, seed)
	}
	if *kindFlag != "" {
		replay += fmt.Sprintf(" -faults %q", *kindFlag)
	}
	t.Logf("seed %d; replay: %s", seed, replay)
	rng := rand.New(rand.NewSource(seed))

	var kinds []string
	switch {
	case *kindFlag != "":
		kinds = strings.Split(*kindFlag, ",")
	case *long:
		kinds = allKinds
	default:
		kinds = shortKinds
		t.Logf("short mode leaves out %s; -faults runs it, e.g. -faults %q", leftOut, KindPartition)
	}
	for _, k := range kinds {
		if !slices.Contains(allKinds, k) {
			t.Fatalf("unknown fault kind %q; known: %s", k, strings.Join(allKinds, ","))
		}
	}

	shoalBinary(t) // built before the clock starts
	cl := &cluster{}
	etcdHost := "127.0.0.1"
	if slices.Contains(kinds, KindPartition) {
		// Every node in its own network namespace, so that one can be cut
		// off; 3 spare namespaces for joins.
		nn, err := netns.New(t, 6)
		if err != nil {
			t.Logf("no %s: %v", KindPartition, err)
			kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == KindPartition })
		} else {
			cl.nn, etcdHost = nn, nn.BridgeIP()
		}
	}
	cl.etcd = startEtcd(t, etcdHost)
	var nodes []*node
	for _, name := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startNode(t, cl, name))
	}
	cl.setMembers(nodes)
	testutil.WaitUntil(t, 30*time.Second, "converged", func() (bool, string) { return converged(nodes) })
	for _, n := range nodes {
		n.up.Store(true)
	}

	nkeys, steady, stopMax, cutMax := 300, 2*time.Second, 4*time.Second, 5*time.Second
	if *long {
		nkeys, steady, stopMax, cutMax = 600, 3*time.Second, 8*time.Second, 15*time.Second
	}
	log := NewLog()
	t.Logf("offsets below are from %s (the nodes' logs are in wall time)", time.Now().UTC().Format("15:04:05.000"))
	w := newWorkload(log, cl, nkeys, 5*time.Millisecond)
	w.start(3, 3, seed)
	defer w.halt()
	in := &injector{t: t, cl: cl, log: log, rng: rng, initial: len(nodes), stopMax: stopMax, cutMax: cutMax, cut: *cutFlag}

	const drain = 3 * time.Second
	episodes := []Episode{{Kind: KindNone}}
	time.Sleep(steady) // the baseline's workload
	episodes[0].Check = w.checkpoint(t, drain)
	run := func(kind string) {
		ep := in.inject(kind)
		time.Sleep(steady) // workload after settling
		ep.Check = w.checkpoint(t, drain)
		t.Logf("%s %s (%s): injected at %.1f s, healed +%.1f s, settled +%.1f s",
			ep.Kind, ep.Target, ep.Detail, ep.Start.Seconds(), (ep.Healed - ep.Start).Seconds(), (ep.Settled - ep.Start).Seconds())
		episodes = append(episodes, ep)
	}
	if *long {
		for log.Now() < *duration {
			run(in.choose(kinds))
		}
	} else {
		for _, k := range kinds {
			run(k)
		}
	}
	w.halt()

	ops := log.Ops()
	r := Check(ops, episodes, Options{})
	t.Logf("%d operations, %d episodes, %.0f s; seed %d\n%s\n%s", len(ops), len(episodes), log.Now().Seconds(), seed, r.Table(), r.Detail())
	for i := range r.Episodes {
		ep := &r.Episodes[i]
		if ep.Lost > 0 {
			t.Errorf("%s: %d acknowledged writes lost (README: a killed node loses at most the writes in flight to its replicas; nothing else loses writes)", ep.Name(), ep.Lost)
		}
		if ep.StaleAfter > 0 {
			t.Errorf("%s: %d stale reads more than %v after the cluster settled", ep.Name(), ep.StaleAfter, r.Options.Grace)
		}
		if ep.ErrorsAfter > 0 {
			t.Errorf("%s: %d requests failed more than %v after the cluster settled", ep.Name(), ep.ErrorsAfter, r.Options.Grace)
		}
		if ep.Divergent > 0 {
			t.Errorf("%s: %d keys whose owners hold different copies after settling", ep.Name(), ep.Divergent)
		}
		if ep.Kind == KindNone && ep.ErrorsInFault+ep.ErrorsAfter+ep.StaleInFault > 0 {
			t.Errorf("no fault, yet %d errors and %d stale reads", ep.ErrorsInFault+ep.ErrorsAfter, ep.StaleInFault)
		}
	}
	if t.Failed() {
		t.Logf("replay: %s", replay)
	}
}
