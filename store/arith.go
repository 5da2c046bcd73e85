package store

import "strconv"

// Arith increments or decrements the decimal value of key (incr, decr, ma).
// Increments wrap at 2^64; decrements stop at 0. The value must parse as
// memcached's safe_strtoull does (see parseUint), else NonNumeric. When the
// new number is no longer than the old value it is rewritten in place and
// padded with trailing spaces ("10" decr 1 is "9 "); otherwise the value
// grows. Every success assigns a new CAS. A missing key is NotFound unless
// opt.Vivify creates it holding opt.Initial; the returned Item then has
// Created set. On success the returned Item is the item after the write,
// except that its Exptime is the one before opt.Touch, so that a caller can
// report either. A value that grows is a new item in memcached, so it loses
// the bits of the old one (fetched, stale, win token, base64 key); one
// rewritten in place keeps them.
func (s *Store) Arith(key []byte, opt *ArithOptions) (Result, uint64, Item) {
	var o ArithOptions
	if opt != nil {
		o = *opt
	}
	now := s.Now()
	sh, own, h := s.lock(key)
	defer sh.mu.Unlock()
	var buf [20]byte
	ref, c, ok := s.find(sh, h, key, now)
	if !ok {
		if !o.Vivify {
			return NotFound, 0, Item{}
		}
		digits := strconv.AppendUint(buf[:0], o.Initial, 10)
		res, it := s.create(sh, own, h, key, digits, 0, o.VivifyExptime, s.newCAS(o.NewCAS), 0, now)
		if res != Stored {
			return res, 0, it
		}
		it.Created = true
		return Stored, o.Initial, it
	}
	if o.CAS != 0 && o.CAS != c.cas() {
		return Exists, 0, c.describe()
	}
	if c.has(bitPiece) {
		// Far longer than any number.
		return NonNumeric, 0, c.describe()
	}
	v, ok := parseUint(c.value())
	if !ok {
		return NonNumeric, 0, c.describe()
	}
	switch {
	case !o.Decr:
		v += o.Delta
	case o.Delta > v:
		v = 0
	default:
		v -= o.Delta
	}
	digits := strconv.AppendUint(buf[:0], v, 10)
	if old := c.vlen(); len(digits) <= old {
		val := c.value()
		n := copy(val, digits)
		for i := n; i < old; i++ {
			val[i] = ' '
		}
	} else {
		ref, c, ok = s.resize(sh, own, h, ref, c, len(digits))
		if !ok {
			return NoMemory, 0, Item{}
		}
		copy(c.value(), digits)
		c.clear(bitsNewItem)
	}
	c.setCAS(s.newCAS(o.NewCAS))
	c.setStime(now)
	c.setAtime(now)
	it := c.describe()
	if o.Touch {
		c.setExptime(o.Exptime)
	}
	_ = ref
	return Stored, v, it
}

// parseUint mirrors memcached's safe_strtoull applied to an item's data
// (which memcached follows with "\r\n"): optional leading white space, an
// optional sign, decimal digits, then the end of the value or white space.
// Overflow fails. A '-' is accepted only when the negated result is not
// negative as a signed number, so "-0" is 0 and "-5" fails. An empty value
// fails.
func parseUint(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v uint64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false // ERANGE
		}
		v = v*10 + d
	}
	if i == start {
		return 0, false
	}
	// strtoull stops here; memcached accepts white space or the CR that
	// ends the data.
	if i < len(b) && !isSpace(b[i]) {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return v, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
