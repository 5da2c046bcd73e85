package protocol

import (
	"encoding/binary"
	"errors"
)

// The binary protocol (memcached's protocol_binary.h): every request and
// response is a 24-byte header followed by extras, key and value.
//
//	byte 0     magic (0x80 request, 0x81 response)
//	byte 1     opcode
//	bytes 2-3  key length
//	byte 4     extras length
//	byte 5     data type (0)
//	bytes 6-7  vbucket (request) or status (response)
//	bytes 8-11 total body length: extras + key + value
//	12-15      opaque, echoed in the response
//	16-23      CAS
const (
	BinaryRequestMagic  = 0x80
	BinaryResponseMagic = 0x81
	BinaryHeaderLen     = 24
)

// ErrBinaryMagic: a binary connection sent a packet whose first byte is
// not the request magic. memcached closes the connection.
var ErrBinaryMagic = errors.New("protocol: bad binary request magic")

// Binding is which protocols a connection may speak (memcached -B).
type Binding uint8

// Bindings; the zero value negotiates by the first byte, as memcached's
// default does.
const (
	BindAuto   Binding = iota // first byte 0x80: binary, else text
	BindASCII                 // text only
	BindBinary                // binary only
)

// String is the binding as memcached's "stats settings" shows it.
func (b Binding) String() string {
	switch b {
	case BindASCII:
		return "ascii"
	case BindBinary:
		return "binary"
	default:
		return "auto-negotiate"
	}
}

// BinaryOp is a binary opcode.
type BinaryOp uint8

// Binary opcodes of memcached 1.6.
const (
	BinGet       BinaryOp = 0x00
	BinSet       BinaryOp = 0x01
	BinAdd       BinaryOp = 0x02
	BinReplace   BinaryOp = 0x03
	BinDelete    BinaryOp = 0x04
	BinIncrement BinaryOp = 0x05
	BinDecrement BinaryOp = 0x06
	BinQuit      BinaryOp = 0x07
	BinFlush     BinaryOp = 0x08
	BinGetQ      BinaryOp = 0x09
	BinNoop      BinaryOp = 0x0a
	BinVersion   BinaryOp = 0x0b
	BinGetK      BinaryOp = 0x0c
	BinGetKQ     BinaryOp = 0x0d
	BinAppend    BinaryOp = 0x0e
	BinPrepend   BinaryOp = 0x0f
	BinStat      BinaryOp = 0x10
	BinSetQ      BinaryOp = 0x11
	BinAddQ      BinaryOp = 0x12
	BinReplaceQ  BinaryOp = 0x13
	BinDeleteQ   BinaryOp = 0x14
	BinIncrQ     BinaryOp = 0x15
	BinDecrQ     BinaryOp = 0x16
	BinQuitQ     BinaryOp = 0x17
	BinFlushQ    BinaryOp = 0x18
	BinAppendQ   BinaryOp = 0x19
	BinPrependQ  BinaryOp = 0x1a
	BinVerbosity BinaryOp = 0x1b
	BinTouch     BinaryOp = 0x1c
	BinGAT       BinaryOp = 0x1d
	BinGATQ      BinaryOp = 0x1e
	BinSASLList  BinaryOp = 0x20
	BinSASLAuth  BinaryOp = 0x21
	BinSASLStep  BinaryOp = 0x22
	BinGATK      BinaryOp = 0x23
	BinGATKQ     BinaryOp = 0x24
)

// quietOf maps each quiet opcode to its plain one.
var quietOf = [256]BinaryOp{
	BinGetQ: BinGet, BinGetKQ: BinGetK, BinSetQ: BinSet, BinAddQ: BinAdd,
	BinReplaceQ: BinReplace, BinDeleteQ: BinDelete, BinIncrQ: BinIncrement,
	BinDecrQ: BinDecrement, BinQuitQ: BinQuit, BinFlushQ: BinFlush,
	BinAppendQ: BinAppend, BinPrependQ: BinPrepend, BinGATQ: BinGAT, BinGATKQ: BinGATK,
}

// BinaryStatus is a response status.
type BinaryStatus uint16

// Response statuses memcached sends.
const (
	StatusOK         BinaryStatus = 0x00
	StatusNotFound   BinaryStatus = 0x01
	StatusExists     BinaryStatus = 0x02
	StatusTooLarge   BinaryStatus = 0x03
	StatusInvalid    BinaryStatus = 0x04
	StatusNotStored  BinaryStatus = 0x05
	StatusNonNumeric BinaryStatus = 0x06
	StatusAuthError  BinaryStatus = 0x20
	StatusUnknown    BinaryStatus = 0x81
	StatusNoMemory   BinaryStatus = 0x82
	StatusTempFail   BinaryStatus = 0x86
)

