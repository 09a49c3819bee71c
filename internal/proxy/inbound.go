package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/route"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// serveInbound terminates HBONE: mTLS with the certificate of the workload the client
// reached, then one CONNECT stream per tunnel.
func (p *Proxy) serveInbound(nc net.Conn, _ *liveConn) {
	local, peer := addrPort(nc.LocalAddr()), addrPort(nc.RemoteAddr())
	gen := p.deps.CRL.Generation()
	tc := tls.Server(mtls.NewTransport(nc), mtls.ServerConfig(p.deps.TLS, p.certForLocal))
	if err := mtls.Handshake(context.Background(), tc, p.deps.Timeouts.Handshake); err != nil {
		reason := "tls"
		if errors.Is(err, crl.ErrRevoked) {
			reason = "cert_revoked"
			p.deps.CRL.Rejected("destination")
		}
		p.handshakeFailed(reason, "inbound TLS handshake failed", peer, local, err)
		nc.Close()
		return
	}
	peerID, err := mtls.PeerIdentity(tc.ConnectionState())
	if err != nil {
		nc.Close()
		return
	}
	nc.SetReadDeadline(time.Now().Add(p.deps.Timeouts.Handshake))
	hc, err := hbone.NewServerConn(tc, p.settingsFor(peer))
	if err != nil {
		p.handshakeFailed("not_http2", "inbound connection is not HTTP/2", peer, local, err)
		nc.Close()
		return
	}
	nc.SetReadDeadline(time.Time{})
	if p.deps.CRL != nil {
		if cert, err := p.certForLocal(context.Background(), nc.LocalAddr()); err == nil {
			p.trackRevocation(gen, tc.ConnectionState(), cert.RootPool(), x509.ExtKeyUsageClientAuth, hc)
		}
	}
	p.mu.Lock()
	p.inbound[hc] = struct{}{}
	p.mu.Unlock()
	defer func() { p.mu.Lock(); delete(p.inbound, hc); p.mu.Unlock() }()
	hc.Serve(func(st *hbone.Stream) { p.serveStream(st, peerID, local, peer) })
}

// traceID is the trace id of a W3C traceparent, the connection's id in logs.
func traceID(traceparent string) string {
	if len(traceparent) == 55 && traceparent[2] == '-' {
		return traceparent[3:35]
	}
	return "-"
}

// certForLocal is the certificate of the workload at the address a client reached.
func (p *Proxy) certForLocal(ctx context.Context, local net.Addr) (*identity.Cert, error) {
	w := p.router.Local(p.deps.State.Snapshot(), addrPort(local).Addr())
	if w == nil {
		return nil, errorf("no workload at %s", local)
	}
	return p.deps.Certs.Get(ctx, route.WorkloadID(w))
}

// serveStream handles one CONNECT: check where it goes, ask authorization, reach the
// app, and only then answer 200, so a client never sees success for an unreachable app.
func (p *Proxy) serveStream(st *hbone.Stream, peerID identity.Identity, local, peer netip.AddrPort) {
	req := st.Request()
	// Rust ztunnel's span: the connection's context precedes every message about it.
	log := logging.Span(logging.Scoped(p.log, "inbound"), "inbound", "id", traceID(req.Traceparent),
		"peer_ip", peer.Addr().String(), "peer_id", peerID.String())
	snap := p.deps.State.Snapshot()
	r := p.inboundRecord(snap, req, peerID, local, peer)
	lc, err := p.live.admit(st)
	if err != nil {
		if errors.Is(err, errOverLimit) {
			p.overLimit(local)
		}
		p.earlyDeny(r, err)
		st.Respond(http.StatusServiceUnavailable)
		return
	}
	defer lc.release()
	in, code, err := p.inboundTarget(snap, req, local.Addr())
	if err != nil {
		p.noise.Log(log, slog.LevelWarn, noiseRefused, "CONNECT refused", "dst.hbone_addr", req.Authority, "status", code, "error", err)
		p.earlyDeny(r, err)
		st.Respond(code)
		return
	}
	target, dstW := in.Target, in.Workload
	r.dst, r.dstW, r.dstID, r.svc = target, dstW, route.WorkloadID(dstW), in.Service
	if r.svc != nil {
		r.origDst = r.svc.Hostname
	}
	rc := p.inboundConn(peer, peerID, target)
	if !p.authorize(log, rc, dstW) {
		p.failed(r, "DENY", errDenied)
		st.Respond(http.StatusUnauthorized)
		return
	}
	up, err := p.upstream(peer, peerID, in)
	if err != nil {
		p.noise.Log(log, slog.LevelWarn, noiseRefused, "CONNECT refused", "dst.hbone_addr", req.Authority,
			"status", http.StatusServiceUnavailable, "error", err)
		p.failed(r, "CONNECT", err)
		st.Respond(http.StatusServiceUnavailable)
		return
	}
	if err := st.Respond(http.StatusOK, p.responseBaggage(dstW)...); err != nil {
		up.Close()
		return
	}
	p.serveIn(r, lc, log, rc, st, up)
}

var errDenied = errors.New("denied by authorization policy")

// inboundRecord starts an inbound CONNECT's telemetry: the source is the workload at
// the peer's address, unless it came through a gateway, and its baggage.
func (p *Proxy) inboundRecord(snap *state.Snapshot, req *hbone.Request, peerID identity.Identity, local, peer netip.AddrPort) *record {
	r := &record{start: time.Now(), inbound: true, src: peer, dst: local, hboneAddr: req.Authority, srcID: peerID, mtls: true}
	if !p.fromGateway(req) { // through a gateway the peer's address is the gateway's
		r.srcW = p.router.Peer(snap, peer.Addr())
	}
	if !p.deps.NoBaggage {
		r.baggage = req.Baggage
	}
	return r
}

