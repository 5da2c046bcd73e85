package etcdsync

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// Probe answers nil when etcd answers, and otherwise names the cause
// before its ctx ends. TLS and credentials against a real etcd with
// --client-cert-auth and auth enabled: TestEtcdTLSAndAuth in the root
// package.
func TestProbe(t *testing.T) {
	e := startEmbed(t)
	cfg := func(endpoint string) Config {
		return Config{Endpoints: []string{endpoint}, Self: Member{Name: "a", Instance: "1", ClientAddr: "127.0.0.1:11211", PeerAddr: "127.0.0.1:11311"}, Settings: testSettings}
	}
	plain := e.Endpoints()[0]
	cases := map[string]struct {
		endpoint string
		want     error
		says     string
	}{
		"answers":             {endpoint: plain},
		"nothing listening":   {endpoint: "http://" + testutil.FreeAddr(t), want: ErrUnreachable, says: "connection refused"},
		"https to plain etcd": {endpoint: strings.Replace(plain, "http://", "https://", 1), want: ErrTLS, says: "https://"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := Probe(ctx, cfg(tc.endpoint))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Probe: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Probe: %v, want %v mentioning %q", err, tc.want, tc.says)
			}
		})
	}
	t.Run("user without password", func(t *testing.T) {
		c := cfg(plain)
		c.Username = "shoal"
		if err := Probe(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Fatalf("Probe: %v, want ErrConfig", err)
		}
	})
}
