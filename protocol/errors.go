package protocol

import "errors"

// Errors that end the connection. Anything returned by Reader.Next that is
// not a *Error also ends it (I/O errors, io.EOF).
var (
	// ErrIncomplete means buf holds no complete command yet. Only Parse
	// returns it; the Reader reads more instead.
	ErrIncomplete = errors.New("protocol: incomplete command")
	// ErrLineTooLong: more than 2048 bytes without a newline that are not a
	// get/gets line, or a get/gets line over the multi-get cap. memcached
	// closes the connection.
	ErrLineTooLong = errors.New("protocol: command line too long")
	// ErrHTTP: an unknown command whose last token starts with "HTTP/".
	// memcached closes the connection without a reply.
	ErrHTTP = errors.New("protocol: HTTP request on memcached port")
	// ErrAgain is not an end: a non-blocking source returns it from Read
	// (with n == 0) when it has no data now. Reader.Next passes it on
	// without keeping it, and the next call to Next resumes where this one
	// stopped, once the source has data again.
	ErrAgain = errors.New("protocol: no input available now")
)

// Error is a malformed request that memcached answers and survives: write
// Reply followed by "\r\n" (unless NoReply) and keep reading.
type Error struct {
	// Reply is memcached's reply line without "\r\n", e.g.
	// "CLIENT_ERROR bad command line format".
	Reply string
	// NoReply: the request carried noreply, and memcached 1.6.18 then
	// suppresses even error lines. Write nothing.
	NoReply bool
	// TooLarge: a storage command declared more bytes than the Reader's
	// maxItemSize. The data block is swallowed by the Reader. For classic
	// set and for every ms (Op == OpSet), memcached also deletes the
	// existing item under Key.
	TooLarge bool
	// NoMemory: the Reader's Budget would not hold the data block of a
	// storage command (memcached: "SERVER_ERROR out of memory storing
	// object"). It is swallowed and handled as TooLarge otherwise.
	NoMemory bool
	// Op and Key describe the rejected storage command when TooLarge or
	// NoMemory. Key
	// is a copy (decoded when ms used b) and stays valid until the next
	// call on the Reader.
	Op  StoreOp
	Key []byte
}

func (e *Error) Error() string { return "protocol: " + e.Reply }

// Reply lines of the errors the parser produces.
const (
	replyError        = "ERROR"
	replyBadFormat    = "CLIENT_ERROR bad command line format"
	replyBadChunk     = "CLIENT_ERROR bad data chunk"
	replyBadExptime   = "CLIENT_ERROR invalid exptime argument"
	replyBadDelta     = "CLIENT_ERROR invalid numeric delta argument"
	replyTooLarge     = "SERVER_ERROR object too large for cache"
	replyNoMemory     = "SERVER_ERROR out of memory storing object"
	replyDeleteUsage  = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyBadToken     = "CLIENT_ERROR bad token in command line format"
	replyDupFlag      = "CLIENT_ERROR duplicate flag"
	replyInvalidFlag  = "CLIENT_ERROR invalid flag"
	replyInvOrDup     = "CLIENT_ERROR invalid or duplicate flag"
	replyDecodeKey    = "CLIENT_ERROR error decoding key"
	replyOpaqueLong   = "CLIENT_ERROR opaque token too long"
	replyMGFlagsLong  = "CLIENT_ERROR options flags are too long"
	replyFlagsLong    = "CLIENT_ERROR options flags too long"
	replyMLength      = "CLIENT_ERROR incorrect length for M token"
	replyMSMode       = "CLIENT_ERROR invalid mode for ms M token"
	replyMAMode       = "CLIENT_ERROR invalid mode for ma M token"
	replyBadInitial   = "CLIENT_ERROR invalid numeric initial value"
	replyBadMetaDelta = "CLIENT_ERROR invalid numeric delta value"
)
