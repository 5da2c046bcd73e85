package server

import (
	"errors"
	"os"
	"time"
)

// watchStreams parses watch's arguments into streams; false is
// memcached's ERROR (an unknown name). No argument means fetchers.
func watchStreams(args [][]byte) (uint32, bool) {
	if len(args) == 0 {
		return streamFetchers, true
	}
	var f uint32
	for _, a := range args {
		ok := false
		for _, s := range streamNames {
			if string(a) == s.name {
				f |= s.bit
				ok = true
				break
			}
		}
		if !ok {
			return 0, false
		}
	}
	return f, true
}

// watches reports whether cmd's watch will attach (so that an event loop
// lends the connection to a goroutine for it): one refused at once stays
// on the loop, answered in order with the replies before it.
func (c *conn) watches(args [][]byte) bool {
	_, ok := watchStreams(args)
	return ok && !c.srv.cfg.DisableWatch && len(c.out) == c.sent
}

// watchCommand answers watch as memcached 1.6.18 does: the connection
// becomes a watcher until it closes, and runs no more commands.
func (c *conn) watchCommand(args [][]byte) {
	// memcached's set_noreply_maybe: a last "noreply" silences the errors
	// (it is no stream name, so the command fails).
	quiet := len(args) > 0 && string(args[len(args)-1]) == "noreply"
	if c.srv.cfg.DisableWatch {
		c.reply(quiet, "CLIENT_ERROR watch commands not allowed")
		return
	}
	if len(c.out) > c.sent {
		c.reply(quiet, "ERROR cannot pipeline other commands before watch")
		return
	}
	streams, ok := watchStreams(args)
	if !ok {
		c.reply(quiet, "ERROR")
		return
	}
	if c.ev.loop != nil && !c.hand.running {
		// Not lent to a goroutine (watches said no): cannot happen, and a
		// loop must not block here.
		c.line("WATCHER_FAILED failed to add log watcher")
		return
	}
	x := c.srv.watch.attach(streams)
	if x == nil {
		c.line("WATCHER_TOO_MANY log watcher limit reached")
		return
	}
	c.watchRun(x)
}

// watchRun writes the watcher's lines until its client goes, the
// connection is dropped or the server shuts down; the connection closes
// then. Input is read and thrown away, as memcached does.
func (c *conn) watchRun(x *watcher) {
	defer c.srv.watch.detach(x)
	c.quit = true
	c.line(replyOK)
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for c.watchDrain(x) {
		select {
		case <-x.wake:
		case <-c.srv.stopping:
			return
		case <-t.C:
			if c.dropped.Load() || !c.watchAlive() {
				return
			}
		}
	}
}

// watchDrain writes the pending replies and the watcher's buffer; false
// when the connection failed.
func (c *conn) watchDrain(x *watcher) bool {
	if c.flush() != nil {
		return false
	}
	for {
		x.mu.Lock()
		b := x.ring.peek()
		x.mu.Unlock()
		if len(b) == 0 {
			return true
		}
		n, err := c.w.Write(b)
		c.ctr.bytesWritten.Add(int64(n))
		x.mu.Lock()
		x.ring.advance(n)
		x.mu.Unlock()
		if err != nil {
			c.err = err
			return false
		}
	}
}

// watchAlive reads and discards what a watcher's client sent, and reports
// false once it has closed (or the connection's loop has stopped).
func (c *conn) watchAlive() bool {
	if c.ev.loop != nil {
		return c.pollInput()
	}
	var buf [512]byte
	c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := c.nc.Read(buf[:])
	c.ctr.bytesRead.Add(int64(n))
	return err == nil || errors.Is(err, os.ErrDeadlineExceeded)
}
