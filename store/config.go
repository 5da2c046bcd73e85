package store

import (
	"fmt"
	"math/bits"
	"time"
)

// DefaultGrowthFactor is the ratio between neighbouring size classes when
// Config.GrowthFactor is zero: finer than memcached's 1.25, which loses
// ~11% to rounding.
const DefaultGrowthFactor = 1.08

// Defaults, as memcached's.
const (
	defaultMemoryLimit     = 64 << 20
	defaultMaxItemSize     = 1 << 20
	defaultGrowthFactor    = DefaultGrowthFactor
	defaultReclaimInterval = 100 * time.Millisecond

	minMaxItemSize = 1024
	maxMaxItemSize = 1 << 30
	basePageSize   = 1 << 20
	minChunkSize   = 48
	exactStep      = 512 // chunk sizes below this are 8 bytes apart
	maxKeyLen      = 250
	numShards      = 64
	shardShift     = 64 - 6 // top 6 hash bits pick the shard
)

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = defaultMemoryLimit
	}
	if c.MaxItemSize == 0 {
		c.MaxItemSize = defaultMaxItemSize
	}
	if c.GrowthFactor == 0 {
		c.GrowthFactor = defaultGrowthFactor
	}
	if c.ReclaimInterval == 0 {
		c.ReclaimInterval = defaultReclaimInterval
	}
	return c
}

// Validate reports whether c, with defaults applied, describes a usable
// store. Errors wrap ErrConfig.
func (c Config) Validate() error {
	if c.MemoryLimit < 0 {
		return fmt.Errorf("%w: negative MemoryLimit %d", ErrConfig, c.MemoryLimit)
	}
	d := c.withDefaults()
	if d.MaxItemSize < minMaxItemSize || d.MaxItemSize > maxMaxItemSize {
		return fmt.Errorf("%w: MaxItemSize %d outside [%d, %d]", ErrConfig, d.MaxItemSize, minMaxItemSize, maxMaxItemSize)
	}
	if int64(d.MaxItemSize) > d.MemoryLimit/2 {
		return fmt.Errorf("%w: cannot set item size limit higher than 1/2 of memory max (MaxItemSize %d, MemoryLimit %d)", ErrConfig, d.MaxItemSize, d.MemoryLimit)
	}
	if !(d.GrowthFactor > 1 && d.GrowthFactor <= 2) {
		return fmt.Errorf("%w: GrowthFactor %v outside (1, 2]", ErrConfig, d.GrowthFactor)
	}
	if d.NoCAS && d.HybridCAS {
		return fmt.Errorf("%w: NoCAS with HybridCAS", ErrConfig)
	}
	if d.ReclaimInterval < 0 {
		return fmt.Errorf("%w: negative ReclaimInterval", ErrConfig)
	}
	g := newGeometry(d)
	if d.MemoryLimit/int64(g.pageSize) > int64(g.maxPageID) {
		return fmt.Errorf("%w: MemoryLimit %d needs more than %d pages", ErrConfig, d.MemoryLimit, g.maxPageID)
	}
	return nil
}

// geometry is the fixed layout derived from a Config.
type geometry struct {
	pageSize   int
	chunkBits  uint   // low bits of a chunk reference: chunk index in page
	maxPageID  uint32 // page ids run 1..maxPageID
	chunkSizes []int  // ascending; the last equals pageSize
	// head is the class of the head chunks of chunked items: the largest
	// below the page size, half a page (chunk.go).
	head int
}

func newGeometry(c Config) geometry {
	// 1 MiB pages, fewer bytes when the limit is tiny (so that there are
	// at least two), more when a single item needs it.
	ps := basePageSize
	if half := int(c.MemoryLimit/2) &^ 7; half < ps {
		ps = half
	}
	if m := roundUp(c.MaxItemSize, 8); m > ps {
		ps = m
	}
	g := geometry{pageSize: ps}
	g.chunkBits = uint(bits.Len(uint(ps/minChunkSize - 1)))
	g.maxPageID = 1<<(32-g.chunkBits) - 1
	// Below exactStep the classes are 8 bytes apart, so a small item
	// wastes at most 7 bytes of its chunk: small items are most of what a
	// cache holds, and memcached's 1.25 factor loses ~11% to rounding
	// there. Above, classes grow by GrowthFactor.
	for s := minChunkSize; s <= ps/2; {
		g.chunkSizes = append(g.chunkSizes, s)
		n := roundUp(int(float64(s)*c.GrowthFactor), 8)
		if n < s+8 || s < exactStep {
			n = s + 8
		}
		s = n
	}
	if half := ps / 2 &^ 7; half > g.chunkSizes[len(g.chunkSizes)-1] {
		g.chunkSizes = append(g.chunkSizes, half)
	}
	g.head = len(g.chunkSizes) - 1
	g.chunkSizes = append(g.chunkSizes, ps)
	return g
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// classFor returns the smallest class whose chunks hold size bytes, or -1.
func (g *geometry) classFor(size int) int {
	lo, hi := 0, len(g.chunkSizes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if g.chunkSizes[m] < size {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(g.chunkSizes) {
		return -1
	}
	return lo
}
