package peer

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"shoal/protocol"
)

type kind uint8

const (
	kindGet kind = iota
	kindSet
	kindDelete
	kindArith
	kindMulti
)

// Request states. The caller and the reader goroutine race to move a
// waiting request on; whoever wins owns it: the reader fills it and wakes
// the caller (done), or the caller gives up and leaves it for the reader
// to recycle (abandoned).
const (
	stateWaiting uint32 = iota
	stateDone
	stateAbandoned
)

// request is one call in flight. Pooled: steady-state calls allocate none.
type request struct {
	kind  kind
	seq   uint32 // opaque of the first (for a GetMulti, of every) mg
	state atomic.Uint32
	done  chan struct{} // capacity 1
	timer *time.Timer
	// h (sh, dh), when set, makes r asynchronous (GetAsync, SetAsync,
	// DeleteAsync): no caller waits on done; the reader hands the outcome
	// to it.
	h     GetHandler
	sh    SetHandler
	dh    DeleteHandler
	stamp int64 // Client.ticks when queued, for the sweeper

	// Inputs: read by encode only, while the caller waits.
	key, value []byte
	keys       [][]byte
	get        GetOptions
	set        SetOptions
	del        DeleteOptions
	arith      ArithOptions

	// Outputs, written by the reader before it signals done.
	err    error
	status protocol.ReplyStatus
	item   Item // Value appended to get.Buf[:0]
	num    uint64

	// GetMulti: values packed in arena, hits in key order.
	arena []byte
	hits  []multiHit
}

type multiHit struct {
	index    int
	off, end int // the value in arena; dropped: end is its size
	item     Item
	dropped  bool // GetOptions.Admit refused the value
}

func (r *request) reset() *request {
	*r = request{done: r.done, timer: r.timer, hits: r.hits[:0]}
	return r
}

// async reports whether r is asynchronous (a handler takes its outcome).
func (r *request) async() bool { return r.h != nil || r.sh != nil || r.dh != nil }

// seqs is the number of opaque numbers r uses.
func (r *request) seqs() uint32 {
	if r.kind == kindMulti {
		return uint32(len(r.keys))
	}
	return 1
}

// encode appends r's request bytes with r.seq as the opaque: the options
// become protocol's typed meta commands, which write themselves. The
// commands are filled in place on the stack, not returned by value: they
// are large, and encode is on every request's path.
func (r *request) encode(b []byte) []byte {
	var op [10]byte // r.seq in decimal: the opaque
	switch r.kind {
	case kindGet:
		m := protocol.MetaGet{Key: r.key}
		getOptions(&m.MetaOptions, &r.get, r.key)
		m.HasOpaque, m.Opaque = true, strconv.AppendUint(op[:0], uint64(r.seq), 10)
		return m.AppendTo(b)
	case kindSet:
		m := protocol.MetaSet{Key: r.key, Data: r.value}
		setOptions(&m.MetaOptions, &r.set, r.key)
		m.HasOpaque, m.Opaque = true, strconv.AppendUint(op[:0], uint64(r.seq), 10)
		return m.AppendTo(b)
	case kindDelete:
		m := protocol.MetaDelete{Key: r.key}
		deleteOptions(&m.MetaOptions, &r.del, r.key)
		m.HasOpaque, m.Opaque = true, strconv.AppendUint(op[:0], uint64(r.seq), 10)
		return m.AppendTo(b)
	case kindArith:
		m := protocol.MetaArith{Key: r.key, Decr: r.arith.Decr}
		arithOptions(&m.MetaOptions, &r.arith, r.key)
		m.HasOpaque, m.Opaque = true, strconv.AppendUint(op[:0], uint64(r.seq), 10)
		return m.AppendTo(b)
	}
	// kindMulti: quiet gets answer hits only; mn marks the end of the batch.
	for i, k := range r.keys {
		m := protocol.MetaGet{Key: k, MetaOptions: protocol.MetaOptions{
			Base64: protocol.MetaKeyNeedsBase64(k), HasTTL: r.get.Touch, TTL: r.get.TTL,
			ReturnValue: true, ReturnClientFlag: true, ReturnCAS: true, ReturnTTL: true, Quiet: true,
			HasRoom: r.get.Room > 0, Room: uint64(max(r.get.Room, 0)),
		}}
		m.HasOpaque, m.Opaque = true, strconv.AppendUint(op[:0], uint64(r.seq+uint32(i)), 10)
		b = m.AppendTo(b)
	}
	return protocol.AppendMetaNoopRequest(b)
}

