// Package testetcd starts a real, single-member etcd for tests that need
// one, and stops it when the test ends. Only tests import it.
//
// The etcd is devetcd's embedded server, run in a process of its own
// (internal/testetcd/etcdproc, built once per checkout by testbin): the
// test binaries that use it do not link etcd's server, whose link took
// each of them ~2 CPU-seconds more. It stops when the test closes it, or
// when the test process ends (its stdin closes).
//
// Tests that must kill etcd as a process (kill -9, SIGSTOP) or serve it
// over TLS run the etcd binary instead, and do not use this package.
package testetcd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/testbin"
	"shoal/internal/testutil"
)

// Server is a running etcd process.
type Server struct {
	cmd       *exec.Cmd
	stdin     io.Closer
	endpoints []string
	done      chan struct{}
	stderr    bytes.Buffer
	close     sync.Once
}

// Start runs etcd on free loopback ports with its data in a temporary
// directory, and closes it when t and its subtests are done.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn is Start on free ports of host, such as a bridge's address
// when nodes run in network namespaces.
func StartOn(t testing.TB, host string) *Server {
	t.Helper()
	s, err := StartProcess(t.TempDir(), host)
	if err != nil {
		t.Fatalf("testetcd: start etcd on %s: %v", host, err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartProcess is StartOn for callers without a testing.TB: etcd with its
// data in dir, until Close.
func StartProcess(dir, host string) (*Server, error) {
	bin, err := testbin.Etcd()
	if err != nil {
		return nil, err
	}
	s := &Server{cmd: exec.Command(bin, "-dir", dir, "-host", host), done: make(chan struct{})}
	s.cmd.Stderr = &s.stderr
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.stdin = stdin
	url := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		url <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
		s.cmd.Wait()
		close(s.done)
	}()
	select {
	case u := <-url:
		if u != "" {
			s.endpoints = []string{u}
			return s, nil
		}
		<-s.done
		return nil, fmt.Errorf("etcd exited: %s", bytes.TrimSpace(s.stderr.Bytes()))
	case <-time.After(30 * time.Second):
		s.Close()
		return nil, errors.New("etcd not ready after 30s")
	}
}

// Endpoints are the client URLs to give an etcd client.
func (s *Server) Endpoints() []string { return s.endpoints }

// Close stops etcd and waits for it (SIGKILL after 10 s). It is
// idempotent.
func (s *Server) Close() {
	s.close.Do(func() {
		s.stdin.Close()
		testutil.Stop(s.cmd.Process, s.done)
	})
}
