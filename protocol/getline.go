package protocol

import "bytes"

// A get or gets line longer than the Reader's buffer is answered in parts,
// the keys looked up as they arrive: memcached grows its buffer to hold
// the whole line (1.25 GB for a 17 MB line was measured), shoal holds one
// buffer. The replies are memcached's, but for a key over 250 bytes late in
// such a line: the values of the parts before it are sent already when
// "CLIENT_ERROR bad command line format" comes.

// streamGet answers the start of a get/gets line that fills the buffer:
// the keys complete so far (each followed by a space), with More set. lead
// is the count of spaces before the command word.
func (p *parser) streamGet(buf []byte, lead int) (Command, int, int, error) {
	ls := bytes.LastIndexByte(buf, ' ')
	if len(buf)-ls-1 > KeyMaxLength {
		// The unfinished last token is no key: refuse the line now.
		p.tk.split(buf)
		r := p.parseGet(opOf(p.tk.t[0]), 1)
		r.BadKey = true
		p.skip = true
		return r, lead + len(buf), 0, nil
	}
	p.tk.split(buf[:ls])
	r := p.parseGet(opOf(p.tk.t[0]), 1)
	if !r.BadKey {
		r.More = true
		p.more, p.moreOp = true, r.Op
		return r, lead + ls + 1, 0, nil
	}
	p.skip = true
	return r, lead + ls + 1, 0, nil
}

func opOf(word []byte) RetrieveOp {
	if string(word) == "gets" {
		return OpGets
	}
	return OpGet
}

// getRest parses the rest of a get line answered in parts (p.more), or
// skips the rest of a refused one (p.skip).
func (p *parser) getRest(buf []byte) (Command, int, int, error) {
	el := bytes.IndexByte(buf, '\n')
	if p.skip {
		if el < 0 {
			return nil, len(buf), 0, nil
		}
		p.skip = false
		return nil, el + 1, 0, nil
	}
	op := p.moreOp
	if el < 0 {
		if len(buf) < BufferSize {
			return nil, 0, 0, ErrIncomplete
		}
		ls := bytes.LastIndexByte(buf, ' ')
		r := p.restKeys(op, buf[:max(ls, 0)])
		if ls < 0 || len(buf)-ls-1 > KeyMaxLength {
			r.BadKey = true
		}
		if r.BadKey {
			p.more, p.skip = false, true
			return r, len(buf), 0, nil
		}
		r.More = true
		return r, ls + 1, 0, nil
	}
	line := buf[:el]
	if el > 0 && buf[el-1] == '\r' {
		line = buf[:el-1]
	}
	p.more = false
	return p.restKeys(op, line), el + 1, 0, nil
}

// restKeys parses keys separated by spaces, as parseGet does those of a
// whole line.
func (p *parser) restKeys(op RetrieveOp, line []byte) *Retrieval {
	r := &p.retrieval
	r.Op, r.Exptime, r.BadKey, r.More = op, 0, false, false
	keys := r.Keys[:0]
	for len(line) > 0 {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			sp = len(line)
		}
		if k := line[:sp]; len(k) > KeyMaxLength {
			r.BadKey = true
			break
		} else if len(k) > 0 {
			keys = append(keys, k)
		}
		line = line[min(sp+1, len(line)):]
	}
	r.Keys = keys
	return r
}
