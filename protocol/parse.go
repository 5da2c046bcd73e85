package protocol

import "bytes"

const (
	// KeyMaxLength is memcached's KEY_MAX_LENGTH.
	KeyMaxLength = 250
	// maxTokens is memcached's MAX_TOKENS: 23 tokens plus the terminator.
	maxTokens = 24
	// lineSoftLimit: with this many bytes buffered and no newline, memcached
	// closes the connection unless the line is a get/gets.
	lineSoftLimit = 2048
	// DefaultGetLineCap bounds a get/gets line (memcached grows its buffer
	// without bound; we stop at this many bytes, or at the Reader's item
	// size limit when that is larger).
	DefaultGetLineCap = 1 << 20
	intMax            = 1<<31 - 1
)

// Parse parses one command from the start of buf: the line and, for storage
// commands, the data block. It returns the command and the number of bytes
// it consumed. It returns ErrIncomplete (n == 0) when buf holds no complete
// command; a *Error, with n > 0, for input memcached answers with an error
// line; ErrLineTooLong or ErrHTTP when memcached would close the connection.
//
// Parse has no item size limit: a storage command needs its whole data block
// in buf. The returned command aliases buf.
func Parse(buf []byte) (cmd Command, n int, err error) {
	var p parser
	p.getCap = DefaultGetLineCap
	cmd, n, swallow, err := p.parse(buf)
	if err == ErrIncomplete {
		return nil, 0, err
	}
	if swallow > 0 {
		// memcached discards the data block of a rejected ms unread.
		if len(buf)-n < swallow {
			return nil, 0, ErrIncomplete
		}
		n += swallow
	}
	return cmd, n, err
}

// tokens is memcached's tokenize_command output for one line.
type tokens struct {
	t    [maxTokens][]byte
	n    int    // real tokens (memcached's ntokens is n+1)
	rest []byte // unprocessed bytes after 23 tokens, nil when none
}

func (tk *tokens) split(line []byte) {
	tk.n, tk.rest = 0, nil
	s := 0
	for e := 0; e < len(line); e++ {
		if line[e] != ' ' {
			continue
		}
		if s != e {
			tk.t[tk.n] = line[s:e]
			tk.n++
			if tk.n == maxTokens-1 {
				if e+1 < len(line) {
					tk.rest = line[e+1:]
				}
				return
			}
		}
		s = e + 1
	}
	if s != len(line) {
		tk.t[tk.n] = line[s:]
		tk.n++
	}
}

// parser holds the reusable command values so that a Reader parses
// without allocating. A zero parser has no item size limit.
type parser struct {
	tk      tokens
	maxItem int // 0: unlimited
	getCap  int
	// peer accepts shoal's peer extensions: the meta E, Y and Z flags and
	// the sd command (see Reader.AcceptPeerExtensions).
	peer bool
	// refuse makes a storage command whose data block is not complete
	// answer noMemory (the Reader's Budget refused to hold it).
	refuse bool
	// more is the op of a get line answered in parts (streamGet): the
	// rest of the line is keys. skip: discard the rest of the line.
	more   bool
	moreOp RetrieveOp
	skip   bool
	// stream: the parser serves a Reader, whose buffer a get line may
	// outgrow; Parse leaves it false and caps get lines at getCap.
	stream bool

	storage   Storage
	retrieval Retrieval
	del       Delete
	arith     Arith
	touch     Touch
	flush     FlushAll
	stats     Stats
	admin     Admin
	maint     Maintenance
	mget      MetaGet
	mset      MetaSet
	mdel      MetaDelete
	marith    MetaArith
	mdebug    MetaDebug
	dump      ShardDump
	err       Error
	errKey    []byte
	keyBuf    [KeyMaxLength]byte
}

// forget drops the parser's references into the buffer it last parsed,
// so that a large buffer the Reader lets go is not kept alive by them.
func (p *parser) forget() {
	p.tk = tokens{}
	p.storage, p.del, p.arith, p.touch = Storage{}, Delete{}, Arith{}, Touch{}
	p.mget, p.mset, p.mdel, p.marith = MetaGet{}, MetaSet{}, MetaDelete{}, MetaArith{}
	clear(p.retrieval.Keys[:cap(p.retrieval.Keys)])
	p.retrieval.Keys = p.retrieval.Keys[:0]
}

