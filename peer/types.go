package peer

import (
	"errors"
	"strings"

	"shoal/protocol"
)

// Errors. Test them with errors.Is.
var (
	ErrConfig = errors.New("peer: invalid config")
	// ErrDown: the peer refused the TCP connect; its process is gone. The
	// client does not retry: the next request dials again.
	ErrDown = errors.New("peer: down (connection refused)")
	// ErrTimeout: no reply within RequestTimeout, or no connect within
	// DialTimeout.
	ErrTimeout = errors.New("peer: timeout")
	// ErrUnreachable: the connect failed otherwise (no route to the host,
	// network unreachable: a partition, or the moments after its heal
	// while neighbour entries resolve again). Like ErrTimeout, the peer
	// did not answer.
	ErrUnreachable = errors.New("peer: unreachable")
	// ErrConnLost: the connection broke (reset, EOF, write error) with the
	// request sent or queued; it may or may not have been applied.
	ErrConnLost = errors.New("peer: connection lost")
	// ErrProtocol: a reply that does not match the request it answers
	// (wrong opaque, unexpected status, unparseable bytes).
	ErrProtocol = errors.New("peer: protocol error")
	// ErrReply: the peer answered with an error line; see ReplyError.
	ErrReply = errors.New("peer: error reply")
	// ErrStaleEpoch: a replica refused a replicated write (Epoch set) as
	// older than its view of the key's owners (protocol.ReplyStaleEpoch).
	// Also an ErrReply.
	ErrStaleEpoch = errors.New("peer: stale epoch")
	// ErrNoDelta: a peer asked to Dump what changed since a version
	// cannot vouch that it would send all of it (protocol.ReplyNoDelta).
	// Also an ErrReply.
	ErrNoDelta = errors.New("peer: no delta")
	// ErrRefusedPaused, ErrRefusedNotOwner and ErrRefusedUnvouched: a
	// shoal peer refused the request (protocol.ReplyPaused,
	// protocol.ReplyNotOwner, protocol.ReplyUnvouched). Also ErrReply.
	ErrRefusedPaused    = errors.New("peer: refused, paused since")
	ErrRefusedNotOwner  = errors.New("peer: refused, not an owner")
	ErrRefusedUnvouched = errors.New("peer: refused, key not vouched for")
	// ErrNonNumeric: an Arith on a value that is not a decimal number
	// (protocol.ReplyNonNumeric). Also an ErrReply.
	ErrNonNumeric = errors.New("peer: non-numeric value")
	// ErrOutOfMemory: the peer had no memory for the item, a store
	// outcome rather than a failure of the peer: ms answers
	// protocol.ReplyNoMemory, ma the shorter protocol.ReplyMetaNoMemory.
	// Also an ErrReply.
	ErrOutOfMemory = errors.New("peer: out of memory")
	// ErrTooLarge: the peer refused a Set whose item exceeds its item
	// size limit (protocol.ReplyTooLarge). Also an ErrReply.
	ErrTooLarge = errors.New("peer: object too large")
	// ErrNoRoom: a Get with GetOptions.Room found a value larger than the
	// room, which the peer did not send; Item.Size is its size. Not a
	// failure of the peer: ask again with room for it.
	ErrNoRoom = errors.New("peer: value larger than the room")
	// ErrInvalidFlag: the peer does not know a flag of the request
	// (protocol.ReplyInvalidFlag): a shoal from before it, as during a
	// rolling upgrade. Also an ErrReply.
	ErrInvalidFlag = errors.New("peer: invalid flag")
	// ErrBadKey: a key no meta request can carry (empty, or over 250
	// bytes as sent).
	ErrBadKey = errors.New("peer: invalid key")
	// ErrHandshake: Config.Handshake failed on a new connection (the
	// peer does not authenticate as a member, or this node as one to it).
	ErrHandshake = errors.New("peer: handshake failed")
	// ErrClosed: the Client is closed.
	ErrClosed = errors.New("peer: client closed")
)

// ReplyError is an error line from the peer, such as
// "SERVER_ERROR out of memory" or "CLIENT_ERROR cannot increment or
// decrement non-numeric value". The connection stays usable. Line is kept
// whole so that a caller can log it or answer with it; callers decide
// what it means with errors.Is against the sentinels above, classified
// once when the reply is read (newReplyError), not by matching Line.
type ReplyError struct {
	Line string
	kind error // ErrNonNumeric, ErrStaleEpoch, ...; nil for other lines
}

