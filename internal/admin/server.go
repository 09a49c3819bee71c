// Package admin serves ztunnel's admin API on localhost:15000: the config dump that
// istioctl reads, log levels, shutdown and profiling.
package admin

import (
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/version"
)

// Deps is what the admin server shows and controls.
type Deps struct {
	Config    *config.Config
	State     *state.Store
	Static    any             // the static config as loaded (JSON-encodable), or nil
	Certs     Certificates    // nil when ztunnel has no certificate source
	Authz     Explainer       // nil when authorization is off
	Conns     *conns.Registry // live connections, for workloadState; nil: none
	DNS       DNSDebug        // nil when the DNS proxy is off
	Levels    *logging.Levels
	Version   version.Info
	ProxyArgs string // the command line after the program name, as 1.18 showed it
	Shutdown  func() // starts a graceful shutdown; must not block
	Logger    *slog.Logger
}

// Server is the admin HTTP handler; it holds no goroutines of its own.
type Server struct {
	deps Deps
	mux  *http.ServeMux
}

type endpoint struct {
	path, help string
	h          http.HandlerFunc
}

// New builds the handler.
func New(deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = logging.Discard()
	}
	s := &Server{deps: deps, mux: http.NewServeMux()}
	for _, e := range s.endpoints() {
		if e.h != nil {
			s.mux.HandleFunc(e.path, e.h)
		}
	}
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s
}

func (s *Server) endpoints() []endpoint {
	return []endpoint{
		{"/config_dump", "workloads, services, policies, certificates and config as JSON (`?layout=1.18` for the 1.18 shape)", s.configDump},
		{"/logging", "POST: show log levels; `?level=info` or `?level=xds:debug,access:off` changes them; `?reset` restores start-up levels", s.logging},
		{"/quitquitquit", "POST: drain and exit", s.quit},
		{"/debug/authz", "explain an authorization decision: `?src=<ip>&srcId=<spiffe id>&dst=<ip:port>`", s.authz},
		{"/debug/route", "explain where a connection would go: `?src=<ip>&dst=<ip:port>` (service, endpoint, waypoint, and why)", s.route},
		{"/debug/dns", "DNS proxy: each pod's recent queries, answered from the mesh or forwarded; `?src=<ip>&name=<name>&type=A` explains one", s.dnsDebug},
		{"/debug/pprof/", "Go profiles: heap, goroutine, profile?seconds=N, trace, …", nil},
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		s.index(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) index(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><title>ztunnel admin</title></head><body>\n<h1>ztunnel admin</h1>\n<table>\n")
	for _, e := range s.endpoints() {
		fmt.Fprintf(&b, "<tr><td><a href=%q>%s</a></td><td>%s</td></tr>\n", e.path, html.EscapeString(e.path), html.EscapeString(e.help))
	}
	b.WriteString("</table>\n</body></html>\n")
	w.Write([]byte(b.String()))
}

func (s *Server) configDump(w http.ResponseWriter, r *http.Request) {
	snap := s.deps.State.Snapshot()
	var body any
	switch layout := r.URL.Query().Get("layout"); layout {
	case "":
		body = s.buildDump(snap)
	case "1.18":
		body = s.buildDump118(snap)
	default:
		http.Error(w, fmt.Sprintf("unknown layout %q: want 1.18, or none for the current one", layout), http.StatusBadRequest)
		return
	}
	out, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		s.deps.Logger.Error("encoding config dump", "error", err)
		http.Error(w, "encoding config dump: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(out, '\n'))
}

const loggingUsage = "usage: POST /logging[?level=<level>|<component>:<level>,…][&reset]\n" +
	"levels: trace, debug, info, warn, error, off\n"

func (s *Server) logging(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed\n"+loggingUsage, http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if q.Has("reset") {
		s.deps.Levels.Reset()
	}
	if lvl := q.Get("level"); lvl != "" {
		if err := s.deps.Levels.Apply(lvl); err != nil {
			http.Error(w, "invalid level: "+err.Error()+"\n"+loggingUsage, http.StatusBadRequest)
			return
		}
		s.deps.Logger.Info("log level changed", "level", s.deps.Levels.Current().String())
	}
	fmt.Fprintf(w, "current log level is %s\n", s.deps.Levels.Current())
}

func (s *Server) quit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST /quitquitquit", http.StatusMethodNotAllowed)
		return
	}
	s.deps.Logger.Info("shutdown requested", "via", "/quitquitquit")
	w.Write([]byte("shutdown now\n"))
	s.deps.Shutdown()
}
