package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/route"
)

// tlvPeerIdentity is the PROXY v2 TLV ztunnel puts the client's SPIFFE identity in
// (Rust PROXY_PROTOCOL_AUTHORITY_TLV, 0xD0, an application-specific type).
const tlvPeerIdentity proxyproto.PP2Type = 0xD0

// dialTunnelApp reaches the app behind an application tunnel. A PROXY tunnel is dialed
// on loopback, from loopback (LOCALHOST_APP_TUNNEL, Rust's default): the app binds
// only there, so nothing reaches it but through ztunnel, and the client's address
// travels in the header instead; the header is written before the client is answered
// (Rust writes it just after), so a failure to write is a 503 rather than a reset.
func (p *Proxy) dialTunnelApp(peer netip.AddrPort, peerID identity.Identity, in route.Inbound) (*net.TCPConn, error) {
	if !in.Tunnel.PROXY {
		return p.dialApp(peer, in.Target)
	}
	src, target := peer.Addr(), in.Target
	if !p.deps.AppTunnelOnPodIP {
		lo := netip.IPv6Loopback()
		if target.Addr().Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		src, target = lo, netip.AddrPortFrom(lo, target.Port())
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	c, err := p.deps.Sockets.Dial(ctx, src, target)
	if err != nil {
		return nil, err
	}
	up := c.(*net.TCPConn)
	if err := writeProxyHeader(up, peer, in.Tunnel.Addressed, peerID); err != nil {
		up.Close()
		return nil, err
	}
	return up, nil
}

// writeProxyHeader is Rust write_proxy_protocol: PROXY v2, command PROXY over TCP,
// from the client to where it was going, and the client's identity when it proved one.
func writeProxyHeader(c net.Conn, client, addressed netip.AddrPort, id identity.Identity) error {
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(client), net.TCPAddrFromAddrPort(addressed))
	if !id.IsZero() {
		if err := h.SetTLVs([]proxyproto.TLV{{Type: tlvPeerIdentity, Value: []byte(id.String())}}); err != nil {
			return fmt.Errorf("building the PROXY header: %w", err)
		}
	}
	if _, err := h.WriteTo(c); err != nil {
		return fmt.Errorf("writing the PROXY header: %w", err)
	}
	return nil
}