// newReplyError classifies an error line the peer sent.
func newReplyError(line string) *ReplyError {
	return &ReplyError{Line: line, kind: replyKind(line)}
}

// replyKind is the sentinel of an error line that names an outcome, or nil.
// Lines match exactly, as memcached 1.6.18 and a shoal peer port send them:
// a line that merely mentions "too large" is no ErrTooLarge.
func replyKind(line string) error {
	switch line {
	case strings.TrimSuffix(protocol.ReplyNonNumeric, "\r\n"):
		return ErrNonNumeric
	case strings.TrimSuffix(protocol.ReplyNoMemory, "\r\n"),
		strings.TrimSuffix(protocol.ReplyMetaNoMemory, "\r\n"):
		return ErrOutOfMemory
	case strings.TrimSuffix(protocol.ReplyTooLarge, "\r\n"):
		return ErrTooLarge
	case protocol.ReplyStaleEpoch:
		return ErrStaleEpoch
	case protocol.ReplyNoDelta:
		return ErrNoDelta
	case protocol.ReplyPaused:
		return ErrRefusedPaused
	case protocol.ReplyNotOwner:
		return ErrRefusedNotOwner
	case protocol.ReplyUnvouched:
		return ErrRefusedUnvouched
	case protocol.ReplyInvalidFlag:
		return ErrInvalidFlag
	}
	return nil
}

func (e *ReplyError) Error() string { return "peer: " + e.Line }

// Is makes errors.Is(err, ErrReply) true for every error line, and
// errors.Is(err, ErrNonNumeric) and the like for the line it was
// classified as.
func (e *ReplyError) Is(target error) bool {
	return target == ErrReply || e.kind != nil && target == e.kind
}

// Result is the outcome of a write, from the meta status code.
type Result uint8

// Results.
const (
	OK        Result = iota // HD (or VA for Arith): stored, deleted, applied
	NotStored               // NS: add on an existing key, replace/append on a missing one
	Exists                  // EX: the compare-and-swap value did not match
	NotFound                // NF: no such key (CAS write, delete, arith)
)

func (r Result) String() string {
	switch r {
	case OK:
		return "OK"
	case NotStored:
		return "NotStored"
	case Exists:
		return "Exists"
	case NotFound:
		return "NotFound"
	}
	return "Result(?)"
}

// Item is a value read from the peer.
type Item struct {
	Value []byte // appended to GetOptions.Buf[:0]
	Flags uint32 // client flags
	CAS   uint64
	// TTL is the seconds left as the peer reports them (mg t); -1 means
	// the item never expires.
	TTL int64
	// Meta-only fields. Fetched and LastAccess (seconds since the access
	// before this one) come back only with GetOptions.Detail (mg h l);
	// Win, Stale and TokenSent whenever the peer sends W, X or Z.
	Fetched    bool
	LastAccess int64
	Win        bool
	Stale      bool
	TokenSent  bool
	// KeyBinary: the key was stored base64-encoded by its client (Dump
	// reports it from the b flag).
	KeyBinary bool
	// Size, with ErrNoRoom, is the size of the value the peer did not
	// send (GetOptions.Room).
	Size int
	// Deleted: not an item but a delete the peer remembers (Dump, after
	// the items; Get with LocalOnly, on a miss): CAS is the delete's
	// version, the rest is empty.
	Deleted bool
}

// GetOptions tunes Get. The zero value is a plain get.
type GetOptions struct {
	// Touch sets the item's TTL as it is read (gat): mg T<TTL>. The TTL is
	// read as memcached reads exptimes: relative seconds up to 30 days,
	// else an absolute unix time; negative expires the item.
	Touch bool
	TTL   int64
	// NoBump leaves the item's recency and last access alone (mg u).
	NoBump bool
	// Vivify creates a missing item, empty, with VivifyTTL and gives this
	// caller the win token (mg N<VivifyTTL>).
	Vivify    bool
	VivifyTTL int64
	// RecacheBelow, when positive, hands out the win token when the
	// item's TTL left is below it (mg R).
	RecacheBelow int64
	// Detail asks for Item.Fetched and Item.LastAccess (mg h l).
	Detail bool
	// LocalOnly asks for the peer's own copy (mg Y0, a peer-only flag):
	// a shoal peer port answers from its store without settling the key
	// from another node, which is what a warming node needs.
	LocalOnly bool
	// Room, when positive, is the most bytes of value to take (mg A, a
	// peer-only flag): a shoal peer port answers a hit with a larger
	// value by its size alone, and the call fails with ErrNoRoom, the size
	// in Item.Size. The sender asks again when it has room: its reader
	// never takes in a value nobody made room for.
	Room int
	// Buf receives the value: Item.Value is append(Buf[:0], value...).
	// Pass a buffer with capacity to read without allocating; the caller
	// owns it again when Get returns.
	Buf []byte
	// Admit, for GetMultiWith, is asked before a hit's value of n bytes is
	// kept; false drops it: the Hit comes back Dropped, without its value.
	// It runs on the connection's reader, so it must not block, and it may
	// still be called after an abandoned call returned. nil keeps every
	// value.
	Admit func(n int) bool
}

