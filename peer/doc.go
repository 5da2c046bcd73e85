// Package peer is a client to another shoal node (or to memcached) speaking
// the memcached meta protocol, for forwarding requests and pushing replicas.
// It knows nothing of rings, stores or the connection server: it sends a key
// to one address and reports what came back.
//
// A Client keeps a small pool of TCP connections to one address. Each
// request flows like this:
//
//	Get/Set/Delete/Arith/GetMulti/TouchMulti
//	  └─► pick a connection (round robin; dial it lazily, redial it if broken)
//	        └─► under the connection's lock: take the next opaque number, queue
//	            the request, append its bytes to the write buffer; the first
//	            caller to find no write in progress writes the whole buffer,
//	            and keeps writing whatever others appended meanwhile
//	              └─► the connection's reader goroutine parses replies in order,
//	                  checks each opaque against the head of the queue and
//	                  completes that request (a mismatch breaks the connection)
//	                    └─► the caller wakes, or has timed out and gone
//
// A broken connection fails every request queued on it and is redialled by
// the next request. A refused connect fails at once with ErrDown, the
// "process is gone" signal a router can act on; no request retries inside
// the client; any other failed connect (no route, network unreachable) is
// ErrUnreachable. A request that gets no reply within RequestTimeout, while
// no other reply came on its connection for as long, fails with
// ErrTimeout and breaks its connection: every later request on it is
// queued behind the missing reply and would wait as long. Replies come in
// order, so while the peer answers the requests queued before it a request
// waits on, up to four RequestTimeouts in all: the peer is slow (a batch of
// large values), not gone; a paused or cut-off peer sends nothing and fails
// at RequestTimeout. That holds on a
// connection Reset retired too (the peer answers again after a cut): it
// is closed once its queue empties, or failed as any other. A connection broken with
// requests still queued is reset (SO_LINGER 0), not closed: what the
// kernel had not sent yet is discarded, so a request the caller gave up on
// (and may have sent elsewhere) never reaches the peer later, as it would
// when a network cut heals and TCP retransmits.
//
// Dump is the exception to the pool: a shard dump (sd, a shoal peer-port
// extension) streams up to a node's whole memory, so it runs on a
// connection of its own, dialled for it and closed after it, bounded by its
// ctx rather than by RequestTimeout.
//
// Every connection the client dials (pooled, a dump's, flush_all's) runs
// Config.Handshake, when set, before its first byte of protocol: a peer
// port that admits members only (peerauth) authenticates it there. A
// failed handshake is ErrHandshake, and a router treats that owner as not
// answering.
//
// GetAsync, SetAsync and DeleteAsync (async.go) complete on the reader
// goroutine; it calls Config.RepliesHandled, when set, once it has
// handled every reply it read and before it reads again: a handler that
// left work for later (the server's Batch sends its client replies
// together) does it there.
package peer
