// Package cluster tests shoal clusters from outside: real shoal processes
// (the binary, built once per run), each test with its own etcd (embedded,
// or Debian's binary where it must be paused or killed), memberlist over
// loopback or over network namespaces, observed the way an operator would,
// with "stats cluster", /metrics and memcache clients.
//
// The package has no code outside its tests:
//
//   - cluster_test.go: convergence, a killed node, etcd restarted, a node
//     on a new port, a graceful stop, routing, replication, CAS failover;
//     the process helpers (proc, converged).
//   - cluster_failure_test.go: a paused node (SIGSTOP), a rolling restart,
//     a paused etcd; cluster_partition_test.go: a node cut off in network
//     namespaces (internal/netns) past its lease, and healed;
//     cluster_restart_test.go: a warm restart of a cluster node;
//     cluster_etcdtrust_test.go: absurd settings written into etcd.
//   - security_test.go: the peer port admits members only (cluster secret
//     or mutual TLS) and what a wrong gossip key or secret does.
//   - etcdproc_test.go: etcd as a child process, nodes on fixed ports,
//     memcache clients, seeding and checking keys.
//   - cluster_bench_test.go, forward_bench_test.go, security_bench_test.go:
//     the cluster benchmarks the README quotes (replication lag, the hit
//     ratio across a join, forwarded against direct gets, the cost of peer
//     authentication). They report; they never assert a speed.
//
// The long scenarios skip unless SHOAL_TEST_LONG is set (testutil.Long).
// The root package keeps the tests of one node run in the test process.
package cluster
