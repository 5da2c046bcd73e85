package server

import (
	"bytes"

	"shoal/protocol"
)

// SASL over the binary protocol (Config.Authenticate, memcached -S). Only
// the PLAIN mechanism is offered: its one step carries
// "authzid\0user\0password" (RFC 4616), which suits a password file, as
// memcached's MEMCACHED_SASL_PWDB does.

// saslMechs is the SASL_LIST_MECHS reply.
const saslMechs = "PLAIN"

// saslFree reports the opcodes memcached runs before authentication.
func saslFree(op protocol.BinaryOp) bool {
	switch op {
	case protocol.BinSASLList, protocol.BinSASLAuth, protocol.BinSASLStep, protocol.BinVersion:
		return true
	}
	return false
}

// binSASL answers SASL_LIST_MECHS, SASL_AUTH and SASL_STEP: "Unknown
// command" without SASL, as memcached without -S.
func (c *conn) binSASL(b *protocol.Binary) {
	auth := c.srv.cfg.SASL
	switch {
	case auth == nil:
		c.binError(b, protocol.StatusUnknown)
	case b.Op == protocol.BinSASLList:
		c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusOK, b.Opaque, 0, nil, nil, []byte(saslMechs))
	case b.Op == protocol.BinSASLAuth && string(b.Key) == "PLAIN":
		// authzid \0 authcid \0 password; the authzid is ignored.
		parts := bytes.SplitN(b.Value, []byte{0}, 3)
		if len(parts) == 3 && auth.Check(parts[1], parts[2]) {
			c.saslAuthed = true
			c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusOK, b.Opaque, 0, nil, nil, []byte("Authenticated"))
			return
		}
		c.saslAuthed = false
		c.binError(b, protocol.StatusAuthError)
	default:
		// Another mechanism, or a step: PLAIN has none.
		c.binError(b, protocol.StatusAuthError)
	}
}
