package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"shoal/gossip"
	"shoal/peer"
)

// member is one other node: its client and its counters. Counters survive
// view changes for as long as the member keeps its peer address.
type member struct {
	r          *Router // its DownFor, logger, membership, and goroutines (probe)
	name, addr string
	client     *peer.Client
	downUntil  atomic.Int64 // unix nanoseconds; 0: not marked down
	probing    atomic.Bool  // a probe runs (see down)
	forwarded  atomic.Uint64
	failures   atomic.Uint64
	// queued: Start queued a request since the last Flush.
	queued atomic.Bool
}

// Name and Client are m's (source).
func (m *member) Name() string         { return m.name }
func (m *member) Client() *peer.Client { return m.client }

// Usable reports whether a request may go to m now: not marked down, not
// dead to gossip.
func (m *member) Usable() bool { return !m.down() && m.r.cfg.Members.Health(m.name) != gossip.Dead }

// usable reports whether a request may go to m: it is a member with a
// client, not marked down and not dead to gossip.
func usable(m *member) bool { return m != nil && m.Usable() }

// Failed counts a failed request to m and reports whether err means m did
// not answer, in which case m is marked down and the next owner is tried.
func (m *member) Failed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // the request's connection ended: m is not at fault
	}
	m.failures.Add(1)
	if !failover(err) {
		return false
	}
	if m.downUntil.Swap(time.Now().Add(m.r.cfg.DownFor).UnixNano()) == 0 {
		m.r.log.Warn("peer marked down", "peer", m.name, "err", err)
	}
	return true
}

// down reports whether m is marked down. Once the mark is DownFor old, m
// stays down until a probe (one at a time, in the background) gets an
// answer from it, so a host that stopped answering costs one request
// timeout, not one every DownFor. The clock is read only while a mark
// exists, so the healthy path costs no syscall.
func (m *member) down() bool {
	until := m.downUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() >= until && m.probing.CompareAndSwap(false, true) {
		if !m.r.spawn(m.probe) {
			m.probing.Store(false)
		}
	}
	return true
}

// probeKey is read (this node's copy only) to learn whether a member
// answers again.
var probeKey = []byte("shoal:probe")

// probe asks m for probeKey (on a goroutine of the router): any answer ends m's down mark; no answer
// renews it for DownFor.
func (m *member) probe() {
	defer m.probing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), m.r.cfg.DownFor)
	defer cancel()
	_, _, err := m.client.Get(ctx, probeKey, peer.GetOptions{LocalOnly: true, NoBump: true})
	// The probe's own deadline can pass before the request's timeout:
	// that is no answer either.
	if err != nil && (failover(err) || ctx.Err() != nil) {
		m.downUntil.Store(time.Now().Add(m.r.cfg.DownFor).UnixNano())
		return
	}
	m.downUntil.Store(0)
	m.r.log.Info("peer answers again", "peer", m.name)
}

// failover reports whether err means the owner did not answer, so the
// next owner should be tried; a reply error is the owner's answer. An
// owner that fails the peer handshake (it is not a member, or does not
// take this node as one) is not routed to either.
func failover(err error) bool {
	return errors.Is(err, peer.ErrDown) || errors.Is(err, peer.ErrTimeout) || errors.Is(err, peer.ErrUnreachable) ||
		errors.Is(err, peer.ErrConnLost) || errors.Is(err, peer.ErrClosed) ||
		errors.Is(err, peer.ErrProtocol) || errors.Is(err, peer.ErrHandshake)
}
