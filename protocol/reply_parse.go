package protocol

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
)

// The reply side of the meta protocol, for clients of another node:
//
//	bytes ──► ReplyReader.Next / ParseReply ──► *Reply (status, flags, opaque, value)
//
// and, for the requests a client writes, the typed commands' AppendTo
// (encode_meta.go) and AppendMetaNoopRequest.

// Errors of the reply parser. Both mean the stream can no longer be trusted:
// close the connection.
var (
	// ErrBadReply is a line that is no meta reply, a VA without a valid
	// size, a value not followed by "\r\n", or a line over maxReplyLine.
	ErrBadReply = errors.New("protocol: malformed reply")
	// ErrValueTooLarge is a VA larger than the ReplyReader's limit.
	ErrValueTooLarge = errors.New("protocol: reply value too large")
)

// maxReplyLine bounds a reply line: flags are short, and k returns at most
// a 250-byte key.
const maxReplyLine = 8 << 10

// ReplyStatus is the status of a meta reply.
type ReplyStatus uint8

// Meta reply statuses. The last three are memcached's error lines, which
// carry no flags and no opaque.
const (
	StatusHD          ReplyStatus = iota + 1 // success without value
	StatusVA                                 // success with value
	StatusEN                                 // miss (mg)
	StatusNF                                 // not found (ms, md, ma)
	StatusNS                                 // not stored (ms)
	StatusEX                                 // CAS mismatch
	StatusMN                                 // end of a pipeline (mn)
	StatusME                                 // me reply; Message holds the rest of the line
	StatusError                              // ERROR [message]
	StatusClientError                        // CLIENT_ERROR message
	StatusServerError                        // SERVER_ERROR message
)

var statusNames = [...]string{"", "HD", "VA", "EN", "NF", "NS", "EX", "MN", "ME", "ERROR", "CLIENT_ERROR", "SERVER_ERROR"}

func (s ReplyStatus) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return "ReplyStatus(" + strconv.Itoa(int(s)) + ")"
}

// IsError reports whether s is one of memcached's error lines.
func (s ReplyStatus) IsError() bool { return s >= StatusError }

// Reply is one meta reply. Its byte slices alias the buffer it was parsed
// from and are valid until the next call on the ReplyReader.
type Reply struct {
	Status ReplyStatus
	// Flags are the return flags in the order the server sent them; O is
	// among them. Bare flags (W, X, Z, b) have an empty Value.
	Flags     []MetaFlag
	HasOpaque bool
	Opaque    []byte // the O value, without the 'O'
	// Value is the data block of a VA reply, without "\r\n".
	Value []byte
	// Message is the text of an error line after its keyword and a space
	// ("out of memory" for "SERVER_ERROR out of memory"), or the rest of an
	// ME line.
	Message []byte
}

// Flag returns the value of the first return flag with code.
func (r *Reply) Flag(code byte) ([]byte, bool) {
	for _, f := range r.Flags {
		if f.Code == code {
			return f.Value, true
		}
	}
	return nil, false
}

// Uint returns the flag code as an unsigned decimal ("c42" → 42).
func (r *Reply) Uint(code byte) (uint64, bool) {
	v, ok := r.Flag(code)
	if !ok {
		return 0, false
	}
	return ParseUint(v)
}

