// Package clienttls is memcached's -Z for shoal's client port: a TLS
// listener whose certificate and key (and client CA) are read from files
// at start and again on refresh_certs, with memcached's verify modes and
// minimum versions, counting failed handshakes. It knows nothing of the
// protocol served over it, and imports no shoal package.
//
// A TLS connection is no raw socket, so the server serves it with a
// goroutine of its own rather than from an epoll loop.
package clienttls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// ErrConfig: the TLS settings cannot work.
var ErrConfig = errors.New("clienttls: invalid config")

// Config is memcached's ssl_* options.
type Config struct {
	ChainCert string // ssl_chain_cert: the server's certificate chain (PEM)
	Key       string // ssl_key: its private key (PEM)
	CACert    string // ssl_ca_cert: CAs that sign client certificates; "" for none
	// VerifyMode is ssl_verify_mode: 0 no client certificate asked; 1
	// asked, verified if given; 2 and 3 required and verified.
	VerifyMode int
	// MinVersion is ssl_min_version: "tlsv1.2" (the default) or "tlsv1.3"
	// ("tlsv1.0" and "tlsv1.1" are refused: Go no longer offers them as a
	// server default, and they are broken).
	MinVersion string
	// HandshakeTimeout bounds a connection's handshake; zero means 10 s.
	HandshakeTimeout time.Duration
}

// TLS serves TLS listeners with certificates it can reload.
type TLS struct {
	cfg        Config
	cert       atomic.Pointer[tls.Certificate]
	clientCAs  atomic.Pointer[x509.CertPool]
	refreshed  atomic.Int64 // unix seconds of the last load
	handshakes atomic.Int64 // failed
	base       *tls.Config
}

// New loads the certificates of cfg.
func New(cfg Config) (*TLS, error) {
	if cfg.ChainCert == "" || cfg.Key == "" {
		return nil, fmt.Errorf("%w: ssl_chain_cert and ssl_key are required with -Z", ErrConfig)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	t := &TLS{cfg: cfg}
	t.base = &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.cert.Load(), nil },
		MinVersion:     tls.VersionTLS12,
	}
	switch cfg.MinVersion {
	case "", "tlsv1.2":
	case "tlsv1.3":
		t.base.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("%w: ssl_min_version %q (want tlsv1.2 or tlsv1.3)", ErrConfig, cfg.MinVersion)
	}
	switch cfg.VerifyMode {
	case 0:
		t.base.ClientAuth = tls.NoClientCert
	case 1:
		t.base.ClientAuth = tls.VerifyClientCertIfGiven
	case 2, 3:
		t.base.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("%w: ssl_verify_mode %d (want 0 to 3)", ErrConfig, cfg.VerifyMode)
	}
	if cfg.VerifyMode > 0 && cfg.CACert == "" {
		return nil, fmt.Errorf("%w: ssl_verify_mode %d needs ssl_ca_cert", ErrConfig, cfg.VerifyMode)
	}
	if err := t.Refresh(); err != nil {
		return nil, err
	}
	// Each handshake takes the client CAs as last loaded.
	t.base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := t.base.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = t.clientCAs.Load()
		return c, nil
	}
	return t, nil
}

// RefreshError is why certificates could not be loaded, worded as
// memcached words it (its text is the reply to refresh_certs).
type RefreshError struct{ Msg string }

func (e *RefreshError) Error() string { return e.Msg }

// Refresh reads the certificate, key and client CAs again (memcached's
// refresh_certs). On an error the ones in use stay.
func (t *TLS) Refresh() error {
	cert, err := tls.LoadX509KeyPair(t.cfg.ChainCert, t.cfg.Key)
	if err != nil {
		return &RefreshError{fmt.Sprintf("Error loading the certificate chain: %s : %v", t.cfg.ChainCert, err)}
	}
	var pool *x509.CertPool
	if t.cfg.CACert != "" {
		pem, err := os.ReadFile(t.cfg.CACert)
		if err == nil {
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				err = errors.New("no certificate")
			}
		}
		if err != nil {
			return &RefreshError{fmt.Sprintf("Error loading the CA certificates: %s : %v", t.cfg.CACert, err)}
		}
	}
	t.cert.Store(&cert)
	t.clientCAs.Store(pool)
	t.refreshed.Store(time.Now().Unix())
	return nil
}

// HandshakeErrors counts the connections whose handshake failed
// (ssl_handshake_errors).
func (t *TLS) HandshakeErrors() int64 { return t.handshakes.Load() }

// SinceRefresh is the seconds since the certificates were last loaded
// (time_since_server_cert_refresh).
func (t *TLS) SinceRefresh() int64 { return time.Now().Unix() - t.refreshed.Load() }

// Listen wraps ln: its connections speak TLS, handshaking on their first
// read or write.
func (t *TLS) Listen(ln net.Listener) net.Listener { return listener{ln, t} }

type listener struct {
	net.Listener
	t *TLS
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: tls.Server(c, l.t.base), t: l.t}, nil
}

// conn counts a failed handshake, done before its first read or write
// within the handshake timeout.
type conn struct {
	*tls.Conn
	t    *TLS
	done atomic.Bool
}

func (c *conn) handshake() error {
	if c.done.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.t.cfg.HandshakeTimeout)
	defer cancel()
	err := c.Conn.HandshakeContext(ctx)
	if err != nil {
		c.t.handshakes.Add(1)
		return err
	}
	c.done.Store(true)
	return nil
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