// getOptions sets o to the mg for g: Touch as T (written before t, so
// that t reports the new TTL), LocalOnly as Y0.
func getOptions(o *protocol.MetaOptions, g *GetOptions, key []byte) {
	*o = protocol.MetaOptions{
		Base64: protocol.MetaKeyNeedsBase64(key),
		HasTTL: g.Touch, TTL: g.TTL, NoBump: g.NoBump,
		HasVivify: g.Vivify, VivifyTTL: g.VivifyTTL,
		HasRecache: g.RecacheBelow > 0, RecacheTTL: g.RecacheBelow,
		ReturnHit: g.Detail, ReturnLastAccess: g.Detail, HasEpoch: g.LocalOnly,
		HasRoom: g.Room > 0, Room: uint64(max(g.Room, 0)),
		ReturnValue: true, ReturnClientFlag: true, ReturnCAS: true, ReturnTTL: true,
	}
}

// setOptions sets o to the ms for s; zero values are left off the wire,
// as they mean what absence does.
func setOptions(o *protocol.MetaOptions, s *SetOptions, key []byte) {
	*o = protocol.MetaOptions{
		Base64: s.KeyBinary || protocol.MetaKeyNeedsBase64(key), ReturnCAS: true,
		HasClientFlags: s.Flags != 0, ClientFlags: s.Flags,
		HasTTL: s.TTL != 0, TTL: s.TTL, HasCAS: s.CAS != 0, CAS: s.CAS,
		Invalidate: s.Invalidate, Mode: byte(s.Mode),
		HasNewCAS: s.NewCAS != 0, NewCAS: s.NewCAS,
		HasVivify: s.Vivify, VivifyTTL: s.VivifyTTL,
	}
	setOrigin(o, s.Epoch, s.Seq)
}

// deleteOptions sets o to the md for d; a TTL goes only with Invalidate.
func deleteOptions(o *protocol.MetaOptions, d *DeleteOptions, key []byte) {
	*o = protocol.MetaOptions{
		Base64: protocol.MetaKeyNeedsBase64(key),
		HasCAS: d.CAS != 0, CAS: d.CAS, Invalidate: d.Invalidate,
		HasTTL: d.Invalidate && d.TTL != 0, TTL: d.TTL,
		HasNewCAS: d.NewCAS != 0, NewCAS: d.NewCAS,
	}
	setOrigin(o, d.Epoch, d.Seq)
}

// arithOptions sets o to the ma for a. A zero Delta is memcached's
// default of 1 unless ZeroDelta; Decr becomes MD (MetaArith.AppendTo).
func arithOptions(o *protocol.MetaOptions, a *ArithOptions, key []byte) {
	delta := a.Delta
	if delta == 0 && !a.ZeroDelta {
		delta = 1
	}
	*o = protocol.MetaOptions{
		Base64: protocol.MetaKeyNeedsBase64(key), Delta: delta,
		HasVivify: a.Vivify, VivifyTTL: a.VivifyTTL, Initial: a.Initial,
		HasTTL: a.Touch, TTL: a.TTL, HasCAS: a.CAS != 0, CAS: a.CAS,
		HasNewCAS: a.NewCAS != 0, NewCAS: a.NewCAS,
		ReturnValue: true, ReturnCAS: true, ReturnTTL: true,
	}
}

// setOrigin marks a replicated write with its origin: Y<epoch>, and
// Z<seq> when seq is set. Nothing for epoch 0: a plain (forwarded) write.
func setOrigin(o *protocol.MetaOptions, epoch, seq uint64) {
	o.HasEpoch, o.Epoch = epoch != 0, epoch
	o.HasSeq, o.Seq = epoch != 0 && seq != 0, seq
}

