package gossip

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"shoal/internal/testutil"
)

// cutTransport drops every packet and refuses every stream, both ways, while
// cut is set: a network partition around one node.
type cutTransport struct {
	memberlist.NodeAwareTransport
	cut     *atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var errCut = errors.New("partitioned")

func newCutTransport(inner memberlist.NodeAwareTransport, cut *atomic.Bool) *cutTransport {
	c := &cutTransport{
		NodeAwareTransport: inner,
		cut:                cut,
		packets:            make(chan *memberlist.Packet),
		streams:            make(chan net.Conn),
		done:               make(chan struct{}),
	}
	go func() {
		for {
			select {
			case p := <-inner.PacketCh():
				if c.cut.Load() {
					continue
				}
				select {
				case c.packets <- p:
				case <-c.done:
					return
				}
			case <-c.done:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case conn := <-inner.StreamCh():
				if c.cut.Load() {
					conn.Close()
					continue
				}
				select {
				case c.streams <- conn:
				case <-c.done:
					conn.Close()
					return
				}
			case <-c.done:
				return
			}
		}
	}()
	return c
}

func (c *cutTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }
func (c *cutTransport) StreamCh() <-chan net.Conn           { return c.streams }

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteTo(b, addr)
}

func (c *cutTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteToAddress(b, addr)
}

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (c *cutTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

func (c *cutTransport) Shutdown() error {
	err := c.NodeAwareTransport.Shutdown()
	c.once.Do(func() { close(c.done) })
	return err
}

// TestPartitionHeals: a node cut off is declared dead and declares the others
// dead; after the cut heals, the reconcile loops bring everyone back alive
// (memberlist alone would not rejoin nodes it considers dead), and the
// island's direct pings clear its suspicion of the mainland.
func TestPartitionHeals(t *testing.T) {
	t.Parallel()
	var cut atomic.Bool
	nodes := make([]*testNode, 3)
	for i, name := range []string{"p0", "p1", "p2"} {
		cfg := testConfig(name)
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			g.wrapTransport = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
				return newCutTransport(inner, &cut)
			}
		}
		nodes[i] = startGossip(t, g)
	}
	setPeers(nodes, nodes...)
	for _, n := range nodes {
		waitHealth(t, 5*time.Second, nodes, n.node, Alive)
	}
	island, mainland := nodes[2], nodes[:2]

	cut.Store(true)
	d := waitHealth(t, 40*time.Second, mainland, island.node, Dead)
	t.Logf("partitioned %s dead on the mainland after %v", island.node, d)
	// The island gets no confirmations, so its suspicion runs to the
	// maximum timeout (SuspicionMaxTimeoutMult x the minimum, ~18 s): wait
	// only until it no longer calls the mainland alive.
	d = testutil.WaitFor(t, 10*time.Second, "island suspects the mainland", func() bool {
		for _, n := range mainland {
			if island.g.Health(n.node) == Alive {
				return false
			}
		}
		return true
	})
	t.Logf("island stopped seeing the mainland alive after %v more", d)
	if os.Getenv("SHOAL_MEASURE_ISLAND") != "" {
		d = testutil.WaitFor(t, 60*time.Second, "island sees mainland dead", func() bool {
			return island.g.Health(mainland[0].node) == Dead && island.g.Health(mainland[1].node) == Dead
		})
		t.Logf("island saw the mainland dead after %v more", d)
	}

	cut.Store(false)
	healed := time.Now()
	for _, n := range nodes {
		waitHealth(t, 10*time.Second, nodes, n.node, Alive)
	}
	t.Logf("healed: all alive %v after the cut was lifted", time.Since(healed))
}
