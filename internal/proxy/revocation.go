package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// errPeerRevoked ends an open HBONE connection whose peer a new CRL revoked.
var errPeerRevoked = fmt.Errorf("%w: by a CRL loaded while the connection was open", crl.ErrRevoked)

// trackRevocation keeps an open HBONE connection under the CRLs (Rust's
// CrlManager::register): a reload that revokes its peer closes it, and the streams on it
// end with the CERT_REVOKED flag. gen is the CRL generation taken before the handshake.
func (p *Proxy) trackRevocation(gen uint64, cs tls.ConnectionState, roots *x509.CertPool, usage x509.ExtKeyUsage, hc *hbone.Conn) {
	if p.deps.CRL == nil {
		return
	}
	reporter := "destination"
	if usage == x509.ExtKeyUsageServerAuth {
		reporter = "source"
	}
	untrack := p.deps.CRL.Track(gen, crl.Peer{Certs: cs.PeerCertificates, Roots: roots, Usage: usage, Reporter: reporter},
		func() { hc.CloseWithError(errPeerRevoked) })
	hc.AfterClose(untrack)
}

// revokedPeer reports whether a connection ended, or was refused, because a CRL revokes
// its peer: the error says so, or the HBONE connection under c was closed for it.
func revokedPeer(err error, c halfConn) bool {
	if errors.Is(err, crl.ErrRevoked) {
		return true
	}
	if t, ok := c.(*innerTunnel); ok && errors.Is(t.outer.Conn().Err(), crl.ErrRevoked) {
		return true // the gateway's certificate (Rust races both tunnels' signals)
	}
	st := streamOf(c)
	return st != nil && errors.Is(st.Conn().Err(), crl.ErrRevoked)
}

// endFlags is the response flag of a connection that carried data: CERT_REVOKED or DENY
// when late enforcement ended it, else "-".
func endFlags(r *record, err error, c halfConn) string {
	switch {
	case revokedPeer(err, c):
		return "CERT_REVOKED"
	case r.denied.Load():
		return "DENY"
	}
	return "-"
}