// fromGateway is Rust's from_gateway: the CONNECT came through an east-west gateway
// (the inner tunnel of double HBONE), as its x-forwarded-network names another
// network than ours; the source is then known by its certificate and baggage only.
func (p *Proxy) fromGateway(req *hbone.Request) bool {
	n := req.ForwardedNetwork
	return n != nil && !strings.EqualFold(*n, p.router.Network)
}

// serveIn carries an accepted inbound connection to its app, subject to late
// enforcement, with telemetry.
func (p *Proxy) serveIn(r *record, lc *liveConn, log *slog.Logger, rc rbac.Conn, client halfConn, up *net.TCPConn) {
	lc.carry(up)
	lc.watch(p.recheckIfAuthz(log, rc, r))
	p.show(lc, r)
	mc := p.deps.Traffic.Open(r.labels())
	sent, recv, err := pipe(client, up, mc, p.deps.Timeouts)
	mc.Close(endFlags(r, err, client))
	p.complete(r, sent, recv, err)
}

func (p *Proxy) dialApp(peer, target netip.AddrPort) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	up, err := p.deps.Sockets.Dial(ctx, peer.Addr(), target)
	if err != nil {
		return nil, err
	}
	return up.(*net.TCPConn), nil
}

// inboundTarget checks the CONNECT and routes it: 400 for a malformed request or an
// IP that is not this workload's, 503 when the target cannot be reached.
func (p *Proxy) inboundTarget(snap *state.Snapshot, req *hbone.Request, local netip.Addr) (route.Inbound, int, error) {
	if req.Method() != "CONNECT" { // a malformed CONNECT never gets here: hbone resets it
		return route.Inbound{}, http.StatusBadRequest, errorf("not a CONNECT request (method %q)", req.Method())
	}
	auth, err := hbone.ParseAuthority(req.Authority)
	if err != nil {
		return route.Inbound{}, http.StatusBadRequest, err
	}
	c := route.Connect{Addr: auth.Addr, Host: auth.Host, Port: auth.Port, ForwardedHost: forwardedHost(req.Forwarded)}
	in, err := p.router.Inbound(snap, local, c)
	if m, ok := errors.AsType[*route.Missing](err); ok { // on demand: the authority's owner (Rust validate_destination)
		if in, err = p.router.Inbound(p.demand(m.Key), local, c); errors.As(err, &m) {
			err = m.Err
		}
	}
	switch {
	case errors.Is(err, route.ErrMalformed):
		return in, http.StatusBadRequest, err
	case err != nil:
		return in, http.StatusServiceUnavailable, err
	}
	return in, 0, nil
}

// forwardedHost is the host= of a Forwarded header (RFC 7239), "" when absent.
func forwardedHost(forwarded string) string {
	host := ""
	for _, part := range strings.Split(forwarded, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "host") {
			host = strings.Trim(v, `"`)
		}
	}
	return host
}

func (p *Proxy) recheckIfAuthz(log *slog.Logger, c rbac.Conn, r *record) func(*state.Snapshot) bool {
	if p.deps.Authz == nil {
		return nil
	}
	return p.recheck(log, c, r)
}

// servePlaintext handles plain TCP redirected to 15006: no identity, the same checks,
// and a TCP reset (as Rust ztunnel gives) when refused.
func (p *Proxy) servePlaintext(c net.Conn, lc *liveConn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return
	}
	src := addrPort(c.RemoteAddr())
	dst, err := p.deps.Sockets.OriginalDst(tc)
	log := logging.Span(logging.Scoped(p.log, "inbound_passthrough"), "inbound_passthrough",
		"peer_ip", src.Addr().String(), "dst", dst.String())
	snap := p.deps.State.Snapshot()
	r := &record{start: time.Now(), inbound: true, src: src, dst: dst, srcW: p.router.Peer(snap, src.Addr())}
	if err == nil {
		r.dstW = p.router.Local(snap, dst.Addr())
	}
	if err != nil || r.dstW == nil || p.router.IsOwnPort(dst.Port()) {
		err = errors.Join(err, errorf("not a local workload's port"))
		log.Warn("plaintext connection refused", "error", err)
		p.earlyDeny(r, err)
		reset(tc)
		return
	}
	rc := p.inboundConn(src, identity.Identity{}, dst)
	if !p.authorize(log, rc, r.dstW) {
		p.failed(r, "DENY", errDenied)
		reset(tc)
		return
	}
	up, err := p.dialApp(src, dst)
	if err != nil {
		log.Warn("connection failed", "error", err)
		p.failed(r, "CONNECT", err)
		reset(tc)
		return
	}
	p.serveIn(r, lc, log, rc, tc, up)
}

// reset closes with RST rather than FIN, so the client sees "connection reset by peer".
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// responseBaggage describes the destination on the CONNECT's 200, so a peer that does
// not know it (across clusters) labels its metrics (Rust's build_response).
func (p *Proxy) responseBaggage(w *state.Workload) []hpack.HeaderField {
	if p.deps.NoBaggage || w == nil {
		return nil
	}
	return []hpack.HeaderField{{Name: "baggage", Value: baggage(w)}}
}
