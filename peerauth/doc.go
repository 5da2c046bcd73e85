// Package peerauth admits only cluster members to the peer port: it
// authenticates each peer connection, in both directions, before a single
// command crosses it. It knows nothing of the memcached protocol, the
// server or the cluster: it turns a net.Conn into an authenticated one, or
// fails.
//
// Two methods, one per Auth:
//
//   - Mutual TLS (NewTLS): both ends present a certificate signed by the
//     cluster CA. The CA is the membership: any certificate it signed is a
//     member; host names are not checked (members move between addresses).
//     The connection is encrypted and protected against tampering.
//
//   - A shared secret (NewSecret), by challenge and response: the secret
//     never crosses the wire. The exchange is four text lines, framed as
//     memcached lines are, before the first command:
//
//     client → "shoal-auth 1 <client nonce>"
//     server → "shoal-auth 1 <server nonce> <server proof>"
//     client → "<client proof>"
//     server → "OK"
//
//     Nonces are 16 random bytes, proofs HMAC-SHA256(secret, label ||
//     first nonce || second nonce), all in hex. The labels ("server",
//     "client") differ, so a proof a server gives cannot be replayed as a
//     client's, and fresh nonces on both sides defeat replay. The client
//     checks the server's proof too: it sends no request to an impostor.
//     The connection itself stays plain TCP: the secret authenticates its
//     ends, it does not encrypt it (an attacker on the path can read it, or
//     inject into it once authenticated: use TLS there).
//
// Connections flow:
//
//	accept (Listener) ─► a goroutine per connection runs Auth.Server under
//	  a deadline (HandshakeTimeout) ─► success: Accept returns it (plain TCP
//	  after a secret handshake, so the server's event loops can take its
//	  socket; a *tls.Conn, which the server serves from a goroutine)
//	  ─► failure: a refusal line, close; the owner's Accept never sees it
//	dial (peer.Config.Handshake) ─► Auth.Client ─► requests
//
// The server side reads the handshake a byte at a time: it must not read
// past the client's last handshake line, whose next bytes belong to the
// connection's new owner.
package peerauth
