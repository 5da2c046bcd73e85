package server

// Differential suite for the binary protocol, in the spirit of
// conformance_test.go: each case's packets go to memcached and to shoal
// (under both drivers), and the replies, decoded one packet a line, must
// equal the golden recorded from memcached 1.6.18 in
// testdata/conformance/binary.golden.
//
//	go test ./server -run TestBinaryConformance            # all targets
//	go test ./server -run TestBinaryConformance -update    # re-record
//
// After a case's packets the harness sends a NOOP with opaque 0xffffffff
// (the sentinel) and reads until its reply, which is dropped; if the
// server closes the connection first, the reply ends with "# closed".
// CAS values are normalised to <cas1>, <cas2>, ... by first appearance.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/protocol"
	"shoal/store"
)

const binaryGolden = "binary.golden"

// binCase is one case: its server flags and the bytes it sends.
type binCase struct {
	name string
	args []string
	send [][]byte
}

// pkt builds a request packet.
func pkt(op protocol.BinaryOp, key, extras, value string, opaque uint32, cas uint64) []byte {
	b := make([]byte, protocol.BinaryHeaderLen, protocol.BinaryHeaderLen+len(key)+len(extras)+len(value))
	b[0] = protocol.BinaryRequestMagic
	b[1] = byte(op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(extras))
	binary.BigEndian.PutUint32(b[8:], uint32(len(key)+len(extras)+len(value)))
	binary.BigEndian.PutUint32(b[12:], opaque)
	binary.BigEndian.PutUint64(b[16:], cas)
	b = append(b, extras...)
	b = append(b, key...)
	return append(b, value...)
}

func u32s(vs ...uint32) string {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return string(b)
}

func arithExtras(delta, initial uint64, exptime uint32) string {
	b := binary.BigEndian.AppendUint64(nil, delta)
	b = binary.BigEndian.AppendUint64(b, initial)
	return string(binary.BigEndian.AppendUint32(b, exptime))
}