// Int returns the flag code as a signed decimal ("t-1" → -1).
func (r *Reply) Int(code byte) (int64, bool) {
	v, ok := r.Flag(code)
	if !ok {
		return 0, false
	}
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	u, ok := ParseUint(v)
	if !ok || u > 1<<63 || (!neg && u == 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// ParseUint reads a strict decimal (digits only, no sign, no overflow,
// nothing around it), such as the value of an ma reply, without allocating.
func ParseUint(v []byte) (uint64, bool) {
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// ParseReply parses one reply from the start of buf into r and returns the
// bytes it consumed. It returns ErrIncomplete (n == 0) when buf holds no
// whole reply. maxValue bounds a VA's size (<= 0: no limit). r's slices
// alias buf; r.Flags keeps its capacity across calls.
func ParseReply(buf []byte, r *Reply, maxValue int) (n int, err error) {
	n, _, err = parseReply(buf, r, maxValue)
	return n, err
}

// parseReply also returns, with ErrIncomplete, the total length needed
// when it is known (a VA whose line is complete).
func parseReply(buf []byte, r *Reply, maxValue int) (n, need int, err error) {
	el := bytes.IndexByte(buf, '\n')
	if el < 0 {
		if len(buf) > maxReplyLine {
			return 0, 0, ErrBadReply
		}
		return 0, 0, ErrIncomplete
	}
	next := el + 1
	line := buf[:el]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	*r = Reply{Flags: r.Flags[:0]}
	word, rest := cut(line)
	switch string(word) {
	case "HD":
		r.Status = StatusHD
	case "VA":
		r.Status = StatusVA
	case "EN":
		r.Status = StatusEN
	case "NF":
		r.Status = StatusNF
	case "NS":
		r.Status = StatusNS
	case "EX":
		r.Status = StatusEX
	case "MN":
		r.Status = StatusMN
	case "ME":
		r.Status, r.Message = StatusME, rest
		return next, 0, nil
	case "ERROR":
		r.Status, r.Message = StatusError, rest
		return next, 0, nil
	case "CLIENT_ERROR":
		r.Status, r.Message = StatusClientError, rest
		return next, 0, nil
	case "SERVER_ERROR":
		r.Status, r.Message = StatusServerError, rest
		return next, 0, nil
	default:
		return 0, 0, ErrBadReply
	}
	size := 0
	if r.Status == StatusVA {
		var tok []byte
		tok, rest = cut(rest)
		v, ok := ParseUint(tok)
		if !ok || v > 1<<40 {
			return 0, 0, ErrBadReply
		}
		if maxValue > 0 && v > uint64(maxValue) {
			return 0, 0, ErrValueTooLarge
		}
		size = int(v)
	}
	for len(rest) > 0 {
		var tok []byte
		tok, rest = cut(rest)
		if len(tok) == 0 {
			continue
		}
		f := MetaFlag{Code: tok[0], Value: tok[1:]}
		if f.Code == 'O' && !r.HasOpaque {
			r.HasOpaque, r.Opaque = true, f.Value
		}
		r.Flags = append(r.Flags, f)
	}
	if r.Status != StatusVA {
		return next, 0, nil
	}
	end := next + size + 2
	if len(buf) < end {
		return 0, end, ErrIncomplete
	}
	if buf[end-2] != '\r' || buf[end-1] != '\n' {
		return 0, 0, ErrBadReply
	}
	r.Value = buf[next : end-2]
	return end, 0, nil
}

// cut splits off the first space-separated token, skipping repeated spaces.
func cut(s []byte) (tok, rest []byte) {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	if i := bytes.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, nil
}

// ReplyReader reads meta replies from a stream with a reusable buffer. It
// is not safe for concurrent use. In steady state Next allocates nothing.
type ReplyReader struct {
	r        io.Reader
	buf      []byte
	start    int
	end      int
	maxValue int
	rerr     error
	rep      Reply
}

// NewReplyReader returns a ReplyReader that refuses values larger than
// maxValue bytes (<= 0 means 1 GiB) with ErrValueTooLarge.
func NewReplyReader(r io.Reader, maxValue int) *ReplyReader {
	if maxValue <= 0 {
		maxValue = 1 << 30
	}
	return &ReplyReader{r: r, buf: make([]byte, readChunk), maxValue: maxValue}
}

// Next returns the next reply. The Reply and its slices are valid until the
// next call. Any error ends the stream: io.EOF, io.ErrUnexpectedEOF (the
// stream ended inside a reply), I/O errors, ErrBadReply, ErrValueTooLarge.
func (rr *ReplyReader) Next() (*Reply, error) {
	for {
		if rr.start < rr.end {
			n, need, err := parseReply(rr.buf[rr.start:rr.end], &rr.rep, rr.maxValue)
			if err == nil {
				rr.start += n
				if rr.start == rr.end {
					rr.start, rr.end = 0, 0
				}
				return &rr.rep, nil
			}
			if err != ErrIncomplete {
				return nil, err
			}
			if need > len(rr.buf) {
				nb := make([]byte, need)
				rr.end = copy(nb, rr.buf[rr.start:rr.end])
				rr.start, rr.buf = 0, nb
			}
		}
		if err := rr.fill(); err != nil {
			return nil, err
		}
	}
}

// Buffered reports how many received bytes are not parsed yet.
func (rr *ReplyReader) Buffered() int { return rr.end - rr.start }

func (rr *ReplyReader) fill() error {
	if rr.rerr != nil {
		if rr.end > rr.start && rr.rerr == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return rr.rerr
	}
	if rr.start > 0 && (rr.end == len(rr.buf) || rr.start >= len(rr.buf)/2) {
		rr.end = copy(rr.buf, rr.buf[rr.start:rr.end])
		rr.start = 0
	}
	if rr.end == len(rr.buf) {
		nb := make([]byte, 2*len(rr.buf))
		copy(nb, rr.buf[:rr.end])
		rr.buf = nb
	}
	for i := 0; i < 100; i++ {
		n, err := rr.r.Read(rr.buf[rr.end:])
		rr.end += n
		if err != nil {
			rr.rerr = err
			if n == 0 {
				return rr.fill()
			}
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// MetaKeyNeedsBase64 reports whether key holds bytes a meta command line
// cannot carry as they are (space, control characters, DEL), so that it
// must travel base64-encoded with the b flag. Bytes >= 0x80 travel raw.
func MetaKeyNeedsBase64(key []byte) bool {
	for _, c := range key {
		if c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// MetaKeyValid reports whether key can be sent in a meta request: not
// empty, and at most KeyMaxLength bytes as sent (after base64 when
// MetaKeyNeedsBase64).
func MetaKeyValid(key []byte) bool {
	n := len(key)
	if MetaKeyNeedsBase64(key) {
		n = base64.StdEncoding.EncodedLen(n)
	}
	return len(key) > 0 && n <= KeyMaxLength
}

// MetaTTL converts an absolute exptime as a store keeps it (unix seconds;
// 0 never, 1 or anything within memcached's 30-day relative range already
// expired) to a meta T token another node reads the same way: 0 stays 0,
// an absolute time travels as it is, the past as -1.
func MetaTTL(exptime int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime <= 60*60*24*30:
		return -1
	}
	return exptime
}

func appendB(dst []byte, b64 bool) []byte {
	if b64 {
		return append(dst, " b"...)
	}
	return dst
}

// AppendMetaNoopRequest appends "mn\r\n": the server answers "MN\r\n" after
// every reply to the requests before it, which ends a run of quiet ones.
func AppendMetaNoopRequest(dst []byte) []byte { return append(dst, "mn\r\n"...) }
