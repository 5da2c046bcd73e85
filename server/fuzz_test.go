package server

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// FuzzConn feeds arbitrary bytes to a real server over TCP: no input may
// crash the process or wedge the connection. Seeds are the conformance
// cases, so the fuzzer starts from every command the suite knows.
func FuzzConn(f *testing.F) {
	files, _ := filepath.Glob("../testdata/conformance/*.txt")
	for _, file := range files {
		cases, err := parseCases(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			var in []byte
			for _, st := range c.steps {
				in = append(in, st.data...)
			}
			if len(in) < 64<<10 {
				f.Add(in)
			}
		}
	}
	f.Add([]byte("set a 0 0 5\r\nhello\r\nget a a a\r\nmg a v k c t s f\r\n"))
	f.Add([]byte("ms a 1 Y3 Z4 E5\r\nx\r\nmd a Y3 q\r\nsd Ag==\r\nsd !\r\nmn\r\n"))
	for _, c := range binaryCases() { // the binary protocol's
		var in []byte
		for _, p := range c.send {
			in = append(in, p...)
		}
		if len(in) < 64<<10 {
			f.Add(in)
		}
	}
	addr := startShoal(f, "-m", "8", "-I", "64k")
	// The same bytes go to a peer port too (peer extensions, a Dumper and
	// Replica cache).
	shards := newShardCache(f)
	_, peerAddr := serve(f, Config{PeerExtensions: true, MaxItemSize: 64 << 10, Dumps: shards}, shards)
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzConn(t, addr, in)
		fuzzConn(t, peerAddr, in)
	})
}

func fuzzConn(t *testing.T, addr string, in []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
	}()
	// The server must answer everything and close once it reads EOF
	// (or earlier, on a line too long); a deadline error means it
	// wedged.
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Fatalf("reading replies: %v", err)
	}
}

// isReset reports an error other than a timeout: the server closed on a
// bad line while the fuzzer was still writing, which is allowed.
func isReset(err error) bool {
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
