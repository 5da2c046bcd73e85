package node

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

func TestGossipKeySources(t *testing.T) {
	want := []byte("0123456789abcdef")
	b64 := base64.StdEncoding.EncodeToString(want)
	file := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(file, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(gossipKeyEnv, "")
	cases := map[string]struct {
		o   Config
		env string
	}{
		"flag": {o: Config{GossipKey: b64}},
		"file": {o: Config{GossipKeyFile: file}, env: "not base64"},
		"env":  {env: b64},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(gossipKeyEnv, tc.env)
			got, err := gossipKey(tc.o)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("gossipKey = %q, %v", got, err)
			}
		})
	}
	if got, err := gossipKey(Config{}); got != nil || err != nil {
		t.Fatalf("no key anywhere: %q, %v", got, err)
	}
}
