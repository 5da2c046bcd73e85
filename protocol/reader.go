package protocol

import (
	"bytes"
	"io"
)

// readChunk matches memcached's read buffer: a line is judged "too long"
// only when 2048 bytes without a newline are buffered, and memcached reads
// up to 16 KiB at a time, so a longer line that arrives whole is accepted.
const readChunk = 16 << 10

// BufferSize is the size of the buffers a Reader borrows from its Buffers.
const BufferSize = readChunk

// Buffers lends Readers their read buffers, so that a connection with
// nothing buffered holds none (Reader.Release). Get returns a buffer of
// BufferSize bytes; Put takes back one that Get returned. A Buffers is
// shared by many Readers and must be safe for concurrent use.
type Buffers interface {
	Get() []byte
	Put([]byte)
}

// Budget accounts the memory Readers hold beyond one BufferSize buffer
// each: the data blocks of storage commands being received. Grow reports
// whether n more bytes may be held, and holds them if so; Release gives n
// back. A Budget is shared by many Readers and must be safe for
// concurrent use.
type Budget interface {
	Grow(n int) bool
	Release(n int)
}

// Reader reads commands from a stream. It is not safe for concurrent use.
//
// Commands and their byte slices alias the Reader's buffer and are valid
// until the next call to Next or Release. In steady state Next allocates
// nothing.
type Reader struct {
	r       io.Reader
	buf     []byte // nil while released (with bufs set)
	start   int    // first unparsed byte
	end     int    // end of buffered data
	swallow int    // bytes of a rejected data block still to discard
	rerr    error
	// p is made at the first line that needs parsing: a connection that
	// never completes one (thousands of them, in an attack) costs no
	// parser.
	p       *parser
	maxItem int
	peer    bool
	bufs    Buffers
	budget  Budget
	// held is what buf holds beyond BufferSize, accounted in budget.
	held int
	// mode: text or binary, or undecided until the first byte (see
	// SetBinding); bin is the binary request Next returns last.
	mode uint8
	bin  Binary
}

// NewReader returns a Reader that refuses data blocks larger than
// maxItemSize (memcached -I; <= 0 means 1 MiB) without buffering them.
func NewReader(r io.Reader, maxItemSize int) *Reader {
	if maxItemSize <= 0 {
		maxItemSize = 1 << 20
	}
	return &Reader{r: r, maxItem: maxItemSize}
}

// UseMemory makes the Reader borrow its buffer from bufs (nil: allocate
// its own) and hold larger ones only as budget allows (nil: no limit). A
// data block the budget refuses is swallowed as it arrives and answered
// "SERVER_ERROR out of memory storing object" (an *Error with NoMemory).
// Call it before Next.
func (r *Reader) UseMemory(bufs Buffers, budget Budget) {
	r.bufs, r.budget = bufs, budget
}

// AcceptPeerExtensions makes the Reader parse shoal's extensions for the
// peer listener, which only other cluster nodes talk to:
//
//   - the meta E<cas> flag on ms, md and ma (MetaOptions.NewCAS: the CAS
//     the written item gets, so replicas keep their primary's CAS);
//   - the meta Y<epoch> and Z<seq> flags on ms and md (MetaOptions.Epoch
//     and Seq: the origin of a replicated write);
//   - the sd command (ShardDump), which streams a node's shards to
//     another one warming up.
//
// memcached 1.6.18 has none of them, and without this call the Reader
// rejects them as memcached does ("CLIENT_ERROR invalid flag", "ERROR"),
// so the client port stays byte-for-byte memcached. Call it before Next.
func (r *Reader) AcceptPeerExtensions() {
	r.peer = true
	if r.p != nil {
		r.p.peer = true
	}
}

// parser returns the Reader's parser, made at the first call.
func (r *Reader) parser() *parser {
	if r.p == nil {
		r.p = &parser{maxItem: r.maxItem, stream: true, peer: r.peer}
	}
	return r.p
}

// waiting reports that the buffered bytes are an unfinished line short
// enough to wait for without parsing it.
func (r *Reader) waiting() bool {
	return r.p == nil && r.end-r.start <= lineSoftLimit && bytes.IndexByte(r.buf[r.start:r.end], '\n') < 0
}

// Buffered reports how many received bytes are not parsed yet. A server
// flushes its replies when this is 0, before Next blocks on a read.
func (r *Reader) Buffered() int {
	return max(0, r.end-r.start-r.swallow)
}

// InValue reports whether the Reader waits for the rest of a request whose
// command line (or binary header) has arrived: a data block, or a refused
// one it swallows (memcached's conn_nread).
func (r *Reader) InValue() bool {
	if r.swallow > 0 {
		return true
	}
	if r.mode == modeBinary {
		return r.end-r.start >= BinaryHeaderLen
	}
	return r.start < r.end && bytes.IndexByte(r.buf[r.start:r.end], '\n') >= 0
}

// Held reports the bytes of memory the Reader holds now.
func (r *Reader) Held() int { return len(r.buf) }

