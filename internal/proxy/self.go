package proxy

import (
	"context"
	"net"
	"net/netip"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/route"
)

// upstream connects an accepted CONNECT to what it is for: ztunnel's own stats server
// (the self-proxy), the app behind an application tunnel, or the app, from the client's
// address.
func (p *Proxy) upstream(peer netip.AddrPort, peerID identity.Identity, in route.Inbound) (*net.TCPConn, error) {
	switch {
	case p.deps.SelfStats.IsValid():
		return p.dialSelf(in.Target)
	case in.Tunnel != nil:
		return p.dialTunnelApp(peer, peerID, in)
	}
	return p.dialApp(peer, in.Target)
}

// dialSelf is Rust's self-proxy upstream (istio/ztunnel#928): ztunnel's own inbound,
// proving ztunnel's identity, hands a CONNECT for its stats port to its stats server,
// from ztunnel's own address (Rust disable_inbound_freebind), so that Prometheus can
// scrape it over mTLS. Unlike Rust, which forwards to any port of ztunnel's IP but its
// data-plane ones, only the stats port is served: readiness and admin stay off HBONE.
func (p *Proxy) dialSelf(target netip.AddrPort) (*net.TCPConn, error) {
	if target.Port() != p.deps.SelfStats.Port() {
		return nil, errorf("ztunnel's own inbound serves only its stats port %d, not %d", p.deps.SelfStats.Port(), target.Port())
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.deps.SelfStats.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
