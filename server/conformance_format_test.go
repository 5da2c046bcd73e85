package server

// The conformance case and golden file formats (described in
// conformance_test.go): parsing, CAS normalisation, escaping and diffs.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type conformanceCase struct {
	name  string
	line  int // of the header, for error messages
	args  []string
	steps []step
}

// step is one write, optionally followed by a sync or a sleep.
type step struct {
	data  []byte
	sync  bool
	sleep time.Duration
}

var directiveRE = regexp.MustCompile(`^# (args|split|sync|sleep|repeat):(.*)$`)

func parseCases(file string) ([]*conformanceCase, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		cases    []*conformanceCase
		fileArgs []string
		c        *conformanceCase
		cur      []byte
		seen     = map[string]bool{}
	)
	flush := func(s step) {
		s.data = cur
		c.steps = append(c.steps, s)
		cur = nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", file, n, fmt.Sprintf(format, a...))
		}
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			if c != nil {
				flush(step{})
			}
			if seen[name] {
				return nil, bad("duplicate case %q", name)
			}
			seen[name] = true
			c = &conformanceCase{name: name, line: n, args: fileArgs}
			cases = append(cases, c)
			continue
		}
		if m := directiveRE.FindStringSubmatch(line); m != nil {
			word, val := m[1], strings.TrimSpace(m[2])
			if word == "args" {
				if c == nil {
					fileArgs = strings.Fields(val)
				} else {
					c.args = strings.Fields(val)
				}
				continue
			}
			if c == nil {
				return nil, bad("directive %q before the first case", word)
			}
			switch word {
			case "split":
				flush(step{})
			case "sync":
				flush(step{sync: true})
			case "sleep":
				secs, err := strconv.ParseFloat(val, 64)
				d := time.Duration(secs * float64(time.Second))
				if err != nil || d <= 0 || d > maxSleep {
					return nil, bad("sleep wants seconds in (0, %v]", maxSleep)
				}
				flush(step{sleep: d})
			case "repeat":
				count, tmpl, _ := strings.Cut(val, " ")
				times, err := strconv.Atoi(count)
				text, err2 := unescape(tmpl)
				if err != nil || err2 != nil || times <= 0 {
					return nil, bad("repeat wants a count and an escaped template")
				}
				for i := range times {
					cur = append(cur, bytes.ReplaceAll(text, []byte("%d"), []byte(strconv.Itoa(i)))...)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if c == nil {
			return nil, bad("request text before the first case")
		}
		if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
			return nil, bad("trailing space or tab; write \\x20")
		}
		text, err := unescape(line)
		if err != nil {
			return nil, bad("%v", err)
		}
		cur = append(cur, text...)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if c != nil {
		flush(step{})
	}
	return cases, nil
}

// parseGolden reads a .golden file into escaped reply lines by case name.
func parseGolden(path string) (map[string][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run with -update to record it)", err)
	}
	out := map[string][]string{}
	var name string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if n, ok := strings.CutPrefix(l, "=== "); ok {
			name = n
			out[name] = []string{}
			continue
		}
		if name == "" || (strings.HasPrefix(l, "#") && l != closedMarker) {
			continue
		}
		out[name] = append(out[name], l)
	}
	return out, nil
}

type normalised struct {
	text   []byte
	tokens map[string]string // "<cas1>" -> real value
}

var metaCodes = []string{"HD", "VA", "EN", "NS", "EX", "NF"}

// normaliseCAS rewrites CAS values in VALUE lines and meta c flags. It walks
// the reply line by line, skipping data blocks so value bytes are never
// mistaken for reply lines.
func normaliseCAS(reply []byte) normalised {
	n := normalised{tokens: map[string]string{}}
	byValue := map[string]string{}
	token := func(v string) string {
		if tk, ok := byValue[v]; ok {
			return tk
		}
		tk := fmt.Sprintf("<cas%d>", len(byValue)+1)
		byValue[v], n.tokens[tk] = tk, v
		return tk
	}
	for len(reply) > 0 {
		i := bytes.IndexByte(reply, '\n')
		if i < 0 {
			n.text = append(n.text, reply...)
			break
		}
		line, rest := reply[:i+1], reply[i+1:]
		reply = rest
		body := strings.TrimRight(string(line), "\r\n")
		fields := strings.Split(body, " ")
		dataLen := -1
		switch {
		case fields[0] == "VALUE" && len(fields) >= 4:
			dataLen, _ = strconv.Atoi(fields[3])
			if len(fields) == 5 {
				fields[4] = token(fields[4])
			}
		case slices.Contains(metaCodes, fields[0]):
			first := 1
			if fields[0] == "VA" && len(fields) > 1 {
				dataLen, _ = strconv.Atoi(fields[1])
				first = 2
			}
			for j := first; j < len(fields); j++ {
				f := fields[j]
				if len(f) > 1 && f[0] == 'c' && isDigits(f[1:]) {
					fields[j] = "c" + token(f[1:])
				}
			}
		}
		n.text = append(n.text, strings.Join(fields, " ")...)
		n.text = append(n.text, line[len(body):]...)
		if dataLen >= 0 && dataLen+2 <= len(reply) {
			n.text = append(n.text, reply[:dataLen+2]...)
			reply = reply[dataLen+2:]
		}
	}
	return n
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

var casTokenRE = regexp.MustCompile(`<cas[0-9]+>`)

// substituteCAS replaces <casN> in a request by the real CAS value.
func substituteCAS(data []byte, tokens map[string]string) ([]byte, error) {
	var err error
	out := casTokenRE.ReplaceAllFunc(data, func(tk []byte) []byte {
		v, ok := tokens[string(tk)]
		if !ok {
			err = fmt.Errorf("request uses %s, not seen in the reply so far (missing # sync:?)", tk)
		}
		return []byte(v)
	})
	return out, err
}

// escapeReply splits a reply after every \n and escapes each line.
func escapeReply(reply []byte, closed bool) []string {
	lines := []string{}
	for len(reply) > 0 {
		i := bytes.IndexByte(reply, '\n') + 1
		if i == 0 {
			i = len(reply)
		}
		lines = append(lines, escape(reply[:i]))
		reply = reply[i:]
	}
	if closed {
		lines = append(lines, closedMarker)
	}
	return lines
}

func escape(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		switch {
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\\':
			s.WriteString(`\\`)
		case i == 0 && (c == '#' || c == '='), i == len(b)-1 && c == ' ':
			fmt.Fprintf(&s, `\x%02x`, c)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, `\x%02x`, c)
		}
	}
	return s.String()
}

func unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New("trailing backslash")
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, errors.New(`\x needs two hex digits`)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf(`bad \x escape: %v`, err)
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return out, nil
}

// diffLines reports the first difference between two escaped replies, with
// both replies in full for context; "" means equal.
func diffLines(want, got []string) string {
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g || i >= len(want) || i >= len(got) {
			return fmt.Sprintf("first difference at reply line %d:\n  want %q\n  got  %q\nwant:\n\t%s\ngot:\n\t%s",
				i+1, w, g, strings.Join(want, "\n\t"), strings.Join(got, "\n\t"))
		}
	}
	return ""
}
