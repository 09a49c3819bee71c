package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Kind is how an outbound connection travels.
type Kind int

const (
	// Passthrough is plain TCP to an address the mesh does not know, or to a
	// PASSTHROUGH service's VIP.
	Passthrough Kind = iota
	// Direct is plain TCP to a known workload that does not speak HBONE.
	Direct
	// Tunnel is HBONE to the destination workload's ztunnel.
	Tunnel
	// Waypoint is HBONE to the destination's waypoint, with the original destination
	// as the CONNECT authority: the waypoint applies L7 policy and picks the endpoint.
	Waypoint
)

func (k Kind) String() string {
	return [...]string{"passthrough", "direct", "tunnel", "waypoint"}[k]
}

// Plan is where one outbound connection goes.
type Plan struct {
	Kind      Kind
	Dial      netip.AddrPort // the app (TCP) or the peer's HBONE port
	Authority string         // the CONNECT authority, when tunnelled
	// Expected are the identities the peer may prove: the workload's, then those its
	// service allows.
	Expected    []identity.Identity
	ServiceHost string          // the service the client addressed, for forwarded;host=
	Service     *state.Service  // that service, for telemetry
	Dst         *state.Workload // the workload dialed, when known
}

// HBONE reports a plan carried in an HBONE tunnel.
func (p Plan) HBONE() bool { return p.Kind == Tunnel || p.Kind == Waypoint }

// ErrNoEndpoint refuses a connection to a service with no endpoint that can take it.
var ErrNoEndpoint = errors.New("no healthy endpoint")

// Outbound decides where dst goes for src: a service VIP is load-balanced over its
// endpoints (or sent to its waypoint), a mesh workload gets HBONE (or its waypoint),
// a non-HBONE workload or an address unknown to the mesh gets plain TCP. An error is
// a refusal, naming why.
func (r Router) Outbound(snap *state.Snapshot, src *state.Workload, dst netip.AddrPort) (Plan, error) {
	network := src.Network
	if svc := snap.ServiceByVIP(network, dst.Addr()); svc != nil {
		if svc.Waypoint != nil && !isWaypoint(snap, src, svc.Waypoint) {
			pl, err := r.viaWaypoint(snap, src, svc.Waypoint, dst)
			pl.Service = svc
			return pl, err
		}
		if svc.LoadBalancing.GetMode() == workloadapi.LoadBalancing_PASSTHROUGH {
			return Plan{Kind: Passthrough, Dial: dst}, nil
		}
		w, port, err := pickEndpoint(snap, svc, src, dst.Port())
		if err != nil {
			return Plan{}, fmt.Errorf("service %s: %w", svc.Hostname, err)
		}
		pl := r.toWorkload(w, port, sans(svc))
		pl.ServiceHost, pl.Service = svc.Hostname, svc
		return pl, nil
	}
	w := snap.WorkloadByAddr(network, dst.Addr())
	if w == nil {
		return Plan{Kind: Passthrough, Dial: dst}, nil
	}
	if w.Waypoint != nil && !isWaypoint(snap, src, w.Waypoint) {
		return r.viaWaypoint(snap, src, w.Waypoint, dst)
	}
	return r.toWorkload(w, dst.Port(), nil), nil
}

// toWorkload reaches w on port: HBONE to its ztunnel when it speaks HBONE, else TCP.
func (r Router) toWorkload(w *state.Workload, port uint16, extraIDs []identity.Identity) Plan {
	ip := w.IPs[0]
	target := netip.AddrPortFrom(ip, port)
	if w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE {
		return Plan{Kind: Direct, Dial: target, Dst: w}
	}
	return Plan{Kind: Tunnel, Dial: netip.AddrPortFrom(ip, r.hbonePort()), Authority: target.String(),
		Expected: append([]identity.Identity{WorkloadID(w)}, extraIDs...), Dst: w}
}

func (r Router) viaWaypoint(snap *state.Snapshot, src *state.Workload, gw *workloadapi.GatewayAddress, dst netip.AddrPort) (Plan, error) {
	w, extra, err := waypointWorkload(snap, src, gw)
	if err != nil {
		return Plan{}, fmt.Errorf("waypoint: %w", err)
	}
	port := uint16(gw.HboneMtlsPort)
	if port == 0 {
		port = r.hbonePort()
	}
	return Plan{Kind: Waypoint, Dial: netip.AddrPortFrom(w.IPs[0], port), Authority: dst.String(),
		Expected: append([]identity.Identity{WorkloadID(w)}, extra...), Dst: w}, nil
}

// waypointWorkload finds the workload serving as waypoint gw, and the identities its
// service allows besides the workload's own.
func waypointWorkload(snap *state.Snapshot, src *state.Workload, gw *workloadapi.GatewayAddress) (*state.Workload, []identity.Identity, error) {
	var svc *state.Service
	if a := gw.GetAddress(); a != nil {
		ip, _ := netip.AddrFromSlice(a.Address)
		if w := snap.WorkloadByAddr(a.Network, ip); w != nil {
			return w, nil, nil
		}
		svc = snap.ServiceByVIP(a.Network, ip)
	} else if h := gw.GetHostname(); h != nil {
		svc = snap.ServiceByKey(h.Namespace + "/" + h.Hostname)
	}
	if svc == nil {
		return nil, nil, fmt.Errorf("%v not found", gw)
	}
	w, _, err := pickEndpoint(snap, svc, src, 0)
	return w, sans(svc), err
}

// isWaypoint reports whether src is the waypoint gw itself: its own egress must not be
// sent back to it.
func isWaypoint(snap *state.Snapshot, src *state.Workload, gw *workloadapi.GatewayAddress) bool {
	if a := gw.GetAddress(); a != nil {
		ip, _ := netip.AddrFromSlice(a.Address)
		if slices.Contains(src.IPs, ip) {
			return true
		}
		svc := snap.ServiceByVIP(a.Network, ip)
		return svc != nil && svc.Endpoint(src.Uid) != nil
	}
	if h := gw.GetHostname(); h != nil {
		svc := snap.ServiceByKey(h.Namespace + "/" + h.Hostname)
		return svc != nil && svc.Endpoint(src.Uid) != nil
	}
	return false
}
