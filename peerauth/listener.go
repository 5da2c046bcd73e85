package peerauth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// MaxPending bounds the handshakes a Listener runs at once; connections
// beyond it are closed at accept.
const MaxPending = 256

// Listener returns a listener over ln whose Accept returns only
// connections that passed a.Server. Handshakes run on goroutines of their
// own, so a slow or silent client holds up no one else; one that fails is
// closed (after a refusal line, for the secret) and logged (the first
// failures at Warn, then at doubling counts). The goroutines start with
// the first Accept; Close stops them and returns after they have exited.
func (a *Auth) Listener(ln net.Listener, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &listener{
		Listener: ln,
		auth:     a,
		log:      log,
		ctx:      ctx,
		cancel:   cancel,
		conns:    make(chan net.Conn),
		errs:     make(chan error),
		pending:  make(chan struct{}, MaxPending),
	}
}

type listener struct {
	net.Listener
	auth    *Auth
	log     *slog.Logger
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	conns   chan net.Conn // authenticated
	errs    chan error    // from the inner Accept
	pending chan struct{} // a token per running handshake
	start   sync.Once
	close   sync.Once
	wg      sync.WaitGroup
	failed  atomic.Uint64
}

func (l *listener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		l.wg.Add(1)
		go l.acceptLoop()
	})
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener and every handshake in progress, and
// waits for their goroutines.
func (l *listener) Close() error {
	var err error
	l.close.Do(func() {
		l.cancel()
		err = l.Listener.Close()
		l.wg.Wait()
	})
	return err
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			temporary := errors.As(err, &ne) && ne.Timeout()
			select {
			case l.errs <- err:
			case <-l.ctx.Done():
				return
			}
			if !temporary {
				return
			}
			continue
		}
		select {
		case l.pending <- struct{}{}:
		default:
			nc.Close()
			l.refused(nc, errors.New("too many handshakes in progress"))
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.pending }()
			c, err := l.auth.Server(l.ctx, nc)
			if err != nil {
				nc.Close()
				if l.ctx.Err() == nil { // not cut short by Close
					l.refused(nc, err)
				}
				return
			}
			select {
			case l.conns <- c:
			case <-l.ctx.Done():
				c.Close()
			}
		}()
	}
}

// refused logs a failed handshake: the first at Warn, then at 2, 4, 8...
// failures, so that a flood of them cannot flood the log.
func (l *listener) refused(nc net.Conn, err error) {
	n := l.failed.Add(1)
	level := slog.LevelDebug
	if n&(n-1) == 0 {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "peer connection refused: not authenticated as a cluster member",
		"remote", nc.RemoteAddr().String(), "err", err, "refused_total", n)
}