func binaryCases() []binCase {
	const o = 7 // opaque
	fl := u32s(5, 0)
	set := func(k, v string) []byte { return pkt(protocol.BinSet, k, fl, v, o, 0) }
	noop := pkt(protocol.BinNoop, "", "", "", o, 0)
	return []binCase{
		{name: "get miss", send: [][]byte{pkt(protocol.BinGet, "nokey", "", "", o, 0)}},
		{name: "getk miss", send: [][]byte{pkt(protocol.BinGetK, "nokey", "", "", o, 0)}},
		{name: "getq getkq miss", send: [][]byte{pkt(protocol.BinGetQ, "a", "", "", o, 0), pkt(protocol.BinGetKQ, "b", "", "", o, 0), noop}},
		{name: "set get getk getq getkq", send: [][]byte{set("k", "val"), pkt(protocol.BinGet, "k", "", "", o, 0), pkt(protocol.BinGetK, "k", "", "", o, 0),
			pkt(protocol.BinGetQ, "k", "", "", o, 0), pkt(protocol.BinGetKQ, "k", "", "", o, 0), noop}},
		{name: "add exists", send: [][]byte{set("k", "v"), pkt(protocol.BinAdd, "k", fl, "v", o, 0), pkt(protocol.BinAdd, "n", fl, "v", o, 0)}},
		{name: "replace", send: [][]byte{pkt(protocol.BinReplace, "k", fl, "v", o, 0), set("k", "v"), pkt(protocol.BinReplace, "k", fl, "w", o, 0)}},
		{name: "quiet writes", send: [][]byte{pkt(protocol.BinSetQ, "k", fl, "v", o, 0), pkt(protocol.BinAddQ, "k", fl, "v", o, 0),
			pkt(protocol.BinReplaceQ, "k", fl, "w", o, 0), pkt(protocol.BinReplaceQ, "x", fl, "w", o, 0), noop, pkt(protocol.BinGet, "k", "", "", o, 0)}},
		{name: "cas", send: [][]byte{set("k", "v"), pkt(protocol.BinSet, "k", fl, "v", o, 99999), pkt(protocol.BinSet, "miss", fl, "v", o, 99999)}},
		{name: "writes with a cas", send: [][]byte{set("k", "v"), pkt(protocol.BinAppend, "k", "", "x", o, 1234567), pkt(protocol.BinAdd, "k", fl, "x", o, 1234567),
			pkt(protocol.BinReplace, "k", fl, "x", o, 1234567), pkt(protocol.BinAdd, "new", fl, "x", o, 1234567), pkt(protocol.BinGet, "k", "", "", o, 0)}},
		{name: "large values", send: [][]byte{set("big", strings.Repeat("b", 200<<10)), pkt(protocol.BinGetK, "big", "", "", o, 0),
			pkt(protocol.BinGetQ, "big", "", "", o, 0), set("big2", strings.Repeat("c", 1000<<10)), pkt(protocol.BinGAT, "big2", u32s(0), "", o, 0), noop}},
		{name: "append prepend", send: [][]byte{pkt(protocol.BinAppend, "k", "", "v", o, 0), set("k", "b"), pkt(protocol.BinAppend, "k", "", "c", o, 0),
			pkt(protocol.BinPrepend, "k", "", "a", o, 0), pkt(protocol.BinAppendQ, "k", "", "d", o, 0), pkt(protocol.BinPrependQ, "k", "", "_", o, 0),
			pkt(protocol.BinPrependQ, "x", "", "_", o, 0), pkt(protocol.BinGet, "k", "", "", o, 0)}},
		{name: "delete", send: [][]byte{set("k", "v"), pkt(protocol.BinDelete, "k", "", "", o, 0), pkt(protocol.BinDelete, "k", "", "", o, 0),
			pkt(protocol.BinDeleteQ, "k", "", "", o, 0), set("k", "v"), pkt(protocol.BinDeleteQ, "k", "", "", o, 0),
			set("k", "v"), pkt(protocol.BinDelete, "k", "", "", o, 1234567), noop}},
		{name: "incr decr", send: [][]byte{pkt(protocol.BinIncrement, "n", arithExtras(1, 10, 0), "", o, 0),
			pkt(protocol.BinIncrement, "n", arithExtras(3, 10, 0), "", o, 0), pkt(protocol.BinDecrement, "n", arithExtras(100, 10, 0), "", o, 0),
			pkt(protocol.BinIncrement, "m", arithExtras(1, 10, 0xffffffff), "", o, 0), pkt(protocol.BinIncrQ, "n", arithExtras(1, 0, 0), "", o, 0),
			pkt(protocol.BinDecrQ, "n", arithExtras(1, 0, 0), "", o, 0), pkt(protocol.BinIncrQ, "m", arithExtras(1, 0, 0xffffffff), "", o, 0),
			pkt(protocol.BinGet, "n", "", "", o, 0)}},
		{name: "incr non-numeric and cas", send: [][]byte{set("k", "abc"), pkt(protocol.BinIncrement, "k", arithExtras(1, 0, 0), "", o, 0),
			set("j", "1"), pkt(protocol.BinIncrement, "j", arithExtras(1, 0, 0), "", o, 1234567),
			set("w", "18446744073709551615"), pkt(protocol.BinIncrement, "w", arithExtras(1, 0, 0), "", o, 0)}},
		{name: "touch gat", send: [][]byte{set("k", "val"), pkt(protocol.BinTouch, "k", u32s(100), "", o, 0), pkt(protocol.BinGAT, "k", u32s(100), "", o, 0),
			pkt(protocol.BinGATK, "k", u32s(100), "", o, 0), pkt(protocol.BinGATQ, "k", u32s(100), "", o, 0), pkt(protocol.BinGATKQ, "k", u32s(100), "", o, 0),
			pkt(protocol.BinTouch, "x", u32s(100), "", o, 0), pkt(protocol.BinGAT, "x", u32s(100), "", o, 0), pkt(protocol.BinGATK, "x", u32s(100), "", o, 0),
			pkt(protocol.BinGATQ, "x", u32s(100), "", o, 0), pkt(protocol.BinGATKQ, "x", u32s(100), "", o, 0), noop}},
		{name: "gat expires", send: [][]byte{set("k", "val"), pkt(protocol.BinGAT, "k", u32s(2592001), "", o, 0), pkt(protocol.BinGet, "k", "", "", o, 0)}},
		{name: "version noop", send: [][]byte{pkt(protocol.BinVersion, "", "", "", o, 0), noop}},
		{name: "flush", send: [][]byte{set("k", "v"), pkt(protocol.BinFlush, "", "", "", o, 0), pkt(protocol.BinGet, "k", "", "", o, 0),
			pkt(protocol.BinFlushQ, "", "", "", o, 0), pkt(protocol.BinFlush, "", u32s(0), "", o, 0)}},
		{name: "flush disabled", args: []string{"-F"}, send: [][]byte{pkt(protocol.BinFlush, "", "", "", o, 0), pkt(protocol.BinFlushQ, "", "", "", o, 0)}},
		{name: "quit", send: [][]byte{pkt(protocol.BinQuit, "", "", "", o, 0), noop}},
		{name: "quitq", send: [][]byte{pkt(protocol.BinQuitQ, "", "", "", o, 0), noop}},
		{name: "sasl without -S", send: [][]byte{pkt(protocol.BinSASLList, "", "", "", o, 0), pkt(protocol.BinSASLAuth, "PLAIN", "", "\x00a\x00b", o, 0),
			pkt(protocol.BinSASLStep, "PLAIN", "", "x", o, 0)}},
		// memcached skips an unknown opcode's body after reading its
		// extras and key, so the next 4 (1) bytes are lost: sent as pads.
		{name: "verbosity is unknown", send: [][]byte{pkt(protocol.BinVerbosity, "", u32s(1), "", o, 0), []byte("pad!"), noop}},
		{name: "unknown opcode", send: [][]byte{pkt(0x50, "", "", "", o, 0), pkt(0x60, "k", "", "vvvv", o, 0), []byte("p"), noop}},
		{name: "stat unknown group", send: [][]byte{pkt(protocol.BinStat, "bogus", "", "", o, 0), pkt(protocol.BinStat, "detail", "", "", o, 0)}},
		{name: "stat reset", send: [][]byte{pkt(protocol.BinStat, "reset", "", "", o, 0), pkt(protocol.BinStat, "resetX", "", "", o, 0)}},
		{name: "stat groups", send: [][]byte{pkt(protocol.BinStat, "conns", "", "", o, 0), pkt(protocol.BinStat, "itemsX", "", "", o, 0),
			pkt(protocol.BinStat, "items", "", "", o, 0), pkt(protocol.BinStat, "sizes", "", "", o, 0), pkt(protocol.BinStat, "slabsX", "", "", o, 0)}},
		{name: "stat detail", send: [][]byte{pkt(protocol.BinStat, "detail on", "", "", o, 0), pkt(protocol.BinStat, "detail dump", "", "", o, 0),
			pkt(protocol.BinStat, "detail offX", "", "", o, 0), pkt(protocol.BinStat, "detailX", "", "", o, 0)}},
		{name: "too large", send: [][]byte{set("k", "v"), pkt(protocol.BinSet, "k", fl, strings.Repeat("v", 1<<20+10), o, 0), pkt(protocol.BinGet, "k", "", "", o, 0),
			pkt(protocol.BinAddQ, "j", fl, strings.Repeat("v", 1<<20+10), o, 0), noop}},
		{name: "invalid extras", send: [][]byte{pkt(protocol.BinGet, "k", "abcd", "", o, 0), noop}},
		{name: "invalid set without extras", send: [][]byte{pkt(protocol.BinSet, "k", "", "v", o, 0), noop}},
		{name: "invalid touch without extras", send: [][]byte{pkt(protocol.BinTouch, "k", "", "", o, 0), noop}},
		{name: "invalid key too long", send: [][]byte{pkt(protocol.BinSet, strings.Repeat("k", 251), fl, "v", o, 0)}},
		{name: "invalid incr extras", send: [][]byte{pkt(protocol.BinIncrement, "k", "12345678", "", o, 0), noop}},
		{name: "key longer than body", send: [][]byte{append(pkt(protocol.BinGet, "", "", "ab", o, 0)[:2:2], "\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00ab"...)}},
		{name: "bad magic closes", send: [][]byte{noop, append([]byte{0x81}, noop[1:]...)}},
		{name: "text after binary closes", send: [][]byte{noop, []byte("version\r\n")}},
		{name: "binary only", args: []string{"-B", "binary"}, send: [][]byte{[]byte("version\r\n")}},
	}
}

