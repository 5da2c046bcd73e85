package protocol

import (
	"bytes"
	"testing"
)

// parsePeer parses buf like Parse, with the peer extensions accepted or not.
func parsePeer(buf []byte, accept bool) (Command, int, error) {
	var p parser
	p.getCap = DefaultGetLineCap
	p.peer = accept
	cmd, n, swallow, err := p.parse(buf)
	return cmd, n + swallow, err
}

// peerCase is one input parsed with the peer extensions off and on.
type peerCase struct {
	name    string
	in      string
	off, on parseCase
}

// runPeerCases checks each case with the extensions off (and through
// Parse, which never accepts them) and on.
func runPeerCases(t *testing.T, cases []peerCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name+"/default", func(t *testing.T) {
			cmd, n, err := parsePeer([]byte(tc.in), false)
			tc.off.in = tc.in
			checkResult(t, tc.off, cmd, n, err)
			// Parse never accepts the extensions.
			cmd, n, err = Parse([]byte(tc.in))
			checkResult(t, tc.off, cmd, n, err)
		})
		t.Run(tc.name+"/accept", func(t *testing.T) {
			cmd, n, err := parsePeer([]byte(tc.in), true)
			tc.on.in = tc.in
			checkResult(t, tc.on, cmd, n, err)
		})
	}
}

// TestExplicitCAS: E (the shoal peer extension) is an invalid flag as in
// memcached 1.6.18 unless the Reader opts in.
func TestExplicitCAS(t *testing.T) {
	cases := []peerCase{
		{"ms E", "ms a 1 T0 F3 E12345\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpSet, MetaOptions: MetaOptions{Flags: mflags("T0", "F3", "E12345"), HasTTL: true, HasClientFlags: true, ClientFlags: 3, HasNewCAS: true, NewCAS: 12345}}}},
		{"ms E with C", "ms a 1 C7 E8\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpCAS, MetaOptions: MetaOptions{Flags: mflags("C7", "E8"), HasCAS: true, CAS: 7, HasNewCAS: true, NewCAS: 8}}}},
		{"ms E bad", "ms a 1 Ex\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR bad token in command line format"}},
		{"ms E zero", "ms a 1 E0\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR bad token in command line format"}},
		{"ms E twice", "ms a 1 E1 E2\r\nx\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR duplicate flag"}},
		{"md E", "md a I E9\r\n",
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"},
			parseCase{want: &MetaDelete{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("I", "E9"), Invalidate: true, HasNewCAS: true, NewCAS: 9}}}},
		{"ma E", "ma a E9\r\n",
			parseCase{reply: "CLIENT_ERROR invalid or duplicate flag"},
			parseCase{want: &MetaArith{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("E9"), Delta: 1, HasNewCAS: true, NewCAS: 9}}}},
		{"mg E", "mg a E5\r\n",
			parseCase{reply: "CLIENT_ERROR invalid flag"},
			parseCase{reply: "CLIENT_ERROR invalid flag"}},
	}
	runPeerCases(t, cases)
}

func TestReaderAcceptPeerExtensionsE(t *testing.T) {
	const in = "ms a 1 E42\r\nx\r\n"
	r := NewReader(bytes.NewReader([]byte(in+in)), 0)
	if _, err := r.Next(); err == nil {
		t.Fatal("default Reader accepted E")
	}
	r.AcceptPeerExtensions()
	cmd, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := cmd.(*MetaSet); !ok || !m.HasNewCAS || m.NewCAS != 42 {
		t.Fatalf("got %s", show(cmd))
	}
}
