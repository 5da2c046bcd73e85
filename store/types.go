package store

import (
	"errors"
	"time"
)

// Errors returned by New, SetMemoryLimit and Run.
var (
	ErrConfig  = errors.New("store: invalid config")
	ErrRunning = errors.New("store: already running")
)

// Clock tells the time in whole unix seconds. Implementations must be safe
// for concurrent use. Tests inject a manual clock; the default is a coarse
// clock advanced by Run.
type Clock interface {
	Now() int64
}

// Config sizes a Store. The zero value of every field means the memcached
// default.
type Config struct {
	// MemoryLimit is the hard limit, in bytes, on memory holding items
	// (memcached -m). Zero means 64 MiB.
	MemoryLimit int64
	// MaxItemSize is the largest item, header and key included (memcached
	// -I). Zero means 1 MiB.
	MaxItemSize int
	// NoEvict makes a full store refuse writes with NoMemory instead of
	// evicting (memcached -M).
	NoEvict bool
	// Clock is the time source; nil means the store's own coarse clock,
	// advanced once a second by Run.
	Clock Clock
	// HybridCAS makes every CAS the store hands out a hybrid logical clock
	// reading: unix milliseconds << 16 plus a counter, and always above any
	// CAS handed out or applied before (an explicit NewCAS moves it). In a
	// cluster the CAS then orders the writes of different owners of a key
	// (the later write has the larger CAS, unless clocks are skewed by more
	// than the time between the writes), and copies converge to the newest
	// (SetOptions.Newer). False: memcached's counter from 1.
	HybridCAS bool
	// NoCAS hands out no CAS (memcached -C): every item's CAS is 0, so a
	// write or delete that names one finds it changed (Exists), and
	// flush_all goes by the second of each write, as memcached's does
	// without CAS. Not with HybridCAS.
	NoCAS bool
	// GrowthFactor is the ratio between neighbouring chunk sizes (memcached
	// -f). Zero means 1.08; otherwise it must be in (1, 2].
	GrowthFactor float64
	// ReclaimInterval is how often Run's reclaimer frees a slice of every
	// shard's expired items. Zero means 100ms.
	ReclaimInterval time.Duration

	// Evicted, when set, is called for each live item evicted to make room
	// (memcached's watch evictions stream), with its key, its description
	// (Exptime, LastAccess, Fetched, Size) and its size class id as stats
	// slabs numbers it. Items reclaimed because they expired or were
	// flushed are not reported. It runs on the goroutine that evicts,
	// holding the item's shard and class locks: it must return quickly,
	// must not call the Store, and must not retain key. Nil costs nothing.
	Evicted func(key []byte, it Item, class int)
}

// Result is the outcome of a store operation. The mapping to reply lines
// lives in the connection server, not here.
type Result uint8

// Results.
const (
	Stored     Result = iota // write applied
	NotStored                // add on existing, replace/append/prepend on missing
	Exists                   // CAS mismatch
	NotFound                 // key absent, expired or flushed
	Deleted                  // delete applied
	Touched                  // touch applied
	Hit                      // read found the item
	Miss                     // read found nothing
	TooLarge                 // item can never fit MaxItemSize
	NoMemory                 // NoEvict and the store is full, or no page could be freed
	NonNumeric               // incr/decr on a value that is not a decimal uint64
)

// Mode selects the semantics of Set.
type Mode uint8

// Write modes.
const (
	ModeSet Mode = iota
	ModeAdd
	ModeReplace
	ModeAppend
	ModePrepend
)

// Item describes one item as seen by the operation that returned it. It
// holds no reference into the store.
type Item struct {
	Flags   uint32
	Exptime int64  // absolute unix seconds; 0 means never
	CAS     uint64 // unique per write
	Size    int    // value length in bytes
	// LastAccess is the unix time of the access before this one.
	LastAccess int64
	// Fetched reports whether the item had been read before this access.
	Fetched bool
	// Stale is set on items invalidated by DeleteOptions.Invalidate or
	// SetOptions.Invalidate (meta X flag).
	Stale bool
	// Win: this caller won the right to recompute the item (meta W flag).
	Win bool
	// TokenSent: another caller already holds the win token (meta Z flag).
	TokenSent bool
	// KeyBinary: the item was written with SetOptions.KeyBinary, so meta
	// commands return its key base64-encoded whatever the reading request
	// says, as memcached does.
	KeyBinary bool
	// Created: this operation created the item (GetOptions.Vivify or
	// ArithOptions.Vivify on a miss) rather than finding it.
	Created bool
}

