package etcdsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// keys is the key layout of one cluster in etcd.
type keys struct {
	root    string // "/<prefix>/": everything the watcher follows
	config  string // "/<prefix>/config"
	members string // "/<prefix>/members/"
	self    string // "/<prefix>/members/<name>"
}

func newKeys(prefix, name string) keys {
	root := "/" + prefix + "/"
	return keys{
		root:    root,
		config:  root + "config",
		members: root + "members/",
		self:    root + "members/" + name,
	}
}

// memberName returns the member name a key stands for, if it is a member key.
func (k keys) memberName(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, k.members)
	return name, ok && name != "" && !strings.Contains(name, "/")
}

// maxRecord bounds the size of a member or settings value this node
// parses: a real one is about 150 bytes.
const maxRecord = 4 << 10

// record is Member's encoding in etcd. Unknown fields are ignored, so that
// a newer version may add some.
type record struct {
	Name     string `json:"name"`
	Instance string `json:"instance"`
	Client   string `json:"client"`
	Peer     string `json:"peer"`
	Gossip   string `json:"gossip"`
}

func encodeMember(m Member) string {
	b, _ := json.Marshal(record{m.Name, m.Instance, m.ClientAddr, m.PeerAddr, m.GossipAddr})
	return string(b)
}

// decodeMember parses the record stored under the member key of name and
// checks it (checkMember).
func decodeMember(name string, b []byte) (Member, error) {
	if len(b) > maxRecord {
		return Member{}, fmt.Errorf("member record of %d bytes, limit %d", len(b), maxRecord)
	}
	var r record
	if err := decodeJSON(b, &r); err != nil {
		return Member{}, fmt.Errorf("member record: %w", err)
	}
	m := Member{Name: r.Name, Instance: r.Instance, ClientAddr: r.Client, PeerAddr: r.Peer, GossipAddr: r.Gossip}
	if err := checkMember(name, m); err != nil {
		return Member{}, err
	}
	return m, nil
}

// checkMember reports why m cannot be the record of the member key of
// name: a record names its own key, carries an instance id, and the
// addresses a member is reached at (client and peer; gossip once the
// cluster glue has bound it, so it may be empty).
func checkMember(name string, m Member) error {
	switch {
	case m.Name != name:
		return fmt.Errorf("member record names %q, not its key's %q", m.Name, name)
	case len(name) > maxName:
		return fmt.Errorf("member name of %d bytes, limit %d", len(name), maxName)
	case m.Instance == "" || strings.Contains(m.Instance, "/"):
		return fmt.Errorf("member record: instance %q is empty or contains '/'", m.Instance)
	}
	for _, a := range []struct{ what, addr string }{{"client", m.ClientAddr}, {"peer", m.PeerAddr}, {"gossip", m.GossipAddr}} {
		if a.what == "gossip" && a.addr == "" {
			continue
		}
		if err := checkAddr(a.addr); err != nil {
			return fmt.Errorf("member record: %s address %q: %w", a.what, a.addr, err)
		}
	}
	return nil
}

// maxName bounds a member name (a DNS name is at most 253 bytes).
const maxName = 255

// checkAddr accepts host:port with a non-empty host and a port in 1..65535.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || len(host) > maxName {
		return errors.New("bad host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errors.New("bad port")
	}
	return nil
}

// decodeJSON decodes one JSON value of b into v: unknown fields are
// ignored, a wrong type or trailing data is an error.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

type settingsRecord struct {
	Replicas int `json:"replicas"`
	Shards   int `json:"shards"`
	VNodes   int `json:"vnodes"`
}

func encodeSettings(st Settings) string {
	b, _ := json.Marshal(settingsRecord(st))
	return string(b)
}

// decodeSettings parses a settings record and checks its bounds
// (Settings.Validate); check, when not nil, further restricts them.
func decodeSettings(b []byte, check func(Settings) error) (Settings, error) {
	if len(b) > maxRecord {
		return Settings{}, fmt.Errorf("settings record of %d bytes, limit %d", len(b), maxRecord)
	}
	var r settingsRecord
	if err := decodeJSON(b, &r); err != nil {
		return Settings{}, fmt.Errorf("settings record: %w", err)
	}
	st := Settings(r)
	if err := st.Validate(); err != nil {
		return Settings{}, err
	}
	if check != nil {
		if err := check(st); err != nil {
			return Settings{}, fmt.Errorf("settings %+v: %w", st, err)
		}
	}
	return st, nil
}

// zapNop silences the etcd client's own logger: its retry warnings would
// flood stderr during an etcd outage, which Sync reports itself.
func zapNop() *zap.Logger { return zap.NewNop() }
