package main

import (
	"net"
	"strconv"

	"shoal/clienttls"
)

// serveTLS makes the TCP listeners speak TLS when -Z asks (memcached: a
// UNIX socket stays plain), and returns what refresh_certs reloads.
func serveTLS(o options, lns []net.Listener) (*clienttls.TLS, error) {
	if !o.tls.enabled {
		return nil, nil
	}
	t, err := clienttls.New(clienttls.Config{
		ChainCert: o.tls.chainCert, Key: o.tls.key, CACert: o.tls.caCert,
		VerifyMode: o.tls.verifyMode, MinVersion: o.tls.minVersion,
	})
	if err != nil {
		return nil, err
	}
	for i, ln := range lns {
		if ln.Addr().Network() == "tcp" {
			lns[i] = t.Listen(ln)
		}
	}
	return t, nil
}

// tlsSettings are the ssl_* lines of stats settings, as memcached prints
// them.
func tlsSettings(t tlsOptions) [][2]string {
	orNull := func(v, null string) string {
		if v == "" {
			return null
		}
		return v
	}
	wbuf := 16384
	if t.wbufSize > 0 {
		wbuf = t.wbufSize * 1024
	}
	return [][2]string{
		{"ssl_enabled", yesNo(t.enabled)},
		{"ssl_chain_cert", orNull(t.chainCert, "(null)")},
		{"ssl_key", orNull(t.key, "(null)")},
		{"ssl_verify_mode", strconv.Itoa(t.verifyMode)},
		{"ssl_ciphers", orNull(t.ciphers, "NULL")},
		{"ssl_ca_cert", orNull(t.caCert, "NULL")},
		{"ssl_wbuf_size", strconv.Itoa(wbuf)},
		{"ssl_session_cache", yesNo(t.sessionCache)},
		{"ssl_kernel_tls", yesNo(t.kernelTLS)},
		{"ssl_min_version", orNull(t.minVersion, "tlsv1.2")},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
