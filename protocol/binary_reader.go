package protocol

// Protocol negotiation and the binary side of Reader.

// Reader modes: the first byte decides (BindAuto), as memcached does.
const (
	modeUndecided uint8 = iota
	modeText
	modeBinary
)

// SetBinding sets which protocols the Reader accepts (memcached -B). The
// zero Binding, BindAuto, takes the first byte of the stream: 0x80 (the
// binary request magic) makes it a binary stream for good, anything else
// a text one. Call it before Next.
func (r *Reader) SetBinding(b Binding) {
	switch b {
	case BindASCII:
		r.mode = modeText
	case BindBinary:
		r.mode = modeBinary
	default:
		r.mode = modeUndecided
	}
}

// IsBinary reports whether the stream was found (or set) to be binary.
func (r *Reader) IsBinary() bool { return r.mode == modeBinary }

// decide sets the mode from the first buffered byte.
func (r *Reader) decide() {
	if r.buf[r.start] == BinaryRequestMagic {
		r.mode = modeBinary
	} else {
		r.mode = modeText
	}
}

// nextBinary is Next on a binary stream. A request whose value is over
// the item size limit, or over the memory budget, is returned with
// TooLarge or NoMemory after its header, extras and key, and its value is
// swallowed as it arrives; so is the body of a request too long for its
// opcode (returned Invalid, or as an unknown opcode).
func (r *Reader) nextBinary() (Command, error) {
	for {
		r.discard()
		if r.swallow == 0 && r.end-r.start >= BinaryHeaderLen {
			p := r.buf[r.start:r.end]
			if p[0] != BinaryRequestMagic {
				return nil, ErrBinaryMagic
			}
			h := decodeHeader(p)
			total := BinaryHeaderLen + h.body
			head := BinaryHeaderLen + h.extLen + h.keyLen
			shaped := h.keyLen+h.extLen <= h.body && h.keyLen <= KeyMaxLength
			vlen := h.body - h.extLen - h.keyLen
			refuse := valueOp(h.op) && shaped && vlen > r.maxItem
			switch {
			case !refuse && total <= BufferSize:
				r.ensure()
				if len(p) >= total {
					return r.whole(h)
				}
			case valueOp(h.op) && shaped:
				if !refuse && (len(r.buf) >= total || r.grow(total)) {
					if r.end-r.start >= total {
						return r.whole(h)
					}
					break // wait for the rest
				}
				if len(p) < head {
					break // wait for extras and key
				}
				r.bin = Binary{Op: h.op, Opaque: h.opaque, CAS: h.cas,
					Extras:  p[BinaryHeaderLen : BinaryHeaderLen+h.extLen],
					Key:     p[BinaryHeaderLen+h.extLen : head],
					Invalid: !validShape(h), TooLarge: refuse, NoMemory: !refuse}
				r.start += head
				r.swallow = vlen
				return &r.bin, nil
			default:
				// No opcode takes a body this long but a write's value:
				// answer from the header (the reply needs no key) and
				// swallow the body.
				r.bin = Binary{Op: h.op, Opaque: h.opaque, CAS: h.cas,
					Malformed: h.keyLen+h.extLen > h.body, Invalid: !validShape(h) || h.keyLen > KeyMaxLength}
				r.start += BinaryHeaderLen
				r.swallow = h.body
				if !knownOp(h.op) && !r.bin.Malformed {
					r.swallow += h.extLen + h.keyLen
				}
				return &r.bin, nil
			}
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// whole parses the whole packet buffered at r.start.
func (r *Reader) whole(h binaryHeader) (Command, error) {
	n, err := parseBinary(r.buf[r.start:r.end], &r.bin)
	if err != nil {
		return nil, err
	}
	r.start += n
	if !knownOp(h.op) {
		r.swallow = h.extLen + h.keyLen
	}
	return &r.bin, nil
}
