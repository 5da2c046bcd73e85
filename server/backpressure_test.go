package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestMultiGetBackPressure: a multi-get of large values to a client that
// reads slowly arrives byte for byte, in order, while the server holds at
// most a bounded amount of it: under the event loop the retrieval stops
// while its replies wait for the socket, and large values go to the
// socket from the value buffer.
func TestMultiGetBackPressure(t *testing.T) {
	t.Parallel()
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			srv, addr := startDriver(t, loop, 1<<20)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(time.Minute))
			r := bufio.NewReader(c)
			vals := make([]string, 8)
			for i := range vals {
				vals[i] = strings.Repeat(string(rune('a'+i)), 300_000+i)
				fmt.Fprintf(c, "set k%d %d 0 %d\r\n%s\r\n", i, i, len(vals[i]), vals[i])
				if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
					t.Fatalf("set: %q %v", line, err)
				}
			}
			var req, want bytes.Buffer
			req.WriteString("get")
			for n := range 64 {
				i := n % len(vals)
				fmt.Fprintf(&req, " k%d small", i)
				fmt.Fprintf(&want, "VALUE k%d %d %d\r\n%s\r\n", i, i, len(vals[i]), vals[i])
			}
			req.WriteString(" " + strings.Repeat("x", 251) + "\r\nget k0\r\n") // a bad key ends the line
			want.WriteString("CLIENT_ERROR bad command line format\r\n")
			fmt.Fprintf(&want, "VALUE k0 0 %d\r\n%s\r\nEND\r\n", len(vals[0]), vals[0])
			// memcached drops the replies not yet sent before the error: all
			// were sent here, as the retrieval waited for each to leave.
			io.WriteString(c, req.String())
			got := make([]byte, 0, want.Len())
			buf := make([]byte, 64<<10)
			peak := int64(0)
			for len(got) < want.Len() {
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					t.Fatalf("after %d of %d bytes: %v", len(got), want.Len(), err)
				}
				if len(got)%(1<<20) < n {
					time.Sleep(20 * time.Millisecond) // a slow reader
				}
				peak = max(peak, srv.Stats().ConnMem.ResponseBytes)
			}
			if !bytes.Equal(got, want.Bytes()) {
				i := 0
				for i < len(got) && got[i] == want.Bytes()[i] {
					i++
				}
				t.Fatalf("replies differ at byte %d of %d: %q", i, want.Len(), got[i:min(len(got), i+80)])
			}
			if loop && peak > 2<<20 {
				t.Errorf("reply buffers peaked at %d bytes for 19 MB of replies", peak)
			}
		})
	}
}
