package peerauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Errors. Test them with errors.Is.
var (
	ErrConfig = errors.New("peerauth: invalid config")
	// ErrRefused: the other end does not prove membership (wrong secret,
	// a certificate from another CA, no handshake at all).
	ErrRefused = errors.New("peerauth: authentication refused")
)

// MinSecret is the shortest secret NewSecret accepts, in bytes.
const MinSecret = 16

// HandshakeTimeout bounds a handshake when the caller's ctx has no
// earlier deadline.
const HandshakeTimeout = 5 * time.Second

const (
	hello      = "shoal-auth 1 "
	nonceLen   = 16
	maxLine    = 160 // longer than any handshake line
	labelSrv   = "shoal peer auth 1 server"
	labelCli   = "shoal peer auth 1 client"
	replyOK    = "OK"
	replyNoAut = "CLIENT_ERROR authentication required"
	replyBad   = "CLIENT_ERROR authentication failed"
)

// Auth authenticates peer connections by one method: a shared secret or
// mutual TLS. Its methods are safe for concurrent use.
type Auth struct {
	secret         []byte
	server, client *tls.Config
}

// NewSecret authenticates by challenge and response over secret, which
// every member shares. Surrounding white space (a file's last newline) is
// not part of it.
func NewSecret(secret []byte) (*Auth, error) {
	s := []byte(strings.TrimSpace(string(secret)))
	if len(s) < MinSecret {
		return nil, fmt.Errorf("%w: secret of %d bytes, want at least %d", ErrConfig, len(s), MinSecret)
	}
	return &Auth{secret: s}, nil
}

// NewTLS authenticates by mutual TLS: caPEM holds the cluster CA (one or
// more certificates), certPEM and keyPEM this node's certificate chain and
// key, which it presents as server and as client.
func NewTLS(caPEM, certPEM, keyPEM []byte) (*Auth, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: no CA certificate found", ErrConfig)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate and key: %v", ErrConfig, err)
	}
	verify := func(cs tls.ConnectionState) error { return verifyChain(pool, cs) }
	server := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// Chains are checked by verify (any key usage: a member's one
		// certificate serves both ends); a client without one is refused.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: verify,
	}
	client := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// Not a skip: verify checks the chain against the cluster CA. Host
		// names are not checked: the CA's certificates are the membership.
		InsecureSkipVerify: true,
		VerifyConnection:   verify,
	}
	return &Auth{server: server, client: client}, nil
}

// verifyChain accepts the other end's certificate if the cluster CA signed
// it.
func verifyChain(roots *x509.CertPool, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no certificate", ErrRefused)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return nil
}

// TLS reports whether a uses TLS: its connections are *tls.Conn, not
// sockets.
func (a *Auth) TLS() bool { return a.server != nil }

// Client authenticates nc, a connection this node dialled, and returns the
// connection to send requests on. On error the caller closes nc.
func (a *Auth) Client(ctx context.Context, nc net.Conn) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	if a.client != nil {
		tc := tls.Client(nc, a.client)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, handshakeErr(err)
		}
		return tc, nil
	}
	if err := a.clientSecret(ctx, nc); err != nil {
		return nil, err
	}
	return nc, nil
}

// Server authenticates nc, a connection this node accepted, and returns
// the connection to serve. On error the caller closes nc.
func (a *Auth) Server(ctx context.Context, nc net.Conn) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	if a.server != nil {
		tc := tls.Server(nc, a.server)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, handshakeErr(err)
		}
		return tc, nil
	}
	if err := a.serverSecret(ctx, nc); err != nil {
		return nil, err
	}
	return nc, nil
}

// handshakeErr makes a TLS handshake's refusal (a certificate this end or
// the other rejected) an ErrRefused; I/O errors stay as they are.
func handshakeErr(err error) error {
	var alert tls.AlertError
	var cverr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	if errors.Is(err, ErrRefused) || errors.As(err, &alert) || errors.As(err, &cverr) || errors.As(err, &unknown) {
		return fmt.Errorf("%w: tls: %v", ErrRefused, err)
	}
	return fmt.Errorf("peerauth: tls handshake: %w", err)
}

