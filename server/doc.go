// Package server is the connection server: it accepts TCP connections,
// reads commands with protocol.Reader, runs them against a Cache and writes
// memcached's replies. It owns the mapping from store results to reply lines,
// the per-connection counters behind the stats command, and the connection
// limit. It knows nothing of flags, clusters or where the Cache keeps items.
//
// One request flows: net.Conn → protocol.Reader.Next → conn.exec (a type
// switch over the closed protocol.Command set) → Cache → reply bytes
// appended to conn.out → flushed once, just before the next blocking read.
// About one command in SampleEvery per connection is timed (conn.run) into
// per-family latency histograms that Stats reports with the counters.
//
// A peer listener (Config.PeerExtensions) also takes replicated writes
// (meta Y/Z, to a Replica cache) and shard dumps (sd, from a Dumper cache,
// streamed in flushAt-sized writes); a client listener answers those as
// memcached 1.6.18 does.
package server
