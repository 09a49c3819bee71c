package ztest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// EastWestGateway is a fake of Istio's ambient east-west gateway (an Envoy, another
// system): it terminates the outer HBONE tunnel of double HBONE with the gateway's own
// certificate and forwards the inner tunnel, unopened, to port 15008 of a workload of
// its network, as istiod configures the real one (pilot's buildForwardInnerConnect:
// original-destination with port override 15008). It routes a service's
// hostname:port to one of its endpoints there, and an ip:port to that workload. It
// only ever opens port 15008 of a workload that speaks HBONE, so nothing reaches an
// app port unencrypted through it, and it never forwards to another gateway.
type EastWestGateway struct {
	GatewayOptions

	mu        sync.Mutex // guards the fields below
	forwarded []Forward
	next      int                   // round-robin over a service's endpoints
	open      map[net.Conn]struct{} // closed when the test ends: pooled clients linger
	accepted  int
}

// Forward is one CONNECT the gateway took: its authority and where it sent the bytes,
// or why it refused (HTTP status and reason).
type Forward struct {
	Authority string
	To        netip.AddrPort
	Status    int
	Reason    string
	// ForwardedNetwork is the outer CONNECT's x-forwarded-network: it belongs to the
	// inner one only.
	ForwardedNetwork *string
}

// GatewayOptions are what a gateway is: its network, what it knows of it, how it
// reaches it, and who it is.
type GatewayOptions struct {
	Network string
	State   *state.Store // what istiod tells the gateway about its network
	// Dial reaches the network (from the gateway's namespace, in the netns bed).
	Dial func(addr string) (net.Conn, error)
	// Cert is the gateway's own; peers must chain to its roots (any identity of the
	// trust domain: the real gateway leaves authorization to the far end).
	Cert *identity.Cert
	// HBONEPort is the far ztunnels' HBONE port; 0 is 15008.
	HBONEPort uint16
}

// ServeEastWestGateway serves l until the test ends.
func ServeEastWestGateway(t testing.TB, l net.Listener, o GatewayOptions) *EastWestGateway {
	g := &EastWestGateway{GatewayOptions: o, open: map[net.Conn]struct{}{}}
	if g.HBONEPort == 0 {
		g.HBONEPort = 15008
	}
	cfg := mtls.ServerConfig(nil, func(context.Context, net.Addr) (*identity.Cert, error) { return o.Cert, nil })
	Serve(t, l, func(c net.Conn) {
		g.mu.Lock()
		g.open[c] = struct{}{}
		g.accepted++
		g.mu.Unlock()
		defer func() { g.mu.Lock(); delete(g.open, c); g.mu.Unlock() }()
		tc := tls.Server(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return
		}
		hc, err := hbone.NewServerConn(tc, hbone.Settings{})
		if err != nil {
			return
		}
		hc.Serve(g.serveStream)
	})
	t.Cleanup(func() { // before Serve's own, which joins the handlers
		g.mu.Lock()
		defer g.mu.Unlock()
		for c := range g.open {
			c.Close()
		}
	})
	return g
}

// Accepted is how many connections (outer tunnels' TLS) the gateway has taken.
func (g *EastWestGateway) Accepted() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepted
}

// Forwards lists the CONNECTs taken so far, in order.
func (g *EastWestGateway) Forwards() []Forward {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Forward(nil), g.forwarded...)
}

func (g *EastWestGateway) serveStream(st *hbone.Stream) {
	auth := st.Request().Authority
	to, err := g.route(auth)
	var up net.Conn
	if err == nil {
		up, err = g.Dial(to.String())
	}
	f := Forward{Authority: auth, To: to, Status: http.StatusOK, ForwardedNetwork: st.Request().ForwardedNetwork}
	if err != nil {
		f.Status, f.Reason = http.StatusServiceUnavailable, err.Error()
	}
	g.mu.Lock()
	g.forwarded = append(g.forwarded, f)
	g.mu.Unlock()
	if err != nil {
		st.Respond(f.Status)
		return
	}
	defer up.Close()
	if st.Respond(http.StatusOK) != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(up, st)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(st, up)
	st.CloseWrite()
	<-done
	st.Close()
}

// route is where the gateway sends an authority: an HBONE workload's HBONE port.
func (g *EastWestGateway) route(authority string) (netip.AddrPort, error) {
	a, err := hbone.ParseAuthority(authority)
	if err != nil {
		return netip.AddrPort{}, err
	}
	snap := g.State.Snapshot()
	if !a.IsHostname() {
		return g.hboneOf(snap.WorkloadByAddr(g.Network, a.Addr.Addr()), a.Addr.String())
	}
	svc := snap.ServiceByHost(a.Host, "")
	if svc == nil {
		return netip.AddrPort{}, fmt.Errorf("no service %s on network %q", a.Host, g.Network)
	}
	var eps []*state.Workload
	for _, ep := range svc.Endpoints {
		if w := snap.WorkloadByUID(ep.WorkloadUID); w != nil && w.Network == g.Network && len(w.IPs) > 0 {
			eps = append(eps, w)
		}
	}
	if len(eps) == 0 {
		return netip.AddrPort{}, fmt.Errorf("service %s has no endpoint on network %q", a.Host, g.Network)
	}
	g.mu.Lock()
	w := eps[g.next%len(eps)]
	g.next++
	g.mu.Unlock()
	return g.hboneOf(w, authority)
}

func (g *EastWestGateway) hboneOf(w *state.Workload, what string) (netip.AddrPort, error) {
	switch {
	case w == nil:
		return netip.AddrPort{}, fmt.Errorf("no workload at %s on network %q", what, g.Network)
	case w.NetworkGateway != nil:
		return netip.AddrPort{}, errors.New("the target is behind another gateway: refusing to chain gateways")
	case w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE:
		return netip.AddrPort{}, fmt.Errorf("%s does not speak HBONE: the gateway opens only port 15008", w.Uid)
	}
	return netip.AddrPortFrom(w.IPs[0], g.HBONEPort), nil
}
