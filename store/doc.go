// Package store holds memcached items in a fixed memory budget and applies
// memcached's storage semantics to them; it knows nothing of wire formats,
// connections or reply lines.
//
// Data flow. A key is hashed once (hash/maphash, per-store seed). The top
// bits pick one of 64 shards; each shard owns a mutex and a pointer-free
// open-addressing index ([]uint64 packing the low 32 hash bits and a 32-bit
// chunk reference). A chunk reference names a page and a chunk within it.
// Pages are 1 MiB slabs (larger when MaxItemSize needs it), each carved
// into equal chunks of one size class: 8 bytes apart below 512 B, then
// growing by GrowthFactor up to half a page, then one class of a whole
// page. An item lives in its chunk: a 32-byte header, the key, then the
// value. An item above half a page whose rest fits a smaller class is
// chunked, as memcached's slab_chunk_max: a half-page head chunk plus a
// tail chunk of the class that fits the rest (chunk.go), so a 576 KiB value
// does not take a whole page. Pages and index tables are mapped outside
// the Go heap (arena, anonymous mmap) and hold no Go pointer, so garbage
// collection cost does not grow with the item count and the GC's heap goal
// does not double the resident size.
//
// Memory. Pages come from a budget of MemoryLimit/PageSize shared by all
// size classes. Classes are global, each guarded by its own mutex, so that
// 64 shards do not multiply the page count. A page whose last item goes
// leaves its class for a global pool, and a class needing a page takes one
// from the pool before allocating a new one, so an item that grows through
// the classes (append) leaves no page behind. When a class has no free
// chunk, the pool is empty and the budget is spent, its CLOCK hand walks
// the class's chunks: a hit only bumps a two-bit counter in the header
// (nothing is relinked); the hand takes one off each counter it passes,
// reclaims expired or flushed items first and evicts the first item at
// zero. A class that owns no page takes one from the class with the most
// free chunks (else the most pages), moving the page's items to that
// class's free chunks while there are some and evicting the rest (slab
// rebalancing, memcached's rescue). Once the budget is spent, Run's
// reclaimer tick also moves a page to the pool from every class holding
// more than two pages' worth of free chunks, rescuing its items (automove),
// so a class that owns pages takes free memory instead of evicting.
//
// Locking. Shard mutex before class mutex, always. Code holding a class
// mutex that must touch another shard's items (the hand, page stealing) only
// TryLocks that shard and skips the chunk when it is busy, so no cycle can
// form. Item bytes are guarded by their shard's mutex; the chunk's owner byte
// and the free list are guarded by the class mutex.
//
// Warm restart. Open maps the pages from a file instead (memcached -e);
// Save, after every user stopped, writes beside it what the pages alone do
// not say (each page's class, how far each class carved, the CAS counter,
// the last flush_all), and the next Open with the same settings rebuilds
// the index and the free lists by walking the pages (persist.go).
// LostSince tells a cluster whether items newer than a version were
// dropped by the store itself, so that a restored copy cannot be brought
// up to date by the writes since alone.
//
// Time. All expiry times are absolute unix seconds; the caller converts
// memcached's relative forms. Run advances a coarse clock once a second
// (unless Config.Clock is set) and frees expired items in the background.
// CAS values count from 1 as memcached's do, or, with Config.HybridCAS (a
// cluster node), follow the wall clock in milliseconds so that they order
// the writes of different nodes; SetOptions.Newer applies a copy only over
// an older item.
//
// Watching. Config.Evicted, when set, hears of every eviction (key, item,
// class) as it happens, under the locks that evict: memcached's watch
// evictions stream is served from it by the glue, and a nil hook costs one
// nil check per eviction. Peek tells the value length of a key's item
// without touching it, for the lookup memcached's fetchers stream logs
// before each write; ClassID names the class of an item size.
package store