// Message is the body memcached sends with an error status.
func (s BinaryStatus) Message() string {
	switch s {
	case StatusNotFound:
		return "Not found"
	case StatusExists:
		return "Data exists for key."
	case StatusTooLarge:
		return "Too large."
	case StatusInvalid:
		return "Invalid arguments"
	case StatusNotStored:
		return "Not stored."
	case StatusNonNumeric:
		return "Non-numeric server-side value for incr or decr"
	case StatusAuthError:
		return "Auth failure."
	case StatusUnknown:
		return "Unknown command"
	case StatusNoMemory:
		return "Out of memory"
	case StatusTempFail:
		return "Temporary failure"
	}
	return "UNHANDLED ERROR"
}

// Binary is one binary request.
type Binary struct {
	// Op is the opcode as sent; Base strips a quiet variant.
	Op     BinaryOp
	Opaque uint32
	CAS    uint64
	Extras []byte
	Key    []byte
	Value  []byte
	// Invalid: the lengths do not fit the opcode, or the key is over 250
	// bytes. memcached answers "Invalid arguments" and closes.
	Invalid bool
	// Malformed: key and extras are longer than the body. memcached
	// answers "Unknown command" and closes.
	Malformed bool
	// TooLarge, NoMemory: the value of a write was refused unread (over
	// the item size limit, or over the reader's memory budget); Value is
	// empty.
	TooLarge, NoMemory bool
}

func (*Binary) command() {}

// Base is the opcode without its quiet variant.
func (b *Binary) Base() BinaryOp {
	if q := quietOf[b.Op]; q != 0 || b.Op == BinGetQ {
		return q
	}
	return b.Op
}

// Quiet reports a quiet opcode: no reply on success (and on a miss, for
// the gets).
func (b *Binary) Quiet() bool { return quietOf[b.Op] != 0 || b.Op == BinGetQ }

// WithKey reports whether a get's reply carries the key (GETK, GATK).
func (b *Binary) WithKey() bool {
	switch b.Op {
	case BinGetK, BinGetKQ, BinGATK, BinGATKQ:
		return true
	}
	return false
}

// Flags and Exptime of a SET, ADD or REPLACE (extras: flags, exptime).
func (b *Binary) Flags() uint32 { return be32(b.Extras, 0) }

// Exptime is the expiration of a write, a touch or a GAT, as sent.
func (b *Binary) Exptime() int64 {
	if len(b.Extras) == 8 {
		return int64(be32(b.Extras, 4))
	}
	return int64(be32(b.Extras, 0))
}

// Arith returns an INCREMENT's or DECREMENT's extras: delta, initial
// value, and exptime (0xffffffff: fail on a miss instead of creating).
func (b *Binary) Arith() (delta, initial uint64, exptime uint32) {
	if len(b.Extras) != 20 {
		return 0, 0, 0
	}
	return binary.BigEndian.Uint64(b.Extras), binary.BigEndian.Uint64(b.Extras[8:]), binary.BigEndian.Uint32(b.Extras[16:])
}

func be32(b []byte, at int) uint32 {
	if len(b) < at+4 {
		return 0
	}
	return binary.BigEndian.Uint32(b[at:])
}

// knownOp reports the opcodes memcached 1.6.18 dispatches. For any other
// (VERBOSITY included), it answers "Unknown command" after reading the
// extras and key, and then skips the whole body length again: the bytes
// following the request, as many as its extras and key, are lost. The
// Reader skips them too, so that a client sees the same stream.
func knownOp(op BinaryOp) bool {
	return op <= BinPrependQ || (op >= BinTouch && op <= BinGATQ) || (op >= BinSASLList && op <= BinGATKQ)
}

// valueOp reports the opcodes whose body carries a value.
func valueOp(op BinaryOp) bool {
	switch op {
	case BinSet, BinSetQ, BinAdd, BinAddQ, BinReplace, BinReplaceQ,
		BinAppend, BinAppendQ, BinPrepend, BinPrependQ:
		return true
	}
	return false
}

// binaryHeader is the decoded request header.
type binaryHeader struct {
	op     BinaryOp
	keyLen int
	extLen int
	body   int
	opaque uint32
	cas    uint64
}

