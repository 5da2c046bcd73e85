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

// authenticate runs cmd on a connection that has not authenticated yet,
// as memcached 1.6.18's try_read_command_asciiauth: a set whose data is
// "<user> <password>" (space-separated tokens, the first two used) that
// matches authenticates it ("STORED", noreply or not); a set with other
// credentials is answered "CLIENT_ERROR authentication failure", one whose
// data is not two tokens "CLIENT_ERROR bad authentication token format",
// any other command "CLIENT_ERROR unauthenticated". The connection stays
// open, so the client may try again. (memcached answers only the last of
// several commands that arrive in one read; shoal answers each.)
func (c *conn) authenticate(cmd protocol.Command) {
	s, ok := cmd.(*protocol.Storage)
	if !ok || s.Op != protocol.OpSet {
		c.line(replyUnauthenticated)
		return
	}
	tokens := bytes.FieldsFunc(s.Data, func(r rune) bool { return r == ' ' })
	if len(tokens) < 2 {
		c.line("CLIENT_ERROR bad authentication token format")
		return
	}
	c.srv.auth.cmds.Add(1)
	if c.srv.cfg.Auth.Check(tokens[0], tokens[1]) {
		c.authed = true
		c.line(replyStored)
		return
	}
	c.srv.auth.errors.Add(1)
	c.line("CLIENT_ERROR authentication failure")
}
