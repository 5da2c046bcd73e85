package etcdsync

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := Config{
		Endpoints: []string{"http://127.0.0.1:2379"},
		Self:      Member{Name: "n1", Instance: "i1", ClientAddr: "10.0.0.1:11211", PeerAddr: "10.0.0.1:11212"},
		Settings:  Settings{Replicas: 2, Shards: 4096, VNodes: 160},
	}
	cases := map[string]struct {
		edit func(*Config)
		ok   bool
	}{
		"valid":                  {func(*Config) {}, true},
		"no endpoints":           {func(c *Config) { c.Endpoints = nil }, false},
		"empty endpoint":         {func(c *Config) { c.Endpoints = []string{""} }, false},
		"slash in prefix":        {func(c *Config) { c.Prefix = "a/b" }, false},
		"no name":                {func(c *Config) { c.Self.Name = "" }, false},
		"slash in name":          {func(c *Config) { c.Self.Name = "a/b" }, false},
		"no instance":            {func(c *Config) { c.Self.Instance = "" }, false},
		"zero settings":          {func(c *Config) { c.Settings = Settings{} }, false},
		"zero replicas":          {func(c *Config) { c.Settings.Replicas = 0 }, false},
		"TTL below minimum":      {func(c *Config) { c.LeaseTTL = time.Second }, false},
		"TTL at minimum":         {func(c *Config) { c.LeaseTTL = MinLeaseTTL }, true},
		"negative dial":          {func(c *Config) { c.DialTimeout = -1 }, false},
		"name is host:port":      {func(c *Config) { c.Self.Name = "10.0.0.1:11211" }, true},
		"custom prefix kept":     {func(c *Config) { c.Prefix = "prod" }, true},
		"no client address":      {func(c *Config) { c.Self.ClientAddr = "" }, false},
		"no peer address":        {func(c *Config) { c.Self.PeerAddr = "" }, false},
		"peer port 0":            {func(c *Config) { c.Self.PeerAddr = "10.0.0.1:0" }, false},
		"gossip set":             {func(c *Config) { c.Self.GossipAddr = "10.0.0.1:7946" }, true},
		"gossip without port":    {func(c *Config) { c.Self.GossipAddr = "10.0.0.1" }, false},
		"slash in instance":      {func(c *Config) { c.Self.Instance = "a/b" }, false},
		"shards at maximum":      {func(c *Config) { c.Settings.Shards = MaxShards }, true},
		"shards above maximum":   {func(c *Config) { c.Settings.Shards = MaxShards + 1 }, false},
		"replicas above maximum": {func(c *Config) { c.Settings.Replicas = MaxReplicas + 1 }, false},
		"vnodes above maximum":   {func(c *Config) { c.Settings.VNodes = MaxVNodes + 1 }, false},
		"settings checked":       {func(c *Config) { c.CheckSettings = func(Settings) error { return errors.New("no") } }, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := valid
			c.Endpoints = append([]string(nil), valid.Endpoints...)
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if _, nerr := New(c); (nerr == nil) != tc.ok {
				t.Errorf("New() = %v, want ok=%v", nerr, tc.ok)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{LeaseTTL: 2500 * time.Millisecond}.withDefaults()
	if c.Prefix != DefaultPrefix || c.DialTimeout != DefaultDialTimeout || c.Logger == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got := c.ttlSeconds(); got != 3 {
		t.Errorf("ttlSeconds of 2.5s = %d, want 3 (rounded up)", got)
	}
	if got := (Config{}).withDefaults().ttlSeconds(); got != 10 {
		t.Errorf("default ttlSeconds = %d, want 10", got)
	}
}

func TestKeys(t *testing.T) {
	k := newKeys("shoal", "n1")
	if k.config != "/shoal/config" || k.self != "/shoal/members/n1" || k.root != "/shoal/" {
		t.Errorf("layout: %+v", k)
	}
	for key, want := range map[string]string{
		"/shoal/members/n2":   "n2",
		"/shoal/members/":     "",
		"/shoal/members/a/b":  "",
		"/shoal/config":       "",
		"/shoal2/members/n2":  "",
		"/shoal/membersX/n2":  "",
		"/shoal/members/1:80": "1:80",
	} {
		got, ok := k.memberName(key)
		if ok != (want != "") || (ok && got != want) {
			t.Errorf("memberName(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	m := Member{Name: "n1", Instance: "i", ClientAddr: "c:1", PeerAddr: "p:2", GossipAddr: "g:3"}
	got, err := decodeMember("n1", []byte(encodeMember(m)))
	if err != nil || got != m {
		t.Errorf("member round trip: %+v, %v", got, err)
	}
	st := Settings{Replicas: 2, Shards: 4096, VNodes: 160}
	if got, err := decodeSettings([]byte(encodeSettings(st)), nil); err != nil || got != st {
		t.Errorf("settings round trip: %+v, %v", got, err)
	}
}

// TestDecodeMember: a record that does not parse, or lacks what a member
// is reached by, is refused; unknown fields are not.
func TestDecodeMember(t *testing.T) {
	const good = `{"name":"n1","instance":"i","client":"10.0.0.1:11211","peer":"10.0.0.1:11212","gossip":"10.0.0.1:7946"}`
	cases := map[string]struct {
		value string
		ok    bool
	}{
		"valid":               {good, true},
		"no gossip yet":       {`{"name":"n1","instance":"i","client":"h:1","peer":"h:2"}`, true},
		"unknown field":       {`{"name":"n1","instance":"i","client":"h:1","peer":"h:2","http":"h:3"}`, true},
		"hostnames":           {`{"name":"n1","instance":"i","client":"cache-1.example:11211","peer":"cache-1.example:11212"}`, true},
		"empty":               {``, false},
		"not JSON":            {`bogus`, false},
		"truncated":           {good[:40], false},
		"trailing data":       {good + `x`, false},
		"two values":          {good + good, false},
		"array":               {`[1,2]`, false},
		"null":                {`null`, false},
		"number for client":   {`{"name":"n1","instance":"i","client":11211,"peer":"h:2"}`, false},
		"other name":          {`{"name":"n2","instance":"i","client":"h:1","peer":"h:2"}`, false},
		"no name":             {`{"instance":"i","client":"h:1","peer":"h:2"}`, false},
		"no instance":         {`{"name":"n1","client":"h:1","peer":"h:2"}`, false},
		"no client":           {`{"name":"n1","instance":"i","peer":"h:2"}`, false},
		"no peer":             {`{"name":"n1","instance":"i","client":"h:1"}`, false},
		"client without port": {`{"name":"n1","instance":"i","client":"h","peer":"h:2"}`, false},
		"port out of range":   {`{"name":"n1","instance":"i","client":"h:65536","peer":"h:2"}`, false},
		"port not a number":   {`{"name":"n1","instance":"i","client":"h:x","peer":"h:2"}`, false},
		"no host":             {`{"name":"n1","instance":"i","client":":1","peer":"h:2"}`, false},
		"bad gossip":          {`{"name":"n1","instance":"i","client":"h:1","peer":"h:2","gossip":"h"}`, false},
		"huge":                {`{"name":"n1","instance":"i","client":"h:1","peer":"h:2","pad":"` + strings.Repeat("x", maxRecord) + `"}`, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := decodeMember("n1", []byte(tc.value))
			if (err == nil) != tc.ok {
				t.Fatalf("decodeMember = %+v, %v; want ok=%v", m, err, tc.ok)
			}
		})
	}
}

// TestDecodeSettings: settings out of bounds are refused, so a record in
// etcd cannot size a node's tables.
func TestDecodeSettings(t *testing.T) {
	onlyOneVNode := func(st Settings) error {
		if st.VNodes != 1 {
			return errors.New("vnodes must be 1")
		}
		return nil
	}
	cases := map[string]struct {
		value string
		check func(Settings) error
		want  Settings
		ok    bool
	}{
		"valid":              {`{"replicas":2,"shards":4096,"vnodes":160}`, nil, Settings{2, 4096, 160}, true},
		"bounds":             {`{"replicas":8,"shards":65536,"vnodes":1024}`, nil, Settings{8, 65536, 1024}, true},
		"unknown field":      {`{"replicas":2,"shards":4096,"vnodes":1,"zone":"x"}`, nil, Settings{2, 4096, 1}, true},
		"absurd shards":      {`{"replicas":2,"shards":5000000}`, nil, Settings{}, false},
		"shards above max":   {`{"replicas":2,"shards":65537,"vnodes":1}`, nil, Settings{}, false},
		"replicas above max": {`{"replicas":9,"shards":4096,"vnodes":1}`, nil, Settings{}, false},
		"vnodes above max":   {`{"replicas":2,"shards":4096,"vnodes":1025}`, nil, Settings{}, false},
		"zero replicas":      {`{"replicas":0,"shards":1,"vnodes":1}`, nil, Settings{}, false},
		"negative shards":    {`{"replicas":2,"shards":-1,"vnodes":1}`, nil, Settings{}, false},
		"missing vnodes":     {`{"replicas":2,"shards":4096}`, nil, Settings{}, false},
		"fraction":           {`{"replicas":2.5,"shards":4096,"vnodes":1}`, nil, Settings{}, false},
		"overflow":           {`{"replicas":2,"shards":1e30,"vnodes":1}`, nil, Settings{}, false},
		"string":             {`{"replicas":"2","shards":4096,"vnodes":1}`, nil, Settings{}, false},
		"not JSON":           {`{`, nil, Settings{}, false},
		"empty":              {``, nil, Settings{}, false},
		"null":               {`null`, nil, Settings{}, false},
		"trailing data":      {`{"replicas":2,"shards":4096,"vnodes":1} 1`, nil, Settings{}, false},
		"check passes":       {`{"replicas":2,"shards":4096,"vnodes":1}`, onlyOneVNode, Settings{2, 4096, 1}, true},
		"check refuses":      {`{"replicas":2,"shards":4096,"vnodes":160}`, onlyOneVNode, Settings{}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st, err := decodeSettings([]byte(tc.value), tc.check)
			if (err == nil) != tc.ok || st != tc.want {
				t.Fatalf("decodeSettings = %+v, %v; want %+v, ok=%v", st, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzDecodeMember(f *testing.F) {
	f.Add([]byte(`{"name":"n1","instance":"i","client":"h:1","peer":"h:2","gossip":"1.2.3.4:5"}`))
	f.Add([]byte(`{"name":"n1","client":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMember("n1", b)
		if err != nil {
			return
		}
		// What is accepted re-encodes to a record accepted as the same.
		m2, err := decodeMember("n1", []byte(encodeMember(m)))
		if err != nil || m2 != m {
			t.Fatalf("accepted %q as %+v, but its encoding reads back as %+v, %v", b, m, m2, err)
		}
	})
}

func FuzzDecodeSettings(f *testing.F) {
	f.Add([]byte(`{"replicas":2,"shards":4096,"vnodes":1}`))
	f.Add([]byte(`{"replicas":2,"shards":5000000}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeSettings(b, nil)
		if err == nil && st.Validate() != nil {
			t.Fatalf("accepted %q as %+v, out of bounds", b, st)
		}
	})
}
