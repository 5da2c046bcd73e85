package node

import (
	"log/slog"
	"time"

	"shoal/store"
)

// openStore makes the node's store: in memory, or in the memory file of
// -e, restoring what a graceful stop saved there; restored is when that
// was saved (zero when the store starts empty).
func openStore(o Config, log *slog.Logger, evicted func(key []byte, it store.Item, class int)) (st *store.Store, restored time.Time, err error) {
	cfg := store.Config{
		Evicted:      evicted,
		MemoryLimit:  o.MemoryMB << 20,
		MaxItemSize:  o.MaxItemSize,
		NoEvict:      o.NoEvict,
		NoCAS:        o.NoCAS,
		GrowthFactor: o.GrowthFactor,
		// A cluster orders the copies of a key by CAS (newest wins).
		HybridCAS: o.Clustered(),
	}
	if o.MemoryFile == "" {
		st, err = store.New(cfg)
		return st, time.Time{}, err
	}
	st, r, err := store.Open(cfg, o.MemoryFile)
	switch {
	case err != nil:
		return nil, time.Time{}, err
	case r.Clean != "":
		// memcached: "[restart] no metadata save file, starting with a
		// clean cache"
		log.Info("memory file: starting with a clean cache", "file", o.MemoryFile, "why", r.Clean)
	case r.Items > 0:
		restored = r.SavedAt
		log.Info("memory file: items restored", "file", o.MemoryFile, "items", r.Items,
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
