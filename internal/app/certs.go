package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/caclient"
	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
)

// certSource picks where certificates come from: the built-in CA (FAKE_CA), the Istio
// CA, or nowhere (nil) when neither is configured. The returned close releases it.
func (a *App) certSource() (certmgr.Fetcher, func(), error) {
	c := a.cfg
	if c.FakeCA {
		a.log.Warn("FAKE_CA=true: the built-in CA signs certificates for any identity; not for production clusters")
		builtin, err := ca.New(c.TrustDomain, c.SecretTTL, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("starting the built-in CA: %w", err)
		}
		return builtin, func() {}, nil
	}
	if c.CAAddress == "" {
		a.log.Warn("no CA_ADDRESS and FAKE_CA is off: ztunnel has no certificates")
		return nil, func() {}, nil
	}
	client, err := caclient.New(caclient.Config{
		Address: c.CAAddress, Roots: istiodRoots(c.CARootCert), AltHostname: c.CAAltHostname, Token: c.AuthToken.Read, ClusterID: c.ClusterID,
		Headers: istiodHeaders(c.CAHeaders), TTL: c.SecretTTL, Impersonate: c.ProxyMode == config.Shared,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("certificate authority (CA_ADDRESS, CA_ROOT_CA; FAKE_CA=true uses the built-in CA): %w", err)
	}
	return client, func() { client.Close() }, nil
}

// runCerts starts the certificate manager and, in shared mode, the prefetcher that
// follows the workloads on this node; in dedicated mode the one identity is prefetched.
func (a *App) runCerts(ctx context.Context, wg *sync.WaitGroup, f certmgr.Fetcher) *certmgr.Manager {
	m := certmgr.New(f, certmgr.Options{Logger: logging.Scoped(a.log, "cache")})
	wg.Go(func() { m.Run(ctx) })
	switch {
	case a.cfg.ProxyMode == config.Shared:
		wg.Go(func() { m.WatchState(ctx, a.store, a.cfg.NodeName) })
	case a.cfg.WorkloadInfo != nil:
		w := a.cfg.WorkloadInfo
		m.Prefetch(identity.New(a.cfg.TrustDomain, w.Namespace, w.ServiceAccount))
	}
	return m
}
