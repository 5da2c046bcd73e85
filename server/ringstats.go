package server

// ringStats answers "stats ring" (ClusterInfo.RingStats); false when there
// is no ring to serve: a standalone node, or a ClusterInfo with none,
// answers ERROR, as memcached answers an unknown stats subcommand.
func (s *Server) ringStats(w *statWriter) bool {
	if s.cfg.Cluster == nil {
		return false
	}
	ring := s.cfg.Cluster.RingStats()
	if ring == nil {
		return false
	}
	for _, kv := range ring {
		w.str(kv[0], kv[1])
	}
	return true
}
