package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	defaultReconcileInterval = 2 * time.Second

	// leaveTimeout bounds how long Run waits for the leave broadcast on
	// shutdown; GossipInterval is 100 ms with the local config.
	leaveTimeout = time.Second
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("gossip: invalid config")

// Config configures a Gossip. The zero value is not valid: Node, Instance and
// BindAddr are required.
type Config struct {
	// Node is the cluster's name for this node, as etcd lists it.
	Node string

	// Instance identifies this process incarnation (for example a random id
	// chosen at start). The memberlist name is Node+"/"+Instance: memberlist
	// rejects a reused name at a new address and cannot rejoin after Leave,
	// so every process needs a fresh one. It must not contain "/".
	Instance string

	// BindAddr is the ip:port to bind for UDP and TCP. Port 0 picks a free
	// port (see LocalAddr). The host must be an IP address.
	BindAddr string

	// AdvertiseAddr is the ip:port other nodes use to reach this one.
	// "" means BindAddr (with a private IP chosen by memberlist when
	// BindAddr is unspecified, e.g. 0.0.0.0); port 0 means the bound port.
	AdvertiseAddr string

	// Meta is node metadata gossiped with this node (for example its client
	// and peer addresses). At most memberlist.MetaMaxSize (512) bytes; nil
	// means none.
	Meta []byte

	// SecretKey enables encryption when it is 16, 24 or 32 bytes long; nil
	// means no encryption (memberlist is not secure by default).
	SecretKey []byte

	// Label, when not "", is attached to every packet and stream; nodes with
	// a different label are refused. At most memberlist.LabelMaxSize bytes.
	Label string

	// ReconcileInterval is how often listed peers that are not seen alive
	// are joined again. 0 means 2s.
	ReconcileInterval time.Duration

	// Logger receives this package's logs and memberlist's own log output.
	// nil discards.
	Logger *slog.Logger
}

// Validate reports every problem with c, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	if c.Node == "" {
		errs = append(errs, errors.New("Node is empty"))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("Instance is empty"))
	} else if strings.Contains(c.Instance, "/") {
		errs = append(errs, fmt.Errorf("Instance %q contains %q", c.Instance, "/"))
	}
	if _, _, err := parseIPPort(c.BindAddr); err != nil {
		errs = append(errs, fmt.Errorf("BindAddr: %w", err))
	}
	if c.AdvertiseAddr != "" {
		if ip, _, err := parseIPPort(c.AdvertiseAddr); err != nil {
			errs = append(errs, fmt.Errorf("AdvertiseAddr: %w", err))
		} else if ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("AdvertiseAddr %q is unspecified", c.AdvertiseAddr))
		}
	}
	if len(c.Meta) > memberlist.MetaMaxSize {
		errs = append(errs, fmt.Errorf("Meta is %d bytes, limit %d", len(c.Meta), memberlist.MetaMaxSize))
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("SecretKey is %d bytes, want 16, 24 or 32", len(c.SecretKey)))
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		errs = append(errs, fmt.Errorf("Label is %d bytes, limit %d", len(c.Label), memberlist.LabelMaxSize))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, fmt.Errorf("ReconcileInterval %v is negative", c.ReconcileInterval))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// parseIPPort splits "ip:port"; memberlist's transport needs IP literals.
func parseIPPort(s string) (netip.Addr, int, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("host %q is not an IP address", host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return netip.Addr{}, 0, fmt.Errorf("bad port %q", portStr)
	}
	return ip.Unmap(), port, nil
}

// normAddr puts an address in the form instance addresses are kept in, so
// that an address listed by etcd compares equal; anything unparseable (a
// hostname) is returned as is and simply never matches.
func normAddr(s string) string {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return s
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}
