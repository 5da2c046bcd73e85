package store

import (
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// arena hands out memory outside the Go heap (anonymous mmap) for pages
// and index tables. Off-heap memory is never scanned or counted by the
// garbage collector, so the GC's heap goal does not double the cache's
// footprint, and a table replaced on growth goes back to the OS at once
// instead of waiting for a collection. The Store's cleanup releases what is
// left when the Store is garbage.
type arena struct {
	mu sync.Mutex
	// Guarded by mu: every live mapping by its first byte.
	live map[*byte][]byte
	lock *os.File // holds the memory file's lock (Open); closed by release
}

func newArena() *arena { return &arena{live: make(map[*byte][]byte)} }

// bytes returns n zeroed bytes. When mmap fails it falls back to the heap,
// which is slower to collect but correct.
func (a *arena) bytes(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	a.mu.Lock()
	a.live[&b[0]] = b
	a.mu.Unlock()
	return b
}

// adopt takes mapping b of the memory file into the arena, so that release
// unmaps it with the rest, and lock, the descriptor holding the file's
// lock, which release closes.
func (a *arena) adopt(b []byte, lock *os.File) {
	a.mu.Lock()
	a.live[&b[0]] = b
	a.lock = lock
	a.mu.Unlock()
}

// unsafePointer returns the address of b's first byte, for syscalls.
func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

// unlockFile unlocks the memory file for the next Open; the mapping stays.
func (a *arena) unlockFile() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unlockFileLocked()
}

func (a *arena) unlockFileLocked() {
	if a.lock != nil {
		a.lock.Close()
		a.lock = nil
	}
}

// uint64s returns n zeroed uint64s from the arena.
func (a *arena) uint64s(n int) []uint64 {
	b := a.bytes(n * 8)
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
}

// free returns memory obtained from bytes or uint64s (identified by its
// first element) to the OS; heap fallbacks are left to the GC.
func (a *arena) free(first unsafe.Pointer) {
	a.mu.Lock()
	b, ok := a.live[(*byte)(first)]
	delete(a.live, (*byte)(first))
	a.mu.Unlock()
	if ok {
		syscall.Munmap(b)
	}
}

// release unmaps everything; nothing from the arena may be used after.
func (a *arena) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, b := range a.live {
		syscall.Munmap(b)
		delete(a.live, k)
	}
	a.unlockFileLocked()
}
