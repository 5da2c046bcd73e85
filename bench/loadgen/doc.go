// Command loadgen drives a memcached-compatible server over loopback with the
// text protocol and prints its figures as key=value lines, one scenario per
// run, for bench/run.sh to compare shoal with memcached.
//
// It knows nothing of shoal: it speaks the classic text protocol (get, set,
// stats, version) through a raw net.Conn with bufio, so a pipelined batch
// costs one write and a few reads, and the client stays cheap next to the
// server it measures. Every scenario is bounded by an operation count or a
// duration and stops by itself.
//
// Data flow: a scenario opens C connections; each goroutine owns one
// connection and its own random source, appends a batch of requests to its
// buffered writer, flushes once, then reads the replies in order. The main
// goroutine owns the stop: it cancels, then waits for every connection
// goroutine to return.
//
//	loadgen wait       -addr A                      wait until the server answers
//	loadgen freeport                                print a free loopback port
//	loadgen fill       -keys N -value B             set N keys, print curr_items
//	loadgen hitratio   -keys K -value B -s 0.99     cache-aside get/set on zipf keys
//	loadgen throughput -conns C -depth D -get 0.9   closed-loop ops/s
//	loadgen latency    -rate R -conns C             open-loop p50/p99/p99.9
//
// -addr may list several servers (a cluster): connections are spread over
// them round robin; -pid may list several processes, whose CPU is summed
// (and, with several, reported for each: pid_cpu_us_per_op).
// throughput -ring is the exception to "knows nothing of shoal": it drives
// a shoal cluster through the ring-aware client (shoal/client, on
// gomemcache), each request sent to its key's owner, for bench/cluster.sh.
package main
