package etcdsync

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	errLeaseGone = errors.New("etcdsync: lease gone")
	errContended = errors.New("etcdsync: member record changed while claiming it")
)

// lease is one granted lease and its keepalive.
type lease struct {
	id      clientv3.LeaseID
	cancel  context.CancelFunc // stops the keepalive
	lost    chan struct{}      // closed when the keepalive channel closes
	lastAck atomic.Int64       // monotonic ns of the last acknowledgement (first: of the grant request)
}

// register keeps this node's record in etcd until ctx ends. It returns
// ErrSuperseded, or nil when ctx ends.
func (s *Sync) register(ctx context.Context, cli *clientv3.Client) error {
	var (
		drains     sync.WaitGroup // keepalive drainers, one per lease granted
		l          *lease
		registered bool
		first      = true
		needTouch  bool
		bo         retry
		retryC     <-chan time.Time
	)
	defer func() {
		s.validUntil.Store(0)
		if l != nil {
			l.cancel()
		}
		drains.Wait()
	}()
	dropLease := func() {
		s.validUntil.Store(0)
		if registered && l != nil {
			s.fencedAck.Store(l.lastAck.Load())
		}
		registered = false
		if l != nil {
			l.cancel()
			l = nil
			s.leaseID.Store(0)
		}
	}
	backOff := func(what string, err error) {
		s.log.Log(ctx, bo.level(), "etcdsync: "+what+" failed, retrying", "err", err)
		retryC = time.After(bo.delay())
	}
	for {
		switch {
		case retryC != nil:
		case !registered:
			if l == nil {
				var err error
				if l, err = s.grant(ctx, cli, &drains); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					backOff("grant lease", err)
					break
				}
			}
			rev, err := s.claim(ctx, cli, l.id, first)
			switch {
			case errors.Is(err, ErrSuperseded):
				s.supersede()
				return err
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				dropLease()
				backOff("register", err)
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				backOff("register", err)
			default:
				if first {
					s.firstRev.Store(rev)
				}
				registered, first, needTouch = true, false, false
				bo.reset()
				s.putRev.Store(rev)
				s.validUntil.Store(l.lastAck.Load() + int64(s.fenceAfter))
				s.log.Info("etcdsync: registered", "key", s.keys.self, "lease", int64(l.id), "rev", rev)
			}
		case needTouch:
			err := s.touchRecord(ctx, cli, l)
			switch {
			case errors.Is(err, ErrSuperseded):
				s.supersede()
				return err
			case errors.Is(err, errLeaseGone):
				s.log.Warn("etcdsync: lease expired; fenced until re-registered", "lease", int64(l.id))
				dropLease()
			case errors.Is(err, errContended):
				s.log.Warn("etcdsync: member record deleted or changed; fenced until re-registered")
				s.validUntil.Store(0)
				s.fencedAck.Store(l.lastAck.Load())
				registered = false
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				backOff("refresh record", err)
			default:
				needTouch = false
				bo.reset()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if (!registered || needTouch) && retryC == nil {
			continue
		}
		var lost <-chan struct{}
		if l != nil {
			lost = l.lost
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			s.log.Warn("etcdsync: lease lost; fenced until re-registered", "lease", int64(l.id))
			dropLease()
		case <-s.touch:
			// Unregistered, the coming registration write does what a
			// touch would.
			needTouch = needTouch || registered
		case <-retryC:
			retryC = nil
		}
	}
}

// grant grants a lease and starts draining its keepalive channel.
func (s *Sync) grant(ctx context.Context, cli *clientv3.Client, drains *sync.WaitGroup) (*lease, error) {
	sent := s.now()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	resp, err := cli.Grant(rctx, s.cfg.ttlSeconds())
	cancel()
	if err != nil {
		return nil, err
	}
	kctx, kcancel := context.WithCancel(ctx)
	ch, err := cli.KeepAlive(kctx, resp.ID)
	if err != nil {
		kcancel()
		return nil, err
	}
	l := &lease{id: resp.ID, cancel: kcancel, lost: make(chan struct{})}
	l.lastAck.Store(sent)
	s.leaseID.Store(int64(resp.ID))
	drains.Go(func() {
		defer close(l.lost)
		for range ch {
			now := s.now()
			l.lastAck.Store(now)
			if s.leaseID.Load() == int64(l.id) {
				s.extend(now)
			}
		}
	})
	return l, nil
}

// extend pushes the fence deadline forward after a keepalive
// acknowledgement at now. An acknowledgement that comes after the deadline
// does not unfence: the registrar first proves the record is still ours.
func (s *Sync) extend(now int64) {
	for {
		v := s.validUntil.Load()
		if v == 0 {
			return
		}
		if now >= v {
			s.requestTouch()
			return
		}
		if s.validUntil.CompareAndSwap(v, max(v, now+int64(s.fenceAfter))) {
			return
		}
	}
}

// claim writes our record under lease id and returns the write's revision.
// The first registration of this process overwrites whatever is there (a
// restart replaces its previous incarnation); later ones only take an
// absent record or one carrying our Instance, so that an old process
// never takes a name back from its successor.
func (s *Sync) claim(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, first bool) (int64, error) {
	key, val := s.keys.self, s.selfValue
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	if first {
		resp, err := cli.Put(rctx, key, val, clientv3.WithLease(id))
		if err != nil {
			return 0, err
		}
		return resp.Header.Revision, nil
	}
	resp, err := cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(id)), clientv3.OpGet(s.keys.members, clientv3.WithPrefix())).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		s.claimLapsed(resp.Header.Revision, resp.Responses[1].GetResponseRange().Kvs)
		return resp.Header.Revision, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, errContended
	}
	if m, err := decodeMember(s.cfg.Self.Name, kvs[0].Value); err == nil && m.Instance != s.cfg.Self.Instance {
		return 0, ErrSuperseded
	}
	resp, err = cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(id))).
		Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, errContended
	}
	return resp.Header.Revision, nil
}

// touchRecord rewrites our record unchanged if it is still there. The write
// proves the lease alive (and so unfences), moves the record to the current
// lease, and gives every watcher an event at a common revision.
func (s *Sync) touchRecord(ctx context.Context, cli *clientv3.Client, l *lease) error {
	key, val := s.keys.self, s.selfValue
	acked := l.lastAck.Load()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	resp, err := cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Value(key), "=", val)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(l.id))).
		Else(clientv3.OpGet(key)).
		Commit()
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return errLeaseGone
	case err != nil:
		return err
	case resp.Succeeded:
		s.putRev.Store(resp.Header.Revision)
		if s.Fenced() {
			s.log.Info("etcdsync: registration confirmed; unfenced", "rev", resp.Header.Revision)
		}
		s.validUntil.Store(max(acked, l.lastAck.Load()) + int64(s.fenceAfter))
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) > 0 {
		if m, err := decodeMember(s.cfg.Self.Name, kvs[0].Value); err == nil && m.Instance != s.cfg.Self.Instance {
			return ErrSuperseded
		}
	}
	return errContended
}

// supersede fences this process for good.
func (s *Sync) supersede() {
	s.superseded.Store(true)
	s.validUntil.Store(0)
	s.log.Error("etcdsync: another instance registered this name; fenced for good", "key", s.keys.self)
}
