package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// ErrGatewayLoop refuses a network gateway that could itself be reached only through
// another gateway: double HBONE nests once, and chaining gateways could circle.
var ErrGatewayLoop = errors.New("network gateway behind another gateway")

// throughGateway is Rust build_request_through_gateway: next, the endpoint or waypoint
// picked on another network, is reached by an outer HBONE CONNECT to its network's
// east-west gateway (pooled, proving the gateway's identities), carrying an inner one,
// mTLS end to end, to whichever workload the gateway forwards to. Both carry
// authority: a service's hostname:port, as the gateway routes on it without opening
// the inner tunnel. inner are the identities the far end may prove; with none, the
// far end could not be verified and the connection is refused here (Rust would fail
// the inner handshake).
func (r Router) throughGateway(snap *state.Snapshot, src, next *state.Workload, authority string, inner []identity.Identity, dst netip.AddrPort, e *explainer) (Plan, error) {
	gw := next.NetworkGateway
	if gw == nil {
		return Plan{}, fmt.Errorf("%w: %s is on network %q and has no network gateway", ErrOtherNetwork, next.Uid, next.Network)
	}
	if len(inner) == 0 {
		return Plan{}, fmt.Errorf("%w: %s is behind gateway %s, but no identity is known for the far end of the tunnel (the service has no subject_alt_names)",
			ErrOtherNetwork, next.Uid, gatewayString(gw))
	}
	gwW, gwSvc, port, key, err := r.networkGateway(snap, src, next)
	if err != nil {
		return r.miss(key, Plan{}, err)
	}
	if gwW.NetworkGateway != nil {
		return Plan{}, fmt.Errorf("%w: gateway %s of %s is itself behind %s", ErrGatewayLoop, gwW.Uid, next.Uid, gatewayString(gwW.NetworkGateway))
	}
	ip, ok := pickAddress(gwW, gatewayIP(gw, dst.Addr()), 0)
	if !ok {
		return Plan{}, fmt.Errorf("%w: network gateway %s has no address", ErrNoAddress, gwW.Uid)
	}
	if e != nil {
		e.add("%s is on network %q: double HBONE through gateway %s (%s:%d), inner identities %v", next.Uid, next.Network, gwW.Uid, ip, port, inner)
	}
	outer := []identity.Identity{WorkloadID(gwW)}
	if gwSvc != nil {
		outer = append(sans(gwSvc), outer...)
	}
	return Plan{Kind: DoubleHBONE, Dial: netip.AddrPortFrom(ip, port), Authority: authority, Expected: outer,
		Inner: inner, Dst: next, Gateway: gwW}, nil
}

// remoteHBONE refuses an endpoint behind a gateway that does not speak HBONE: the
// gateway forwards the inner tunnel only to a ztunnel's HBONE port (15008), never to
// an app port, so such a workload is unreachable from here (beyond Rust, which would
// send it and fail at the far end; istiod's split-horizon workloads are all HBONE).
func remoteHBONE(w *state.Workload) error {
	if w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE {
		return fmt.Errorf("%w: %s on network %q does not speak HBONE, and a gateway forwards only to HBONE (port 15008)",
			ErrOtherNetwork, w.Uid, w.Network)
	}
	return nil
}

// networkGateway is Rust fetch_network_gateway: by address, the workload there or the
// service of that VIP load-balanced on the HBONE port; by hostname, that service or a
// workload of that name. svc, when the gateway is a service, names the SANs it may
// also prove; key names it on demand when it is not known.
func (r Router) networkGateway(snap *state.Snapshot, src, next *state.Workload) (w *state.Workload, svc *state.Service, port uint16, key string, err error) {
	gw := next.NetworkGateway
	port = uint16(gw.HboneMtlsPort)
	if port == 0 {
		port = r.hbonePort()
	}
	w, svc, key = gatewayTarget(snap, gw)
	switch {
	case svc != nil:
		if w, port, err = r.loadBalance(snap, src, svc, port, standard); err != nil {
			return nil, nil, 0, "", fmt.Errorf("network gateway %s: %w", svc.Hostname, err)
		}
	case w == nil:
		return nil, nil, 0, key, fmt.Errorf("%w: network gateway %s of %s not found", ErrOtherNetwork, gatewayString(gw), next.Uid)
	}
	return w, svc, port, "", nil
}

// gatewayIP is the address family to prefer for a gateway: the one it is named by,
// else the original destination's (a hostname adapts to the caller, as in Rust).
func gatewayIP(gw *workloadapi.GatewayAddress, dst netip.Addr) netip.Addr {
	if a := gw.GetAddress(); a != nil {
		if ip, ok := netip.AddrFromSlice(a.Address); ok {
			return ip
		}
	}
	return dst
}

// remoteByAddr routes a pod IP unknown on src's network that exactly one workload
// behind a network gateway holds (beyond Rust, whose remote workloads are reachable by
// service only): the authority is the pod's address, which the gateway routes on its
// own network, and the far end must prove that workload's identity. Overlapping pod
// IPs on several networks are refused, never guessed.
func (r Router) remoteByAddr(snap *state.Snapshot, src *state.Workload, dst netip.AddrPort, e *explainer) (Plan, bool, error) {
	ws := snap.RemoteWorkloadsByAddr(src.Network, dst.Addr())
	switch len(ws) {
	case 0:
		return Plan{}, false, nil
	case 1:
	default:
		return Plan{}, true, fmt.Errorf("%w: %s is a workload on %d networks (%s, %s, ...): ambiguous", ErrOtherNetwork, dst.Addr(), len(ws), ws[0].Network, ws[1].Network)
	}
	w := ws[0]
	if e != nil {
		e.add("%s is workload %s on network %q", dst.Addr(), w.Uid, w.Network)
	}
	if w.Waypoint != nil {
		return Plan{}, true, fmt.Errorf("%w: %s has a waypoint: across networks it is reached by service only", ErrOtherNetwork, w.Uid)
	}
	if err := remoteHBONE(w); err != nil {
		return Plan{}, true, err
	}
	pl, err := r.throughGateway(snap, src, w, dst.String(), []identity.Identity{WorkloadID(w)}, dst, e)
	return pl, true, err
}

// hostAuthority is a service's hostname:port, the authority of double HBONE.
func hostAuthority(svc *state.Service, port uint16) string {
	return net.JoinHostPort(svc.Hostname, strconv.Itoa(int(port)))
}
