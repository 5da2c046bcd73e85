package etcdsync

import (
	"encoding/json"
	"fmt"
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

// record is Member's encoding in etcd.
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

func decodeMember(b []byte) (Member, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Member{}, fmt.Errorf("member record: %w", err)
	}
	return Member{Name: r.Name, Instance: r.Instance, ClientAddr: r.Client, PeerAddr: r.Peer, GossipAddr: r.Gossip}, nil
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

func decodeSettings(b []byte) (Settings, error) {
	var r settingsRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Settings{}, fmt.Errorf("settings record: %w", err)
	}
	st := Settings(r)
	if err := st.validate(); err != nil {
		return Settings{}, err
	}
	return st, nil
}

// zapNop silences the etcd client's own logger: its retry warnings would
// flood stderr during an etcd outage, which Sync reports itself.
func zapNop() *zap.Logger { return zap.NewNop() }
