package protocol

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// parseCase is one request and what memcached 1.6.18 made of it (replies
// observed with nc against a live memcached; see the package report).
type parseCase struct {
	in    string
	want  Command // nil when an error is expected
	reply string  // *Error reply, "" when none
	quiet bool    // *Error.NoReply
	err   error   // connection-closing error
	n     int     // bytes consumed; 0 means len(in)
}

func bs(s string) []byte { return []byte(s) }

func keys(k ...string) [][]byte {
	out := make([][]byte, len(k))
	for i, s := range k {
		out[i] = bs(s)
	}
	return out
}

var k251 = strings.Repeat("k", 251)

var classicCases = map[string]parseCase{
	"get":                 {in: "get a\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a")}},
	"get bare newline":    {in: "get a\n", want: &Retrieval{Op: OpGet, Keys: keys("a")}},
	"gets spaces":         {in: "gets a  b   \r\n", want: &Retrieval{Op: OpGets, Keys: keys("a", "b")}},
	"get leading spaces":  {in: "  get a\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a")}},
	"get NUL ends line":   {in: "get a\x00b\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a")}},
	"get tab in key":      {in: "get a\t\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a\t")}},
	"get cr cr":           {in: "get a\r\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a\r")}},
	"get no key":          {in: "get\r\n", reply: "ERROR"},
	"gets no key":         {in: "gets\r\n", reply: "ERROR"},
	"gat no key":          {in: "gat 10\r\n", want: &Retrieval{Op: OpGat, Exptime: 10, Keys: keys()}},
	"gat bad exptime":     {in: "gat x a\r\n", reply: "CLIENT_ERROR invalid exptime argument"},
	"gats":                {in: "gats -1 a\r\n", want: &Retrieval{Op: OpGats, Exptime: -1, Keys: keys("a")}},
	"bget":                {in: "bget a\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a")}},
	"getx":                {in: "getx a\r\n", reply: "ERROR"},
	"upper case":          {in: "GET a\r\n", reply: "ERROR"},
	"get bad key middle":  {in: "get a " + k251 + " b\r\n", want: &Retrieval{Op: OpGet, Keys: keys("a"), BadKey: true}},
	"get key 250":         {in: "get " + k251[1:] + "\r\n", want: &Retrieval{Op: OpGet, Keys: keys(k251[1:])}},
	"get 30 keys":         {in: "get " + strings.Repeat("k ", 29) + "z\r\n", want: &Retrieval{Op: OpGet, Keys: keys(append(strings.Split(strings.Repeat("k ", 29), " ")[:29], "z")...)}},
	"empty line":          {in: "\r\n", reply: "ERROR"},
	"bare newline":        {in: "\n", reply: "ERROR"},
	"one letter":          {in: "x\r\n", reply: "ERROR"},
	"unknown":             {in: "foo bar\r\n", reply: "ERROR"},
	"http":                {in: "xyz HTTP/1.0\r\n", err: ErrHTTP},
	"http GET":            {in: "GET / HTTP/1.1\r\n", err: ErrHTTP},
	"http s branch":       {in: "sxx HTTP/1.0\r\n", reply: "ERROR"},
	"http not last":       {in: "foo HTTP/ bar\r\n", reply: "ERROR"},
	"set":                 {in: "set a 5 10 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Flags: 5, Exptime: 10, Data: bs("x")}},
	"set bare newlines":   {in: "set a 0 0 1\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set empty":           {in: "set a 0 0 0\r\n\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("")}},
	"set noreply":         {in: "set a 0 0 1 noreply\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), NoReply: true, Data: bs("x")}},
	"set extra token":     {in: "set a 0 0 1 2\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set cr in size":      {in: "set a 0 0 1\r\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set flags -0":        {in: "set a -0 0 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set flags tab":       {in: "set a \t5 0 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Flags: 5, Data: bs("x")}},
	"set flags trailing":  {in: "set a 5\tx 0 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Flags: 5, Data: bs("x")}},
	"set flags 2^32":      {in: "set a 4294967296 0 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set flags 2^64-1":    {in: "set a 18446744073709551615 0 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Flags: 4294967295, Data: bs("x")}},
	"set flags -2^63-1":   {in: "set a -9223372036854775809 0 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Flags: 4294967295, Data: bs("x")}},
	"set flags -2^63":     {in: "set a -9223372036854775808 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 32},
	"set flags -1":        {in: "set a -1 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 14},
	"set flags abc":       {in: "set a abc 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 15},
	"set noreply error":   {in: "set a abc 0 1 noreply\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", quiet: true, n: 23},
	"set size noreply":    {in: "set a 0 0 noreply\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", quiet: true, n: 19},
	"set exptime abc":     {in: "set a 0 abc 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 15},
	"set exptime 32 bit":  {in: "set a 0 9999999999 1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Exptime: 1410065407, Data: bs("x")}},
	"set size 32 bit":     {in: "set a 0 0 4294967297\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set size plus":       {in: "set a 0 0 +1\r\nx\r\n", want: &Storage{Op: OpSet, Key: bs("a"), Data: bs("x")}},
	"set size -1":         {in: "set a 0 0 -1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 14},
	"set size 1x":         {in: "set a 0 0 1x\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 14},
	"set size intmax":     {in: "set a 0 0 2147483646\r\n", reply: "CLIENT_ERROR bad command line format"},
	"set missing token":   {in: "set a 0 0\r\nx\r\n", reply: "ERROR", n: 11},
	"set too many":        {in: "set a 0 0 1 noreply extra\r\nx\r\n", reply: "ERROR", n: 27},
	"set key 251":         {in: "set " + k251 + " 0 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 263},
	"set key 251 noreply": {in: "set " + k251 + " 0 0 1 noreply\r\n", reply: "CLIENT_ERROR bad command line format", quiet: true},
	"set bad chunk":       {in: "set a 0 0 1\r\nxyz\r\n", reply: "CLIENT_ERROR bad data chunk", n: 16},
	"set bad chunk lf":    {in: "set a 0 0 1\r\nxy\r\nget a\r\n", reply: "CLIENT_ERROR bad data chunk", n: 16},
	"set bad chunk nl nl": {in: "set a 0 0 1\nx\n\nget a\n", reply: "CLIENT_ERROR bad data chunk", n: 15},
	"set bad chunk quiet": {in: "set a 0 0 1 noreply\r\nxyz\r\n", reply: "CLIENT_ERROR bad data chunk", quiet: true, n: 24},
	"set long line":       {in: "set " + strings.Repeat("k", 3000) + " 0 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 3012},
	"add":                 {in: "add a 0 0 1\r\nx\r\n", want: &Storage{Op: OpAdd, Key: bs("a"), Data: bs("x")}},
	"replace":             {in: "replace a 0 0 1\r\nx\r\n", want: &Storage{Op: OpReplace, Key: bs("a"), Data: bs("x")}},
	"append":              {in: "append a 0 0 1\r\nx\r\n", want: &Storage{Op: OpAppend, Key: bs("a"), Data: bs("x")}},
	"prepend":             {in: "prepend a 0 0 1\r\nx\r\n", want: &Storage{Op: OpPrepend, Key: bs("a"), Data: bs("x")}},
	"cas":                 {in: "cas a 0 0 1 5\r\nx\r\n", want: &Storage{Op: OpCAS, Key: bs("a"), CAS: 5, Data: bs("x")}},
	"cas noreply":         {in: "cas a 0 0 1 5 noreply\r\nx\r\n", want: &Storage{Op: OpCAS, Key: bs("a"), CAS: 5, NoReply: true, Data: bs("x")}},
	"cas missing":         {in: "cas a 0 0 1\r\nx\r\n", reply: "ERROR", n: 13},
	"cas abc":             {in: "cas a 0 0 1 abc\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 17},
	"cas -1":              {in: "cas a 0 0 1 -1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: 16},
	"cas noreply as cas":  {in: "cas a 0 0 1 noreply\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", quiet: true, n: 21},
	"incr":                {in: "incr n 5\r\n", want: &Arith{Incr: true, Key: bs("n"), Delta: 5}},
	"decr":                {in: "decr n 100\r\n", want: &Arith{Key: bs("n"), Delta: 100}},
	"incr missing":        {in: "incr a\r\n", reply: "ERROR"},
	"incr -1":             {in: "incr n -1\r\n", reply: "CLIENT_ERROR invalid numeric delta argument"},
	"incr abc":            {in: "incr n abc\r\n", reply: "CLIENT_ERROR invalid numeric delta argument"},
	"incr max":            {in: "incr n 18446744073709551615\r\n", want: &Arith{Incr: true, Key: bs("n"), Delta: 18446744073709551615}},
	"incr overflow":       {in: "incr n 18446744073709551616\r\n", reply: "CLIENT_ERROR invalid numeric delta argument"},
	"incr noreply":        {in: "incr n 1 noreply\r\n", want: &Arith{Incr: true, Key: bs("n"), Delta: 1, NoReply: true}},
	"incr extra":          {in: "incr n 1 2\r\n", want: &Arith{Incr: true, Key: bs("n"), Delta: 1}},
	"incr too many":       {in: "incr n 1 noreply x\r\n", reply: "ERROR"},
	"incr -0":             {in: "incr n -0\r\n", want: &Arith{Incr: true, Key: bs("n")}},
	"incr abc noreply":    {in: "incr n abc noreply\r\n", reply: "CLIENT_ERROR invalid numeric delta argument", quiet: true},
	"incr key 251":        {in: "incr " + k251 + " 1\r\n", reply: "CLIENT_ERROR bad command line format"},
	"touch":               {in: "touch a 10\r\n", want: &Touch{Key: bs("a"), Exptime: 10}},
	"touch missing":       {in: "touch a\r\n", reply: "ERROR"},
	"touch bad":           {in: "touch a x\r\n", reply: "CLIENT_ERROR invalid exptime argument"},
	"touch noreply":       {in: "touch a 10 noreply\r\n", want: &Touch{Key: bs("a"), Exptime: 10, NoReply: true}},
	"touch extra":         {in: "touch a 10 x\r\n", want: &Touch{Key: bs("a"), Exptime: 10}},
	"touch bad noreply":   {in: "touch a x noreply\r\n", reply: "CLIENT_ERROR invalid exptime argument", quiet: true},
	"delete":              {in: "delete a\r\n", want: &Delete{Key: bs("a")}},
	"delete missing":      {in: "delete\r\n", reply: "ERROR"},
	"delete 0":            {in: "delete a 0\r\n", want: &Delete{Key: bs("a")}},
	"delete 1":            {in: "delete a 1\r\n", reply: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"},
	"delete noreply":      {in: "delete a noreply\r\n", want: &Delete{Key: bs("a"), NoReply: true}},
	"delete 0 noreply":    {in: "delete a 0 noreply\r\n", want: &Delete{Key: bs("a"), NoReply: true}},
	"delete 1 noreply":    {in: "delete a 1 noreply\r\n", reply: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", quiet: true},
	"delete too many":     {in: "delete a x y z\r\n", reply: "ERROR"},
	"delete noreply 0":    {in: "delete a noreply 0\r\n", reply: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"},
	"delete key 251":      {in: "delete " + k251 + "\r\n", reply: "CLIENT_ERROR bad command line format"},
	"flush_all":           {in: "flush_all\r\n", want: &FlushAll{}},
	"flush_all 0":         {in: "flush_all 0\r\n", want: &FlushAll{HasDelay: true}},
	"flush_all noreply":   {in: "flush_all noreply\r\n", want: &FlushAll{NoReply: true}},
	"flush_all x":         {in: "flush_all x\r\n", reply: "CLIENT_ERROR invalid exptime argument"},
	"flush_all -1":        {in: "flush_all -1\r\n", want: &FlushAll{Delay: -1, HasDelay: true}},
	"flush_all 10 nr":     {in: "flush_all 10 noreply\r\n", want: &FlushAll{Delay: 10, HasDelay: true, NoReply: true}},
	"flush_all 10 x":      {in: "flush_all 10 x\r\n", want: &FlushAll{Delay: 10, HasDelay: true}},
	"flush_all x nr":      {in: "flush_all x noreply\r\n", reply: "CLIENT_ERROR invalid exptime argument", quiet: true},
	"flush_all too many":  {in: "flush_all 1 2 3\r\n", reply: "ERROR"},
	"verbosity":           {in: "verbosity 1\r\n", want: &Admin{Op: OpVerbosity, Arg: 1}},
	"verbosity missing":   {in: "verbosity\r\n", reply: "ERROR"},
	"verbosity x":         {in: "verbosity x\r\n", reply: "CLIENT_ERROR bad command line format"},
	"verbosity noreply":   {in: "verbosity noreply\r\n", reply: "CLIENT_ERROR bad command line format", quiet: true},
	"verbosity 1 nr":      {in: "verbosity 1 noreply\r\n", want: &Admin{Op: OpVerbosity, Arg: 1, NoReply: true}},
	"verbosity 1 2":       {in: "verbosity 1 2\r\n", want: &Admin{Op: OpVerbosity, Arg: 1}},
	"verbosity 1 2 3":     {in: "verbosity 1 2 3\r\n", reply: "ERROR"},
	"version":             {in: "version x\r\n", want: &Admin{Op: OpVersion}},
	"quit":                {in: "quit x\r\n", want: &Admin{Op: OpQuit}},
	"memlimit":            {in: "cache_memlimit 100\r\n", want: &Admin{Op: OpCacheMemlimit, Arg: 100}},
	"memlimit missing":    {in: "cache_memlimit\r\n", reply: "ERROR"},
	"memlimit x":          {in: "cache_memlimit x\r\n", reply: "ERROR"},
	"memlimit noreply":    {in: "cache_memlimit 100 noreply\r\n", want: &Admin{Op: OpCacheMemlimit, Arg: 100, NoReply: true}},
	"shutdown":            {in: "shutdown\r\n", want: &Admin{Op: OpShutdown}},
	"shutdown graceful":   {in: "shutdown graceful\r\n", want: &Admin{Op: OpShutdown, Graceful: true}},
	"shutdown x":          {in: "shutdown x\r\n", want: &Admin{Op: OpShutdown, BadMode: true}},
	"stats":               {in: "stats\r\n", want: &Stats{Args: keys()}},
	"stats items":         {in: "stats items\r\n", want: &Stats{Arg: bs("items"), Args: keys("items")}},
	"mn":                  {in: "mn x y\r\n", want: &Admin{Op: OpMetaNoop}},
	"long line":           {in: strings.Repeat("x", 3000), err: ErrLineTooLong},
	"long spaces get":     {in: strings.Repeat(" ", 101) + "get " + strings.Repeat("k ", 1500), err: ErrLineTooLong},
	"long gat":            {in: "gat 0 " + strings.Repeat("k ", 1500), err: ErrLineTooLong},
	"long get":            {in: "get " + strings.Repeat("k ", 1500), err: ErrIncomplete},
	"partial line":        {in: "get a", err: ErrIncomplete},
	"partial data":        {in: "set a 0 0 5\r\nab", err: ErrIncomplete},
}

func runParseCases(t *testing.T, cases map[string]parseCase) {
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd, n, err := Parse([]byte(tc.in))
			checkResult(t, tc, cmd, n, err)
		})
	}
}

func checkResult(t *testing.T, tc parseCase, cmd Command, n int, err error) {
	t.Helper()
	wantN := tc.n
	if wantN == 0 {
		wantN = len(tc.in)
	}
	switch {
	case tc.err != nil:
		if !errors.Is(err, tc.err) {
			t.Fatalf("err = %v, want %v", err, tc.err)
		}
		return
	case tc.reply != "":
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v (cmd %s), want *Error %q", err, show(cmd), tc.reply)
		}
		if pe.Reply != tc.reply || pe.NoReply != tc.quiet {
			t.Fatalf("error = %q noreply=%v, want %q noreply=%v", pe.Reply, pe.NoReply, tc.reply, tc.quiet)
		}
	default:
		if err != nil {
			t.Fatalf("err = %v, want %s", err, show(tc.want))
		}
		if got, want := show(cmd), show(tc.want); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	if n != wantN {
		t.Fatalf("n = %d, want %d", n, wantN)
	}
}

// show renders a command so that nil and empty slices compare equal.
func show(c Command) string { return fmt.Sprintf("%T%+v", c, c) }

func TestParseClassic(t *testing.T) { runParseCases(t, classicCases) }