// SetMode is the storage verb of Set (ms M).
type SetMode byte

// Set modes. The zero value is a plain set.
const (
	ModeSet     SetMode = 0
	ModeAdd     SetMode = 'E'
	ModeReplace SetMode = 'R'
	ModeAppend  SetMode = 'A'
	ModePrepend SetMode = 'P'
)

// SetOptions tunes Set. The zero value stores with flags 0 and no expiry.
type SetOptions struct {
	Flags uint32 // client flags (ms F)
	// TTL: 0 never expires; else as GetOptions.TTL (ms T).
	TTL int64
	// CAS, when non-zero, stores only if the item's CAS still matches
	// (ms C): Exists when it does not, NotFound when the key is gone.
	CAS uint64
	// Invalidate, with CAS, stores even on a mismatch when the new CAS is
	// newer and marks the item stale (ms I).
	Invalidate bool
	Mode       SetMode
	// NewCAS, when non-zero, is the CAS the stored item gets (ms E).
	NewCAS uint64
	// Vivify, with ModeAppend or ModePrepend, creates a missing item
	// with VivifyTTL (ms N).
	Vivify    bool
	VivifyTTL int64
	// Epoch, when non-zero, marks the write as replicated from a node at
	// this ring epoch (ms Y), with Seq its per-shard sequence number (ms
	// Z, sent when non-zero). A shoal peer port hands such writes to its
	// replica logic; memcached and a shoal client port reject them.
	Epoch, Seq uint64
	// KeyBinary sends the key base64-encoded (ms b) even when it need not
	// be, so the peer remembers it as a client's base64 key.
	KeyBinary bool
}

// DeleteOptions tunes Delete. The zero value deletes unconditionally.
type DeleteOptions struct {
	CAS uint64 // delete only when the item's CAS matches (md C)
	// Invalidate marks the item stale instead of removing it (md I), with
	// a new TTL when TTL is non-zero (md T).
	Invalidate bool
	TTL        int64
	// NewCAS (md E) is, with Invalidate, the CAS the stale item gets; on a
	// replicated delete (Epoch set), the delete's version: the replica
	// removes only an older item and remembers the version.
	NewCAS uint64
	// Epoch and Seq mark a replicated delete (md Y Z), as in SetOptions.
	Epoch, Seq uint64
}

// ArithOptions tunes Arith. The zero value increments by 1.
type ArithOptions struct {
	Decr bool
	// Delta is the amount; zero means 1, memcached's default, unless
	// ZeroDelta is set (D0). Read a counter with Get.
	Delta     uint64
	ZeroDelta bool
	// Vivify creates a missing counter with Initial and VivifyTTL
	// (ma N<VivifyTTL> J<Initial>) instead of answering NotFound.
	Vivify    bool
	Initial   uint64
	VivifyTTL int64
	// Touch sets the TTL of an existing counter (ma T).
	Touch bool
	TTL   int64
	CAS   uint64 // apply only when the CAS matches (ma C)
	// NewCAS, when non-zero, is the CAS the counter gets (ma E).
	NewCAS uint64
}

// Counter is what Arith returns: the new value and the item's CAS and TTL.
type Counter struct {
	Value uint64
	CAS   uint64
	TTL   int64
}

// Hit is one found key of a GetMulti: the index of its key and its item.
type Hit struct {
	Index int
	Item
	// Dropped: the peer has the key, but GetOptions.Admit refused its
	// value, of Size bytes, or the peer did not send it (larger than
	// GetOptions.Room); Item is empty.
	Dropped bool
	Size    int
}

// Stats is a snapshot of a Client's counters.
type Stats struct {
	Requests uint64 // calls of Get, Set, Delete, Arith, GetMulti, TouchMulti
	Failures uint64 // calls that returned an error (misses are not errors)
	Timeouts uint64 // calls that returned ErrTimeout
	Redials  uint64 // dials of a connection that had been up before
	InFlight int64  // calls in progress now
}
