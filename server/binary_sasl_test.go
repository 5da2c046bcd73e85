package server

import (
	"bytes"
	"testing"

	"shoal/protocol"
	"shoal/store"
)

// TestBinarySASL: with Config.Authenticate (memcached -S), a connection
// runs nothing but the SASL opcodes and VERSION until it authenticates.
// The replies are memcached 1.6.18's under -S (recorded by hand: its SASL
// needs a Cyrus configuration the differential suite does not set up),
// but for the mechanism list, which is memcached's Cyrus configuration.
func TestBinarySASL(t *testing.T) {
	auth := saslUsers{"alice": "secret"}
	const o = 7
	list := pkt(protocol.BinSASLList, "", "", "", o, 0)
	good := pkt(protocol.BinSASLAuth, "PLAIN", "", "\x00alice\x00secret", o, 0)
	bad := pkt(protocol.BinSASLAuth, "PLAIN", "", "\x00alice\x00wrong", o, 0)
	get := pkt(protocol.BinGet, "k", "", "", o, 0)
	cases := map[string]struct {
		send [][]byte
		want string
	}{
		"list":                {[][]byte{list}, `magic=0x81 op=0x20 status=0x0 opaque=7 cas=0 extras="" key="" value="PLAIN"` + "\n"},
		"refused before auth": {[][]byte{get}, `magic=0x81 op=0x00 status=0x20 opaque=7 cas=0 extras="" key="" value="Auth failure."` + "\n# closed\n"},
		"version before auth": {[][]byte{pkt(protocol.BinVersion, "", "", "", o, 0)}, `magic=0x81 op=0x0b status=0x0 opaque=7 cas=0 extras="" key="" value="1.6.18"` + "\n"},
		"bad password": {[][]byte{bad, get}, `magic=0x81 op=0x21 status=0x20 opaque=7 cas=0 extras="" key="" value="Auth failure."` + "\n" +
			`magic=0x81 op=0x00 status=0x20 opaque=7 cas=0 extras="" key="" value="Auth failure."` + "\n# closed\n"},
		"other mechanism": {[][]byte{pkt(protocol.BinSASLAuth, "CRAM-MD5", "", "", o, 0)}, `magic=0x81 op=0x21 status=0x20 opaque=7 cas=0 extras="" key="" value="Auth failure."` + "\n"},
		"authenticated": {[][]byte{good, get}, `magic=0x81 op=0x21 status=0x0 opaque=7 cas=0 extras="" key="" value="Authenticated"` + "\n" +
			`magic=0x81 op=0x00 status=0x1 opaque=7 cas=0 extras="" key="" value="Not found"` + "\n"},
	}
	for _, loop := range []bool{false, true} {
		addr := startServer(t, store.Config{}, Config{SASL: auth, EventLoop: loop})
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				if got := binaryExchange(t, addr, c.send); got != c.want {
					t.Errorf("got\n%s\nwant\n%s", got, c.want)
				}
			})
		}
		t.Run("text refused", func(t *testing.T) {
			got := binaryExchange(t, addr, [][]byte{bytes.Repeat([]byte("version\r\n"), 3)})
			if got != "# closed\n" {
				t.Errorf("got %q, want the connection closed", got)
			}
		})
	}
	if _, err := New(Config{SASL: auth, Binding: protocol.BindASCII}, nil); err == nil {
		t.Error("SASL over ASCII accepted")
	}
}

// saslUsers is a password table for tests.
type saslUsers map[string]string

func (u saslUsers) Check(user, password []byte) bool {
	want, ok := u[string(user)]
	return ok && want == string(password)
}
