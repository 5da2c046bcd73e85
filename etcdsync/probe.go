package etcdsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors from Probe, each wrapped with the cause in words.
var (
	// ErrUnreachable: no endpoint accepted a connection, or none answered.
	ErrUnreachable = errors.New("etcdsync: etcd unreachable")
	// ErrTLS: the TLS handshake failed: etcd's certificate is not signed
	// by the CA given, or etcd refused this node's client certificate (or
	// wants one and got none).
	ErrTLS = errors.New("etcdsync: TLS with etcd failed")
	// ErrAuth: etcd refused the user name and password, or the user may
	// not read the cluster's keys, or etcd wants a user and got none.
	ErrAuth = errors.New("etcdsync: etcd refused the credentials")
)

// Probe connects to etcd as Run does and reads the cluster's settings key
// once, within ctx (its deadline bounds the whole probe). It returns nil
// when etcd answered; otherwise an error that names the cause
// (ErrUnreachable, ErrTLS or ErrAuth, with the endpoint and the
// underlying error). Run itself retries forever, which is right during an
// outage but hides a misconfiguration at start: callers probe first.
func Probe(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A certificate refused either way is known at once from a handshake,
	// and so are endpoints that all refuse connections; the client would
	// only retry until ctx ends. Both run at once: the first definite
	// answer wins.
	tlsErr := make(chan error, 1)
	go func() { tlsErr <- quickAnswer(ctx, cfg) }()
	probed := make(chan error, 1)
	go func() { probed <- probe(ctx, cfg) }()
	for {
		select {
		case err := <-tlsErr:
			if err == nil {
				tlsErr = nil // nothing wrong with TLS: wait for the probe
				continue
			}
			cancel()
			<-probed
			return err
		case err := <-probed:
			cancel()
			if tlsErr != nil {
				<-tlsErr
			}
			if err == nil {
				return nil
			}
			return explain(cfg, err)
		}
	}
}

// probe reads the settings key once with a client configured as Run's.
func probe(ctx context.Context, cfg Config) error {
	timeout := cfg.DialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: timeout,
		Logger:      zapNop(),
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Context:     ctx,
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Get(ctx, newKeys(cfg.Prefix, cfg.Self.Name).config)
	return err
}

// quickAnswer is what connecting finds at once: the first endpoint's
// ErrTLS, or ErrUnreachable when every endpoint refuses connections
// (nothing listens there); nil otherwise.
func quickAnswer(ctx context.Context, cfg Config) error {
	var refused []error
	for _, ep := range cfg.Endpoints {
		err := diagnose(ctx, ep, cfg.TLS)
		if errors.Is(err, ErrTLS) {
			return err
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			refused = append(refused, err)
		}
	}
	if len(refused) == len(cfg.Endpoints) {
		return refused[0]
	}
	return nil
}

// explain turns a failed request into the reason etcd did not answer:
// what etcd said about the credentials, or, when it said nothing, what a
// connection to each endpoint finds.
func explain(cfg Config, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Errorf("%w: user %q: %v", ErrAuth, cfg.Username, err)
	case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrUserEmpty),
		errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrAuthOldRevision):
		who := "no user (give --etcd-user)"
		if cfg.Username != "" {
			who = fmt.Sprintf("user %q", cfg.Username)
		}
		return fmt.Errorf("%w: %s: %v", ErrAuth, who, err)
	}
	var causes []error
	for _, ep := range cfg.Endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		causes = append(causes, diagnose(ctx, ep, cfg.TLS))
		cancel()
	}
	for _, want := range []error{ErrTLS, ErrUnreachable} {
		for _, c := range causes {
			if errors.Is(c, want) {
				return c
			}
		}
	}
	return fmt.Errorf("%w: %s: no answer: %v", ErrUnreachable, strings.Join(cfg.Endpoints, ","), err)
}

// diagnose connects to one endpoint the way the etcd client would, and
// reports the first step that fails, or nil.
func diagnose(ctx context.Context, endpoint string, tc *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	scheme, host := "http", endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		scheme, host = u.Scheme, u.Host
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, endpoint, err)
	}
	defer nc.Close()
	cfg := &tls.Config{}
	if tc != nil {
		cfg = tc.Clone()
	}
	if scheme != "https" {
		// A plain endpoint: find out whether a TLS server is behind it.
		cfg = &tls.Config{InsecureSkipVerify: true}
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(host)
	}
	cfg.NextProtos = []string{"h2"}
	conn := tls.Client(nc, cfg)
	err = conn.HandshakeContext(ctx)
	if scheme != "https" {
		if err == nil {
			return fmt.Errorf("%w: %s: etcd serves TLS there: use an https:// endpoint (and --etcd-cacert)", ErrTLS, endpoint)
		}
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: no TLS handshake: %v", ErrUnreachable, endpoint, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrTLS, endpoint, err)
	}
	// TLS 1.3: a server that refuses this client's certificate says so
	// after the client's handshake is over, on its first read.
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	var b [1]byte
	_, err = conn.Read(b[:])
	var alert tls.AlertError
	if errors.As(err, &alert) || err != nil && strings.Contains(err.Error(), "remote error: tls") {
		return fmt.Errorf("%w: %s: etcd refused this node's client certificate: %v", ErrTLS, endpoint, err)
	}
	return nil
}
