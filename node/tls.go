package node

import (
	"net"
	"strconv"

	"shoal/clienttls"
)

// serveTLS makes the TCP listeners speak TLS when -Z asks (memcached: a
// UNIX socket stays plain), and returns what refresh_certs reloads.
func serveTLS(o Config, lns []net.Listener) (*clienttls.TLS, error) {
	if !o.TLS.Enabled {
		return nil, nil
	}
	t, err := clienttls.New(clienttls.Config{
		ChainCert: o.TLS.ChainCert, Key: o.TLS.Key, CACert: o.TLS.CACert,
		VerifyMode: o.TLS.VerifyMode, MinVersion: o.TLS.MinVersion,
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
func tlsSettings(t TLS) [][2]string {
	orNull := func(v, null string) string {
		if v == "" {
			return null
		}
		return v
	}
	wbuf := 16384
	if t.WbufSize > 0 {
		wbuf = t.WbufSize * 1024
	}
	return [][2]string{
		{"ssl_enabled", yesNo(t.Enabled)},
		{"ssl_chain_cert", orNull(t.ChainCert, "(null)")},
		{"ssl_key", orNull(t.Key, "(null)")},
		{"ssl_verify_mode", strconv.Itoa(t.VerifyMode)},
		{"ssl_ciphers", orNull(t.Ciphers, "NULL")},
		{"ssl_ca_cert", orNull(t.CACert, "NULL")},
		{"ssl_wbuf_size", strconv.Itoa(wbuf)},
		{"ssl_session_cache", yesNo(t.SessionCache)},
		{"ssl_kernel_tls", yesNo(t.KernelTLS)},
		{"ssl_min_version", orNull(t.MinVersion, "tlsv1.2")},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
