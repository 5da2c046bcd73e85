package server

import (
	"io"
	"testing"

	"shoal/protocol"
	"shoal/store"
)

// BenchmarkExec runs one command's server path (exec: the store call, the
// counters, the reply appended) without the network, where a nanosecond
// shows: the cost an event site adds while nobody watches.
func BenchmarkExec(b *testing.B) {
	st, err := store.New(store.Config{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{}, Local{st})
	if err != nil {
		b.Fatal(err)
	}
	for _, req := range []string{"get k\r\n", "set k 0 0 5\r\nhello\r\n", "mg k v t f\r\n"} {
		b.Run(req[:3], func(b *testing.B) {
			c := newConn(srv, nil, nil)
			c.setIO(nil, io.Discard)
			c.out = make([]byte, 0, outBase)
			st.Set([]byte("k"), []byte("hello"), nil)
			cmd, _, err := protocol.Parse([]byte(req))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.exec(cmd)
				c.out = c.out[:0]
			}
		})
	}
}