func (p *parser) fail(reply string, noreply bool) *Error {
	p.err = Error{Reply: reply, NoReply: noreply}
	return &p.err
}

// parse returns the command, the bytes consumed, the bytes to discard after
// them (rejected data blocks), and an error. With ErrIncomplete, n is the
// total number of bytes needed when known (a data block), else 0.
//
// A streaming parser (Reader) answers a get line longer than its buffer in
// parts (streamGet, getRest), and may return a nil command with a nil
// error: n bytes of a refused line were skipped.
func (p *parser) parse(buf []byte) (cmd Command, n, swallow int, err error) {
	if p.more || p.skip {
		return p.getRest(buf)
	}
	el := bytes.IndexByte(buf, '\n')
	if el < 0 {
		if len(buf) > lineSoftLimit {
			i := 0
			for i < len(buf) && buf[i] == ' ' {
				i++
			}
			rest := buf[i:]
			if i > 100 || !(bytes.HasPrefix(rest, []byte("get ")) || bytes.HasPrefix(rest, []byte("gets "))) {
				return nil, 0, 0, ErrLineTooLong
			}
			if p.stream && len(buf) >= BufferSize {
				return p.streamGet(buf[i:], i)
			}
			if !p.stream && len(buf) >= p.getCap {
				return nil, 0, 0, ErrLineTooLong
			}
		}
		return nil, 0, 0, ErrIncomplete
	}
	next := el + 1
	line := buf[:el]
	if el > 1 && buf[el-1] == '\r' {
		line = buf[:el-1]
	}
	if z := bytes.IndexByte(line, 0); z >= 0 {
		line = line[:z] // memcached works on a C string
	}
	tk := &p.tk
	tk.split(line)
	nt := tk.n + 1
	if nt < 2 || len(tk.t[0]) < 2 {
		return nil, next, 0, p.fail(replyError, false)
	}
	c := tk.t[0]
	switch {
	case c[0] == 'm' && len(c) == 2:
		return p.parseMeta(buf, next)
	case c[0] == 'g':
		if nt < 3 {
			break
		}
		switch string(c) {
		case "get":
			return p.parseGet(OpGet, 1), next, 0, nil
		case "gets":
			return p.parseGet(OpGets, 1), next, 0, nil
		case "gat", "gats":
			op := OpGat
			if len(c) == 4 {
				op = OpGats
			}
			exp, ok := safeStrtol(tk.t[1])
			if !ok {
				return nil, next, 0, p.fail(replyBadExptime, false)
			}
			r := p.parseGet(op, 2)
			r.Exptime = int64(exp)
			return r, next, 0, nil
		}
	case c[0] == 's':
		switch string(c) {
		case "set":
			return p.parseStorage(buf, next, OpSet)
		case "sd":
			if p.peer {
				return p.parseShardDump(next)
			}
		case "slabs":
			if nt >= 3 {
				return p.maintenance(MaintSlabs), next, 0, nil
			}
		case "stats":
			s := &p.stats
			s.Args = append(s.Args[:0], tk.t[1:tk.n]...)
			s.Arg = nil
			if len(s.Args) > 0 {
				s.Arg = s.Args[0]
			}
			return s, next, 0, nil
		case "shutdown":
			a := p.resetAdmin(OpShutdown)
			if nt == 3 && string(tk.t[1]) == "graceful" {
				a.Graceful = true
			} else if nt != 2 {
				a.BadMode = true
			}
			return a, next, 0, nil
		}
	case c[0] == 'a':
		switch string(c) {
		case "add":
			return p.parseStorage(buf, next, OpAdd)
		case "append":
			return p.parseStorage(buf, next, OpAppend)
		}
	case c[0] == 'c':
		switch string(c) {
		case "cas":
			return p.parseStorage(buf, next, OpCAS)
		case "cache_memlimit":
			if nt != 3 && nt != 4 {
				break
			}
			noreply := p.noreply()
			v, ok := safeStrtoul(tk.t[1])
			if !ok {
				return nil, next, 0, p.fail(replyError, noreply)
			}
			a := p.resetAdmin(OpCacheMemlimit)
			a.Arg, a.NoReply = uint64(v), noreply
			return a, next, 0, nil
		}
	case c[0] == 'i':
		if string(c) == "incr" {
			return p.parseArith(next, true)
		}
	case c[0] == 'd':
		switch string(c) {
		case "delete":
			return p.parseDelete(next)
		case "decr":
			return p.parseArith(next, false)
		}
	case c[0] == 't':
		if string(c) == "touch" {
			return p.parseTouch(next)
		}
	default:
		switch string(c) {
		case "replace":
			return p.parseStorage(buf, next, OpReplace)
		case "prepend":
			return p.parseStorage(buf, next, OpPrepend)
		case "refresh_certs":
			a := p.resetAdmin(OpRefreshCerts)
			a.NoReply = p.noreply()
			return a, next, 0, nil
		case "lru_crawler":
			if nt >= 3 {
				return p.maintenance(MaintCrawler), next, 0, nil
			}
		case "lru":
			if nt >= 3 {
				return p.maintenance(MaintLRU), next, 0, nil
			}
		case "watch":
			return p.maintenance(MaintWatch), next, 0, nil
		case "bget":
			if nt < 3 {
				break
			}
			return p.parseGet(OpGet, 1), next, 0, nil
		case "flush_all":
			return p.parseFlush(next)
		case "version":
			return p.resetAdmin(OpVersion), next, 0, nil
		case "quit":
			return p.resetAdmin(OpQuit), next, 0, nil
		case "verbosity":
			if nt != 3 && nt != 4 {
				break
			}
			noreply := p.noreply()
			v, ok := safeStrtoul(tk.t[1])
			if !ok {
				return nil, next, 0, p.fail(replyBadFormat, noreply)
			}
			a := p.resetAdmin(OpVerbosity)
			a.Arg, a.NoReply = uint64(v), noreply
			return a, next, 0, nil
		default:
			// memcached drops connections that speak HTTP to it.
			if bytes.HasPrefix(tk.t[tk.n-1], []byte("HTTP/")) {
				return nil, next, 0, ErrHTTP
			}
		}
	}
	return nil, next, 0, p.fail(replyError, false)
}

