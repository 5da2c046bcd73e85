package cluster

import (
	"sync"

	"shoal/repl"
	"shoal/takeover"
)

// The router's side of package takeover (warm-up, pause, lapse, return
// and restart recovery, handoff): its config, and the router as takeover
// sees it (takeover.Host). The router holds one takeover.Takeover (r.tk)
// and asks it, per request, Awake, Recovering, Warming, Settle, Own,
// Replica, ReplicaNewer and StaleEpoch on the key's takeover.Placement
// (Route.placed), and per view Begin, Transition and Kick (view.go).

// tickEvery is how often Run ticks, and the heartbeat proves the process
// is running (takeover/pause.go).
const tickEvery = takeover.TickEvery

// takeoverConfig is takeover's part of a router's config.
func takeoverConfig(cfg RouterConfig, rp *repl.Replicator, ver takeover.Versions) takeover.Config {
	return takeover.Config{
		Self: cfg.Members.Name(), Log: cfg.Logger, Store: cfg.Store, Membership: cfg.Members, Repl: rp, Versions: ver,
		PauseAfter: cfg.PauseAfter, DownFor: cfg.DownFor, PeerTimeout: cfg.Peer.RequestTimeout,
		OwedFor: viewOwedFor, Restored: cfg.Restored, RestoreMargin: cfg.RestoreMargin,
	}
}

// takeoverHost is the router as takeover sees it (takeover.Host): the
// current view with its members, the view lock, the hints owed.
type takeoverHost Router

func (h *takeoverHost) Current() takeover.PeerView { return h.peers.Load() }
func (h *takeoverHost) ViewLock() sync.Locker      { return &h.mu }
func (h *takeoverHost) Owe(member string, shard int, from uint64) {
	h.push.hints.owe(member, shard, from)
}

// returns is what Run keeps between its ticks for NoticeReturns.
type returns = takeover.Returns
