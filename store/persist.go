package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// Warm restart, as memcached's -e <file>. Open maps the pages from a file
// (on a RAM disk, as memcached advises), and Save, after a clean stop,
// writes what the pages alone do not say beside it: which class owns each
// page, how far each class has carved its last page, the CAS counter and
// the last flush_all. The next Open with the same file and the same
// settings reads that, deletes it (a crash from then on must not restore
// a half-written cache) and rebuilds the index and the free lists by
// walking the pages: a chunk whose owner byte is set holds an item (or the
// tail of one), any other carved chunk is free. The hash seed is new, so
// every key is hashed again and its owner byte rewritten. Times are
// absolute unix seconds, so TTLs count on across the restart.

// snapshotFormat changes when the page or metadata layout does.
const snapshotFormat = 1

// snapshot is the metadata Save writes to <file>.meta, as JSON.
type snapshot struct {
	Format       int
	MemoryLimit  int64
	MaxItemSize  int
	GrowthFactor float64
	HybridCAS    bool
	NoCAS        bool
	PageSize     int
	ChunkSizes   []int
	FileSize     int64
	// Pages is per page id, from 1: the class owning it, -1 when pooled.
	Pages []int32
	// Carve is per class: the page being carved (0: none) and its next
	// uncarved chunk.
	Carve [][2]int
	CAS   uint64
	Flush *savedFlush `json:",omitempty"`
	Saved int64       // unix seconds, by the store's clock
	// SavedMs is the wall clock in unix milliseconds: a cluster pulls
	// what changed since then, and the store's clock is whole seconds.
	SavedMs int64
}

type savedFlush struct {
	Live  int64
	CAS   uint64
	Exact bool
}

// Restored says what Open found in the memory file.
type Restored struct {
	Items int64 // items restored; 0 on a clean start
	// Clean says why the cache starts empty (memcached's "[restart]"
	// log line); empty when items were restored.
	Clean string
	Saved int64 // unix seconds of the Save restored from, by the store's clock
	// SavedAt is the wall-clock time of that Save, to the millisecond.
	SavedAt time.Time
}

// ErrNoFile is returned by Save on a store not opened with a file.
var ErrNoFile = errors.New("store: no memory file")

// Open returns a store whose pages live in the file at path, created or
// resized as needed (memcached -e). When a Save left metadata for this
// file and the settings that shape the pages match cfg (memory limit,
// item size limit, growth factor, HybridCAS), the items are restored;
// otherwise the file is cleared and the store starts empty. Unlike New,
// Open does I/O.
func Open(cfg Config, path string) (*Store, Restored, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, Restored{}, err
	}
	size := s.maxPages.Load() * int64(s.geo.pageSize)
	meta := path + ".meta"
	snap, clean := readSnapshot(meta)
	if err := os.Remove(meta); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, Restored{}, fmt.Errorf("store: memory file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0600)
	if err != nil {
		return nil, Restored{}, fmt.Errorf("store: memory file: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	// Locked until Save or the store's cleanup: a second process on the
	// same file would clear or overwrite the first's items. The lock is
	// taken on a descriptor of its own, since the mapping keeps f's open
	// (and a lock on it) until it is unmapped.
	lock, err := os.Open(path)
	if err == nil {
		if err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			lock.Close()
			err = fmt.Errorf("%s is in use by another process: %w", path, err)
		}
	}
	if err != nil {
		return nil, Restored{}, fmt.Errorf("store: memory file: %w", err)
	}
	fail := func(err error) (*Store, Restored, error) {
		lock.Close()
		return nil, Restored{}, fmt.Errorf("store: memory file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if snap != nil {
		clean = s.incompatible(snap, fi.Size(), size)
	}
	if clean != "" {
		// Zeroed pages: a clean start sees nothing of an earlier cache.
		if err := f.Truncate(0); err == nil {
			err = f.Truncate(size)
		}
		if err != nil {
			return fail(err)
		}
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("mmap: %w", err))
	}
	s.mem.adopt(m, lock)
	s.file = m
	if clean != "" {
		return s, Restored{Clean: clean}, nil
	}
	return s, Restored{Items: s.restore(snap), Saved: snap.Saved, SavedAt: time.UnixMilli(snap.SavedMs)}, nil
}

// readSnapshot reads the metadata file; on failure it returns why the
// cache starts clean.
func readSnapshot(path string) (*snapshot, string) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "no metadata save file"
	}
	if err != nil {
		return nil, "metadata unreadable: " + err.Error()
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, "metadata corrupt: " + err.Error()
	}
	return &snap, ""
}

// incompatible returns why snap cannot be restored into s, or "".
func (s *Store) incompatible(snap *snapshot, fileSize, size int64) string {
	switch {
	case snap.Format != snapshotFormat:
		return fmt.Sprintf("metadata format %d, want %d", snap.Format, snapshotFormat)
	case snap.MemoryLimit != s.cfg.MemoryLimit:
		return "memory limit changed"
	case snap.MaxItemSize != s.cfg.MaxItemSize:
		return "item size limit changed"
	case snap.GrowthFactor != s.cfg.GrowthFactor || snap.PageSize != s.geo.pageSize || !slices.Equal(snap.ChunkSizes, s.geo.chunkSizes):
		return "slab sizes changed"
	case snap.NoCAS != s.cfg.NoCAS:
		return "CAS enabled or disabled (-C)"
	case snap.HybridCAS != s.cfg.HybridCAS:
		return "CAS mode changed (standalone and cluster)"
	case snap.FileSize != size || fileSize != size:
		return "memory file size changed"
	case int64(len(snap.Pages)) > s.maxPages.Load() || len(snap.Carve) != len(s.classes):
		return "metadata does not fit the settings"
	}
	for ci, cv := range snap.Carve {
		if cv[0] < 0 || cv[0] > len(snap.Pages) || cv[1] < 0 || cv[1] > s.classes[ci].perPage ||
			cv[0] > 0 && snap.Pages[cv[0]-1] != int32(ci) {
			return "metadata does not fit the settings"
		}
	}
	for _, ci := range snap.Pages {
		if ci < -1 || int(ci) >= len(s.classes) {
			return "metadata does not fit the settings"
		}
	}
	return ""
}

