package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"shoal/protocol"
	"shoal/store"
)

// flushAt bounds the reply buffer: a multi-get of thousands of keys is
// written out in pieces rather than held whole.
const flushAt = 64 << 10

// conn is one client connection, served by one goroutine.
type conn struct {
	srv   *Server
	cache Cache
	nc    net.Conn
	id    uint64
	r     *protocol.Reader
	out   []byte // replies not yet written
	val   []byte // scratch for one value read from the cache
	err   error  // first write error; the connection closes after it
	quit  bool
	last  atomic.Int64 // unix seconds of the last read, from the cache's coarse clock
	// dropped is set by Server.DropConns: run nothing more.
	dropped atomic.Bool
	ctr     counters
	opt     options // option structs of the running command
	// sampleIn counts down the commands until the next latency sample.
	sampleIn int32

	// replica and dumper are the cache's optional peer interfaces, nil on
	// a client connection (which never parses Y or sd anyway).
	replica Replica
	dumper  Dumper
}

// options holds the option structs of the command being run. They live on
// the connection because passing a pointer through the Cache interface
// would otherwise move them to the heap on every request.
type options struct {
	get   store.GetOptions
	set   store.SetOptions
	del   store.DeleteOptions
	arith store.ArithOptions
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, cache: s.cache, nc: nc, id: s.nextID.Add(1), out: make([]byte, 0, 4096), sampleIn: nextGap()}
	c.r = protocol.NewReader(connReader{c}, s.cfg.MaxItemSize)
	if s.cfg.PeerExtensions {
		c.r.AcceptPeerExtensions()
		// Asserted once per connection, not per command.
		c.replica, _ = s.cache.(Replica)
		c.dumper, _ = s.cache.(Dumper)
	}
	return c
}

// connReader flushes pending replies before every read from the socket:
// all buffered commands run first, then their replies go out in one write.
type connReader struct{ c *conn }

func (cr connReader) Read(p []byte) (int, error) {
	c := cr.c
	if c.flush() != nil {
		return 0, c.err
	}
	if d := c.srv.cfg.IdleTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	n, err := c.nc.Read(p)
	c.ctr.bytesRead.Add(int64(n))
	c.last.Store(c.cache.Now())
	return n, err
}

func (c *conn) serve() {
	defer c.nc.Close()
	c.last.Store(c.cache.Now())
	for !c.quit && c.err == nil {
		cmd, err := c.r.Next()
		if err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) {
				c.protocolError(pe)
				continue
			}
			c.logClose(err)
			break
		}
		if c.dropped.Load() {
			break // buffered commands of a dropped connection do not run
		}
		c.run(cmd)
		if len(c.out) >= flushAt {
			c.flush()
		}
	}
	c.flush()
}

// protocolError answers a malformed request and keeps the connection, as
// memcached does.
func (c *conn) protocolError(pe *protocol.Error) {
	if pe.TooLarge {
		c.ctr.storeTooLarge.Add(1)
		if pe.Op == protocol.OpSet {
			// memcached drops the old value so a failed set cannot leave a
			// stale one behind.
			c.cache.Delete(pe.Key, nil)
		}
	}
	if !pe.NoReply {
		c.line(pe.Reply)
	}
}

func (c *conn) logClose(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	if c.srv.verbosity.Load() > 0 {
		c.srv.log.Info("connection closed", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
}

// flush writes the pending replies. A write error is kept and ends the
// connection.
func (c *conn) flush() error {
	if len(c.out) == 0 || c.err != nil {
		return c.err
	}
	n, err := c.nc.Write(c.out)
	c.ctr.bytesWritten.Add(int64(n))
	c.out = c.out[:0]
	if err != nil {
		c.err = err
	}
	return err
}

// line appends one reply line and its "\r\n".
func (c *conn) line(s string) {
	c.out = append(c.out, s...)
	c.out = append(c.out, '\r', '\n')
}

// reply appends s unless the command asked for noreply.
func (c *conn) reply(noreply bool, s string) {
	if !noreply {
		c.line(s)
	}
}
