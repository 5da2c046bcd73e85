package cluster

import (
	"shoal/gossip"
	"shoal/repl"
	"shoal/store"
)

// Replicator receives the result of every write this node applies as the
// serving owner of a key, with the key's other owners as targets.
// *repl.Replicator implements it. Push must not block or retain key or
// it.Value.
type Replicator interface {
	Push(key []byte, targets []repl.Target, it repl.Item)
}

// targets reports whether this node serves key now (it is the first owner
// in the ring that is not skipped as down or dead, as walk decides) and,
// if so, the key's other owners: the replicas to push its writes to.
func (r *Router) targets(key []byte) ([]repl.Target, bool) {
	v := r.cfg.Members.View()
	if v == nil || v.Ring == nil {
		return nil, false
	}
	owners := v.Ring.Owners(v.Ring.Shard(key))
	ps := r.peerSet(v)
	serving := false
	var out []repl.Target
	for _, name := range owners {
		if name == r.self {
			serving = true
			continue
		}
		m := ps.get(name)
		if !serving && m != nil && !m.down() && r.cfg.Members.Health(name) != gossip.Dead {
			return nil, false // an earlier owner serves it
		}
		if m != nil {
			out = append(out, repl.Target{Name: m.name, Addr: m.addr})
		}
	}
	return out, serving
}

// result reads back what a write left in the local store, without
// bumping it.
func (r *Router) result(key []byte) repl.Item {
	it, val, res := r.st.Get(key, &store.GetOptions{NoBump: true}, nil)
	if res != store.Hit {
		return repl.Item{Deleted: true}
	}
	return repl.Item{Value: val, Flags: it.Flags, Exptime: it.Exptime, CAS: it.CAS}
}

// replicate pushes the result of a local write of key to targets.
func (r *Router) replicate(key []byte, targets []repl.Target) {
	if len(targets) > 0 {
		r.cfg.Replicator.Push(key, targets, r.result(key))
	}
}

// PeerCache returns the Cache for the peer listener: this node's store,
// where forwarded and replicated writes arrive. A forwarded write is pushed
// to the key's other owners when this node serves the key; a replicated
// one is not pushed again. Replicated sets are told apart by the explicit
// CAS they carry (meta E, which only the peer listener accepts and only
// repl sends); a replicated delete is pushed again at most once, since a
// second delete finds nothing to delete, which ends any cycle while two
// nodes disagree on the ring. PeerCache implements server.Cache.
func (r *Router) PeerCache() *PeerCache { return &PeerCache{r: r} }

// PeerCache is the peer listener's Cache; see Router.PeerCache.
type PeerCache struct{ r *Router }

// write runs op against the local store and, when op changed the item and
// this node serves key, replicates the result.
func (p *PeerCache) write(key []byte, op func() bool) {
	r := p.r
	if !op() || r.cfg.Replicator == nil {
		return
	}
	if targets, serving := r.targets(key); serving {
		r.replicate(key, targets)
	}
}

func (p *PeerCache) Now() int64                       { return p.r.st.Now() }
func (p *PeerCache) Fits(keyLen, valueLen int) bool   { return p.r.st.Fits(keyLen, valueLen) }
func (p *PeerCache) FlushAll(delay int64)             { p.r.st.FlushAll(delay) }
func (p *PeerCache) SetMemoryLimit(bytes int64) error { return p.r.st.SetMemoryLimit(bytes) }
func (p *PeerCache) Stats() store.Stats               { return p.r.st.Stats() }
func (p *PeerCache) ResetStats()                      { p.r.st.ResetStats() }

// Get reads the local store; a touch or a vivify is a write.
func (p *PeerCache) Get(key []byte, opt *store.GetOptions, dst []byte) (it store.Item, val []byte, res store.Result) {
	if opt == nil || (!opt.Touch && !opt.Vivify) {
		return p.r.st.Get(key, opt, dst)
	}
	p.write(key, func() bool {
		it, val, res = p.r.st.Get(key, opt, dst)
		return (opt.Touch && res == store.Hit) || it.Created
	})
	return it, val, res
}

// Set writes the local store; a replica's copy (explicit CAS) stops here.
func (p *PeerCache) Set(key, value []byte, opt *store.SetOptions) (res store.Result, it store.Item, err error) {
	if opt != nil && opt.NewCAS != 0 {
		res, it = p.r.st.Set(key, value, opt)
		return res, it, nil
	}
	p.write(key, func() bool {
		res, it = p.r.st.Set(key, value, opt)
		return res == store.Stored
	})
	return res, it, nil
}

// Delete deletes from the local store.
func (p *PeerCache) Delete(key []byte, opt *store.DeleteOptions) (res store.Result, it store.Item, err error) {
	p.write(key, func() bool {
		res, it = p.r.st.Delete(key, opt)
		return res == store.Deleted
	})
	return res, it, nil
}

// Arith applies incr/decr in the local store.
func (p *PeerCache) Arith(key []byte, opt *store.ArithOptions) (res store.Result, v uint64, it store.Item, err error) {
	p.write(key, func() bool {
		res, v, it = p.r.st.Arith(key, opt)
		return res == store.Stored
	})
	return res, v, it, nil
}

// Touch touches in the local store.
func (p *PeerCache) Touch(key []byte, exptime int64) (res store.Result, it store.Item, err error) {
	p.write(key, func() bool {
		res, it = p.r.st.Touch(key, exptime)
		return res == store.Touched
	})
	return res, it, nil
}