// restore rebuilds the pages' classes, the free lists and the index from
// snap and the items in the mapped pages; it returns the items found. The
// store is not in use yet.
func (s *Store) restore(snap *snapshot) int64 {
	s.nPages.Store(int64(len(snap.Pages)))
	for i, ci := range snap.Pages {
		pid := uint32(i + 1)
		s.newPage(pid)
		if ci < 0 {
			s.pool = append(s.pool, pid)
			continue
		}
		cl := &s.classes[ci]
		p := s.page(pid)
		p.chunk.Store(uint32(cl.size))
		p.class.Store(ci)
		cl.pages = append(cl.pages, pid)
	}
	s.poolLen.Store(int64(len(s.pool)))
	s.cas.Store(snap.CAS)
	if f := snap.Flush; f != nil {
		s.flush.Store(&horizon{live: f.Live, cas: f.CAS, exact: f.Exact})
	}
	var items int64
	for ci := range s.classes {
		cl := &s.classes[ci]
		cl.carvePid, cl.carveNext = uint32(snap.Carve[ci][0]), snap.Carve[ci][1]
		for _, pid := range slices.Clone(cl.pages) {
			for i := range cl.carved(pid) {
				ref := s.ref(pid, i)
				c := s.chunk(ref)
				if c.owner() == 0 {
					s.push(cl, ref)
					continue
				}
				s.page(pid).used++
				cl.used++
				c.clear(bitPinned)
				if c.has(bitPiece) && ci != s.geo.head {
					cl.tails++ // its owner byte is set with its head's
					continue
				}
				s.relink(ref, c)
				items++
			}
			if s.page(pid).used == 0 {
				s.releasePage(cl, pid)
			}
		}
	}
	return items
}

// relink puts restored item c, in chunk ref, in the index of the shard its
// key hashes to now.
func (s *Store) relink(ref uint32, c hdr) {
	full := s.hash(c.key())
	own := int(full >> shardShift)
	sh := &s.shards[own]
	sh.idx.insert(uint32(full), ref)
	sh.items++
	sh.bytes += int64(c.size() + memcachedItemOverhead)
	c.setOwner(own + 1)
	if c.has(bitPiece) {
		s.chunk(c.tailRef()).setOwner(own + 1)
	}
}

// Save writes the metadata a later Open needs to restore the items, after
// flushing the pages to the file. Every user of the store must have
// stopped (Run returned, no call in flight): Save locks every shard and
// leaves them locked, so the store is unusable afterwards; it unlocks the
// file for the next Open.
func (s *Store) Save(path string) error {
	if s.file == nil {
		return ErrNoFile
	}
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	defer s.mem.unlockFile() // the next Open may lock it
	snap := snapshot{
		Format:       snapshotFormat,
		MemoryLimit:  s.cfg.MemoryLimit,
		MaxItemSize:  s.cfg.MaxItemSize,
		GrowthFactor: s.cfg.GrowthFactor,
		HybridCAS:    s.cfg.HybridCAS,
		NoCAS:        s.cfg.NoCAS,
		PageSize:     s.geo.pageSize,
		ChunkSizes:   s.geo.chunkSizes,
		FileSize:     int64(len(s.file)),
		Pages:        make([]int32, s.nPages.Load()),
		Carve:        make([][2]int, len(s.classes)),
		CAS:          s.cas.Load(),
		Saved:        s.Now(),
		SavedMs:      time.Now().UnixMilli(),
	}
	for i := range snap.Pages {
		snap.Pages[i] = s.page(uint32(i + 1)).class.Load()
	}
	s.poolMu.Lock()
	for _, pid := range s.pool {
		snap.Pages[pid-1] = -1 // a pooled page keeps the class it left
	}
	s.poolMu.Unlock()
	for ci := range s.classes {
		cl := &s.classes[ci]
		cl.mu.Lock()
		snap.Carve[ci] = [2]int{int(cl.carvePid), cl.carveNext}
		cl.mu.Unlock()
	}
	if hz := s.flush.Load(); hz != nil {
		snap.Flush = &savedFlush{Live: hz.live, CAS: hz.cas, Exact: hz.exact}
	}
	if err := msync(s.file); err != nil {
		return fmt.Errorf("store: memory file: msync: %w", err)
	}
	b, err := json.Marshal(&snap)
	if err != nil {
		return err
	}
	return writeFileSync(path+".meta", b)
}

func msync(b []byte) error {
	_, _, errno := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafePointer(b)), uintptr(len(b)), syscall.MS_SYNC)
	if errno != 0 {
		return errno
	}
	return nil
}

// writeFileSync writes b to path through a synced temporary file and a
// rename, so that path is either absent or whole.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
	if err != nil {
		return fmt.Errorf("store: memory file: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: memory file: %w", err)
	}
	return nil
}
