package protocol

import (
	"strings"
	"testing"
)

func mflags(spec ...string) []MetaFlag {
	var out []MetaFlag
	for _, s := range spec {
		out = append(out, MetaFlag{Code: s[0], Value: bs(s[1:])})
	}
	return out
}

var metaCases = map[string]parseCase{
	"mg no key":         {in: "mg\r\n", reply: "ERROR"},
	"mg":                {in: "mg a\r\n", want: &MetaGet{Key: bs("a")}},
	"mg order":          {in: "mg a v t f s c k\r\n", want: &MetaGet{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("v", "t", "f", "s", "c", "k"), ReturnValue: true, ReturnTTL: true, ReturnClientFlag: true, ReturnSize: true, ReturnCAS: true, ReturnKey: true}}},
	"mg all":            {in: "mg YQ== s v t f c k h l O1 q u N5 R6 T-7 b P L\r\n", want: &MetaGet{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("s", "v", "t", "f", "c", "k", "h", "l", "O1", "q", "u", "N5", "R6", "T-7", "b", "P", "L"), Base64: true, Quiet: true, ReturnValue: true, ReturnKey: true, ReturnCAS: true, ReturnClientFlag: true, ReturnSize: true, ReturnTTL: true, ReturnHit: true, ReturnLastAccess: true, NoBump: true, HasOpaque: true, Opaque: bs("1"), HasTTL: true, TTL: -7, HasVivify: true, VivifyTTL: 5, HasRecache: true, RecacheTTL: 6}}},
	"mg invalid flag":   {in: "mg a zz\r\n", reply: "CLIENT_ERROR invalid flag"},
	"mg E invalid":      {in: "mg a E5\r\n", reply: "CLIENT_ERROR invalid flag"},
	"mg bang":           {in: "mg a !\r\n", reply: "CLIENT_ERROR invalid flag"},
	"mg duplicate":      {in: "mg a v v\r\n", reply: "CLIENT_ERROR duplicate flag"},
	"mg high byte":      {in: "mg a \x80\r\n", reply: "CLIENT_ERROR duplicate flag"},
	"mg T empty":        {in: "mg a T\r\n", reply: "CLIENT_ERROR bad token in command line format"},
	"mg T bad":          {in: "mg a Tx\r\n", reply: "CLIENT_ERROR bad token in command line format"},
	"mg b decodes":      {in: "mg YWJj b\r\n", want: &MetaGet{Key: bs("abc"), MetaOptions: MetaOptions{Flags: mflags("b"), Base64: true}}},
	"mg b twice padded": {in: "mg YQ==YQ== b\r\n", want: &MetaGet{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("b"), Base64: true}}},
	"mg b after pad":    {in: "mg YQ=x b\r\n", want: &MetaGet{Key: bs("a\x00"), MetaOptions: MetaOptions{Flags: mflags("b"), Base64: true}}},
	"mg b lead pad":     {in: "mg =YQ= b\r\n", want: &MetaGet{Key: bs("\x01"), MetaOptions: MetaOptions{Flags: mflags("b"), Base64: true}}},
	"mg b unpadded":     {in: "mg YQ b\r\n", reply: "CLIENT_ERROR error decoding key"},
	"mg b one pad":      {in: "mg YQ= b\r\n", reply: "CLIENT_ERROR error decoding key"},
	"mg b garbage":      {in: "mg @@@ b\r\n", reply: "CLIENT_ERROR error decoding key"},
	"mg b url":          {in: "mg YQ-_ b\r\n", reply: "CLIENT_ERROR error decoding key"},
	"mg b all pad":      {in: "mg ==== b\r\n", reply: "CLIENT_ERROR error decoding key"},
	"mg key 251":        {in: "mg " + k251 + " v\r\n", reply: "CLIENT_ERROR bad command line format"},
	"mg opaque 32":      {in: "mg a O1234567890123456789012345678901\r\n", want: &MetaGet{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("O1234567890123456789012345678901"), HasOpaque: true, Opaque: bs("1234567890123456789012345678901")}}},
	"mg opaque 33":      {in: "mg a O12345678901234567890123456789012\r\n", reply: "CLIENT_ERROR opaque token too long"},
	"mg 17 flags":       {in: "mg a 1 2 3 4 5 6 7 8 9 0 A B C D E F G\r\n", reply: "CLIENT_ERROR invalid flag"},
	"mg 18 flags":       {in: "mg a 1 2 3 4 5 6 7 8 9 0 A B C D E F G H\r\n", reply: "CLIENT_ERROR options flags are too long"},
	"mz":                {in: "mz a\r\n", reply: "ERROR"},
	"mgg":               {in: "mgg a\r\n", reply: "ERROR"},

	"ms":              {in: "ms a 1\r\nx\r\n", want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpSet}},
	"ms empty":        {in: "ms k2 0\r\n\r\n", want: &MetaSet{Key: bs("k2"), Data: bs(""), Op: OpSet}},
	"ms flags":        {in: "ms YQ== 1 k c O99 b T-1 F5 q I C3 MR\r\nx\r\n", want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpCAS, MetaOptions: MetaOptions{Flags: mflags("k", "c", "O99", "b", "T-1", "F5", "q", "I", "C3", "MR"), Base64: true, ReturnKey: true, ReturnCAS: true, HasOpaque: true, Opaque: bs("99"), HasTTL: true, TTL: -1, HasClientFlags: true, ClientFlags: 5, Quiet: true, Invalidate: true, HasCAS: true, CAS: 3, Mode: 'R'}}},
	"ms append":       {in: "ms a 2 MA\r\nyy\r\n", want: &MetaSet{Key: bs("a"), Data: bs("yy"), Op: OpAppend, MetaOptions: MetaOptions{Flags: mflags("MA"), Mode: 'A'}}},
	"ms F 2^32":       {in: "ms a 1 F4294967296\r\nx\r\n", want: &MetaSet{Key: bs("a"), Data: bs("x"), Op: OpSet, MetaOptions: MetaOptions{Flags: mflags("F4294967296"), HasClientFlags: true}}},
	"ms no size":      {in: "ms a\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 6},
	"ms size x":       {in: "ms a x\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 8},
	"ms size -1":      {in: "ms a -1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 9},
	"ms size E5":      {in: "ms a E5\r\n", reply: "CLIENT_ERROR bad command line format"},
	"ms invalid flag": {in: "ms a 1 zz\r\nxy\r\nmn\r\n", reply: "CLIENT_ERROR invalid flag", n: 14},
	"ms duplicate":    {in: "ms a 1 v v\r\nx\r\n", reply: "CLIENT_ERROR duplicate flag"},
	"ms bad mode":     {in: "ms a 1 MX\r\nx\r\n", reply: "CLIENT_ERROR invalid mode for ms M token"},
	"ms M length":     {in: "ms a 1 MXX\r\nx\r\n", reply: "CLIENT_ERROR incorrect length for M token"},
	"ms bad F":        {in: "ms a 1 Fx\r\nx\r\n", reply: "CLIENT_ERROR bad command line format"},
	"ms bad T":        {in: "ms a 1 T\r\nx\r\n", reply: "CLIENT_ERROR bad token in command line format"},
	"ms bad C":        {in: "ms a 1 Cx\r\nx\r\n", reply: "CLIENT_ERROR bad token in command line format"},
	"ms bad b":        {in: "ms a 1 k c O99 b\r\nx\r\n", reply: "CLIENT_ERROR error decoding key"},
	"ms long opaque":  {in: "ms a 1 Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n", reply: "CLIENT_ERROR opaque token too long"},
	"ms mode beats O": {in: "ms a 1 MX Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n", reply: "CLIENT_ERROR invalid mode for ms M token"},
	"ms bad chunk":    {in: "ms a 1 q\r\nxyz\r\nmn\r\n", reply: "CLIENT_ERROR bad data chunk", n: 13},
	"ms 16 flags":     {in: "ms a 1 1 2 3 4 5 6 7 8 9 0 A B C D E F\r\nx\r\n", reply: "CLIENT_ERROR invalid flag"},
	"ms 17 flags":     {in: "ms a 1 1 2 3 4 5 6 7 8 9 0 A B C D E F G\r\n", reply: "CLIENT_ERROR options flags too long"},
	"ms key 251":      {in: "ms " + k251 + " 1\r\n", reply: "CLIENT_ERROR bad command line format"},
	"ms short":        {in: "ms\r\n", reply: "ERROR"},

	"md":             {in: "md a q k O1 I T30 C9\r\n", want: &MetaDelete{Key: bs("a"), MetaOptions: MetaOptions{Flags: mflags("q", "k", "O1", "I", "T30", "C9"), Quiet: true, ReturnKey: true, HasOpaque: true, Opaque: bs("1"), Invalidate: true, HasTTL: true, TTL: 30, HasCAS: true, CAS: 9}}},
	"md x":           {in: "md a x\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},
	"md duplicate":   {in: "md a v v\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},
	"md b":           {in: "md @@@ b\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},
	"md long":        {in: "md a 1 2 3 4 5 6 7 8 9 0 A B C D E F G H\r\n", reply: "CLIENT_ERROR options flags too long"},
	"md opaque long": {in: "md a O123456789012345678901234567890123\r\n", reply: "CLIENT_ERROR opaque token too long"},

	"ma":            {in: "ma a\r\n", want: &MetaArith{Key: bs("a"), MetaOptions: MetaOptions{Delta: 1}}},
	"ma decr":       {in: "ma a MD D5 J7 N0 v t c\r\n", want: &MetaArith{Key: bs("a"), Decr: true, MetaOptions: MetaOptions{Flags: mflags("MD", "D5", "J7", "N0", "v", "t", "c"), Mode: 'D', Delta: 5, Initial: 7, HasVivify: true, ReturnValue: true, ReturnTTL: true, ReturnCAS: true}}},
	"ma minus":      {in: "ma a M-\r\n", want: &MetaArith{Key: bs("a"), Decr: true, MetaOptions: MetaOptions{Flags: mflags("M-"), Mode: '-', Delta: 1}}},
	"ma bad D":      {in: "ma a Dx\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},
	"ma bad J":      {in: "ma a Jx\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},
	"ma bad mode":   {in: "ma a MX\r\n", reply: "CLIENT_ERROR invalid mode for ma M token"},
	"ma M length":   {in: "ma a MII\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},
	"ma mode first": {in: "ma a MX O123456789012345678901234567890123\r\n", reply: "CLIENT_ERROR invalid mode for ma M token"},
	"ma b":          {in: "ma @@@ b\r\n", reply: "CLIENT_ERROR invalid or duplicate flag"},

	"me":         {in: "me a\r\n", want: &MetaDebug{Key: bs("a")}},
	"me no key":  {in: "me\r\n", reply: "CLIENT_ERROR bad command line format"},
	"me b":       {in: "me YQ== b\r\n", want: &MetaDebug{Key: bs("a"), Base64: true}},
	"me b bad":   {in: "me a b\r\n", reply: "CLIENT_ERROR bad command line format"},
	"me key 251": {in: "me " + k251 + "\r\n", reply: "CLIENT_ERROR bad command line format"},
	"me other":   {in: "me a x\r\n", want: &MetaDebug{Key: bs("a")}},
}

func TestParseMeta(t *testing.T) { runParseCases(t, metaCases) }

func TestBase64Decode(t *testing.T) {
	var dst [300]byte
	for _, s := range []string{"", "a", "ab", "abc", "abcd", strings.Repeat("\xff", 187)} {
		enc := AppendMetaKey(nil, bs(s), true)
		enc = enc[2 : len(enc)-2] // " k" ... " b"
		n, ok := base64Decode(dst[:], enc)
		if s == "" {
			if ok {
				t.Fatalf("empty decoded")
			}
			continue
		}
		if !ok || string(dst[:n]) != s {
			t.Fatalf("round trip %q: %q %v", s, dst[:n], ok)
		}
	}
}
