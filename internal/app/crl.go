package app

import (
	"context"
	"crypto/x509"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
)

// startMeshTLS builds the HBONE TLS policy (TLS12_ENABLED, COMPLIANCE_POLICY) and, with
// CRL_PATH, the CRL manager that judges peers: loaded now, so the first connection is
// judged, then watched. Unlike Rust, which runs without CRLs when the first load fails,
// a file that fails is logged and looked at again, and taken once it is good.
func (a *App) startMeshTLS(ctx context.Context, bg *sync.WaitGroup, certs *certmgr.Manager) {
	a.tls = &mtls.Policy{TLS12: a.cfg.TLS12Enabled, PQC: a.cfg.CompliancePolicy == "pqc"}
	if a.cfg.CRLPath == "" {
		return
	}
	m := crl.New(crl.Options{Path: a.cfg.CRLPath, Anchors: func() []*x509.Certificate { return a.meshCAs(certs) },
		Metrics: metrics.NewCRL(a.registry), Logger: logging.Scoped(a.log, "crl")})
	if err := m.Load(); err != nil {
		a.log.Warn("CRL not loaded: no peer is judged revoked until CRL_PATH loads", "error", err)
	}
	a.crl, a.tls.Revoked = m, m.Check
	bg.Go(func() { m.Run(ctx) })
}

// meshCAs are the CAs whose CRLs count: the roots and intermediates of the certificates
// ztunnel holds, and the roots of the CA's root file (istiod's mesh root in a cluster).
func (a *App) meshCAs(certs *certmgr.Manager) []*x509.Certificate {
	var out []*x509.Certificate
	if certs != nil {
		out = certs.CAs()
	}
	if roots, err := a.cfg.CARootCert.Certs(); err == nil && !a.cfg.FakeCA {
		out = append(out, roots...)
	}
	return out
}
