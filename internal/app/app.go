// Package app wires ztunnel's subsystems: it builds them in dependency order, runs them,
// and on shutdown drains and stops them in reverse.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/dns"
	"github.com/ztunnel-go/ztunnel/internal/drain"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/memtrim"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/version"
)

// App is one ztunnel process. New builds it without starting anything; Run owns every
// goroutine and returns after they have all ended.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	levels   *logging.Levels
	store    *state.Store
	ready    *readiness.Tracker
	drain    *drain.Drain
	registry *prometheus.Registry
	listen   proxy.Listen // the proxies' listeners; from the config unless a test sets them
	authz    *rbac.Engine
	traffic  *metrics.Traffic // Istio's TCP metrics, shared by every proxy
	conns    *conns.Registry  // live connections and pods, for the dump
	connCap  *proxy.ConnLimit // MAX_CONNECTIONS, shared by every pod's proxy
	// The mesh TLS policy and CRLs of every proxy: set by Run before any proxy starts.
	tls *mtls.Policy
	crl *crl.Manager // nil without CRL_PATH

	// The DNS proxy's shared parts: metrics and history from New, the rest set by
	// loadDNS in Run before any server starts, read-only afterwards.
	dnsMetrics  *metrics.DNS
	dnsHistory  *dns.History
	dnsMesh     *dns.Mesh
	dnsUpstream dns.Upstream
	resolver    *dns.Resolver // hostname-only workloads; nil: none can be reached

	quitOnce sync.Once
	quit     chan struct{} // closed by Shutdown

	mu       sync.Mutex // guards bound and dnsAddrs
	bound    Bound
	dnsAddrs []net.Addr
	started  chan struct{} // closed once every listener is bound and served
}

// Bound are the addresses actually listened on (ports chosen by the OS when 0).
type Bound struct {
	Admin, Stats, Readiness []net.Addr
	DNS                     []net.Addr // node mode's DNS proxy: UDP then TCP per address
}

// New builds the shared components from the config; it reads no files, opens no
// sockets and starts nothing: Run does, and fails there on what cannot start.
func New(cfg *config.Config, log *slog.Logger, levels *logging.Levels) *App {
	a := &App{
		cfg: cfg, log: log, levels: levels,
		store:    state.NewStore(),
		ready:    readiness.New(),
		drain:    drain.New(),
		registry: metrics.NewRegistry(cfg.IstioVersion()),
		quit:     make(chan struct{}),
		started:  make(chan struct{}),
		listen:   nodeListen(cfg),
	}
	a.authz = rbac.NewEngine(a.store)
	a.traffic = metrics.NewTraffic(a.registry)
	a.conns = conns.New()
	a.connCap = proxy.NewConnLimit(cfg.Limits.MaxConnections)
	if cfg.DNS.Enabled {
		a.dnsMetrics, a.dnsHistory = metrics.NewDNS(a.registry), dns.NewHistory()
	}
	return a
}

// startDataPlane starts the proxies and the DNS proxy: per pod as istio-cni hands them
// over (in-pod mode), or node mode's own.
func (a *App) startDataPlane(ctx context.Context, bg *sync.WaitGroup, certs *certmgr.Manager, synced <-chan struct{},
	demand func(context.Context, string) error) error {
	if a.cfg.InPod {
		if certs == nil {
			return fmt.Errorf("in-pod mode needs certificates: set CA_ADDRESS or FAKE_CA=true")
		}
		a.runInPod(ctx, bg, certs, synced, demand)
		return nil
	}
	if err := a.startProxy(ctx, bg, certs, synced, demand); err != nil {
		return err
	}
	return a.startNodeDNS(ctx, bg, synced)
}

// Shutdown starts a graceful shutdown, as SIGTERM does; it does not wait.
func (a *App) Shutdown() { a.quitOnce.Do(func() { close(a.quit) }) }

// Started is closed when the listeners are serving; Addrs is valid from then on.
func (a *App) Started() <-chan struct{} { return a.started }

// State is the store ztunnel serves from, for embedders and tests to feed or inspect.
func (a *App) State() *state.Store { return a.store }

// Addrs returns the bound listener addresses.
func (a *App) Addrs() Bound {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bound
}

