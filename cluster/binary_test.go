package cluster

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"shoal/gossip"
	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/protocol"
	"shoal/server"
)

// binConn is a binary-protocol client connection for tests.
type binConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

type binReply struct {
	op     protocol.BinaryOp
	status protocol.BinaryStatus
	cas    uint64
	extras []byte
	key    []byte
	value  []byte
}

func dialBinary(t *testing.T, addr string) *binConn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &binConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *binConn) send(op protocol.BinaryOp, key string, extras []byte, value string, cas uint64) {
	b := make([]byte, protocol.BinaryHeaderLen)
	b[0] = protocol.BinaryRequestMagic
	b[1] = byte(op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(extras))
	binary.BigEndian.PutUint32(b[8:], uint32(len(key)+len(extras)+len(value)))
	binary.BigEndian.PutUint64(b[16:], cas)
	b = append(append(append(b, extras...), key...), value...)
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *binConn) recv() binReply {
	var h [protocol.BinaryHeaderLen]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(h[8:]))
	if _, err := io.ReadFull(c.br, body); err != nil {
		c.t.Fatal(err)
	}
	kl, el := int(binary.BigEndian.Uint16(h[2:])), int(h[4])
	return binReply{op: protocol.BinaryOp(h[1]), status: protocol.BinaryStatus(binary.BigEndian.Uint16(h[6:])),
		cas: binary.BigEndian.Uint64(h[16:]), extras: body[:el], key: body[el : el+kl], value: body[el+kl:]}
}

func (c *binConn) do(op protocol.BinaryOp, key string, extras []byte, value string, cas uint64) binReply {
	c.send(op, key, extras, value, cas)
	return c.recv()
}

func setExtras(flags, exptime uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, flags), exptime)
}

func arithExtras(delta, initial uint64, exptime uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, delta)
	b = binary.BigEndian.AppendUint64(b, initial)
	return binary.BigEndian.AppendUint32(b, exptime)
}

// TestRouterBinary: binary-protocol requests reach each key's owner, as
// text ones do, whichever node the client talks to, under both drivers.
func TestRouterBinary(t *testing.T) {
	t.Parallel() // an etcd and nodes of its own
	for name, cfg := range map[string]server.Config{"goroutines": {}, "event loops": {EventLoop: true}} {
		t.Run(name, func(t *testing.T) { testRouterBinary(t, cfg) })
	}
}

