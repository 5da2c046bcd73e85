// Package server is the connection server: it accepts TCP connections,
// reads commands with protocol.Reader, runs them against a Cache and writes
// memcached's replies. It owns the mapping from store results to reply lines,
// the per-connection counters behind the stats command, and the connection
// limit. It knows nothing of flags, clusters or where the Cache keeps items.
//
// One request flows: socket → protocol.Reader.Next → conn.exec (a type
// switch over the closed protocol.Command set) → the connection's Request
// → Cache.Start (at once, or completed later: request.go) → reply bytes
// appended to conn.out → flushed once, when no complete command is buffered
// and the socket has no more input.
//
// Two drivers move the bytes, sharing conn.process, exec and flush:
// a goroutine per connection over its net.Conn (blocking reads and writes;
// the default), or, with Config.EventLoop, edge-triggered epoll loops over
// non-blocking sockets (eventloop_linux.go), each serving its ready
// connections in turn on one goroutine: over a Local it waits in
// epoll_wait on a locked thread, over any other Cache it parks in Go's
// poller (Config.Loops says why). The replies of the connections a loop
// served in one wake-up go out together, in one io_uring_enter where the
// kernel allows it (eventloop_send_linux.go; Config.NoIOUring: a send(2)
// each), and so do the replies a peer client's reader completes from one
// read of its peer's replies (batch.go, Config.Batch). A loop would stall
// all its connections
// while a Cache call waits, so over a Cache that may wait (any but a
// Local, whose calls never do) the calls that may wait leave the loop
// (async.go): a get, set or delete that Start leaves pending parks its
// connection until its completion (request.go). Gets of
// one key pipelined behind one that waits are answered together, as one
// multi-get (coalesce.go), rather than parked on one by one.
//
// Memory a connection holds outside the store is bounded (connmem.go,
// connidle.go): under a loop, a connection borrows its read buffer and
// reply buffer only while it has work (idle; a peer port's connection
// keeps its reply buffer between batches, within the limit: keepsOut),
// data blocks beyond the read
// buffer are received within one limit for all connections
// (Config.ConnMemLimit, protocol.Budget; past it, memcached's "out of
// memory storing object"), and a multi-get stops while its replies wait
// for the socket, going on when it drains (conn.more, getKeys). The
// replies waiting for sockets are bounded by the same limit: past it,
// retrievals wait (but one whose reply fits the base reply buffer every
// connection is lent anyway, fitsBase), and connections whose clients
// take none of their replies are closed (connMem, loop.memSweep; on the
// goroutine driver, whose writes block, connblock.go). Over a Cache that
// may wait, a value served elsewhere is not here to count before it runs:
// a get takes room for it from the limit first and tells the Cache
// (Request.Room), a larger value comes back as its size (Request.Wants)
// and the get runs again once there is room; retrievals run off their
// loop are bounded batch by batch the same way (connroom.go). The idle
// timeout counts from a connection's last command, as memcached's.
// About one command in SampleEvery per connection is timed (conn.run) into
// per-family latency histograms that Stats reports with the counters.
//
// A connection that opens with the binary protocol's magic byte (or any
// with Config.Binding BindBinary) speaks it: binary.go runs its requests
// through the same Cache calls and counters as the text commands, the
// quiet opcodes answering only their errors, and STAT converting the text
// stats lines into one packet each. With Config.Authenticate
// (binary_sasl.go) a binary connection runs nothing but SASL and VERSION
// until it logs in with PLAIN.
//
// A connection that sends watch (watch.go, watch_conn.go) becomes a
// watcher: the event sites append log lines to its fixed buffer, dropping
// and counting what does not fit, and its goroutine (under a loop, the
// one the connection is lent to) writes them; it runs no more commands.
//
// A peer listener (Config.PeerExtensions) also takes replicated writes
// (meta Y/Z: Request.Replica) and shard dumps (sd, from Config.Dumps,
// streamed in flushAt-sized writes); a client listener answers those as
// memcached 1.6.18 does. It refuses the administrative commands a member
// never sends (Config.NoAdmin). A connection that is not a socket (TLS)
// is served from its own goroutine even with Config.EventLoop.
package server
