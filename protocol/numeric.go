package protocol

// memcached parses numbers with strtol/strtoul/strtoull (base 10) wrapped in
// safe_strto* (util.c). The helpers below reproduce them byte for byte,
// including the odd parts: leading whitespace is skipped, a sign is allowed,
// the number may be followed by one whitespace byte and anything after it,
// "-0" is zero, and unsigned values whose 64-bit form looks negative are
// rejected only when a '-' was written. Tokens never contain ' ' or NUL.

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// cnum scans like strtoull/strtol: it returns the magnitude, whether a '-'
// was seen, the end index, ok when at least one digit was read and the end
// is acceptable to safe_strto*, and overflow when the magnitude exceeds
// uint64.
func cnum(tok []byte) (mag uint64, neg bool, end int, ok, overflow bool) {
	i := 0
	for i < len(tok) && isSpace(tok[i]) {
		i++
	}
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start := i
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
		d := uint64(tok[i] - '0')
		if mag > (^uint64(0)-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
		i++
	}
	if i == start {
		return 0, false, 0, false, false
	}
	ok = i == len(tok) || isSpace(tok[i])
	return mag, neg, i, ok, overflow
}

// safeStrtoull mirrors safe_strtoull.
func safeStrtoull(tok []byte) (uint64, bool) {
	mag, neg, end, ok, overflow := cnum(tok)
	if !ok || overflow {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 {
		for _, c := range tok[:end] {
			if c == '-' {
				return 0, false
			}
		}
	}
	return v, true
}

// safeStrtoul mirrors safe_strtoul on LP64 followed by the store into a
// uint32: the value is truncated to 32 bits.
func safeStrtoul(tok []byte) (uint32, bool) {
	v, ok := safeStrtoull(tok)
	return uint32(v), ok
}

// safeStrtol mirrors safe_strtol: strtol into a long, ERANGE outside int64,
// then stored into an int32 (truncated, so 4294967297 reads as 1).
func safeStrtol(tok []byte) (int32, bool) {
	mag, neg, _, ok, overflow := cnum(tok)
	if !ok || overflow {
		return 0, false
	}
	if neg {
		if mag > 1<<63 {
			return 0, false
		}
		return int32(-int64(mag)), true
	}
	if mag > 1<<63-1 {
		return 0, false
	}
	return int32(int64(mag)), true
}
