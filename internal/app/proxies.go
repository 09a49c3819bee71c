package app

import (
	"context"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
)

// proxies are node mode's listeners (in-pod mode replaces them with per-pod sets).
// They need certificates: without a CA, HBONE is impossible and they are not started.
func (a *App) newProxy(certs proxy.CertSource, demand func(context.Context, string) error) *proxy.Proxy {
	o := a.proxyOptions(certs, hostSockets(a.cfg), demand)
	o.Listen = a.listen
	if w := a.cfg.WorkloadInfo; w != nil && a.cfg.ProxyMode == config.Dedicated { // one workload, named
		o.Pod = w
	}
	return proxy.New(o)
}

// proxyOptions are the options every proxy shares, node mode's and each pod's.
func (a *App) proxyOptions(certs proxy.CertSource, sockets *proxy.HostSockets, demand func(context.Context, string) error) proxy.Options {
	o := proxyOptions(a.cfg)
	o.State, o.Certs, o.Sockets, o.Authz, o.Demand, o.Drain = a.store, certs, sockets, a.authz, demand, a.drain
	o.Logger, o.Traffic, o.Conns, o.ConnLimit = logging.Scoped(a.log, "proxy"), a.traffic, a.conns, a.connCap
	o.TLS, o.CRL = a.tls, a.crl
	if a.resolver != nil { // a nil *dns.Resolver must not become a non-nil interface
		o.Resolver = a.resolver
	}
	return o
}

// startProxy binds the listeners at once (a taken port fails start-up) but serves only
// once the state is synced, as Rust ztunnel waits for the first xDS answers; until then
// readiness says "proxy" is pending. Without certificates there is no HBONE and no proxy.
func (a *App) startProxy(ctx context.Context, wg *sync.WaitGroup, certs *certmgr.Manager, synced <-chan struct{},
	demand func(context.Context, string) error) error {
	task := a.ready.Register("proxy")
	if certs == nil {
		a.log.Warn("proxies not started: no certificate source")
		return nil
	}
	p := a.newProxy(certs, demand)
	if err := p.Bind(ctx); err != nil {
		return err
	}
	select {
	case <-synced: // static state is complete already: ready as soon as Started says so
		task.Done()
	default:
	}
	wg.Go(func() {
		select {
		case <-synced:
			task.Done()
		case <-ctx.Done():
		}
		p.Run(ctx) // returns at once when ctx has ended, closing the listeners
	})
	return nil
}
