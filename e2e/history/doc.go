// Package history checks what clients of a shoal cluster saw against what
// the README promises: it records every operation with its start and end
// time and checks the history for lost acknowledged writes, stale reads,
// owners that disagree after settling, and client errors, per injected
// fault. It is an instrument in the spirit of Jepsen's Elle and Porcupine,
// narrowed to one register per key with unique, increasing values.
//
// Data flow: the test harness (history_test.go, real processes) drives
// writers and readers through every node, appending each operation to a
// Log; it injects one fault at a time (faults_test.go: kill -9 and
// restart, SIGSTOP, etcd kill -9 and restart, a rolling restart, a join, a
// graceful leave, a partition in network namespaces) and, after each,
// waits for the cluster to settle, lets the workload run a few seconds
// more, then stops it and takes a Checkpoint (every key read through every node, and each owner's own copy
// read with the peer-only mg Y0 on its peer port). Check turns the
// operations, episodes and checkpoints into a Report; Report.Table prints
// one row per fault kind. "Settled" is when every member sees the same
// ring, all alive, unfenced, warming no shard, and skipping none after a
// failed request (stats cluster's peer:<name>:down): every node routes
// to every owner again.
//
// The checker (history.go, check.go, report.go) is pure: it must not know
// processes, sockets or how the cluster routes. The harness must not judge:
// it records, and Check decides.
//
// Definitions (values are ordered per key by real time: u is older than v
// when the write of u ended before the write of v began):
//
//   - A write is acknowledged when it returned STORED. A write that failed
//     or timed out may still take effect at any later time: it is never
//     older than anything.
//   - Lost: at a checkpoint, a key whose reads through the nodes, or all of
//     whose owners' copies, hold a value older than an acknowledged write
//     (or nothing), counted in the episode that acknowledged that write.
//   - Stale read: a read that began after the write of v was acknowledged
//     and returned a value older than v, or a miss. It is "in fault" from
//     the injection until one second after the cluster settled, "after
//     settle" from then on.
//   - Excused: the README allows a node killed with kill -9 to lose the
//     writes still in flight to its replicas; writes of keys it owned,
//     acknowledged within Options.KillLag of the kill, count as
//     unacknowledged (and are counted).
//   - Divergent: a key whose owners' copies differ at a checkpoint.
package history