// GetOptions tunes a read. A nil *GetOptions is a plain get that bumps.
type GetOptions struct {
	Touch   bool  // set Exptime on a hit (gat, mg T)
	Exptime int64 // absolute; 0 means never
	NoBump  bool  // mg u: leave fetched, last-access and the CLOCK bit alone
	// Vivify (mg N): on a miss, create an empty item with VivifyExptime and
	// return Win to this caller; later callers see TokenSent. Touch does not
	// apply to the created item: memcached applies N and T in token order,
	// so the caller passes the one that wins as VivifyExptime.
	Vivify        bool
	VivifyExptime int64
	// RecacheBelow (mg R): when > 0 and the remaining TTL is below this many
	// seconds, the first caller gets Win and later ones TokenSent.
	RecacheBelow int64
}

// SetOptions tunes a write.
type SetOptions struct {
	Mode    Mode
	Flags   uint32
	Exptime int64  // absolute; 0 means never
	CAS     uint64 // compare-and-swap against this CAS when non-zero
	NewCAS  uint64 // use this CAS for the new item when non-zero (meta E)
	// Newer, with NewCAS: store only when the key is missing or its item's
	// CAS is not above NewCAS; otherwise NotStored and the item is left
	// alone. A copy of a write applied with Newer never replaces a newer
	// write (an equal CAS is the same write, maybe touched since).
	Newer bool
	// Invalidate (ms I): with CAS set and older than the item's, store the
	// value but mark it stale instead of failing with Exists.
	Invalidate bool
	// Vivify (ms N with append/prepend): create the item when missing.
	Vivify bool
	// KeyBinary (ms b): remember that the client sent the key base64
	// encoded. memcached keeps the mark on the item a write allocates, so
	// append and prepend, which build a new item, drop it, and so does an
	// incr that outgrows its value.
	KeyBinary bool
}

// DeleteOptions tunes a delete. A nil *DeleteOptions is a plain delete.
type DeleteOptions struct {
	CAS    uint64 // delete only when the item's CAS matches, when non-zero
	NewCAS uint64 // meta E, with Invalidate
	// Invalidate (md I): mark the item stale and, when Touch is set, give it
	// Exptime, instead of removing it.
	Invalidate bool
	Touch      bool
	Exptime    int64
	// Before, when non-zero, is the version of a delete (a hybrid-clock CAS,
	// Store.Stamp): only an item older than it is removed; a newer one, a
	// write that came after the delete, stays and the result is NotFound.
	Before uint64
}

// ArithOptions tunes incr/decr.
type ArithOptions struct {
	Decr   bool
	Delta  uint64
	CAS    uint64 // when non-zero, apply only if the CAS matches
	NewCAS uint64
	// Vivify (ma N): on a miss create the item holding Initial, with
	// VivifyExptime; Touch does not apply to it (see GetOptions.Vivify).
	Vivify        bool
	Initial       uint64
	VivifyExptime int64
	Touch         bool // set Exptime on success (ma T)
	Exptime       int64
}

// Stats is a snapshot of the counters the store owns. It feeds both the
// memcached stats command and the metrics exporter.
type Stats struct {
	CurrItems        int64
	TotalItems       int64
	Bytes            int64 // bytes of items, as memcached counts them
	LimitMaxbytes    int64
	Evictions        int64
	EvictedUnfetched int64
	Reclaimed        int64 // expired items whose memory was reused
	ExpiredUnfetched int64
	GetExpired       int64 // lookups (reads and writes) that found an expired item
	GetFlushed       int64 // lookups (reads and writes) that found a flushed item
	Pages            int64 // pages allocated
	PoolPages        int64 // of Pages, those no size class holds (free for any)
	Rescued          int64 // items moved out of a page given to another class
	PageSize         int64
	Classes          []ClassStats
}

// ClassStats describes one size class, for "stats slabs" and "stats items".
type ClassStats struct {
	ID         int
	ChunkSize  int
	Pages      int
	UsedChunks int64
	FreeChunks int64
	Items      int64
	Evicted    int64
	Reclaimed  int64
	OldestAge  int64 // seconds since last access of the item evicted last
}
