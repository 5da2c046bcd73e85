package main

// etcd over TLS with client certificates and with authentication: Debian's
// etcd started with --client-cert-auth --trusted-ca-file and auth enabled.
// A node configured right joins; one configured wrong stops at start with
// the cause, instead of retrying forever.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"shoal/internal/testca"
	"shoal/internal/testutil"
)

// startEtcdTLS runs the etcd binary serving clients on https, asking each
// for a certificate signed by ca; it skips the test when etcd is not
// installed. It returns the client endpoint.
func startEtcdTLS(t *testing.T, ca *testca.CA) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd binary not installed (apt package etcd-server): ", err)
	}
	cert, key := ca.Issue(t, "etcd")
	client, peerAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cu, pu := "https://"+client, "http://"+peerAddr
	cmd := exec.Command(bin,
		"--name", "shoal-tls",
		"--data-dir", t.TempDir(),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "shoal-tls="+pu,
		"--cert-file", cert, "--key-file", key,
		"--client-cert-auth", "--trusted-ca-file", ca.Path("ca.pem"),
		"--heartbeat-interval", "10", "--election-timeout", "100", // one member: leader at once
		"--log-level", "error", "--logger", "zap")
	done, out := startCmd(t, cmd)
	tc := adminTLS(t, ca)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	testutil.WaitUntil(t, 20*time.Second, "etcd healthy on https", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("etcd exited at start: %s", out.String())
		default:
		}
		resp, err := hc.Get(cu + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return cu
}

// adminTLS is a TLS client config trusting ca, with a certificate of it.
func adminTLS(t *testing.T, ca *testca.CA) *tls.Config {
	t.Helper()
	cert, key := ca.Issue(t, "admin")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
}

// enableAuth creates root and a user "shoal" (password pw) who may read
// and write /shoal/, and turns etcd's authentication on.
func enableAuth(t *testing.T, endpoint string, tc *tls.Config, pw string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-password"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "shoal"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "shoal", "/shoal/", clientv3.GetPrefixRangeEnd("/shoal/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "shoal", pw); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "shoal", "shoal"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
}

func TestEtcdTLSAndAuth(t *testing.T) {
	t.Parallel()
	ca, otherCA := testca.New(t, "etcd-ca"), testca.New(t, "other-ca")
	endpoint := startEtcdTLS(t, ca)
	const password = "s3cret-etcd-password"
	enableAuth(t, endpoint, adminTLS(t, ca), password)

	dir := t.TempDir()
	pwFile, wrongPwFile := filepath.Join(dir, "pw"), filepath.Join(dir, "wrong")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	os.WriteFile(wrongPwFile, []byte("not-the-password\n"), 0o600)
	nodeCert, nodeKey := ca.Issue(t, "node")
	outsiderCert, outsiderKey := otherCA.Issue(t, "outsider")
	good := []string{"--etcd", endpoint, "--etcd-cacert", ca.Path("ca.pem"), "--etcd-cert", nodeCert, "--etcd-key", nodeKey, "--etcd-user", "shoal"}

	t.Run("joins with certificates and password file", func(t *testing.T) {
		addr := startNode(t, append(good, "--etcd-password-file", pwFile, "--node", "tls1")...)
		testutil.WaitUntil(t, 20*time.Second, "in the ring", func() (bool, string) {
			st := clusterStats(addr)
			return st["cluster_members"] == "1" && st["member:tls1:health"] == "alive", st["cluster_members"]
		})
	})
	t.Run("password from the environment", func(t *testing.T) {
		// A process of its own, given the variable, so that this test
		// sets nothing in its own environment and may run in parallel.
		addr := testutil.FreeAddr(t)
		_, port, _ := strings.Cut(addr, ":")
		cmd := exec.Command(shoalBinary(t), append([]string{"-p", port}, append(good, "--node", "tls2")...)...)
		cmd.Env = append(os.Environ(), "SHOAL_ETCD_PASSWORD"+"="+password)
		startCmd(t, cmd)
		testutil.WaitUntil(t, 20*time.Second, "in the ring", func() (bool, string) {
			st := clusterStats(addr)
			return st["member:tls2:health"] == "alive", st["cluster_members"]
		})
	})

	// Each misconfiguration stops the node at start, naming the cause;
	// ctx would end the test long before a node that kept retrying.
	cases := map[string]struct {
		args []string
		want string
	}{
		"wrong password": {
			append(good, "--etcd-password-file", wrongPwFile),
			"etcd refused the credentials",
		},
		"no user": {
			[]string{"--etcd", endpoint, "--etcd-cacert", ca.Path("ca.pem"), "--etcd-cert", nodeCert, "--etcd-key", nodeKey},
			"etcd refused the credentials",
		},
		"etcd's certificate from an unknown CA": {
			[]string{"--etcd", endpoint, "--etcd-cacert", otherCA.Path("ca.pem"), "--etcd-cert", nodeCert, "--etcd-key", nodeKey, "--etcd-user", "shoal", "--etcd-password-file", pwFile},
			"certificate signed by unknown authority",
		},
		"no client certificate": {
			[]string{"--etcd", endpoint, "--etcd-cacert", ca.Path("ca.pem"), "--etcd-user", "shoal", "--etcd-password-file", pwFile},
			"TLS with etcd failed",
		},
		"client certificate of another CA": {
			[]string{"--etcd", endpoint, "--etcd-cacert", ca.Path("ca.pem"), "--etcd-cert", outsiderCert, "--etcd-key", outsiderKey, "--etcd-user", "shoal", "--etcd-password-file", pwFile},
			"TLS with etcd failed",
		},
		"plain http to a TLS etcd": {
			[]string{"--etcd", strings.Replace(endpoint, "https://", "http://", 1), "--etcd-user", "shoal", "--etcd-password-file", pwFile},
			"use an https:// endpoint",
		},
		"user without password": {
			append(good[:len(good):len(good)], "--node", "nopw"),
			"no password",
		},
	}
	// An etcd that does not answer at all is waited for, as joins wait
	// during an outage, with the cause in the log at every try, a second
	// apart when nothing listens.
	t.Run("nothing listening", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var log testutil.LogBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"-p", "0", "--etcd", "https://" + testutil.FreeAddr(t), "--etcd-cacert", ca.Path("ca.pem")}, io.Discard, &log, nil)
		}()
		start := time.Now()
		testutil.WaitUntil(t, 30*time.Second, "the cause in the log, twice", func() (bool, string) {
			select {
			case err := <-done:
				t.Fatalf("run returned while etcd was away: %v", err)
			default:
			}
			l := log.String()
			return strings.Count(l, "waiting for etcd") >= 2 && strings.Contains(l, "connection refused"), l
		})
		// A refused connection answers at once: the tries are paced, not
		// a loop.
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("two tries within %v", d)
		}
		cancel()
		<-done
	})
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			err := run(ctx, append([]string{"-p", "0"}, tc.args...), io.Discard, io.Discard, nil)
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v (after %v), want an error with %q", err, time.Since(start).Round(time.Millisecond), tc.want)
			}
			t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}
