package server

// RingInfo is what a ring-aware client learns the cluster from, behind
// "stats ring": the membership the node's ring is built from and the
// settings placement uses, as name/value pairs in display order. The
// server does not interpret them. A ClusterInfo may implement it; a node
// whose ClusterInfo does not (or a standalone node) answers "stats ring"
// with ERROR, as memcached answers an unknown stats subcommand. It is
// called from connection goroutines concurrently.
type RingInfo interface {
	RingStats() [][2]string
}

// ringStats answers "stats ring"; false when there is no ring to serve.
func (s *Server) ringStats(w *statWriter) bool {
	ri, ok := s.cfg.Cluster.(RingInfo)
	if !ok {
		return false
	}
	for _, kv := range ri.RingStats() {
		w.str(kv[0], kv[1])
	}
	return true
}
