package etcdsync

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := Config{
		Endpoints: []string{"http://127.0.0.1:2379"},
		Self:      Member{Name: "n1", Instance: "i1"},
		Settings:  Settings{Replicas: 2, Shards: 4096, VNodes: 160},
	}
	cases := map[string]struct {
		edit func(*Config)
		ok   bool
	}{
		"valid":              {func(*Config) {}, true},
		"no endpoints":       {func(c *Config) { c.Endpoints = nil }, false},
		"empty endpoint":     {func(c *Config) { c.Endpoints = []string{""} }, false},
		"slash in prefix":    {func(c *Config) { c.Prefix = "a/b" }, false},
		"no name":            {func(c *Config) { c.Self.Name = "" }, false},
		"slash in name":      {func(c *Config) { c.Self.Name = "a/b" }, false},
		"no instance":        {func(c *Config) { c.Self.Instance = "" }, false},
		"zero settings":      {func(c *Config) { c.Settings = Settings{} }, false},
		"zero replicas":      {func(c *Config) { c.Settings.Replicas = 0 }, false},
		"TTL below minimum":  {func(c *Config) { c.LeaseTTL = time.Second }, false},
		"TTL at minimum":     {func(c *Config) { c.LeaseTTL = MinLeaseTTL }, true},
		"negative dial":      {func(c *Config) { c.DialTimeout = -1 }, false},
		"name is host:port":  {func(c *Config) { c.Self.Name = "10.0.0.1:11211" }, true},
		"custom prefix kept": {func(c *Config) { c.Prefix = "prod" }, true},
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
	got, err := decodeMember([]byte(encodeMember(m)))
	if err != nil || got != m {
		t.Errorf("member round trip: %+v, %v", got, err)
	}
	st := Settings{Replicas: 2, Shards: 4096, VNodes: 160}
	if got, err := decodeSettings([]byte(encodeSettings(st))); err != nil || got != st {
		t.Errorf("settings round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "{", `{"replicas":0,"shards":1,"vnodes":1}`} {
		if _, err := decodeSettings([]byte(bad)); err == nil {
			t.Errorf("decodeSettings(%q) accepted", bad)
		}
	}
}
