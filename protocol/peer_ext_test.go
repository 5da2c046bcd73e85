package protocol

import (
	"bytes"
	"fmt"
	"testing"
)

// TestPeerExtensions: Y, Z and sd are what memcached 1.6.18 makes of them
// (an invalid flag, an unknown command) unless the Reader opts in.
func TestPeerExtensions(t *testing.T) {
	const maxU64 = "18446744073709551615"
	cases := []peerCase{
		{"ms Y Z", "ms a 1 Y7 Z42 E9\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpSet, MetaOptions: MetaOptions{Flags: mflags("Y7", "Z42", "E9"), HasEpoch: true, Epoch: 7, HasSeq: true, Seq: 42, HasNewCAS: true, NewCAS: 9}}}},
		{"ms Y max", "ms a 1 Y" + maxU64 + "\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpSet, MetaOptions: MetaOptions{Flags: mflags("Y" + maxU64), HasEpoch: true, Epoch: 1<<64 - 1}}}},
		{"ms Z only", "ms a 1 Z3\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpSet, MetaOptions: MetaOptions{Flags: mflags("Z3"), HasSeq: true, Seq: 3}}}},
		{"ms Y bad", "ms a 1 Yx\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR bad token in command line format"}},
		{"ms Y overflow", "ms a 1 Y18446744073709551616\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR bad token in command line format"}},
		{"ms Z empty", "ms a 1 Z\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR bad token in command line format"}},
		{"ms Y twice", "ms a 1 Y1 Y2\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR duplicate flag"}},
		{"md Y Z", "md a Y5 Z6 q\r\n",
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"},
			parseCase{want: &MetaDelete{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("Y5", "Z6", "q"), Quiet: true, HasEpoch: true, Epoch: 5, HasSeq: true, Seq: 6}}}},
		{"md Z bad", "md a Z-1\r\n",
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"},
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"}},
		{"mg Y", "mg a Y5 v\r\n", // a replica-level read
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaGet{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("Y5", "v"), HasEpoch: true, Epoch: 5, ReturnValue: true}}}},
		{"mg A", "mg a A4096 v s\r\n", // the sender's room for the value
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaGet{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("A4096", "v", "s"), HasRoom: true, Room: 4096, ReturnValue: true, ReturnSize: true}}}},
		{"mg A bad", "mg a A-1 v\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR bad token in command line format"}},
		{"ms A", "ms a 1 A5\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR invalid flag"}},
		{"md A", "md a A5\r\n",
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"},
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"}},
		{"mg Z", "mg a Z5\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR invalid flag"}},
		{"ma Y", "ma a Y5\r\n",
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"},
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"}},
		{"sd", "sd AQI=\r\n",
			parseCase{reply: "ERROR"},
			parseCase{want: &ShardDump{Want: []byte{1, 2}}}},
		{"sd bare newline", "sd /w==\n",
			parseCase{reply: "ERROR"},
			parseCase{want: &ShardDump{Want: []byte{0xff}}}},
		{"sd no bitmap", "sd\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad command line format"}},
		{"sd since", "sd AQI= 123456789\r\n",
			parseCase{reply: "ERROR"},
			parseCase{want: &ShardDump{Want: []byte{1, 2}, Since: 123456789}}},
		{"sd since 0", "sd AQI= 0\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad command line format"}},
		{"sd three tokens", "sd AQI= 1 2\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad command line format"}},
		{"sd two bitmaps", "sd AQI= AQI=\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad command line format"}},
		{"sd unpadded", "sd AQI\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad data chunk"}},
		{"sd bad alphabet", "sd A*I=\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad data chunk"}},
		{"sd HTTP", "sd HTTP/1.1\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "CLIENT_ERROR bad data chunk"}},
		{"sdx", "sdx AQI=\r\n",
			parseCase{reply: "ERROR"},
			parseCase{reply: "ERROR"}},
	}
	runPeerCases(t, cases)
}

// TestReaderShardDump: a peer Reader reuses its bitmap buffer and keeps
// reading after a bad bitmap.
func TestReaderShardDump(t *testing.T) {
	in := "sd AQ==\r\nsd !!\r\nsd AQID\r\nmn\r\n"
	r := NewReader(bytes.NewReader([]byte(in)), 0)
	r.AcceptPeerExtensions()
	var got []string
	for range 4 {
		cmd, err := r.Next()
		switch c := cmd.(type) {
		case *ShardDump:
			got = append(got, show(c))
		case nil:
			got = append(got, err.Error())
		default:
			got = append(got, show(c))
		}
	}
	want := []string{
		"*protocol.ShardDump&{Want:[1] Since:0}",
		"protocol: CLIENT_ERROR bad data chunk",
		"*protocol.ShardDump&{Want:[1 2 3] Since:0}",
		"*protocol.Admin&{Op:5 Arg:0 NoReply:false Graceful:false BadMode:false}",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("command %d: %s, want %s", i, got[i], want[i])
		}
	}
}

func TestWantsShard(t *testing.T) {
	want := []byte{0b0000_0101, 0b1000_0000}
	for shard, set := range map[int]bool{0: true, 1: false, 2: true, 7: false, 8: false, 15: true, 16: false, -1: false} {
		if got := WantsShard(want, shard); got != set {
			t.Errorf("WantsShard(%d) = %v, want %v", shard, got, set)
		}
	}
}

func TestAppendShardDumpRequest(t *testing.T) {
	for since, want := range map[uint64]string{0: "xsd AQI=\r\n", 77: "xsd AQI= 77\r\n"} {
		got := string(AppendShardDumpRequest([]byte("x"), []byte{1, 2}, since))
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		cmd, n, err := parsePeer([]byte(got[1:]), true)
		if err != nil || n != len(got)-1 || show(cmd) != fmt.Sprintf("*protocol.ShardDump&{Want:[1 2] Since:%d}", since) {
			t.Fatalf("round trip: %s %d %v", show(cmd), n, err)
		}
	}
}