func testRouterBinary(t *testing.T, scfg server.Config) {
	etcd := testetcd.Start(t)
	a := startRoutedNode(t, etcd, "a", scfg)
	b := startRoutedNode(t, etcd, "b", scfg)
	testutil.WaitFor(t, 20*time.Second, "the two nodes to converge", func() bool {
		va, vb := a.node.View(), b.node.View()
		return va != nil && vb != nil && va.Epoch == vb.Epoch && len(va.Members) == 2 &&
			a.node.Health("b") == gossip.Alive && b.node.Health("a") == gossip.Alive
	})
	ba, bb := dialBinary(t, a.addr), dialBinary(t, b.addr)
	tb := client(b.addr)
	const keys = 40
	for i := range keys {
		k := fmt.Sprintf("bin-%d", i)
		if r := ba.do(protocol.BinSet, k, setExtras(uint32(i), 300), k+"-v", 0); r.status != protocol.StatusOK || r.cas == 0 {
			t.Fatalf("set %s via a: %+v", k, r)
		}
		r := bb.do(protocol.BinGetK, k, nil, "", 0)
		if r.status != protocol.StatusOK || string(r.key) != k || string(r.value) != k+"-v" || binary.BigEndian.Uint32(r.extras) != uint32(i) {
			t.Fatalf("getk %s via b: %+v", k, r)
		}
		if it, err := tb.Get(k); err != nil || string(it.Value) != k+"-v" {
			t.Fatalf("text get %s via b: %+v, %v", k, it, err)
		}
		if w := bb.do(protocol.BinSet, k, setExtras(0, 0), "swapped", r.cas); w.status != protocol.StatusOK {
			t.Fatalf("cas %s via b: %+v", k, w)
		}
		if w := ba.do(protocol.BinSet, k, setExtras(0, 0), "stale", r.cas); w.status != protocol.StatusExists {
			t.Fatalf("stale cas %s via a: %+v", k, w)
		}
		c := fmt.Sprintf("ctr-%d", i)
		if r := bb.do(protocol.BinIncrement, c, arithExtras(1, 10, 0), "", 0); r.status != protocol.StatusOK || binary.BigEndian.Uint64(r.value) != 10 {
			t.Fatalf("incr-create %s via b: %+v", c, r)
		}
		if r := ba.do(protocol.BinIncrement, c, arithExtras(5, 0, 0), "", 0); binary.BigEndian.Uint64(r.value) != 15 {
			t.Fatalf("incr %s via a: %+v", c, r)
		}
		if r := ba.do(protocol.BinAppend, k, nil, "!", 0); r.status != protocol.StatusOK {
			t.Fatalf("append %s via a: %+v", k, r)
		}
		if r := bb.do(protocol.BinTouch, k, binary.BigEndian.AppendUint32(nil, 100), "", 0); r.status != protocol.StatusOK {
			t.Fatalf("touch %s via b: %+v", k, r)
		}
		if r := bb.do(protocol.BinGet, k, nil, "", 0); string(r.value) != "swapped!" {
			t.Fatalf("get %s via b: %+v", k, r)
		}
		if r := ba.do(protocol.BinDelete, k, nil, "", 0); r.status != protocol.StatusOK {
			t.Fatalf("delete %s via a: %+v", k, r)
		}
		if r := bb.do(protocol.BinGet, k, nil, "", 0); r.status != protocol.StatusNotFound || string(r.value) != "Not found" {
			t.Fatalf("get %s after delete via b: %+v", k, r)
		}
	}
	// A pipeline of quiet writes and gets, ended by a NOOP.
	for i := range keys {
		k := fmt.Sprintf("q-%d", i)
		ba.send(protocol.BinSetQ, k, setExtras(0, 0), k, 0)
	}
	for i := range keys {
		bb.send(protocol.BinGetKQ, fmt.Sprintf("q-%d", i), nil, "", 0)
		bb.send(protocol.BinGetKQ, fmt.Sprintf("missing-%d", i), nil, "", 0)
	}
	if r := ba.do(protocol.BinNoop, "", nil, "", 0); r.op != protocol.BinNoop {
		t.Fatalf("after quiet sets: %+v", r)
	}
	bb.send(protocol.BinNoop, "", nil, "", 0)
	// The gets of bb were sent before a's NOOP came back: read them in a
	// second round that surely follows the sets.
	for r := bb.recv(); r.op != protocol.BinNoop; r = bb.recv() {
	}
	for i := range keys {
		bb.send(protocol.BinGetKQ, fmt.Sprintf("q-%d", i), nil, "", 0)
		bb.send(protocol.BinGetKQ, fmt.Sprintf("missing-%d", i), nil, "", 0)
	}
	bb.send(protocol.BinNoop, "", nil, "", 0)
	for i := range keys {
		r := bb.recv()
		if k := fmt.Sprintf("q-%d", i); r.op != protocol.BinGetKQ || string(r.key) != k || string(r.value) != k {
			t.Fatalf("getkq %d: %+v", i, r)
		}
	}
	if r := bb.recv(); r.op != protocol.BinNoop {
		t.Fatalf("want the NOOP after the hits, got %+v", r)
	}
	if r := bb.do(protocol.BinFlush, "", nil, "", 0); r.status != protocol.StatusOK {
		t.Fatalf("flush: %+v", r)
	}
	if r := ba.do(protocol.BinGet, "q-1", nil, "", 0); r.status != protocol.StatusNotFound {
		t.Fatalf("get after flush through the other node: %+v", r)
	}
}
