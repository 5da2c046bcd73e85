package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"shoal/etcdsync"
	"shoal/peerauth"
)

// etcdProbeTimeout bounds the check, at start, that etcd answers with the
// credentials given: a misconfigured node exits with the cause instead of
// retrying forever.
const etcdProbeTimeout = 10 * time.Second

// gossipKeyEnv holds the gossip key (base64) when neither --gossip-key
// nor --gossip-key-file is given.
const gossipKeyEnv = "SHOAL_GOSSIP_KEY"

// gossipKey is memberlist's key from --gossip-key, --gossip-key-file or
// the environment; nil means gossip in the clear.
func gossipKey(o Config) ([]byte, error) {
	b64, from := o.GossipKey, "--gossip-key"
	switch {
	case o.GossipKeyFile != "":
		b, err := os.ReadFile(o.GossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key-file: %w", err)
		}
		b64, from = strings.TrimSpace(string(b)), "--gossip-key-file"
	case b64 == "":
		b64, from = os.Getenv(gossipKeyEnv), gossipKeyEnv
	}
	if b64 == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return key, nil
}

// etcdPasswordEnv holds the --etcd-user password when no
// --etcd-password-file is given.
const etcdPasswordEnv = "SHOAL_ETCD_PASSWORD"

// validateSecurity refuses flag combinations that cannot mean anything.
func (o Config) validateSecurity() error {
	certs := 0
	for _, f := range []string{o.ClusterCACert, o.ClusterCert, o.ClusterKey} {
		if f != "" {
			certs++
		}
	}
	switch {
	case certs != 0 && certs != 3:
		return errors.New("--cluster-cacert, --cluster-cert and --cluster-key go together")
	case certs == 3 && o.ClusterSecretFile != "":
		return errors.New("--cluster-secret-file and --cluster-cert: choose one (with TLS, certificates are the membership)")
	case (o.EtcdCert == "") != (o.EtcdKey == ""):
		return errors.New("--etcd-cert and --etcd-key go together")
	case o.EtcdPasswordFile != "" && o.EtcdUser == "":
		return errors.New("--etcd-password-file needs --etcd-user")
	case o.GossipKey != "" && o.GossipKeyFile != "":
		return errors.New("--gossip-key and --gossip-key-file: choose one")
	}
	return nil
}

// peerAuth is the peer port's authentication from the flags: mutual TLS,
// a shared secret, or nil when neither is configured.
func peerAuth(o Config) (*peerauth.Auth, error) {
	switch {
	case o.ClusterCert != "":
		ca, err := os.ReadFile(o.ClusterCACert)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cacert: %w", err)
		}
		cert, err := os.ReadFile(o.ClusterCert)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cert: %w", err)
		}
		key, err := os.ReadFile(o.ClusterKey)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
		a, err := peerauth.NewTLS(ca, cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cert: %w", err)
		}
		return a, nil
	case o.ClusterSecretFile != "":
		secret, err := os.ReadFile(o.ClusterSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster-secret-file: %w", err)
		}
		a, err := peerauth.NewSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("--cluster-secret-file: %w", err)
		}
		return a, nil
	}
	return nil, nil
}

// peerBindAddr is where the peer port listens: --peer, or the client
// listener's host on any free port — but never all interfaces unless its
// connections are authenticated: then the advertised host.
func peerBindAddr(o Config, client net.Addr, authenticated bool) (string, error) {
	if o.Peer != "" {
		host, _, err := net.SplitHostPort(o.Peer)
		if err != nil {
			return "", fmt.Errorf("--peer: %w", err)
		}
		if ip := net.ParseIP(host); !authenticated && (host == "" || ip != nil && ip.IsUnspecified()) {
			return "", fmt.Errorf("--peer %s listens on every interface with no peer authentication: anyone who reaches it reads and writes every item; give a host, or --cluster-secret-file or --cluster-cert", o.Peer)
		}
		return o.Peer, nil
	}
	host, _, _ := net.SplitHostPort(client.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if o.Advertise == "" {
			return "", errors.New("--advertise is required when listening on all interfaces")
		}
		advHost, _, err := net.SplitHostPort(o.Advertise)
		if err != nil {
			return "", fmt.Errorf("--advertise: %w", err)
		}
		host = advHost
	}
	return net.JoinHostPort(host, "0"), nil
}

// listenPeer opens the peer listener: forwarded requests and replication
// arrive there and are served from the local store only, so a request is
// never routed twice, even while two nodes disagree on the ring. With
// auth, only connections that authenticate as members come out of it.
func listenPeer(o Config, client net.Addr, auth *peerauth.Auth, log *slog.Logger) (net.Listener, error) {
	addr, err := peerBindAddr(o, client, auth != nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--peer: %w", err)
	}
	if auth == nil {
		log.Warn("peer port is unauthenticated: whoever reaches it can read, write and flush every item of this node; use --cluster-secret-file or --cluster-cacert/--cluster-cert/--cluster-key", "addr", ln.Addr().String())
		return ln, nil
	}
	method := "secret"
	if auth.TLS() {
		method = "mutual TLS"
	}
	log.Info("peer port accepts members only", "addr", ln.Addr().String(), "auth", method)
	return auth.Listener(ln, log), nil
}

// etcdSecurity fills in cfg's TLS and credentials from the --etcd-* flags
// and the environment.
func etcdSecurity(o Config, cfg *etcdsync.Config) error {
	if o.EtcdCACert != "" || o.EtcdCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.EtcdCACert != "" {
			pem, err := os.ReadFile(o.EtcdCACert)
			if err != nil {
				return fmt.Errorf("--etcd-cacert: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("--etcd-cacert: no certificate in %s", o.EtcdCACert)
			}
		}
		if o.EtcdCert != "" {
			cert, err := tls.LoadX509KeyPair(o.EtcdCert, o.EtcdKey)
			if err != nil {
				return fmt.Errorf("--etcd-cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	if o.EtcdUser == "" {
		return nil
	}
	password := os.Getenv(etcdPasswordEnv)
	if o.EtcdPasswordFile != "" {
		b, err := os.ReadFile(o.EtcdPasswordFile)
		if err != nil {
			return fmt.Errorf("--etcd-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return fmt.Errorf("--etcd-user %s: no password: give --etcd-password-file or set %s", o.EtcdUser, etcdPasswordEnv)
	}
	cfg.Username, cfg.Password = o.EtcdUser, password
	return nil
}

// probeEtcd checks that etcd answers this node with its TLS settings and
// credentials. A refusal (TLS, credentials) is a configuration error,
// returned within etcdProbeTimeout; an etcd that does not answer at all is
// waited for, as a join waits during an outage (design scenario 4), with
// the cause logged at every try instead of silent retries.
func probeEtcd(ctx context.Context, cfg etcdsync.Config, log *slog.Logger) error {
	for {
		tried := time.Now()
		pctx, cancel := context.WithTimeout(ctx, etcdProbeTimeout)
		err := etcdsync.Probe(pctx, cfg)
		cancel()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
		if !errors.Is(err, etcdsync.ErrUnreachable) || ctx.Err() != nil {
			return err
		}
		log.Error("waiting for etcd before joining", "err", err)
		// A refused connection answers at once: try again a second
		// after the last try began, not in a loop.
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), ctx.Err())
		case <-time.After(time.Until(tried.Add(etcdRetryEvery))):
		}
	}
}

// etcdRetryEvery spaces probeEtcd's tries when etcd is unreachable.
const etcdRetryEvery = time.Second
