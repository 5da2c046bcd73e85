package cluster

import "shoal/store"

// Range lists the items this node's store holds (server.Cache): what
// lru_crawler metadump and stats cachedump show of a cluster node, as
// memcached's tools expect of one server.
func (r *Router) Range(fn func(key []byte, it store.Item, val []byte) bool) { r.st.Range(fn) }

// Range lists the items this node's store holds, as Router.Range.
func (p *PeerCache) Range(fn func(key []byte, it store.Item, val []byte) bool) { p.r.st.Range(fn) }
