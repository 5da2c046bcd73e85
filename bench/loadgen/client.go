package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// errServer marks a reply the server sent on purpose (ERROR, CLIENT_ERROR,
// SERVER_ERROR): the connection survives it, the caller counts it.
var errServer = errors.New("loadgen: server error reply")

// conn is one text-protocol connection. It is owned by a single goroutine.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	// num is scratch space for formatting numbers without allocating.
	num []byte
}

// dial connects to addr; "tls://host:port" speaks TLS without checking
// the server's certificate (a benchmark, on loopback).
func dial(addr string) (*conn, error) {
	host, useTLS := strings.CutPrefix(addr, "tls://")
	nc, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if useTLS {
		tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &conn{
		nc:  nc,
		r:   bufio.NewReaderSize(nc, 64<<10),
		w:   bufio.NewWriterSize(nc, 64<<10),
		num: make([]byte, 0, 24),
	}, nil
}

func (c *conn) close() error { return c.nc.Close() }

// appendKey writes prefix+id as the key; keys look like "k:123456".
func appendKey(b []byte, id uint64) []byte {
	b = append(b, 'k', ':')
	return strconv.AppendUint(b, id, 10)
}

// sendGet buffers "get <key>\r\n".
func (c *conn) sendGet(id uint64) {
	c.w.WriteString("get ")
	c.num = appendKey(c.num[:0], id)
	c.w.Write(c.num)
	c.w.WriteString("\r\n")
}

// sendSet buffers "set <key> 0 0 <len>\r\n<value>\r\n".
func (c *conn) sendSet(id uint64, value []byte) {
	c.w.WriteString("set ")
	c.num = appendKey(c.num[:0], id)
	c.num = append(c.num, " 0 0 "...)
	c.num = strconv.AppendInt(c.num, int64(len(value)), 10)
	c.w.Write(c.num)
	c.w.WriteString("\r\n")
	c.w.Write(value)
	c.w.WriteString("\r\n")
}

func (c *conn) flush() error { return c.w.Flush() }

// line reads one reply line without its "\r\n". The slice is valid until the
// next read.
func (c *conn) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

func isServerError(l []byte) bool {
	return bytes.HasPrefix(l, []byte("ERROR")) ||
		bytes.HasPrefix(l, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(l, []byte("SERVER_ERROR"))
}

// readGet reads the reply to a single-key get: hit or miss. A server error
// reply returns errServer; anything else unexpected is a protocol error that
// should end the connection.
func (c *conn) readGet() (hit bool, err error) {
	l, err := c.line()
	if err != nil {
		return false, err
	}
	if bytes.Equal(l, []byte("END")) {
		return false, nil
	}
	if isServerError(l) {
		return false, fmt.Errorf("%w: %q", errServer, l)
	}
	if !bytes.HasPrefix(l, []byte("VALUE ")) {
		return false, fmt.Errorf("loadgen: unexpected get reply %q", l)
	}
	// VALUE <key> <flags> <bytes> [<cas>]
	f := bytes.Fields(l)
	if len(f) < 4 {
		return false, fmt.Errorf("loadgen: short VALUE line %q", l)
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 {
		return false, fmt.Errorf("loadgen: bad VALUE length in %q", l)
	}
	if _, err := c.r.Discard(n + 2); err != nil {
		return false, err
	}
	l, err = c.line()
	if err != nil {
		return false, err
	}
	if !bytes.Equal(l, []byte("END")) {
		return false, fmt.Errorf("loadgen: expected END, got %q", l)
	}
	return true, nil
}

// readSet reads the reply to a set. NOT_STORED and server errors return
// errServer so the caller can count them and carry on.
func (c *conn) readSet() error {
	l, err := c.line()
	if err != nil {
		return err
	}
	if bytes.Equal(l, []byte("STORED")) {
		return nil
	}
	if bytes.Equal(l, []byte("NOT_STORED")) || isServerError(l) {
		return fmt.Errorf("%w: %q", errServer, l)
	}
	return fmt.Errorf("loadgen: unexpected set reply %q", l)
}

// stats runs "stats" and returns its fields.
func (c *conn) stats() (map[string]string, error) {
	c.w.WriteString("stats\r\n")
	if err := c.flush(); err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for {
		l, err := c.line()
		if err != nil {
			return nil, err
		}
		if bytes.Equal(l, []byte("END")) {
			return m, nil
		}
		f := bytes.Fields(l)
		if len(f) != 3 || !bytes.Equal(f[0], []byte("STAT")) {
			return nil, fmt.Errorf("loadgen: unexpected stats line %q", l)
		}
		m[string(f[1])] = string(f[2])
	}
}

// version runs "version"; it is the cheapest proof the server is serving.
func (c *conn) version() (string, error) {
	c.w.WriteString("version\r\n")
	if err := c.flush(); err != nil {
		return "", err
	}
	l, err := c.line()
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(l, []byte("VERSION ")) {
		return "", fmt.Errorf("loadgen: unexpected version reply %q", l)
	}
	return string(l[len("VERSION "):]), nil
}

// isFatal says whether an error from a read or flush should end the
// connection: every error except a deliberate server error reply.
func isFatal(err error) bool {
	return err != nil && !errors.Is(err, errServer)
}
