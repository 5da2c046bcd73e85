package main

import (
	"log/slog"
	"time"

	"shoal/store"
)

// openStore makes the node's store: in memory, or in the memory file of
// -e, restoring what a graceful stop saved there; restored is when that
// was saved (zero when the store starts empty).
func openStore(o options, log *slog.Logger, evicted func(key []byte, it store.Item, class int)) (st *store.Store, restored time.Time, err error) {
	cfg := store.Config{
		Evicted:      evicted,
		MemoryLimit:  o.memoryMB << 20,
		MaxItemSize:  o.maxItemSize,
		NoEvict:      o.noEvict,
		NoCAS:        o.noCAS,
		GrowthFactor: o.growthFactor,
		// A cluster orders the copies of a key by CAS (newest wins).
		HybridCAS: o.clustered(),
	}
	if o.memoryFile == "" {
		st, err = store.New(cfg)
		return st, time.Time{}, err
	}
	st, r, err := store.Open(cfg, o.memoryFile)
	switch {
	case err != nil:
		return nil, time.Time{}, err
	case r.Clean != "":
		// memcached: "[restart] no metadata save file, starting with a
		// clean cache"
		log.Info("memory file: starting with a clean cache", "file", o.memoryFile, "why", r.Clean)
	case r.Items > 0:
		restored = r.SavedAt
		log.Info("memory file: items restored", "file", o.memoryFile, "items", r.Items,
			"saved", restored.UTC().Format(time.RFC3339))
	}
	return st, restored, nil
}

// saveStore saves the memory file for the next start; st must be unused.
func saveStore(st *store.Store, path string, log *slog.Logger) {
	if err := st.Save(path); err != nil {
		log.Error("memory file not saved: the next start is clean", "file", path, "err", err)
		return
	}
	log.Info("memory file saved", "file", path)
}