// fill copies what a single request's reply carries into r. It runs on the
// reader goroutine after it won r; rep's opaque has been checked.
func (r *request) fill(rep *protocol.Reply) error {
	if rep.Status.IsError() {
		return replyError(rep)
	}
	r.status = rep.Status
	if v, ok := rep.Uint('c'); ok {
		r.item.CAS = v
	}
	if v, ok := rep.Int('t'); ok {
		r.item.TTL = v
	}
	if v, ok := rep.Uint('f'); ok {
		r.item.Flags = uint32(v)
	}
	if v, ok := rep.Uint('h'); ok {
		r.item.Fetched = v != 0
	}
	if v, ok := rep.Int('l'); ok {
		r.item.LastAccess = v
	}
	_, r.item.Win = rep.Flag('W')
	_, r.item.Stale = rep.Flag('X')
	_, r.item.TokenSent = rep.Flag('Z')
	if rep.Status == protocol.StatusHD && r.kind == kindGet && r.get.Room > 0 {
		n, ok := rep.Uint('s')
		if !ok {
			return fmt.Errorf("%w: mg answered HD without a size", ErrProtocol)
		}
		r.item.Size = int(n) // a hit whose value did not fit the room
	}
	if rep.Status != protocol.StatusVA {
		return nil
	}
	switch r.kind {
	case kindGet:
		r.item.Value = append(r.get.Buf[:0], rep.Value...)
	case kindArith:
		n, ok := protocol.ParseUint(rep.Value)
		if !ok {
			return fmt.Errorf("%w: ma value %q", ErrProtocol, rep.Value)
		}
		r.num = n
	}
	return nil
}

func replyError(rep *protocol.Reply) error {
	line := rep.Status.String()
	if len(rep.Message) > 0 {
		line += " " + string(rep.Message)
	}
	return newReplyError(line)
}

// multiReply takes one reply to a GetMulti batch and reports whether it
// was the batch's MN. Hits must come in key order with their key's opaque.
func (r *request) multiReply(rep *protocol.Reply) (done bool, err error) {
	switch rep.Status {
	case protocol.StatusMN:
		return true, nil
	case protocol.StatusVA, protocol.StatusEN:
	case protocol.StatusHD:
		if r.get.Room <= 0 {
			return false, fmt.Errorf("%w: HD reply in a get batch without room", ErrProtocol)
		}
	default:
		if rep.Status.IsError() {
			if r.err == nil {
				r.err = replyError(rep)
			}
			return false, nil
		}
		return false, fmt.Errorf("%w: %v reply in a get batch", ErrProtocol, rep.Status)
	}
	op, ok := rep.Uint('O')
	idx := uint32(op) - r.seq
	if !ok || op > 1<<32-1 || int(idx) >= len(r.keys) ||
		(len(r.hits) > 0 && int(idx) <= r.hits[len(r.hits)-1].index) {
		return false, fmt.Errorf("%w: reply opaque %q out of batch order", ErrProtocol, rep.Opaque)
	}
	if rep.Status == protocol.StatusEN {
		return false, nil
	}
	if rep.Status == protocol.StatusHD { // a value larger than the room: its size
		n, ok := rep.Uint('s')
		if !ok {
			return false, fmt.Errorf("%w: mg answered HD without a size", ErrProtocol)
		}
		r.hits = append(r.hits, multiHit{index: int(idx), dropped: true, end: int(n)})
		return false, nil
	}
	if r.get.Admit != nil && !r.get.Admit(len(rep.Value)) {
		r.hits = append(r.hits, multiHit{index: int(idx), dropped: true, end: len(rep.Value)})
		return false, nil
	}
	h := multiHit{index: int(idx), off: len(r.arena)}
	r.arena = append(r.arena, rep.Value...)
	h.end = len(r.arena)
	h.item.CAS, _ = rep.Uint('c')
	h.item.TTL, _ = rep.Int('t')
	f, _ := rep.Uint('f')
	h.item.Flags = uint32(f)
	r.hits = append(r.hits, h)
	return false, nil
}