// Run starts ztunnel and blocks until ctx ends or Shutdown is called, then drains for at
// most the termination deadline. A start-up failure is returned; a clean stop is nil.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("starting ztunnel", "version", version.Get().Version, "config", jsonString(admin.EffectiveConfig(a.cfg, a.levels)))
	for _, w := range a.cfg.Warnings {
		a.log.Warn(w)
	}
	stateTask := a.ready.Register("state manager")
	static, err := a.loadStatic()
	if err != nil {
		return err
	}
	if err := a.loadDNS(); err != nil {
		return err
	}
	a.loadResolver()
	fetcher, closeFetcher, err := a.certSource()
	if err != nil {
		return err
	}
	defer closeFetcher()
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg, wg sync.WaitGroup // background subsystems (certificates, proxies); HTTP servers
	defer bg.Wait()
	defer stopBackground()
	synced, demand, err := a.runXDS(bgCtx, &bg, stateTask)
	if err != nil {
		return err
	}
	var certs *certmgr.Manager
	if fetcher != nil {
		certs = a.runCerts(bgCtx, &bg, fetcher)
	}
	a.startMeshTLS(bgCtx, &bg, certs)
	if err := a.startDataPlane(bgCtx, &bg, certs, synced, demand); err != nil {
		return err
	}
	trimmer := memtrim.New(memtrim.Options{Logger: logging.Scoped(a.log, "memtrim")})
	bg.Go(func() { trimmer.Run(bgCtx) })
	servers, err := a.bind(static, certs)
	if err != nil {
		return err
	}
	if err := a.startSelfProxy(bgCtx, &bg, certs, demand); err != nil {
		for _, s := range servers {
			s.close()
		}
		return err
	}
	for _, s := range servers {
		s.serve(&wg, a.log)
	}
	close(a.started)
	a.log.Info("ztunnel started", "admin", addrList(a.bound.Admin), "stats", addrList(a.bound.Stats), "readiness", addrList(a.bound.Readiness))

	select {
	case <-ctx.Done():
		a.log.Info("received signal, starting drain", "deadline", a.cfg.TerminationDeadline.String())
	case <-a.quit:
		a.log.Info("shutdown requested, starting drain", "deadline", a.cfg.TerminationDeadline.String())
	}
	a.stop(servers, stopBackground)
	wg.Wait()
	a.log.Info("ztunnel stopped")
	return nil
}

// bind opens every listener before any is served, in start order: readiness, admin,
// stats. On failure the ones already open are closed.
func (a *App) bind(static any, certs *certmgr.Manager) ([]*httpServer, error) {
	ready, err := bindHTTP("readiness", a.ready, []netip.AddrPort{a.cfg.Addrs.Readiness}, nil, a.log)
	if err != nil {
		return nil, err
	}
	var certDump admin.Certificates
	if certs != nil {
		certDump = certs
	}
	adm := admin.New(admin.Deps{
		Config: a.cfg, State: a.store, Static: static, Certs: certDump, Authz: a.authz, Conns: a.conns, Levels: a.levels, Version: version.Get(),
		DNS: a.dnsDebug(), ProxyArgs: proxyArgs(os.Args[1:]), Shutdown: a.Shutdown,
		Logger: logging.Scoped(a.log, "admin"),
	})
	v6Loopback := func(ap netip.AddrPort) bool { return ap.Addr().Is6() }
	admSrv, err := bindHTTP("admin", adm, a.cfg.Addrs.Admin, v6Loopback, a.log)
	if err != nil {
		ready.close()
		return nil, err
	}
	stats, err := bindHTTP("stats", metrics.Handler(a.registry), []netip.AddrPort{a.cfg.Addrs.Stats}, nil, a.log)
	if err != nil {
		ready.close()
		admSrv.close()
		return nil, err
	}
	a.mu.Lock()
	a.bound = Bound{Admin: admSrv.addrs(), Stats: stats.addrs(), Readiness: ready.addrs(), DNS: a.dnsAddrs}
	a.mu.Unlock()
	return []*httpServer{ready, admSrv, stats}, nil
}

// stop flips readiness to failing, stops accepting, drains in-flight connections, then
// stops the rest in reverse start order, all within one termination deadline: past it,
// what is still open is closed, so the process always exits in time.
func (a *App) stop(servers []*httpServer, stopBackground func()) {
	a.ready.Register("shutdown")
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.TerminationDeadline)
	defer cancel()
	if open := a.drain.Wait(ctx); open > 0 { // proxies stop accepting when the drain starts
		a.log.Warn("drain deadline reached, closing connections", "open", open)
	}
	stopBackground() // proxies close what is left; certificates stop
	for i := len(servers) - 1; i >= 0; i-- {
		servers[i].shutdown(ctx)
	}
}

func addrList(as []net.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// proxyArgs is the command line after the program name, as Rust shows it; a bare
// `ztunnel` runs the proxy command.
func proxyArgs(args []string) string {
	if len(args) == 0 {
		return "proxy"
	}
	return strings.Join(args, " ")
}
