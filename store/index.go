package store

import "unsafe"

// index maps keys to chunk references for one shard. It is open addressing
// with linear probing over []uint64, each slot packing the low 32 bits of
// the key's hash (high half) and a chunk reference (low half, never zero).
// Deletion shifts followers back instead of leaving tombstones, so probe
// chains stay short without periodic rebuilds. Holding no pointers, and
// living in the arena, the table costs the garbage collector nothing.
//
// The table size need not be a power of two: a hash's home slot is
// (h * n) >> 32, so the table grows by half at a time and stays between
// 50% and 75% full instead of dropping to 37%, which matters for the
// resident size of a cache of small items.
type index struct {
	slots []uint64
	count int
	mem   *arena
}

const minIndexSlots = 256

func newIndex(mem *arena, n int) index {
	return index{slots: mem.uint64s(n), mem: mem}
}

func slotHash(e uint64) uint32 { return uint32(e >> 32) }
func slotRef(e uint64) uint32  { return uint32(e) }

// home is the first slot probed for hash h.
func (x *index) home(h uint32) uint32 {
	return uint32(uint64(h) * uint64(len(x.slots)) >> 32)
}

// next is the slot probed after i.
func (x *index) next(i uint32) uint32 {
	if i++; int(i) == len(x.slots) {
		return 0
	}
	return i
}

// insert adds ref under hash h; the caller has checked the key is absent.
func (x *index) insert(h uint32, ref uint32) {
	if (x.count+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	x.place(uint64(h)<<32 | uint64(ref))
	x.count++
}

func (x *index) place(e uint64) {
	i := x.home(slotHash(e))
	for x.slots[i] != 0 {
		i = x.next(i)
	}
	x.slots[i] = e
}

func (x *index) grow() {
	old := x.slots
	x.slots = x.mem.uint64s(len(old) + len(old)/2)
	for _, e := range old {
		if e != 0 {
			x.place(e)
		}
	}
	x.mem.free(unsafe.Pointer(&old[0]))
}

// remove empties slot i and shifts the rest of its probe chain back.
func (x *index) remove(i uint32) {
	for {
		j := i
		for {
			j = x.next(j)
			e := x.slots[j]
			if e == 0 {
				x.slots[i] = 0
				x.count--
				return
			}
			home := x.home(slotHash(e))
			// Move e into the hole at i unless its home lies cyclically
			// in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				x.slots[i] = e
				i = j
				break
			}
		}
	}
}

// findRef returns the slot holding ref under hash h.
func (x *index) findRef(h uint32, ref uint32) (uint32, bool) {
	want := uint64(h)<<32 | uint64(ref)
	for i := x.home(h); ; i = x.next(i) {
		switch x.slots[i] {
		case want:
			return i, true
		case 0:
			return 0, false
		}
	}
}
