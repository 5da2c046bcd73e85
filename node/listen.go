package node

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// listen opens one TCP listener per -l address, all on -p; or, with -s,
// the UNIX socket alone, as memcached does.
func listen(o Config) ([]net.Listener, error) {
	if o.UnixSocket != "" {
		ln, err := listenUnix(o.UnixSocket, o.UnixMask)
		if err != nil {
			return nil, err
		}
		return []net.Listener{ln}, nil
	}
	var lns []net.Listener
	for _, host := range strings.Split(o.Listen, ",") {
		host = strings.TrimSpace(host)
		// An IPv4 address binds IPv4 only, as memcached does: Go's "tcp"
		// would turn 0.0.0.0 into a dual-stack [::].
		network := "tcp"
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			network = "tcp4"
		}
		ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(max(o.Port, 0))))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("failed to listen on %s port %d: %w", host, o.Port, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// writePortFile writes the TCP ports listened on to path, one
// "TCP INET: <port>" or "TCP INET6: <port>" line per listener, as
// memcached does for $MEMCACHED_PORT_FILENAME (test harnesses read the
// port of "-p -1" there); nothing when path is empty.
func writePortFile(path string, lns []net.Listener) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	for _, ln := range lns {
		a, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		family := "INET6"
		if a.IP.To4() != nil {
			family = "INET"
		}
		fmt.Fprintf(&b, "TCP %s: %d\n", family, a.Port)
	}
	tmp := path + ".lck"
	if err := os.WriteFile(tmp, []byte(b.String()), 0644); err != nil {
		return fmt.Errorf("MEMCACHED_PORT_FILENAME: %w", err)
	}
	return os.Rename(tmp, path)
}

// listenUnix listens on a UNIX socket at path, replacing a socket left
// there by an earlier run (never another kind of file), with the access
// mask of memcached's -a.
func listenUnix(path string, mask os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UNIX socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mask); err != nil {
		ln.Close()
		return nil, fmt.Errorf("UNIX socket %s: %w", path, err)
	}
	return ln, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}
