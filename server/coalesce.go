package server

import (
	"errors"

	"shoal/protocol"
)

// Pipelined gets. A client that sends several gets before it reads the
// replies (pipeline depth above one) would, under an event loop over a
// Cache that may wait, have them forwarded one at a time: the connection parks on
// each get that waits on the network, and reads no more of its input
// until that get completes. Instead, when a get of one key must wait
// (not Inline) and the gets of one key buffered right after it are whole
// (protocol.Reader.NextIsGet), they are gathered, up to coalesceMax, and
// answered as one multi-get (Cache.GetMulti: one request per owner) on a
// goroutine, each with its own END: the bytes a client reads are those of
// the gets answered one by one. A command of any other kind ends the
// gathering and runs after them, in order.
//
// The gets are reads, sent together before any reply was read, so the
// client cannot tell the order they ran in. Once the connection's context
// has ended, no more of them is answered (conn.gaveUp: a miss may be the
// cache giving up). They are one command to the latency sampling (run).

// coalesceMax bounds the gets answered together: the keys' bytes held
// (coalesceMax × protocol.KeyMaxLength at most), and the replies written
// before the connection reads again.
const coalesceMax = 64

// errNotGet ends a connection whose next command NextIsGet took for a get
// of one key and Next did not (see coalesce).
var errNotGet = errors.New("server: a get NextIsGet recognised did not parse as one")

// coalesced is the gets gathered, as one retrieval whose keys live in
// buf. It is emptied when the connection goes idle.
type coalesced struct {
	cmd  protocol.Retrieval
	buf  []byte
	ends []int
}

// coalesce gathers cmd and the gets buffered after it into c.gets.cmd
// when cmd is a get of one key that waits on the network and at least
// one more follows (see above), and reports whether it did. cmd's key is
// copied first: Next reuses what it returned.
func (c *conn) coalesce(cmd protocol.Command) bool {
	r, ok := cmd.(*protocol.Retrieval)
	if !ok || !c.parks || len(r.Keys) != 1 || r.BadKey || r.More || r.Op != protocol.OpGet && r.Op != protocol.OpGets {
		return false
	}
	withCAS := r.Op == protocol.OpGets
	if c.r.Buffered() == 0 || c.dropped.Load() || !c.r.NextIsGet(withCAS) || c.cache.Inline(r.Keys[0]) {
		return false
	}
	g := &c.gets
	g.cmd = protocol.Retrieval{Op: r.Op, Keys: g.cmd.Keys[:0]}
	g.buf = append(g.buf[:0], r.Keys[0]...)
	g.ends = append(g.ends[:0], len(g.buf))
	for len(g.ends) < coalesceMax && !c.dropped.Load() && c.r.NextIsGet(withCAS) {
		next, err := c.r.Next()
		n, ok := next.(*protocol.Retrieval)
		if err != nil || !ok || len(n.Keys) != 1 {
			// Cannot be (FuzzNextIsGet); were it so, the command read
			// cannot be put back: the connection ends, the node stays.
			c.srv.log.Error("a get NextIsGet recognised did not parse as one", "remote", c.raddr.String(), "err", err)
			c.err = errNotGet
			break
		}
		c.touched()
		g.buf = append(g.buf, n.Keys[0]...)
		g.ends = append(g.ends, len(g.buf))
	}
	from := 0
	for _, end := range g.ends {
		g.cmd.Keys = append(g.cmd.Keys, g.buf[from:end:end])
		from = end
	}
	return true
}
