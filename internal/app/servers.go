package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// httpServer is one of ztunnel's own HTTP endpoints (admin, stats, readiness) on one or
// more listeners. Its listeners are bound before anything is served.
type httpServer struct {
	name string
	lis  []net.Listener
	srv  *http.Server
}

// bindHTTP listens on every address; a taken port fails start-up naming the address.
// An optional address (IPv6 loopback on a host without it) is skipped when unavailable.
func bindHTTP(name string, h http.Handler, addrs []netip.AddrPort, optional func(netip.AddrPort) bool, log *slog.Logger) (*httpServer, error) {
	s := &httpServer{name: name, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // plain TCP, as Rust's and our data plane's (Go's default is MPTCP)
	for _, a := range addrs {
		l, err := lc.Listen(context.Background(), "tcp", a.String())
		if err != nil {
			if optional != nil && optional(a) && !errors.Is(err, syscall.EADDRINUSE) {
				log.Debug("skipping listener", "server", name, "addr", a.String(), "error", err)
				continue
			}
			s.close()
			return nil, fmt.Errorf("listening on %s for %s: %w", a, name, err)
		}
		s.lis = append(s.lis, l)
	}
	return s, nil
}

func (s *httpServer) addrs() []net.Addr {
	out := make([]net.Addr, len(s.lis))
	for i, l := range s.lis {
		out[i] = l.Addr()
	}
	return out
}

// serve runs one goroutine per listener, tracked by wg, until shutdown.
func (s *httpServer) serve(wg *sync.WaitGroup, log *slog.Logger) {
	for _, l := range s.lis {
		wg.Go(func() {
			if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("server stopped", "server", s.name, "addr", l.Addr().String(), "error", err)
			}
		})
	}
}

func (s *httpServer) shutdown(ctx context.Context) {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}

func (s *httpServer) close() {
	for _, l := range s.lis {
		l.Close()
	}
}
