package protocol

const (
	metaMaxTokens    = 20 // MFLAG_MAX_OPT_LENGTH, compared with ntokens
	metaMaxOpaqueLen = 32 // MFLAG_MAX_OPAQUE_LENGTH, the whole O token
)

// parseMeta handles every two-letter command starting with 'm'.
func (p *parser) parseMeta(buf []byte, next int) (Command, int, int, error) {
	tk := &p.tk
	nt := tk.n + 1
	switch tk.t[0][1] {
	case 'n':
		return p.resetAdmin(OpMetaNoop), next, 0, nil
	case 'e':
		return p.parseMetaDebug(next)
	case 'g', 's', 'd', 'a':
	default:
		return nil, next, 0, p.fail(replyError, false)
	}
	if nt < 3 {
		return nil, next, 0, p.fail(replyError, false)
	}
	if len(tk.t[1]) > KeyMaxLength {
		return nil, next, 0, p.fail(replyBadFormat, false)
	}
	switch tk.t[0][1] {
	case 'g':
		if nt > metaMaxTokens {
			return nil, next, 0, p.fail(replyMGFlagsLong, false)
		}
		m := &p.mget
		m.MetaOptions = resetOptions(m.Flags)
		key, reply := p.metaFlags(2, &m.MetaOptions)
		if reply == "" && (m.HasNewCAS || m.HasSeq) {
			reply = replyInvalidFlag // E and Z describe writes; mg does not write
		}
		if reply != "" {
			return nil, next, 0, p.fail(reply, false)
		}
		m.Key = key
		return m, next, 0, nil
	case 's':
		return p.parseMetaSet(buf, next)
	case 'd', 'a':
		if nt > metaMaxTokens {
			return nil, next, 0, p.fail(replyFlagsLong, false)
		}
		opts := resetOptions(p.mdel.Flags)
		if tk.t[0][1] == 'a' {
			opts = resetOptions(p.marith.Flags)
			opts.Delta = 1
		}
		key, reply := p.metaFlags(2, &opts)
		if reply == "" && opts.HasRoom {
			reply = replyInvOrDup // A bounds a value returned: mg only
		}
		if reply != "" && reply != replyOpaqueLong {
			// md and ma ignore the preparse message.
			return nil, next, 0, p.fail(replyInvOrDup, false)
		}
		if tk.t[0][1] == 'd' {
			if reply != "" {
				return nil, next, 0, p.fail(reply, false)
			}
			p.mdel = MetaDelete{Key: key, MetaOptions: opts}
			return &p.mdel, next, 0, nil
		}
		if reply == "" && (opts.HasEpoch || opts.HasSeq) {
			reply = replyInvOrDup // ma is not replicated with an origin
		}
		decr := false
		switch opts.Mode {
		case 0, 'I', '+':
		case 'D', '-':
			decr = true
		default:
			return nil, next, 0, p.fail(replyMAMode, false)
		}
		if reply != "" {
			// memcached applies the delta before noticing; we reject first.
			return nil, next, 0, p.fail(reply, false)
		}
		p.marith = MetaArith{Key: key, Decr: decr, MetaOptions: opts}
		return &p.marith, next, 0, nil
	}
	panic("unreachable")
}

func resetOptions(flags []MetaFlag) MetaOptions {
	return MetaOptions{Flags: flags[:0]}
}

func (p *parser) parseMetaSet(buf []byte, next int) (Command, int, int, error) {
	tk := &p.tk
	nt := tk.n + 1
	if nt == 3 {
		return nil, next, 0, p.fail(replyBadFormat, false)
	}
	if nt > metaMaxTokens {
		return nil, next, 0, p.fail(replyFlagsLong, false)
	}
	vlen, ok := safeStrtol(tk.t[2])
	if !ok || vlen < 0 || vlen > intMax-2 {
		return nil, next, 0, p.fail(replyBadFormat, false)
	}
	swallow := int(vlen) + 2
	m := &p.mset
	m.MetaOptions = resetOptions(m.Flags)
	key, reply := p.metaFlags(3, &m.MetaOptions)
	if reply == "" && m.HasRoom {
		reply = replyInvalidFlag // A bounds a value returned: mg only
	}
	if reply != "" && reply != replyOpaqueLong {
		return nil, next, swallow, p.fail(reply, false)
	}
	op := OpSet
	switch m.Mode {
	case 0, 'S':
	case 'E':
		op = OpAdd
	case 'A':
		op = OpAppend
	case 'P':
		op = OpPrepend
	case 'R':
		op = OpReplace
	default:
		reply = replyMSMode
	}
	if reply != "" {
		return nil, next, swallow, p.fail(reply, false)
	}
	if m.HasCAS && (op == OpSet || op == OpReplace) {
		op = OpCAS
	}
	if p.maxItem > 0 && int(vlen) > p.maxItem {
		// memcached unlinks the old item whatever the mode.
		return nil, next, swallow, p.tooLarge(OpSet, key, false)
	}
	if p.refuse {
		return nil, next, swallow, p.noMemory(OpSet, key, false)
	}
	end := next + swallow
	if len(buf) < end {
		return nil, end, 0, ErrIncomplete
	}
	if buf[end-2] != '\r' || buf[end-1] != '\n' {
		return nil, end, 0, p.fail(replyBadChunk, false) // shown even with q
	}
	m.Key, m.Op, m.Data = key, op, buf[next:end-2]
	return m, end, 0, nil
}