func (a *Auth) clientSecret(ctx context.Context, nc net.Conn) error {
	defer deadline(ctx, nc)()
	cn := nonce()
	if err := writeLine(nc, hello+hex.EncodeToString(cn)); err != nil {
		return err
	}
	line, err := readLine(nc)
	if err != nil {
		return err
	}
	rest, ok := strings.CutPrefix(line, hello)
	sn, proof, ok2 := strings.Cut(rest, " ")
	snb, err1 := hex.DecodeString(sn)
	if !ok || !ok2 || err1 != nil || len(snb) != nonceLen {
		return fmt.Errorf("%w: server answered %q", ErrRefused, trim(line))
	}
	if !a.check(proof, labelSrv, cn, snb) {
		return fmt.Errorf("%w: the server does not know the cluster secret", ErrRefused)
	}
	if err := writeLine(nc, hex.EncodeToString(a.mac(labelCli, snb, cn))); err != nil {
		return err
	}
	if line, err = readLine(nc); err != nil {
		return err
	}
	if line != replyOK {
		return fmt.Errorf("%w: server answered %q", ErrRefused, trim(line))
	}
	return nil
}

func (a *Auth) serverSecret(ctx context.Context, nc net.Conn) error {
	defer deadline(ctx, nc)()
	line, err := readLine(nc)
	if err != nil {
		return err
	}
	cn, herr := hex.DecodeString(strings.TrimPrefix(line, hello))
	if !strings.HasPrefix(line, hello) || herr != nil || len(cn) != nonceLen {
		writeLine(nc, replyNoAut)
		return fmt.Errorf("%w: no handshake, got %q", ErrRefused, trim(line))
	}
	sn := nonce()
	if err := writeLine(nc, hello+hex.EncodeToString(sn)+" "+hex.EncodeToString(a.mac(labelSrv, cn, sn))); err != nil {
		return err
	}
	if line, err = readLine(nc); err != nil {
		return err
	}
	if !a.check(line, labelCli, sn, cn) {
		writeLine(nc, replyBad)
		return fmt.Errorf("%w: wrong proof (another cluster secret)", ErrRefused)
	}
	return writeLine(nc, replyOK)
}

// deadline bounds nc's I/O by ctx: its deadline, and its cancellation
// (which closes the handshake's reads and writes early). The returned
// function clears both.
func deadline(ctx context.Context, nc net.Conn) func() {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return func() {
		stop()
		nc.SetDeadline(time.Time{})
	}
}

func (a *Auth) mac(label string, first, second []byte) []byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(label))
	m.Write(first)
	m.Write(second)
	return m.Sum(nil)
}

// check compares a hex proof with the expected MAC in constant time.
func (a *Auth) check(proof, label string, first, second []byte) bool {
	got, err := hex.DecodeString(proof)
	return err == nil && subtle.ConstantTimeCompare(got, a.mac(label, first, second)) == 1
}

func nonce() []byte {
	b := make([]byte, nonceLen)
	rand.Read(b)
	return b
}

func writeLine(nc net.Conn, s string) error {
	_, err := nc.Write([]byte(s + "\r\n"))
	if err != nil {
		return fmt.Errorf("peerauth: handshake: %w", err)
	}
	return nil
}

// readLine reads one line a byte at a time (never past its end: what
// follows is the next owner's) of at most maxLine bytes.
func readLine(nc net.Conn) (string, error) {
	var buf [maxLine]byte
	n := 0
	for {
		if _, err := nc.Read(buf[n : n+1]); err != nil {
			return "", fmt.Errorf("peerauth: handshake: %w", err)
		}
		if buf[n] == '\n' {
			return strings.TrimSuffix(string(buf[:n]), "\r"), nil
		}
		if n++; n == len(buf) {
			return "", fmt.Errorf("%w: handshake line too long", ErrRefused)
		}
	}
}

// trim shortens what the other end sent for an error message.
func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
