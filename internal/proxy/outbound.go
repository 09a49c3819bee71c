package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/pool"
	"github.com/ztunnel-go/ztunnel/internal/route"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// connectTimeout bounds reaching the destination (TCP, TLS and CONNECT), as Rust's 10 s.
const connectTimeout = 10 * time.Second

// serveOutbound handles a connection redirected to 15001: its original destination is
// where the app was going.
func (p *Proxy) serveOutbound(c net.Conn, lc *liveConn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return
	}
	dst, err := p.deps.Sockets.OriginalDst(tc)
	if err != nil || p.router.IsOwnPort(dst.Port()) && isLocal(c, dst) {
		p.log.Warn("outbound connection without a usable original destination", "src", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	p.proxyOutbound(tc, lc, dst, nil)
}

// proxyOutbound carries c (of entry lc) to dst as its source workload. connected, when
// set, is told the outcome before any byte is copied (SOCKS5 answers its client then).
func (p *Proxy) proxyOutbound(c *net.TCPConn, lc *liveConn, dst netip.AddrPort, connected func(error)) {
	if connected == nil {
		connected = func(error) {}
	}
	r := &record{start: time.Now(), src: addrPort(c.RemoteAddr()), dst: dst, origDst: dst.String()}
	snap, srcW := p.source(r.src.Addr())
	if r.srcW = srcW; srcW == nil {
		p.refuseEarly(c, r, connected, errUnknownSource)
		return
	}
	pl, err := p.plan(snap, srcW, r.src.Addr(), dst)
	if err != nil {
		p.refuseEarly(c, r, connected, err)
		return
	}
	r.dstW, r.svc, r.mtls, r.hboneAddr, r.dst = pl.Dst, pl.Service, pl.HBONE(), pl.Authority, pl.Dial
	if pl.HBONE() {
		r.srcID, r.dstID = route.WorkloadID(r.srcW), route.WorkloadID(pl.Dst)
	}
	if pl.Kind == route.DoubleHBONE { // the far end describes itself (Rust DerivedWorkload)
		r.dstW, r.dstID = nil, identity.Identity{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	pl, err = p.resolve(ctx, r, pl, dst)
	var up halfConn
	if err == nil {
		r.dst, r.hboneAddr = pl.Dial, pl.Authority
		up, err = p.connect(ctx, r.srcW, r.src, pl)
	}
	cancel()
	if err != nil {
		p.refuseOutbound(c, r, connected, err)
		return
	}
	connected(nil)
	if st := streamOf(up); st != nil && r.dstW == nil && !p.deps.NoBaggage {
		r.baggage = st.ResponseBaggage()
	}
	if t, ok := up.(*innerTunnel); ok {
		r.dstID = t.peer
	}
	lc.carry(up)
	p.show(lc, r)
	mc := p.deps.Traffic.Open(r.labels())
	sent, recv, err := pipe(c, up, mc, p.deps.Timeouts)
	mc.Close(endFlags(r, err, up))
	p.complete(r, sent, recv, err)
}

// refuseOutbound ends a routed connection that could not be carried: counted with its
// response flag, logged, and reset so the app sees "connection reset by peer", as with
// Rust. It counts before it answers, so the metric is there by the time the client
// knows.
func (p *Proxy) refuseOutbound(c *net.TCPConn, r *record, connected func(error), err error) {
	p.failed(r, outboundFlag(err), err)
	connected(err)
	reset(c)
}

// refuseEarly ends a connection refused before it had a route (unknown source, no
// endpoint, another network's endpoint): logged only, as Rust's log_early_deny.
func (p *Proxy) refuseEarly(c *net.TCPConn, r *record, connected func(error), err error) {
	p.earlyDeny(r, err)
	connected(err)
	reset(c)
}

func outboundFlag(err error) string {
	var se *hbone.StatusError
	switch {
	case errors.As(err, &se) && se.Code == 401:
		return "DENY"
	case errors.Is(err, crl.ErrRevoked):
		return "CERT_REVOKED"
	case errors.Is(err, errTLSHandshake):
		return "TLS_FAILURE"
	case errors.Is(err, errH2Handshake):
		return "H2_HANDSHAKE_FAILURE"
	case errors.Is(err, errIdentity):
		return "IDENTITY_ERROR"
	case errors.Is(err, errNetworkPolicy):
		return "NETWORK_POLICY"
	}
	return "CONNECT"
}

var (
	errUnknownSource = errors.New("unknown source workload")
	errTLSHandshake  = errors.New("TLS handshake")
	errH2Handshake   = errors.New("HTTP/2 handshake")
	errIdentity      = errors.New("identity")
	// errNetworkPolicy is a peer's HBONE port that never answered: Rust's
	// MaybeHBONENetworkPolicyError, as a NetworkPolicy dropping 15008 looks.
	errNetworkPolicy = errors.New("HBONE port unreachable (a network policy may drop it)")
)

// connect reaches the plan's destination: plain TCP, an HBONE stream pooled per
// source identity, expected identities, peer and source IP, or (double HBONE) a
// tunnel inside such a stream to a gateway.
func (p *Proxy) connect(ctx context.Context, srcW *state.Workload, src netip.AddrPort, pl route.Plan) (halfConn, error) {
	if !pl.HBONE() {
		c, err := p.deps.Sockets.Dial(ctx, src.Addr(), pl.Dial)
		if err != nil {
			return nil, err
		}
		return c.(*net.TCPConn), nil
	}
	srcID := route.WorkloadID(srcW)
	cert, err := p.deps.Certs.Get(ctx, srcID)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate for %s: %w", errIdentity, srcID, err)
	}
	req := &hbone.Request{Authority: pl.Authority, Forwarded: hbone.ForwardedFor(src, pl.ServiceHost),
		Baggage: baggage(srcW), Traceparent: hbone.NewTraceparent()}
	st, err := p.pooled(ctx, cert, src, pl.Expected, pl.Dial, req)
	if err != nil || pl.Kind != route.DoubleHBONE {
		return st, err
	}
	return p.inner(ctx, st, cert, pl, req)
}

// pooled opens a CONNECT stream to dial, on a pooled connection proving one of expected.
func (p *Proxy) pooled(ctx context.Context, cert *identity.Cert, src netip.AddrPort, expected []identity.Identity,
	dial netip.AddrPort, req *hbone.Request) (*hbone.Stream, error) {
	key := pool.NewKey(cert.ID, expected, dial, src.Addr())
	return p.pool.Connect(ctx, key, req, func(ctx context.Context) (*hbone.Conn, error) {
		nc, err := p.deps.Sockets.Dial(ctx, src.Addr(), dial)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, fmt.Errorf("%w: %s: %w", errNetworkPolicy, dial, err)
			}
			return nil, err
		}
		hc, _, err := p.handshake(ctx, mtls.NewTransport(nc), cert, expected, addrPort(nc.RemoteAddr()))
		if err != nil {
			nc.Close()
		}
		return hc, err
	})
}

