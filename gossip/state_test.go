package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHealthRules(t *testing.T) {
	alive := func(name, addr string) event { return event{kind: evAlive, name: name, addr: addr} }
	dead := func(name, addr string) event { return event{kind: evDead, name: name, addr: addr} }
	suspect := func(name string) event { return event{kind: evSuspect, name: name} }
	ack := func(name string) event { return event{kind: evAck, name: name} }
	const (
		addr1 = "127.0.0.1:7001"
		addr2 = "127.0.0.1:7002"
	)
	for name, tc := range map[string]struct {
		peers  map[string]string
		events []event
		want   State
	}{
		"never seen":              {map[string]string{"b": addr1}, nil, Unknown},
		"not listed":              {map[string]string{}, []event{alive("b/1", addr1)}, Unknown},
		"alive":                   {map[string]string{"b": addr1}, []event{alive("b/1", addr1)}, Alive},
		"dead":                    {map[string]string{"b": addr1}, []event{alive("b/1", addr1), dead("b/1", addr1)}, Dead},
		"suspect":                 {map[string]string{"b": addr1}, []event{alive("b/1", addr1), suspect("b/1")}, Suspect},
		"suspect cleared by ack":  {map[string]string{"b": addr1}, []event{alive("b/1", addr1), suspect("b/1"), ack("b/1")}, Alive},
		"ack within the grace":    {map[string]string{"b": addr1}, []event{alive("b/1", addr1), dead("b/1", addr1), ack("b/1")}, Suspect},
		"suspect of dead ignored": {map[string]string{"b": addr1}, []event{alive("b/1", addr1), dead("b/1", addr1), suspect("b/1")}, Dead},
		"rejoin after dead":       {map[string]string{"b": addr1}, []event{alive("b/1", addr1), dead("b/1", addr1), alive("b/1", addr1)}, Alive},
		"foreign name ignored":    {map[string]string{"b": addr1}, []event{alive("b", addr1)}, Unknown},
		"restart new port, old dies later": {map[string]string{"b": addr2},
			[]event{alive("b/1", addr1), alive("b/2", addr2), dead("b/1", addr1)}, Alive},
		"restart new port, heard in reverse order": {map[string]string{"b": addr2},
			[]event{alive("b/2", addr2), alive("b/1", addr1), dead("b/1", addr1)}, Alive},
		"restart same port, heard in reverse order": {map[string]string{"b": addr1},
			[]event{alive("b/2", addr1), alive("b/1", addr1), dead("b/1", addr1)}, Alive},
		"etcd still lists the old address": {map[string]string{"b": addr1},
			[]event{alive("b/1", addr1), alive("b/2", addr2), dead("b/1", addr1)}, Dead},
		"listed by hostname: newest live one": {map[string]string{"b": "host-b:7001"},
			[]event{alive("b/1", addr1), alive("b/2", addr2), dead("b/1", addr1)}, Alive},
		"newest died too": {map[string]string{"b": addr2},
			[]event{alive("b/1", addr1), alive("b/2", addr2), dead("b/1", addr1), dead("b/2", addr2)}, Dead},
	} {
		t.Run(name, func(t *testing.T) {
			g := newTestGossip(t)
			now := time.Unix(1000, 0)
			g.now = func() time.Time { return now }
			g.SetPeers(tc.peers)
			g.apply(tc.events)
			now = now.Add(deadGrace) // the settled state (TestDeathGrace: during the grace)
			g.apply(nil)
			if got := g.Health("b"); got != tc.want {
				t.Errorf("Health(b) = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDeathGrace: a death other nodes declare while this node sees the
// incarnation alive is Suspect for deadGrace, then Dead, unless refuted
// or this node's ping is answered meanwhile.
func TestDeathGrace(t *testing.T) {
	const addr = "127.0.0.1:7001"
	alive := event{kind: evAlive, name: "b/1", addr: addr}
	dead := event{kind: evDead, name: "b/1", addr: addr}
	suspect := event{kind: evSuspect, name: "b/1"}
	ack := event{kind: evAck, name: "b/1"}
	for name, tc := range map[string]struct {
		events        []event
		during, after State
	}{
		"declared by others":       {[]event{alive, dead}, Suspect, Dead},
		"refuted within the grace": {[]event{alive, dead, alive}, Alive, Alive},
		"confirmed by our probe":   {[]event{alive, dead, suspect}, Dead, Dead},
		"suspected here first":     {[]event{alive, suspect, dead}, Dead, Dead},
		"an ack extends it":        {[]event{alive, dead, ack}, Suspect, Suspect},
	} {
		t.Run(name, func(t *testing.T) {
			g := newTestGossip(t)
			now := time.Unix(1000, 0)
			g.now = func() time.Time { return now }
			g.SetPeers(map[string]string{"b": addr})
			g.apply(tc.events)
			if got := g.Health("b"); got != tc.during {
				t.Errorf("during the grace: Health(b) = %v, want %v", got, tc.during)
			}
			now = now.Add(deadGrace - time.Millisecond)
			g.apply(nil)
			if got := g.Health("b"); got != tc.during {
				t.Errorf("just before the grace ends: Health(b) = %v, want %v", got, tc.during)
			}
			now = now.Add(time.Millisecond)
			if changes := g.apply(nil); (tc.during != tc.after) != (len(changes) == 1) {
				t.Errorf("when the grace ends: changes %v", changes)
			}
			if got := g.Health("b"); got != tc.after {
				t.Errorf("after the grace: Health(b) = %v, want %v", got, tc.after)
			}
		})
	}
}

// TestDeathGraceAcked: each answered ping of an incarnation declared dead
// keeps it Suspect until past the next ping (a reconcile interval and a
// grace); without one it turns Dead then, and its refutation clears it.
func TestDeathGraceAcked(t *testing.T) {
	const addr = "127.0.0.1:7001"
	g := newTestGossip(t)
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	g.SetPeers(map[string]string{"b": addr})
	<-g.kick // SetPeers' round
	g.apply([]event{{kind: evAlive, name: "b/1", addr: addr}, {kind: evDead, name: "b/1", addr: addr}})
	select {
	case <-g.kick:
	default:
		t.Fatal("a grace began without a ping round asked for")
	}
	extended := g.interval + deadGrace
	for range 3 {
		now = now.Add(deadGrace / 2)
		g.apply([]event{{kind: evAck, name: "b/1"}})
		now = now.Add(extended - time.Millisecond)
		if g.apply(nil); g.Health("b") != Suspect {
			t.Fatalf("just before an acked grace ends: Health(b) = %v, want suspect", g.Health("b"))
		}
		now = now.Add(-extended + time.Millisecond)
	}
	now = now.Add(extended)
	if g.apply(nil); g.Health("b") != Dead {
		t.Fatalf("a grace past its last ack: Health(b) = %v, want dead", g.Health("b"))
	}
	if g.apply([]event{{kind: evAck, name: "b/1"}}); g.Health("b") != Dead {
		t.Fatalf("an ack after the grace: Health(b) = %v, want dead (only a refutation revives)", g.Health("b"))
	}
	if g.apply([]event{{kind: evAlive, name: "b/1", addr: addr}}); g.Health("b") != Alive {
		t.Fatalf("refuted: Health(b) = %v, want alive", g.Health("b"))
	}
}

func newTestGossip(t *testing.T) *Gossip {
	t.Helper()
	g, err := New(Config{Node: "a", Instance: "1", BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestChangedCoalesces(t *testing.T) {
	g := newTestGossip(t)
	g.SetPeers(map[string]string{"b": "127.0.0.1:7001", "c": "127.0.0.1:7002"})
	select {
	case <-g.Changed():
		t.Fatal("Changed fired with nothing known")
	default:
	}
	g.publish(g.apply([]event{{kind: evAlive, name: "b/1", addr: "127.0.0.1:7001"}}))
	g.publish(g.apply([]event{{kind: evAlive, name: "c/1", addr: "127.0.0.1:7002"}}))
	<-g.Changed()
	select {
	case <-g.Changed():
		t.Fatal("two notifications; want them coalesced")
	default:
	}
	g.SetPeers(map[string]string{"c": "127.0.0.1:7002"}) // b unlisted: alive -> unknown
	select {
	case <-g.Changed():
	default:
		t.Fatal("no notification when b was unlisted")
	}
	if got := g.Health("b"); got != Unknown {
		t.Errorf("Health(b) = %v after unlisting, want unknown", got)
	}
}

func TestPruneKeepsNewest(t *testing.T) {
	g := newTestGossip(t)
	g.SetPeers(map[string]string{"b": "127.0.0.1:7010"})
	var evs []event
	for i := range 10 {
		name := "b/" + string(rune('a'+i))
		addr := "127.0.0.1:70" + string(rune('0'+i)) + "0"
		evs = append(evs, event{kind: evAlive, name: name, addr: addr}, event{kind: evDead, name: name, addr: addr})
	}
	evs = append(evs, event{kind: evAlive, name: "b/z", addr: "127.0.0.1:7010"})
	g.apply(evs)
	if n := len(g.nodes["b"]); n > maxInstances {
		t.Errorf("%d incarnations kept, want at most %d", n, maxInstances)
	}
	if got := g.Health("b"); got != Alive {
		t.Errorf("Health(b) = %v, want alive", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Node: "a", Instance: "1", BindAddr: "127.0.0.1:0"}
	for name, tc := range map[string]struct {
		edit    func(*Config)
		wantErr string // "" means valid
	}{
		"minimal":            {func(*Config) {}, ""},
		"all set":            {func(c *Config) { c.AdvertiseAddr, c.SecretKey, c.Label = "10.0.0.1:7946", make([]byte, 32), "l" }, ""},
		"advertise port 0":   {func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, ""},
		"ipv6":               {func(c *Config) { c.BindAddr = "[::1]:0" }, ""},
		"no node":            {func(c *Config) { c.Node = "" }, "Node is empty"},
		"no instance":        {func(c *Config) { c.Instance = "" }, "Instance is empty"},
		"slash in instance":  {func(c *Config) { c.Instance = "a/b" }, "contains"},
		"no bind":            {func(c *Config) { c.BindAddr = "" }, "BindAddr"},
		"bind hostname":      {func(c *Config) { c.BindAddr = "localhost:0" }, "not an IP"},
		"bad port":           {func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, "bad port"},
		"advertise 0.0.0.0":  {func(c *Config) { c.AdvertiseAddr = "0.0.0.0:1" }, "unspecified"},
		"meta too long":      {func(c *Config) { c.Meta = make([]byte, 513) }, "Meta"},
		"key length":         {func(c *Config) { c.SecretKey = make([]byte, 10) }, "SecretKey"},
		"label too long":     {func(c *Config) { c.Label = strings.Repeat("x", 256) }, "Label"},
		"negative reconcile": {func(c *Config) { c.ReconcileInterval = -1 }, "negative"},
		"several reported":   {func(c *Config) { c.Node, c.Instance = "", "" }, "Instance is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tc.wantErr)
			}
			if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewDoesNoIO(t *testing.T) {
	g := newTestGossip(t)
	if got := g.LocalAddr(); got != "" {
		t.Errorf("LocalAddr before Run = %q, want empty", got)
	}
	if got := g.Health("a"); got != Unknown {
		t.Errorf("Health(self) before Run = %v, want unknown", got)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Unknown: "unknown", Alive: "alive", Suspect: "suspect", Dead: "dead", 7: "State(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestLogWriterSeesSuspect(t *testing.T) {
	var got []string
	l := newStdLogger(discardLogger(), func(name string) { got = append(got, name) })
	l.Printf("[INFO] memberlist: Suspect %s has failed, no acks received", "b/1")
	l.Printf("[INFO] memberlist: Marking %s as failed, suspect timeout reached (0 peer confirmations)", "b/1")
	if len(got) != 1 || got[0] != "b/1" {
		t.Errorf("suspects = %q, want [b/1]", got)
	}
}