func (p *parser) maintenance(f MaintFamily) *Maintenance {
	m := &p.maint
	m.Family = f
	m.Args = append(m.Args[:0], p.tk.t[1:p.tk.n]...)
	return m
}

// noreply mirrors set_noreply_maybe: only the last token counts.
func (p *parser) noreply() bool {
	return p.tk.n >= 1 && string(p.tk.t[p.tk.n-1]) == "noreply"
}

func (p *parser) resetAdmin(op AdminOp) *Admin {
	p.admin = Admin{Op: op}
	return &p.admin
}

func (p *parser) parseGet(op RetrieveOp, first int) *Retrieval {
	r := &p.retrieval
	r.Op, r.Exptime, r.BadKey, r.More = op, 0, false, false
	keys := r.Keys[:0]
	tk := &p.tk
	i := first
	for {
		for ; i < tk.n; i++ {
			if len(tk.t[i]) > KeyMaxLength {
				r.BadKey = true
				r.Keys = keys
				return r
			}
			keys = append(keys, tk.t[i])
		}
		if tk.rest == nil {
			break
		}
		tk.split(tk.rest)
		i = 0
	}
	r.Keys = keys
	return r
}

func (p *parser) parseStorage(buf []byte, next int, op StoreOp) (Command, int, int, error) {
	tk := &p.tk
	nt := tk.n + 1
	if op == OpCAS {
		if nt != 7 && nt != 8 {
			return nil, next, 0, p.fail(replyError, false)
		}
	} else if nt != 6 && nt != 7 {
		return nil, next, 0, p.fail(replyError, false)
	}
	noreply := p.noreply()
	key := tk.t[1]
	if len(key) > KeyMaxLength {
		return nil, next, 0, p.fail(replyBadFormat, noreply)
	}
	flags, ok1 := safeStrtoul(tk.t[2])
	exp, ok2 := safeStrtol(tk.t[3])
	vlen, ok3 := safeStrtol(tk.t[4])
	if !(ok1 && ok2 && ok3) {
		return nil, next, 0, p.fail(replyBadFormat, noreply)
	}
	var cas uint64
	if op == OpCAS {
		var ok bool
		if cas, ok = safeStrtoull(tk.t[5]); !ok {
			return nil, next, 0, p.fail(replyBadFormat, noreply)
		}
	}
	if vlen < 0 || vlen > intMax-2 {
		return nil, next, 0, p.fail(replyBadFormat, noreply)
	}
	size := int(vlen)
	if p.maxItem > 0 && size > p.maxItem {
		return nil, next, size + 2, p.tooLarge(op, key, noreply)
	}
	if p.refuse {
		return nil, next, size + 2, p.noMemory(op, key, noreply)
	}
	end := next + size + 2
	if len(buf) < end {
		return nil, end, 0, ErrIncomplete
	}
	if buf[end-2] != '\r' || buf[end-1] != '\n' {
		return nil, end, 0, p.fail(replyBadChunk, noreply)
	}
	s := &p.storage
	*s = Storage{Op: op, Key: key, Flags: flags, Exptime: int64(exp), CAS: cas, NoReply: noreply, Data: buf[next : end-2]}
	return s, end, 0, nil
}

