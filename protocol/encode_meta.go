package protocol

import (
	"encoding/base64"
	"strconv"
)

// Encoders of the typed meta commands, the inverse of parsing them: a
// client of another node builds a MetaGet (MetaSet, ...) and appends it
// with AppendTo, and the receiver's Reader gives back the same typed
// fields.
//
// AppendTo writes the typed fields, never Flags, in one fixed order:
//
//	<verb> <key> [<size>] [b] M F C I T u N R J D E Y Z  h l v f c t k s  q O
//
// Flags that change the command come before the return flags because
// memcached applies T and N where it meets them: "T30 t" reports the new
// TTL and "t T30" the old one. T comes before N so that an item N creates
// gets the N TTL (the last of the two wins). q and O end the line as
// memcached's own clients write them. A parsed command's token order and
// its ignored tokens (the proxy hints P and L, a D1 on ma) are therefore
// not kept, only what they mean.
//
// The key is written as is unless Base64, which writes it base64-encoded
// with the b flag: set Base64 for a key MetaKeyNeedsBase64 reports.
// AppendTo allocates nothing beyond growing b.

// AppendTo appends m as an mg request line.
func (m *MetaGet) AppendTo(b []byte) []byte {
	b = appendMetaHead(b, "mg ", m.Key, m.Base64)
	b = appendB(b, m.Base64)
	return AppendCRLF(m.appendFlags(b, m.Mode, 0))
}

// AppendTo appends m as an ms request: the line, then Data and "\r\n".
// The M token is Mode when set, else the one that gives Op (none for
// OpSet and OpCAS, which C makes).
func (m *MetaSet) AppendTo(b []byte) []byte {
	b = appendMetaHead(b, "ms ", m.Key, m.Base64)
	b = strconv.AppendInt(append(b, ' '), int64(len(m.Data)), 10)
	b = appendB(b, m.Base64)
	b = AppendCRLF(m.appendFlags(b, m.setMode(), 0))
	return AppendCRLF(append(b, m.Data...))
}

// setMode is the M token of m: Mode, or the one of Op.
func (m *MetaSet) setMode() byte {
	if m.Mode != 0 {
		return m.Mode
	}
	switch m.Op {
	case OpAdd:
		return 'E'
	case OpAppend:
		return 'A'
	case OpPrepend:
		return 'P'
	case OpReplace:
		return 'R'
	}
	return 0
}

// AppendTo appends m as an md request line.
func (m *MetaDelete) AppendTo(b []byte) []byte {
	b = appendMetaHead(b, "md ", m.Key, m.Base64)
	b = appendB(b, m.Base64)
	return AppendCRLF(m.appendFlags(b, m.Mode, 0))
}

// AppendTo appends m as an ma request line. The M token is Mode when set,
// else MD for Decr. Delta 1 is ma's default and is not written.
func (m *MetaArith) AppendTo(b []byte) []byte {
	b = appendMetaHead(b, "ma ", m.Key, m.Base64)
	b = appendB(b, m.Base64)
	mode := m.Mode
	if mode == 0 && m.Decr {
		mode = 'D'
	}
	return AppendCRLF(m.appendFlags(b, mode, 1))
}

// appendMetaHead appends the verb (with its space) and the key.
func appendMetaHead(b []byte, verb string, key []byte, b64 bool) []byte {
	b = append(b, verb...)
	if b64 {
		return base64.StdEncoding.AppendEncode(b, key)
	}
	return append(b, key...)
}

// appendFlags appends o's flags in the order the file comment gives, with
// mode as the M token (0: none) and D only when Delta is not the
// command's default (1 for ma, as absent; 0 elsewhere).
func (o *MetaOptions) appendFlags(b []byte, mode byte, delta uint64) []byte {
	if mode != 0 {
		b = append(b, ' ', 'M', mode)
	}
	if o.HasClientFlags {
		b = AppendMetaFlagUint(b, 'F', uint64(o.ClientFlags))
	}
	if o.HasCAS {
		b = AppendMetaFlagUint(b, 'C', o.CAS)
	}
	b = appendBare(b, 'I', o.Invalidate)
	if o.HasTTL {
		b = AppendMetaFlagInt(b, 'T', o.TTL)
	}
	b = appendBare(b, 'u', o.NoBump)
	if o.HasVivify {
		b = AppendMetaFlagInt(b, 'N', o.VivifyTTL)
	}
	if o.HasRecache {
		b = AppendMetaFlagInt(b, 'R', o.RecacheTTL)
	}
	if o.Initial != 0 {
		b = AppendMetaFlagUint(b, 'J', o.Initial)
	}
	if o.Delta != delta {
		b = AppendMetaFlagUint(b, 'D', o.Delta)
	}
	if o.HasNewCAS {
		b = AppendMetaFlagUint(b, 'E', o.NewCAS)
	}
	if o.HasEpoch {
		b = AppendMetaFlagUint(b, 'Y', o.Epoch)
	}
	if o.HasSeq {
		b = AppendMetaFlagUint(b, 'Z', o.Seq)
	}
	if o.HasRoom {
		b = AppendMetaFlagUint(b, 'A', o.Room)
	}
	return o.appendReturns(b)
}

// appendReturns appends the return flags, then q and O.
func (o *MetaOptions) appendReturns(b []byte) []byte {
	b = appendBare(b, 'h', o.ReturnHit)
	b = appendBare(b, 'l', o.ReturnLastAccess)
	b = appendBare(b, 'v', o.ReturnValue)
	b = appendBare(b, 'f', o.ReturnClientFlag)
	b = appendBare(b, 'c', o.ReturnCAS)
	b = appendBare(b, 't', o.ReturnTTL)
	b = appendBare(b, 'k', o.ReturnKey)
	b = appendBare(b, 's', o.ReturnSize)
	b = appendBare(b, 'q', o.Quiet)
	if o.HasOpaque {
		b = AppendMetaOpaque(b, o.Opaque)
	}
	return b
}

// appendBare appends the flag code alone when on.
func appendBare(b []byte, code byte, on bool) []byte {
	if on {
		return append(b, ' ', code)
	}
	return b
}