// Next returns the next command. It reads only when the buffer holds no
// complete command. A *Error means: send its reply, keep the connection.
// ErrAgain (from a non-blocking source) means: call Next again when the
// source is readable. Any other error (io.EOF, I/O errors, ErrLineTooLong,
// ErrHTTP) means close.
func (r *Reader) Next() (Command, error) {
	r.shrink()
	for {
		r.discard()
		if r.mode != modeText && r.swallow == 0 && r.start < r.end {
			if r.mode == modeUndecided {
				r.decide()
			}
			if r.mode == modeBinary {
				return r.nextBinary()
			}
		}
		if r.swallow == 0 && r.start < r.end && !r.waiting() {
			p := r.parser()
			cmd, n, swallow, err := p.parse(r.buf[r.start:r.end])
			if err == ErrIncomplete && n > len(r.buf) && !r.grow(n) {
				// No memory for this data block: refuse it as it is.
				p.refuse = true
				cmd, n, swallow, err = p.parse(r.buf[r.start:r.end])
				p.refuse = false
			}
			if err != ErrIncomplete {
				r.start += n
				r.swallow = swallow
				r.discard()
				if cmd == nil && err == nil {
					continue // the rest of a refused get line, skipped
				}
				return cmd, err
			}
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// Release gives the Reader's buffer back to its Buffers when nothing is
// buffered, and moves a few buffered bytes (an unfinished line) to a
// buffer of their size: a connection waiting for input then holds little
// or nothing. Commands returned before are invalid after it.
func (r *Reader) Release() {
	n := r.end - r.start
	if r.buf == nil {
		return
	}
	if n == 0 {
		r.setBuf(nil)
		r.start, r.end = 0, 0
		return
	}
	if n <= BufferSize/4 && len(r.buf) > n {
		small := make([]byte, n)
		copy(small, r.buf[r.start:r.end])
		r.setBuf(small)
		r.start, r.end = 0, n
	}
}

// Free gives back the Reader's buffer whatever it holds; the Reader is
// done.
func (r *Reader) Free() {
	r.setBuf(nil)
	r.start, r.end = 0, 0
}

// shrink puts an oversized buffer (one that held a large data block, now
// consumed) back to BufferSize when what is buffered fits.
func (r *Reader) shrink() {
	if r.held == 0 || r.end-r.start > BufferSize || r.swallow > 0 {
		return
	}
	nb := r.newBuf()
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start = 0
	r.setBuf(nb)
}

// setBuf replaces the buffer, returning the old one to its owner: bufs,
// or budget for what it held beyond BufferSize.
func (r *Reader) setBuf(nb []byte) {
	if r.bufs != nil && len(r.buf) == BufferSize {
		r.bufs.Put(r.buf)
	} else if len(r.buf) > BufferSize && r.p != nil {
		r.p.forget() // its commands alias the old buffer: let it go
	}
	if r.held > 0 && r.budget != nil {
		r.budget.Release(r.held)
	}
	r.buf, r.held = nb, max(0, len(nb)-BufferSize)
}

func (r *Reader) newBuf() []byte {
	if r.bufs != nil {
		return r.bufs.Get()
	}
	return make([]byte, BufferSize)
}

// discard drops buffered bytes of a rejected data block.
func (r *Reader) discard() {
	k := min(r.swallow, r.end-r.start)
	r.start += k
	r.swallow -= k
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
}

// grow makes room for a command of need bytes (a data block within the
// item size limit), if the budget holds it.
func (r *Reader) grow(need int) bool {
	if need <= BufferSize {
		r.ensure()
		return true
	}
	extra := need - BufferSize
	if r.budget != nil && !r.budget.Grow(extra) {
		return false
	}
	nb := make([]byte, need)
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start = 0
	held := r.held
	r.held = 0 // the new buffer's share is accounted already
	if r.bufs != nil && len(r.buf) == BufferSize {
		r.bufs.Put(r.buf)
	}
	if held > 0 && r.budget != nil {
		r.budget.Release(held)
	}
	r.buf, r.held = nb, extra
	return true
}

// ensure gives the Reader a buffer of at least BufferSize, keeping what is
// buffered.
func (r *Reader) ensure() {
	if len(r.buf) >= BufferSize {
		return
	}
	nb := r.newBuf()
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start = 0
	r.setBuf(nb)
}

// fill reads at least one more byte, compacting the buffer first.
func (r *Reader) fill() error {
	if r.rerr != nil {
		if r.end > r.start && r.swallow == 0 {
			return io.ErrUnexpectedEOF
		}
		return r.rerr
	}
	r.ensure()
	if r.start > 0 && (r.end == len(r.buf) || r.start >= len(r.buf)/2) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		// A full buffer is always parsed before: only a line that cannot
		// be answered in parts gets here, and parse refuses it first.
		return ErrLineTooLong
	}
	for i := 0; ; i++ {
		if i == 100 {
			return io.ErrNoProgress
		}
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err == ErrAgain {
			if n > 0 {
				return nil
			}
			return err
		}
		if err != nil {
			r.rerr = err
			if n == 0 {
				return r.fill()
			}
		}
		if n > 0 {
			return nil
		}
	}
}

// NextIsGet reports whether the next buffered command is a whole text
// get line of one valid key ("get <key>\r\n", or gets for withCAS), so
// that Next returns it without reading: a Retrieval of op OpGet (OpGets)
// with that one key, neither BadKey nor More. It is conservative: a line
// it does not recognise (spaces after the key, a key with a control
// byte) is left to Next as usual.
func (r *Reader) NextIsGet(withCAS bool) bool {
	if r.mode != modeText || r.swallow != 0 || r.p != nil && (r.p.more || r.p.skip) {
		return false
	}
	word := "get "
	if withCAS {
		word = "gets "
	}
	b := r.buf[r.start:r.end]
	if len(b) <= len(word) || string(b[:len(word)]) != word {
		return false
	}
	b = b[len(word):]
	for i, c := range b {
		if i > KeyMaxLength {
			return false
		}
		switch {
		case c == '\n':
			return i > 0
		case c == '\r':
			return i > 0 && i+1 < len(b) && b[i+1] == '\n'
		case c <= ' ' || c == 0x7f:
			return false
		}
	}
	return false
}