// startBinaryShoal starts shoal in-process with the flags a case uses.
func startBinaryShoal(t testing.TB, loop bool, args ...string) string {
	t.Helper()
	cfg := Config{EventLoop: loop}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-F":
			cfg.DisableFlush = true
		case "-B":
			i++
			switch args[i] {
			case "ascii":
				cfg.Binding = protocol.BindASCII
			case "binary":
				cfg.Binding = protocol.BindBinary
			}
		default:
			t.Fatalf("unsupported flag %q", args[i])
		}
	}
	return startServer(t, store.Config{}, cfg)
}

func TestBinaryConformance(t *testing.T) {
	t.Parallel()
	cases := binaryCases()
	golden := filepath.Join(conformanceDir, binaryGolden)
	targets := []struct {
		name  string
		start func(testing.TB, ...string) string
	}{
		{"memcached", startMemcached},
		{"shoal", func(t testing.TB, args ...string) string { return startBinaryShoal(t, false, args...) }},
		{"shoal-eventloop", func(t testing.TB, args ...string) string { return startBinaryShoal(t, true, args...) }},
	}
	var want map[string]string
	if !*updateConformance {
		var err error
		if want, err = readBinaryGolden(golden); err != nil {
			t.Fatal(err)
		}
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			if tg.name == "memcached" {
				if _, err := exec.LookPath("memcached"); err != nil {
					if *updateConformance {
						t.Fatal("-update needs memcached on PATH")
					}
					t.Skip("memcached not on PATH")
				}
			} else if *updateConformance {
				t.Skip("-update records from memcached only")
			}
			got := make(map[string]string)
			for _, c := range cases {
				t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
					addr := tg.start(t, c.args...)
					got[c.name] = binaryExchange(t, addr, c.send)
					if !*updateConformance && got[c.name] != want[c.name] {
						t.Errorf("reply\n%s\nwant (memcached 1.6.18)\n%s", got[c.name], want[c.name])
					}
				})
			}
			if *updateConformance {
				writeBinaryGolden(t, golden, cases, got)
			}
		})
	}
}