// handshake is the client side of HBONE over nc: mTLS proving cert and checking the
// peer is one of expected, then HTTP/2; the connection's peer, whose identity it
// returns, is then watched for revocation.
func (p *Proxy) handshake(ctx context.Context, nc net.Conn, cert *identity.Cert, expected []identity.Identity,
	peer netip.AddrPort) (*hbone.Conn, identity.Identity, error) {
	gen := p.deps.CRL.Generation()
	tc := tls.Client(nc, mtls.ClientConfig(p.deps.TLS, cert, expected))
	if err := mtls.Handshake(ctx, tc, p.deps.Timeouts.Handshake); err != nil {
		if errors.Is(err, crl.ErrRevoked) {
			p.deps.CRL.Rejected("source")
		}
		return nil, identity.Identity{}, fmt.Errorf("%w with %s: %w", errTLSHandshake, peer, err)
	}
	hc, err := hbone.NewClientConn(tc, p.settingsFor(peer))
	if err != nil {
		return nil, identity.Identity{}, fmt.Errorf("%w with %s: %w", errH2Handshake, peer, err)
	}
	p.trackRevocation(gen, tc.ConnectionState(), cert.RootPool(), x509.ExtKeyUsageServerAuth, hc)
	id, _ := mtls.PeerIdentity(tc.ConnectionState())
	return hc, id, nil
}

// baggage describes the source workload to the destination's telemetry.
func baggage(w *state.Workload) string {
	kind := strings.ToLower(w.WorkloadType.String())
	return hbone.Baggage(
		hbone.BaggageItem{Key: "k8s.cluster.name", Value: w.ClusterId},
		hbone.BaggageItem{Key: "k8s.namespace.name", Value: w.Namespace},
		hbone.BaggageItem{Key: "k8s." + kind + ".name", Value: w.WorkloadName},
		hbone.BaggageItem{Key: "service.name", Value: w.CanonicalName},
		hbone.BaggageItem{Key: "service.version", Value: w.CanonicalRevision},
		hbone.BaggageItem{Key: "cloud.region", Value: w.GetLocality().GetRegion()},
		hbone.BaggageItem{Key: "cloud.availability_zone", Value: w.GetLocality().GetZone()},
	)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// isLocal reports whether dst is the address c arrived on (no redirect happened).
func isLocal(c net.Conn, dst netip.AddrPort) bool {
	return addrPort(c.LocalAddr()) == dst
}
