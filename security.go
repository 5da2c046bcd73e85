package main

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
func gossipKey(o options) ([]byte, error) {
	b64, from := o.gossipKey, "--gossip-key"
	switch {
	case o.gossipKeyFile != "":
		b, err := os.ReadFile(o.gossipKeyFile)
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
func (o options) validateSecurity() error {
	certs := 0
	for _, f := range []string{o.clusterCACert, o.clusterCert, o.clusterKey} {
		if f != "" {
			certs++
		}
	}
	switch {
	case certs != 0 && certs != 3:
		return errors.New("--cluster-cacert, --cluster-cert and --cluster-key go together")
	case certs == 3 && o.clusterSecretFile != "":
		return errors.New("--cluster-secret-file and --cluster-cert: choose one (with TLS, certificates are the membership)")
	case (o.etcdCert == "") != (o.etcdKey == ""):
		return errors.New("--etcd-cert and --etcd-key go together")
	case o.etcdPasswordFile != "" && o.etcdUser == "":
		return errors.New("--etcd-password-file needs --etcd-user")
	case o.gossipKey != "" && o.gossipKeyFile != "":
		return errors.New("--gossip-key and --gossip-key-file: choose one")
	}
	return nil
}

// peerAuth is the peer port's authentication from the flags: mutual TLS,
// a shared secret, or nil when neither is configured.
func peerAuth(o options) (*peerauth.Auth, error) {
	switch {
	case o.clusterCert != "":
		ca, err := os.ReadFile(o.clusterCACert)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cacert: %w", err)
		}
		cert, err := os.ReadFile(o.clusterCert)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cert: %w", err)
		}
		key, err := os.ReadFile(o.clusterKey)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
		a, err := peerauth.NewTLS(ca, cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cert: %w", err)
		}
		return a, nil
	case o.clusterSecretFile != "":
		secret, err := os.ReadFile(o.clusterSecretFile)
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
func peerBindAddr(o options, client net.Addr, authenticated bool) (string, error) {
	if o.peer != "" {
		host, _, err := net.SplitHostPort(o.peer)
		if err != nil {
			return "", fmt.Errorf("--peer: %w", err)
		}
		if ip := net.ParseIP(host); !authenticated && (host == "" || ip != nil && ip.IsUnspecified()) {
			return "", fmt.Errorf("--peer %s listens on every interface with no peer authentication: anyone who reaches it reads and writes every item; give a host, or --cluster-secret-file or --cluster-cert", o.peer)
		}
		return o.peer, nil
	}
	host, _, _ := net.SplitHostPort(client.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if o.advertise == "" {
			return "", errors.New("--advertise is required when listening on all interfaces")
		}
		advHost, _, err := net.SplitHostPort(o.advertise)
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
func listenPeer(o options, client net.Addr, auth *peerauth.Auth, log *slog.Logger) (net.Listener, error) {
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
func etcdSecurity(o options, cfg *etcdsync.Config) error {
	if o.etcdCACert != "" || o.etcdCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.etcdCACert != "" {
			pem, err := os.ReadFile(o.etcdCACert)
			if err != nil {
				return fmt.Errorf("--etcd-cacert: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("--etcd-cacert: no certificate in %s", o.etcdCACert)
			}
		}
		if o.etcdCert != "" {
			cert, err := tls.LoadX509KeyPair(o.etcdCert, o.etcdKey)
			if err != nil {
				return fmt.Errorf("--etcd-cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	if o.etcdUser == "" {
		return nil
	}
	password := os.Getenv(etcdPasswordEnv)
	if o.etcdPasswordFile != "" {
		b, err := os.ReadFile(o.etcdPasswordFile)
		if err != nil {
			return fmt.Errorf("--etcd-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return fmt.Errorf("--etcd-user %s: no password: give --etcd-password-file or set %s", o.etcdUser, etcdPasswordEnv)
	}
	cfg.Username, cfg.Password = o.etcdUser, password
	return nil
}

// probeEtcd checks, within etcdProbeTimeout, that etcd answers this node
// with its TLS settings and credentials.
func probeEtcd(ctx context.Context, cfg etcdsync.Config) error {
	ctx, cancel := context.WithTimeout(ctx, etcdProbeTimeout)
	defer cancel()
	if err := etcdsync.Probe(ctx, cfg); err != nil {
		return fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return nil
}