func (p *parser) parseMetaDebug(next int) (Command, int, int, error) {
	tk := &p.tk
	nt := tk.n + 1
	if nt < 3 || len(tk.t[1]) > KeyMaxLength {
		return nil, next, 0, p.fail(replyBadFormat, false)
	}
	m := &p.mdebug
	*m = MetaDebug{Key: tk.t[1]}
	if nt >= 4 && string(tk.t[2]) == "b" {
		n, ok := base64Decode(p.keyBuf[:], tk.t[1])
		if !ok {
			return nil, next, 0, p.fail(replyBadFormat, false)
		}
		m.Key, m.Base64 = p.keyBuf[:n], true
	}
	return m, next, 0, nil
}

// metaFlags mirrors _meta_flag_preparse plus the opaque length check that
// memcached makes while building the reply. It returns the (decoded) key and
// the error reply, "" when the flags are valid.
func (p *parser) metaFlags(start int, o *MetaOptions) (key []byte, reply string) {
	tk := &p.tk
	key = tk.t[1]
	var seen [127]bool
	bad := ""
	hasErr := false
	opaqueLong := false
	for i := start; i < tk.n; i++ {
		t := tk.t[i]
		c := t[0]
		if c >= 127 || seen[c] {
			return nil, replyDupFlag
		}
		seen[c] = true
		v := t[1:]
		switch c {
		case 'b':
			n, ok := base64Decode(p.keyBuf[:], tk.t[1])
			if !ok {
				bad, hasErr = replyDecodeKey, true
			}
			key = p.keyBuf[:n]
			o.Base64 = true
		case 'N', 'T', 'R':
			ttl, ok := safeStrtol(v)
			if !ok {
				bad, hasErr = replyBadToken, true
				break
			}
			switch c {
			case 'N':
				o.HasVivify, o.VivifyTTL = true, int64(ttl)
			case 'T':
				o.HasTTL, o.TTL = true, int64(ttl)
			default:
				o.HasRecache, o.RecacheTTL = true, int64(ttl)
			}
		case 'l':
			o.ReturnLastAccess = true
		case 'O':
			if len(t) > metaMaxOpaqueLen {
				opaqueLong = true
			}
			o.HasOpaque, o.Opaque = true, v
		case 'P', 'L': // proxy hints, accepted and ignored
		case 'k':
			o.ReturnKey = true
		case 's':
			o.ReturnSize = true
		case 't':
			o.ReturnTTL = true
		case 'c':
			o.ReturnCAS = true
		case 'f':
			o.ReturnClientFlag = true
		case 'v':
			o.ReturnValue = true
		case 'h':
			o.ReturnHit = true
		case 'u':
			o.NoBump = true
		case 'q':
			o.Quiet = true
		case 'F':
			f, ok := safeStrtoul(v)
			if !ok {
				hasErr = true // keeps the previous message
				break
			}
			o.HasClientFlags, o.ClientFlags = true, f
		case 'C':
			cas, ok := safeStrtoull(v)
			if !ok {
				bad, hasErr = replyBadToken, true
				break
			}
			o.HasCAS, o.CAS = true, cas
		case 'M':
			if len(t) != 2 {
				bad, hasErr = replyMLength, true
				break
			}
			o.Mode = t[1]
		case 'J':
			j, ok := safeStrtoull(v)
			if !ok {
				bad, hasErr = replyBadInitial, true
				break
			}
			o.Initial = j
		case 'D':
			d, ok := safeStrtoull(v)
			if !ok {
				bad, hasErr = replyBadMetaDelta, true
				break
			}
			o.Delta = d
		case 'I':
			o.Invalidate = true
		case 'Y', 'Z':
			if !p.peer {
				return nil, replyInvalidFlag // memcached 1.6.18 has neither
			}
			n, ok := safeStrtoull(v)
			if !ok {
				bad, hasErr = replyBadToken, true
				break
			}
			if c == 'Y' {
				o.HasEpoch, o.Epoch = true, n
			} else {
				o.HasSeq, o.Seq = true, n
			}
		case 'A':
			if !p.peer {
				return nil, replyInvalidFlag // memcached 1.6.18 has no A
			}
			n, ok := safeStrtoull(v)
			if !ok {
				bad, hasErr = replyBadToken, true
				break
			}
			o.HasRoom, o.Room = true, n
		case 'E':
			if !p.peer {
				return nil, replyInvalidFlag // memcached 1.6.18 has no E
			}
			cas, ok := safeStrtoull(v)
			if !ok || cas == 0 {
				bad, hasErr = replyBadToken, true
				break
			}
			o.HasNewCAS, o.NewCAS = true, cas
		default:
			return nil, replyInvalidFlag
		}
		o.Flags = append(o.Flags, MetaFlag{Code: c, Value: v})
	}
	if hasErr {
		if bad == "" {
			bad = replyBadFormat
		}
		return nil, bad
	}
	if opaqueLong {
		return nil, replyOpaqueLong
	}
	return key, ""
}

// base64Decode mirrors memcached's base64_decode: bytes outside the
// alphabet are skipped, '=' counts as a zero digit, decoding stops after the
// first padded quantum, and more than two '=' in it is an error. It returns
// ok == false where memcached returns 0.
func base64Decode(dst, src []byte) (int, bool) {
	count := 0
	for _, c := range src {
		if b64dec[c] != 0x80 {
			count++
		}
	}
	if count == 0 || count%4 != 0 || count/4*3 > len(dst) {
		return 0, false
	}
	var block [4]byte
	pos, n, pad := 0, 0, 0
	for _, c := range src {
		d := b64dec[c]
		if d == 0x80 {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = d
		n++
		if n == 4 {
			dst[pos] = block[0]<<2 | block[1]>>4
			dst[pos+1] = block[1]<<4 | block[2]>>2
			dst[pos+2] = block[2]<<6 | block[3]
			pos += 3
			n = 0
			if pad > 0 {
				if pad > 2 {
					return 0, false
				}
				pos -= pad
				break
			}
		}
	}
	return pos, pos > 0
}

var b64dec = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x80
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()
