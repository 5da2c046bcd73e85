package protocol

import (
	"io"
)

// readChunk matches memcached's read buffer: a line is judged "too long"
// only when 2048 bytes without a newline are buffered, and memcached reads
// up to 16 KiB at a time, so a longer line that arrives whole is accepted.
const readChunk = 16 << 10

// Reader reads commands from a stream. It is not safe for concurrent use.
//
// Commands and their byte slices alias the Reader's buffer and are valid
// until the next call to Next. In steady state Next allocates nothing.
type Reader struct {
	r       io.Reader
	buf     []byte
	start   int // first unparsed byte
	end     int // end of buffered data
	swallow int // bytes of a rejected data block still to discard
	rerr    error
	p       parser
}

// NewReader returns a Reader that refuses data blocks larger than
// maxItemSize (memcached -I; <= 0 means 1 MiB) without buffering them.
func NewReader(r io.Reader, maxItemSize int) *Reader {
	if maxItemSize <= 0 {
		maxItemSize = 1 << 20
	}
	rd := &Reader{r: r, buf: make([]byte, readChunk)}
	rd.p.maxItem = maxItemSize
	rd.p.getCap = max(maxItemSize, DefaultGetLineCap)
	return rd
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
func (r *Reader) AcceptPeerExtensions() { r.p.peer = true }

// Buffered reports how many received bytes are not parsed yet. A server
// flushes its replies when this is 0, before Next blocks on a read.
func (r *Reader) Buffered() int {
	return max(0, r.end-r.start-r.swallow)
}

// Next returns the next command. It reads only when the buffer holds no
// complete command. A *Error means: send its reply, keep the connection.
// ErrAgain (from a non-blocking source) means: call Next again when the
// source is readable. Any other error (io.EOF, I/O errors, ErrLineTooLong,
// ErrHTTP) means close.
func (r *Reader) Next() (Command, error) {
	for {
		r.discard()
		if r.swallow == 0 && r.start < r.end {
			cmd, n, swallow, err := r.p.parse(r.buf[r.start:r.end])
			if err != ErrIncomplete {
				r.start += n
				r.swallow = swallow
				r.discard()
				return cmd, err
			}
			if n > len(r.buf) {
				r.grow(n)
			}
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
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
// item size limit).
func (r *Reader) grow(need int) {
	nb := make([]byte, max(need, 2*len(r.buf)))
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start = 0
	r.buf = nb
}

// fill reads at least one more byte, compacting or growing the buffer.
func (r *Reader) fill() error {
	if r.rerr != nil {
		if r.end > r.start && r.swallow == 0 {
			return io.ErrUnexpectedEOF
		}
		return r.rerr
	}
	if r.start > 0 && (r.end == len(r.buf) || r.start >= len(r.buf)/2) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		// Only get/gets lines (bounded by getCap) get here.
		r.grow(2 * len(r.buf))
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