// binaryExchange sends the packets and the sentinel, and returns the
// decoded replies.
func binaryExchange(t *testing.T, addr string, send [][]byte) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(replyTimeout))
	go func() {
		for _, p := range send {
			if _, err := nc.Write(p); err != nil {
				return
			}
		}
		nc.Write(pkt(protocol.BinNoop, "", "", "", 0xffffffff, 0))
	}()
	br := bufio.NewReader(nc)
	var out strings.Builder
	cas := map[uint64]int{}
	for {
		var h [protocol.BinaryHeaderLen]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if err == io.EOF || errors.Is(err, syscall.ECONNRESET) {
				// A reset: the server closed with the sentinel unread.
				out.WriteString("# closed\n")
				return out.String()
			}
			t.Fatalf("after\n%s: %v", out.String(), err)
		}
		body := make([]byte, binary.BigEndian.Uint32(h[8:]))
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("body: %v", err)
		}
		opaque := binary.BigEndian.Uint32(h[12:])
		if h[1] == byte(protocol.BinNoop) && opaque == 0xffffffff {
			return out.String()
		}
		kl, el := int(binary.BigEndian.Uint16(h[2:])), int(h[4])
		c := binary.BigEndian.Uint64(h[16:])
		cs := "0"
		if c != 0 {
			if cas[c] == 0 {
				cas[c] = len(cas) + 1
			}
			cs = "<cas" + strconv.Itoa(cas[c]) + ">"
		}
		val := body[min(kl+el, len(body)):]
		vs := strconv.Quote(string(val))
		if len(val) > 200 {
			vs = fmt.Sprintf("%d bytes crc32=%08x", len(val), crc32.ChecksumIEEE(val))
		}
		fmt.Fprintf(&out, "magic=%#x op=%#02x status=%#x opaque=%d cas=%s extras=%q key=%q value=%s\n",
			h[0], h[1], binary.BigEndian.Uint16(h[6:]), opaque, cs, body[:min(el, len(body))], body[min(el, len(body)):min(kl+el, len(body))], vs)
	}
}

func readBinaryGolden(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	var name string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if n, ok := strings.CutPrefix(line, "=== "); ok {
			name = strings.TrimSuffix(n, "\n")
			m[name] = ""
			continue
		}
		if name != "" {
			m[name] += line
		}
	}
	return m, nil
}

func writeBinaryGolden(t *testing.T, path string, cases []binCase, got map[string]string) {
	var b bytes.Buffer
	b.WriteString("# Binary protocol replies of memcached 1.6.18, recorded by\n# go test ./server -run TestBinaryConformance -update (binary_conformance_test.go).\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "=== %s\n%s", c.name, got[c.name])
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
