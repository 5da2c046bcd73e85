package store

import "encoding/binary"

// Item header layout, 32 bytes at the start of every chunk, little endian:
//
//	 0  cas      uint64
//	 8  vlen     uint32  value length
//	12  flags    uint32  client flags
//	16  exptime  uint32  absolute unix seconds, 0 = never
//	20  atime    uint32  last access, unix seconds
//	24  stime    uint32  time of the write that created the value
//	28  klen     uint8
//	29  bits     uint8   bit* flags below (guarded by the shard mutex)
//	30  owner    uint8   shard+1 while in use, 0 when free (class mutex)
//	31  unused
//
// The key follows at offset 32 and the value right after the key. A free
// chunk reuses bytes 0..3 as the free-list link.
const (
	hdrSize = 32

	offCAS   = 0
	offVlen  = 8
	offFlags = 12
	offExp   = 16
	offAtime = 20
	offStime = 24
	offKlen  = 28
	offBits  = 29
	offOwner = 30
)

// Item bits.
const (
	bitFetched   = 1 << iota // read at least once
	bitStale                 // invalidated by meta I
	bitTokenSent             // a win token was handed out
	bitPinned                // the hand must not take this chunk
	bitKeyBinary             // stored with a base64 key (ms b); meta k re-encodes it
	bitPiece                 // a head or tail chunk of a chunked item (chunk.go)
)

// The top two bits of the bits byte count hits for the CLOCK hand, from 0
// to freqMax: a hit adds one, each pass of the hand takes one, and the hand
// evicts an item at zero. One bit (plain CLOCK) treats a key hit once like
// one hit a thousand times; two bits keep the hot head of a skewed workload
// through a few passes of the hand (GCLOCK), which measured +1 point of hit
// ratio on bench/ hitratio (zipf 0.99) over one bit.
const (
	freqShift = 6
	freqMax   = 3
	freqMask  = freqMax << freqShift
)

// hit counts one access for the CLOCK hand.
func (h hdr) hit() {
	if h[offBits]&freqMask != freqMask {
		h[offBits] += 1 << freqShift
	}
}

// cool takes one count off an item the hand passes, and reports whether it
// had any left (and so survives this pass).
func (h hdr) cool() bool {
	if h[offBits]&freqMask == 0 {
		return false
	}
	h[offBits] -= 1 << freqShift
	return true
}

// bitsNewItem are the bits memcached keeps only on the item it allocated:
// an append, a prepend or an incr that outgrows its value gets a fresh item
// there, so these bits start cleared (the CLOCK and pin bits are shoal's).
const bitsNewItem = bitFetched | bitStale | bitTokenSent | bitKeyBinary

// memcachedItemOverhead is added to header+key+value to approximate the
// "bytes" memcached reports (it stores the trailing CRLF with the value).
const memcachedItemOverhead = 2

// itemSize is the chunk bytes an item needs.
func itemSize(klen, vlen int) int { return hdrSize + klen + vlen }

type hdr []byte // a chunk, header first

func (h hdr) cas() uint64        { return binary.LittleEndian.Uint64(h[offCAS:]) }
func (h hdr) setCAS(v uint64)    { binary.LittleEndian.PutUint64(h[offCAS:], v) }
func (h hdr) vlen() int          { return int(binary.LittleEndian.Uint32(h[offVlen:])) }
func (h hdr) setVlen(n int)      { binary.LittleEndian.PutUint32(h[offVlen:], uint32(n)) }
func (h hdr) flags() uint32      { return binary.LittleEndian.Uint32(h[offFlags:]) }
func (h hdr) exptime() uint32    { return binary.LittleEndian.Uint32(h[offExp:]) }
func (h hdr) setExptime(v int64) { binary.LittleEndian.PutUint32(h[offExp:], clampTime(v)) }
func (h hdr) atime() uint32      { return binary.LittleEndian.Uint32(h[offAtime:]) }
func (h hdr) setAtime(v int64)   { binary.LittleEndian.PutUint32(h[offAtime:], clampTime(v)) }
func (h hdr) stime() uint32      { return binary.LittleEndian.Uint32(h[offStime:]) }
func (h hdr) klen() int          { return int(h[offKlen]) }
func (h hdr) bits() uint8        { return h[offBits] }
func (h hdr) has(b uint8) bool   { return h[offBits]&b != 0 }
func (h hdr) set(b uint8)        { h[offBits] |= b }
func (h hdr) clear(b uint8)      { h[offBits] &^= b }
func (h hdr) key() []byte        { return h[hdrSize : hdrSize+h.klen()] }
func (h hdr) value() []byte      { k := hdrSize + h.klen(); return h[k : k+h.vlen()] }
func (h hdr) owner() int         { return int(h[offOwner]) }
func (h hdr) setOwner(o int)     { h[offOwner] = uint8(o) }
func (h hdr) size() int          { return hdrSize + h.klen() + h.vlen() }

// init writes a fresh header and the key, leaving the owner byte alone.
func (h hdr) init(key []byte, vlen int, flags uint32, exptime int64, cas uint64, now int64) {
	binary.LittleEndian.PutUint64(h[offCAS:], cas)
	binary.LittleEndian.PutUint32(h[offVlen:], uint32(vlen))
	binary.LittleEndian.PutUint32(h[offFlags:], flags)
	binary.LittleEndian.PutUint32(h[offExp:], clampTime(exptime))
	binary.LittleEndian.PutUint32(h[offAtime:], clampTime(now))
	binary.LittleEndian.PutUint32(h[offStime:], clampTime(now))
	h[offKlen] = uint8(len(key))
	h[offBits] = 0
	copy(h[hdrSize:], key)
}

// clampTime stores an absolute time in 32 bits. Negative times (already
// expired) become 1 so that they stay distinct from 0, "never".
func clampTime(t int64) uint32 {
	switch {
	case t == 0:
		return 0
	case t < 0:
		return 1
	case t > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(t)
}

// expired reports memcached's rule: exptime <= current_time.
func (h hdr) expired(now int64) bool {
	e := h.exptime()
	return e != 0 && int64(e) <= now
}

// describe fills an Item from the header as it is before this access.
func (h hdr) describe() Item {
	return Item{
		Flags:      h.flags(),
		Exptime:    int64(h.exptime()),
		CAS:        h.cas(),
		Size:       h.vlen(),
		LastAccess: int64(h.atime()),
		Fetched:    h.has(bitFetched),
		Stale:      h.has(bitStale),
		TokenSent:  h.has(bitTokenSent),
		KeyBinary:  h.has(bitKeyBinary),
	}
}

func (h hdr) setStime(v int64) { binary.LittleEndian.PutUint32(h[offStime:], clampTime(v)) }
