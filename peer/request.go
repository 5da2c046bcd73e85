package peer

import (
	"fmt"
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
	off, end int
	item     Item
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

// encode appends r's request bytes with r.seq as the opaque.
func (r *request) encode(b []byte) []byte {
	switch r.kind {
	case kindGet:
		b = protocol.AppendMetaGetRequest(b, r.key)
		if r.get.Touch {
			// Before t, so that t reports the new TTL.
			b = protocol.AppendMetaFlagInt(b, 'T', r.get.TTL)
		}
		if r.get.NoBump {
			b = protocol.AppendMetaFlag(b, 'u')
		}
		if r.get.Vivify {
			b = protocol.AppendMetaFlagInt(b, 'N', r.get.VivifyTTL)
		}
		if r.get.RecacheBelow > 0 {
			b = protocol.AppendMetaFlagInt(b, 'R', r.get.RecacheBelow)
		}
		if r.get.Detail {
			b = append(b, " h l"...)
		}
		if r.get.LocalOnly {
			b = append(b, " Y0"...)
		}
		b = append(b, " v f c t"...)
	case kindSet:
		s := &r.set
		if s.KeyBinary {
			b = protocol.AppendMetaSetRequestBase64(b, r.key, len(r.value))
		} else {
			b = protocol.AppendMetaSetRequest(b, r.key, len(r.value))
		}
		b = protocol.AppendMetaFlag(b, 'c')
		if s.Flags != 0 {
			b = protocol.AppendMetaFlagUint(b, 'F', uint64(s.Flags))
		}
		if s.TTL != 0 {
			b = protocol.AppendMetaFlagInt(b, 'T', s.TTL)
		}
		if s.CAS != 0 {
			b = protocol.AppendMetaFlagUint(b, 'C', s.CAS)
		}
		if s.Invalidate {
			b = protocol.AppendMetaFlag(b, 'I')
		}
		if s.Mode != ModeSet {
			b = append(b, ' ', 'M', byte(s.Mode))
		}
		if s.NewCAS != 0 {
			b = protocol.AppendMetaFlagUint(b, 'E', s.NewCAS)
		}
		if s.Vivify {
			b = protocol.AppendMetaFlagInt(b, 'N', s.VivifyTTL)
		}
		b = appendOrigin(b, s.Epoch, s.Seq)
	case kindDelete:
		d := &r.del
		b = protocol.AppendMetaDeleteRequest(b, r.key)
		if d.CAS != 0 {
			b = protocol.AppendMetaFlagUint(b, 'C', d.CAS)
		}
		if d.Invalidate {
			b = protocol.AppendMetaFlag(b, 'I')
			if d.TTL != 0 {
				b = protocol.AppendMetaFlagInt(b, 'T', d.TTL)
			}
		}
		if d.NewCAS != 0 {
			b = protocol.AppendMetaFlagUint(b, 'E', d.NewCAS)
		}
		b = appendOrigin(b, d.Epoch, d.Seq)
	case kindArith:
		a := &r.arith
		b = protocol.AppendMetaArithRequest(b, r.key)
		if a.Decr {
			b = append(b, " MD"...)
		}
		if a.Delta != 0 || a.ZeroDelta {
			b = protocol.AppendMetaFlagUint(b, 'D', a.Delta)
		}
		if a.Vivify {
			b = protocol.AppendMetaFlagInt(b, 'N', a.VivifyTTL)
			b = protocol.AppendMetaFlagUint(b, 'J', a.Initial)
		}
		if a.Touch {
			b = protocol.AppendMetaFlagInt(b, 'T', a.TTL)
		}
		if a.CAS != 0 {
			b = protocol.AppendMetaFlagUint(b, 'C', a.CAS)
		}
		if a.NewCAS != 0 {
			b = protocol.AppendMetaFlagUint(b, 'E', a.NewCAS)
		}
		b = append(b, " v c t"...)
	case kindMulti:
		// Quiet gets answer hits only; mn marks the end of the batch.
		for i, k := range r.keys {
			b = protocol.AppendMetaGetRequest(b, k)
			if r.get.Touch {
				b = protocol.AppendMetaFlagInt(b, 'T', r.get.TTL) // before t, as for Get
			}
			b = append(b, " v f c t q"...)
			b = protocol.AppendMetaFlagUint(b, 'O', uint64(r.seq+uint32(i)))
			b = protocol.AppendCRLF(b)
		}
		return protocol.AppendMetaNoopRequest(b)
	}
	b = protocol.AppendMetaFlagUint(b, 'O', uint64(r.seq))
	b = protocol.AppendCRLF(b)
	if r.kind == kindSet {
		b = protocol.AppendCRLF(append(b, r.value...))
	}
	return b
}

// appendOrigin appends the origin of a replicated write: Y<epoch>, and
// Z<seq> when seq is set. Nothing for epoch 0: a plain (forwarded) write.
func appendOrigin(b []byte, epoch, seq uint64) []byte {
	if epoch == 0 {
		return b
	}
	b = protocol.AppendMetaFlagUint(b, 'Y', epoch)
	if seq != 0 {
		b = protocol.AppendMetaFlagUint(b, 'Z', seq)
	}
	return b
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
