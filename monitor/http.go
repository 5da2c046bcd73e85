package monitor

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

//go:embed page.html
var page []byte

// httpServer is the Monitor's HTTP side.
type httpServer struct {
	hs http.Server
}

func (s *httpServer) init(m *Monitor) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", m.serveMetrics)
	mux.HandleFunc("GET /cluster", m.serveView)
	mux.HandleFunc("GET /{$}", servePage)
	mux.HandleFunc("GET /cluster.html", servePage)
	s.hs = http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.log.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// Handler serves /metrics, /cluster and the page, for callers that run
// their own HTTP server.
func (m *Monitor) Handler() http.Handler { return m.srv.hs.Handler }

// Serve serves HTTP on ln until Shutdown, then returns nil; any other
// return is the error that stopped it.
func (m *Monitor) Serve(ln net.Listener) error {
	err := m.srv.hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for requests in flight until ctx ends, and
// makes Serve return. It may be called more than once.
func (m *Monitor) Shutdown(ctx context.Context) error {
	return m.srv.hs.Shutdown(ctx)
}

func (m *Monitor) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WritePrometheus(w)
}

func (m *Monitor) serveView(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(m.View())
}

func servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}
