package server

import (
	"bytes"
	"sync/atomic"

	"shoal/protocol"
)

// Authenticator checks the credentials of memcached's ASCII
// authentication (-Y): a client's first command must be a set whose data
// is "<user> <password>". Check is called from connection goroutines
// concurrently.
type Authenticator interface {
	Check(user, password []byte) bool
}

// authCounters are memcached's auth_cmds and auth_errors.
type authCounters struct{ cmds, errors atomic.Int64 }

const replyUnauthenticated = "CLIENT_ERROR unauthenticated"

// authenticate runs cmd on a connection that has not authenticated yet:
// a set carrying good credentials authenticates it ("STORED", noreply or
// not, as memcached); anything else is answered "CLIENT_ERROR
// unauthenticated" and ends the connection.
func (c *conn) authenticate(cmd protocol.Command) {
	s, ok := cmd.(*protocol.Storage)
	if ok && s.Op == protocol.OpSet {
		c.srv.auth.cmds.Add(1)
		user, pass, found := bytes.Cut(s.Data, []byte(" "))
		if found && c.srv.cfg.Auth.Check(user, pass) {
			c.authed = true
			c.line(replyStored)
			return
		}
		c.srv.auth.errors.Add(1)
	}
	c.line(replyUnauthenticated)
	c.quit = true
}