func decodeHeader(p []byte) binaryHeader {
	return binaryHeader{
		op:     BinaryOp(p[1]),
		keyLen: int(binary.BigEndian.Uint16(p[2:])),
		extLen: int(p[4]),
		body:   int(binary.BigEndian.Uint32(p[8:])),
		opaque: binary.BigEndian.Uint32(p[12:]),
		cas:    binary.BigEndian.Uint64(p[16:]),
	}
}

// ParseBinary parses one binary request at the start of p. It returns the
// request and its length, or ErrIncomplete when p holds less than a whole
// packet, or ErrBinaryMagic. The request aliases p.
func ParseBinary(p []byte) (*Binary, int, error) {
	b := new(Binary)
	n, err := parseBinary(p, b)
	if err != nil {
		return nil, 0, err
	}
	return b, n, nil
}

// parseBinary fills b from the whole packet at the start of p.
func parseBinary(p []byte, b *Binary) (int, error) {
	if len(p) > 0 && p[0] != BinaryRequestMagic {
		return 0, ErrBinaryMagic
	}
	if len(p) < BinaryHeaderLen {
		return 0, ErrIncomplete
	}
	h := decodeHeader(p)
	if len(p) < BinaryHeaderLen+h.body {
		return 0, ErrIncomplete
	}
	*b = Binary{Op: h.op, Opaque: h.opaque, CAS: h.cas}
	body := p[BinaryHeaderLen : BinaryHeaderLen+h.body]
	if h.keyLen+h.extLen > h.body {
		b.Malformed = true
		return BinaryHeaderLen + h.body, nil
	}
	b.Extras = body[:h.extLen]
	b.Key = body[h.extLen : h.extLen+h.keyLen]
	b.Value = body[h.extLen+h.keyLen:]
	b.Invalid = !validShape(h)
	return BinaryHeaderLen + h.body, nil
}

// validShape applies memcached's length checks per opcode
// (dispatch_bin_command). Opcodes it does not know pass: they are
// answered "Unknown command".
func validShape(h binaryHeader) bool {
	if h.keyLen > KeyMaxLength {
		return false
	}
	k, e, n := h.keyLen, h.extLen, h.body
	op := h.op
	if q := quietOf[op]; q != 0 || op == BinGetQ {
		op = q
	}
	switch op {
	case BinVersion, BinNoop, BinQuit, BinSASLList:
		return e == 0 && k == 0 && n == 0
	case BinFlush:
		return k == 0 && n == e && (e == 0 || e == 4)
	case BinSet, BinAdd, BinReplace:
		return e == 8 && k != 0 && n >= k+8
	case BinGet, BinGetK:
		return e == 0 && n == k && k > 0
	case BinDelete:
		return k > 0 && e == 0 && n == k
	case BinIncrement, BinDecrement:
		return k > 0 && e == 20 && n == k+e
	case BinAppend, BinPrepend:
		return k > 0 && e == 0
	case BinStat:
		return e == 0
	case BinSASLAuth, BinSASLStep:
		return e == 0 && k != 0
	case BinTouch, BinGAT, BinGATK:
		return e == 4 && k != 0
	}
	return true
}

// AppendBinaryHeader appends a response header.
func AppendBinaryHeader(dst []byte, op BinaryOp, status BinaryStatus, keyLen, extLen, bodyLen int, opaque uint32, cas uint64) []byte {
	var h [BinaryHeaderLen]byte
	h[0] = BinaryResponseMagic
	h[1] = byte(op)
	binary.BigEndian.PutUint16(h[2:], uint16(keyLen))
	h[4] = byte(extLen)
	binary.BigEndian.PutUint16(h[6:], uint16(status))
	binary.BigEndian.PutUint32(h[8:], uint32(bodyLen))
	binary.BigEndian.PutUint32(h[12:], opaque)
	binary.BigEndian.PutUint64(h[16:], cas)
	return append(dst, h[:]...)
}

// AppendBinary appends a whole response: header, extras, key and value.
func AppendBinary(dst []byte, op BinaryOp, status BinaryStatus, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	dst = AppendBinaryHeader(dst, op, status, len(key), len(extras), len(extras)+len(key)+len(value), opaque, cas)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// AppendBinaryError appends an error response with memcached's message.
func AppendBinaryError(dst []byte, op BinaryOp, status BinaryStatus, opaque uint32) []byte {
	msg := status.Message()
	dst = AppendBinaryHeader(dst, op, status, 0, 0, len(msg), opaque, 0)
	return append(dst, msg...)
}