func (p *parser) tooLarge(op StoreOp, key []byte, noreply bool) *Error {
	p.errKey = append(p.errKey[:0], key...)
	p.err = Error{Reply: replyTooLarge, NoReply: noreply, TooLarge: true, Op: op, Key: p.errKey}
	return &p.err
}

// noMemory is tooLarge's twin for a data block the Reader has no memory
// to receive (Budget): memcached's answer when it cannot allocate an item.
func (p *parser) noMemory(op StoreOp, key []byte, noreply bool) *Error {
	e := p.tooLarge(op, key, noreply)
	e.Reply, e.TooLarge, e.NoMemory = replyNoMemory, false, true
	return e
}

func (p *parser) parseArith(next int, incr bool) (Command, int, int, error) {
	tk := &p.tk
	if nt := tk.n + 1; nt != 4 && nt != 5 {
		return nil, next, 0, p.fail(replyError, false)
	}
	noreply := p.noreply()
	if len(tk.t[1]) > KeyMaxLength {
		return nil, next, 0, p.fail(replyBadFormat, noreply)
	}
	delta, ok := safeStrtoull(tk.t[2])
	if !ok {
		return nil, next, 0, p.fail(replyBadDelta, noreply)
	}
	a := &p.arith
	*a = Arith{Incr: incr, Key: tk.t[1], Delta: delta, NoReply: noreply}
	return a, next, 0, nil
}

func (p *parser) parseTouch(next int) (Command, int, int, error) {
	tk := &p.tk
	if nt := tk.n + 1; nt != 4 && nt != 5 {
		return nil, next, 0, p.fail(replyError, false)
	}
	noreply := p.noreply()
	if len(tk.t[1]) > KeyMaxLength {
		return nil, next, 0, p.fail(replyBadFormat, noreply)
	}
	exp, ok := safeStrtol(tk.t[2])
	if !ok {
		return nil, next, 0, p.fail(replyBadExptime, noreply)
	}
	t := &p.touch
	*t = Touch{Key: tk.t[1], Exptime: int64(exp), NoReply: noreply}
	return t, next, 0, nil
}

func (p *parser) parseDelete(next int) (Command, int, int, error) {
	tk := &p.tk
	nt := tk.n + 1
	if nt < 3 || nt > 5 {
		return nil, next, 0, p.fail(replyError, false)
	}
	noreply := false
	if nt > 3 {
		zero := string(tk.t[2]) == "0"
		noreply = p.noreply()
		if !((nt == 4 && (zero || noreply)) || (nt == 5 && zero && noreply)) {
			return nil, next, 0, p.fail(replyDeleteUsage, noreply)
		}
	}
	if len(tk.t[1]) > KeyMaxLength {
		return nil, next, 0, p.fail(replyBadFormat, noreply)
	}
	d := &p.del
	*d = Delete{Key: tk.t[1], NoReply: noreply}
	return d, next, 0, nil
}

func (p *parser) parseFlush(next int) (Command, int, int, error) {
	tk := &p.tk
	nt := tk.n + 1
	if nt > 4 {
		return nil, next, 0, p.fail(replyError, false)
	}
	noreply := p.noreply() && nt > 2
	f := &p.flush
	*f = FlushAll{NoReply: noreply}
	want := 2
	if noreply {
		want = 3
	}
	if nt != want {
		d, ok := safeStrtol(tk.t[1])
		if !ok {
			return nil, next, 0, p.fail(replyBadExptime, noreply)
		}
		f.Delay, f.HasDelay = int64(d), true
	}
	return f, next, 0, nil
}
