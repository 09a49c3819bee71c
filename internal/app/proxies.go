package app

import (
	"context"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
)

// proxies are node mode's listeners (in-pod mode replaces them with per-pod sets).
// They need certificates: without a CA, HBONE is impossible and they are not started.
func (a *App) newProxy(certs proxy.CertSource) *proxy.Proxy {
	return proxy.New(proxy.Deps{
		Config: a.cfg, State: a.store, Certs: certs, Sockets: proxy.NewHostSockets(a.cfg),
		Listen: a.listen, Authz: a.authz, Drain: a.drain, Logger: logging.Scoped(a.log, "proxy"),
	})
}

// startProxy binds the listeners (a taken port fails start-up) and serves until ctx
// ends. Proxies start only on complete state (Rust waits for the first xDS sync), and
// only with certificates; otherwise readiness says "proxy" is pending.
func (a *App) startProxy(ctx context.Context, wg *sync.WaitGroup, certs *certmgr.Manager, complete bool) (*proxy.Proxy, error) {
	task := a.ready.Register("proxy")
	if certs == nil || !complete {
		a.log.Warn("proxies not started", "have_certificates", certs != nil, "state_complete", complete)
		return nil, nil
	}
	p := a.newProxy(certs)
	if err := p.Bind(ctx); err != nil {
		return nil, err
	}
	wg.Go(func() { p.Run(ctx) })
	task.Done()
	return p, nil
}
