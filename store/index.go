package store

// index maps keys to chunk references for one shard. It is open addressing
// with linear probing over []uint64, each slot packing the low 32 bits of
// the key's hash (high half) and a chunk reference (low half, never zero).
// Deletion shifts followers back instead of leaving tombstones, so probe
// chains stay short without periodic rebuilds. Holding no pointers, the
// table costs the garbage collector nothing to scan.
type index struct {
	slots []uint64
	mask  uint32
	count int
}

const minIndexSlots = 256

func newIndex(n int) index {
	return index{slots: make([]uint64, n), mask: uint32(n - 1)}
}

func slotHash(e uint64) uint32 { return uint32(e >> 32) }
func slotRef(e uint64) uint32  { return uint32(e) }

// insert adds ref under hash h; the caller has checked the key is absent.
func (x *index) insert(h uint32, ref uint32) {
	if (x.count+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	i := h & x.mask
	for x.slots[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = uint64(h)<<32 | uint64(ref)
	x.count++
}

func (x *index) grow() {
	old := x.slots
	*x = newIndex(len(old) * 2)
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := slotHash(e) & x.mask
		for x.slots[i] != 0 {
			i = (i + 1) & x.mask
		}
		x.slots[i] = e
		x.count++
	}
}

// remove empties slot i and shifts the rest of its probe chain back.
func (x *index) remove(i uint32) {
	for {
		j := i
		for {
			j = (j + 1) & x.mask
			e := x.slots[j]
			if e == 0 {
				x.slots[i] = 0
				x.count--
				return
			}
			home := slotHash(e) & x.mask
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
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		switch x.slots[i] {
		case want:
			return i, true
		case 0:
			return 0, false
		}
	}
}
