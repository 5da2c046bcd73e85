package server

import "testing"

// clusterOnly serves "stats cluster" and no ring.
type clusterOnly struct{}

func (clusterOnly) ClusterStats() [][2]string { return [][2]string{{"cluster_node", "a"}} }
func (clusterOnly) RingStats() [][2]string    { return nil }

// withRing also serves "stats ring".
type withRing struct{ clusterOnly }

func (withRing) RingStats() [][2]string {
	return [][2]string{{"ring_epoch", "7"}, {"ring_member:a", "127.0.0.1:11211"}}
}

func TestStatsRing(t *testing.T) {
	for name, tc := range map[string]struct {
		cluster ClusterInfo
		want    string
	}{
		"standalone":   {nil, "ERROR\r\n"},
		"without ring": {clusterOnly{}, "ERROR\r\n"},
		"ring":         {withRing{}, "STAT ring_epoch 7\r\nSTAT ring_member:a 127.0.0.1:11211\r\nEND\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			addr := startShoalConfig(t, Config{Cluster: tc.cluster})
			end := "END\r\n"
			if tc.want == "ERROR\r\n" {
				end = "ERROR\r\n"
			}
			if got := exchange(t, addr, "stats ring\r\n", end); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
