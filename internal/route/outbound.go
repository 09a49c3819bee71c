package route

import (
	"errors"
	"fmt"
	"net/netip"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Kind is how an outbound connection travels.
type Kind int

const (
	// Passthrough is plain TCP to an address the mesh does not know (or does not show
	// this client), or to a PASSTHROUGH service's VIP.
	Passthrough Kind = iota
	// Direct is plain TCP to a known workload that does not speak HBONE.
	Direct
	// Tunnel is HBONE to the destination workload's ztunnel.
	Tunnel
	// Waypoint is HBONE to the destination's waypoint, with the original destination
	// as the CONNECT authority: the waypoint applies L7 policy and picks the endpoint.
	Waypoint
	// DoubleHBONE is HBONE to another network's east-west gateway carrying a second,
	// end-to-end HBONE tunnel to the destination (or its waypoint) there.
	DoubleHBONE
)

func (k Kind) String() string {
	return [...]string{"passthrough", "direct", "tunnel", "waypoint", "double-hbone"}[k]
}

// Plan is where one outbound connection goes.
type Plan struct {
	Kind      Kind
	Dial      netip.AddrPort // the app (TCP) or the peer's HBONE port
	Authority string         // the CONNECT authority, when tunnelled
	// Expected are the identities the peer may prove: the workload's, then those its
	// service allows; for DoubleHBONE, the gateway's.
	Expected []identity.Identity
	// Inner, for DoubleHBONE, are those the far end of the inner tunnel may prove.
	Inner       []identity.Identity
	Gateway     *state.Workload // the east-west gateway dialed, for DoubleHBONE
	ServiceHost string          // the service the client addressed, for forwarded;host=
	Service     *state.Service  // that service, for telemetry
	Dst         *state.Workload // the workload dialed, when known
	// Resolve is the hostname of a workload known by name only (a ServiceEntry with
	// DNS resolution): the proxy resolves it when it connects (Rust
	// resolve_on_demand_dns) and dials Resolved(ip). Dial's address is not valid then.
	Resolve string
	appPort uint16 // the app's port, for Resolved
	// Why, when the Router explains, are the decisions taken, in order.
	Why []string
}

// HBONE reports a plan carried in an HBONE tunnel.
func (p Plan) HBONE() bool { return p.Kind == Tunnel || p.Kind == Waypoint || p.Kind == DoubleHBONE }

// Resolved is the plan once its hostname resolved to ip: the same ports, that address.
func (p Plan) Resolved(ip netip.Addr) Plan {
	if p.Kind == Tunnel {
		p.Authority = netip.AddrPortFrom(ip, p.appPort).String()
	}
	p.Dial = netip.AddrPortFrom(ip, p.Dial.Port())
	p.Resolve = ""
	return p
}

var (
	// ErrNoEndpoint refuses a connection to a service with no endpoint that can take it
	// (Rust NoHealthyUpstream).
	ErrNoEndpoint = errors.New("no healthy endpoint")
	// ErrOtherNetwork refuses an endpoint on another network: its pod IP is never
	// dialled, only its network gateway could reach it.
	ErrOtherNetwork = errors.New("destination is on another network")
)

// Outbound is Rust Outbound::build_request: where dst goes for workload src calling
// from srcIP. A VIP visible to src's namespace is its service's: its waypoint (a
// weighted one sampled), a PASSTHROUGH to the VIP, or an endpoint by load_balance. A
// pod IP is its workload's: its waypoint unless src is that waypoint, else HBONE or
// TCP. Anything else passes through. An error is a refusal, naming why; with OnDemand
// a *Missing asks for a resource first.
func (r Router) Outbound(snap *state.Snapshot, src *state.Workload, srcIP netip.Addr, dst netip.AddrPort) (Plan, error) {
	e := r.explainer()
	network := src.Network
	if svc := snap.ServiceByVIP(network, dst.Addr(), src.Namespace); svc != nil {
		if e != nil {
			e.add("%s is a VIP of service %s (visible to namespace %s)", dst.Addr(), svc.Key, src.Namespace)
		}
		pl, err := r.toService(snap, src, svc, dst, e)
		pl.Why = e.list()
		return pl, err
	}
	if w := snap.WorkloadByAddr(network, dst.Addr()); w != nil {
		if e != nil {
			e.add("%s is workload %s", dst.Addr(), w.Uid)
		}
		pl, err := r.toAddressed(snap, src, srcIP, w, dst, e)
		pl.Why = e.list()
		return pl, err
	}
	if pl, ok, err := r.remoteByAddr(snap, src, dst, e); ok {
		pl.Why = e.list()
		return pl, err
	}
	e.hidden(snap, network, dst.Addr(), src.Namespace)
	if e != nil {
		e.add("passthrough: %s is unknown to the mesh", dst.Addr())
	}
	return r.miss(network+"/"+dst.Addr().String(), Plan{Kind: Passthrough, Dial: dst, Why: e.list()}, nil)
}

// toService routes a service-addressed connection.
func (r Router) toService(snap *state.Snapshot, src *state.Workload, svc *state.Service, dst netip.AddrPort, e *explainer) (Plan, error) {
	if gw := r.serviceWaypoint(svc, e); gw != nil && !r.isWaypoint(snap, src, gw) {
		pl, err := r.viaWaypoint(snap, src, gw, svc, dst, e)
		pl.Service = svc
		return pl, err
	}
	if svc.LoadBalancing.GetMode() == workloadapi.LoadBalancing_PASSTHROUGH {
		if e != nil {
			e.add("passthrough: the service's load balancing is PASSTHROUGH")
		}
		return Plan{Kind: Passthrough, Dial: dst}, nil
	}
	w, port, err := r.loadBalance(snap, src, svc, dst.Port(), standard)
	if err != nil {
		return Plan{}, fmt.Errorf("service %s: %w", svc.Hostname, err)
	}
	if e != nil {
		e.add("endpoint %s chosen (load balancing %s), target port %d", w.Uid, lbMode(svc), port)
	}
	if w.Network != src.Network {
		err := remoteHBONE(w)
		var pl Plan
		if err == nil {
			pl, err = r.throughGateway(snap, src, w, hostAuthority(svc, dst.Port()), sans(svc), dst, e)
		}
		if err != nil {
			return Plan{}, fmt.Errorf("service %s: %w", svc.Hostname, err)
		}
		pl.ServiceHost, pl.Service = svc.Hostname, svc
		return pl, nil
	}
	pl, err := r.toWorkload(w, src, port, dst.Addr(), svc.IpFamilies, sans(svc), e)
	if err != nil {
		return Plan{}, fmt.Errorf("service %s: %w", svc.Hostname, err)
	}
	pl.ServiceHost, pl.Service = svc.Hostname, svc
	return pl, nil
}

// toAddressed routes a connection to a pod IP: through the workload's waypoint unless
// src is that waypoint (Rust check_from_waypoint), else to the workload.
func (r Router) toAddressed(snap *state.Snapshot, src *state.Workload, srcIP netip.Addr, w *state.Workload, dst netip.AddrPort, e *explainer) (Plan, error) {
	if w.Waypoint != nil {
		from, err := r.fromWaypoint(snap, w.Waypoint, WorkloadID(src), srcIP)
		if err != nil {
			return Plan{}, err
		}
		if !from {
			return r.viaWaypoint(snap, src, w.Waypoint, nil, dst, e)
		}
		if e != nil {
			e.add("the source is the workload's waypoint: sent on, not back to it")
		}
	}
	return r.toWorkload(w, src, dst.Port(), dst.Addr(), workloadapi.IPFamilies_AUTOMATIC, nil, e)
}

// toWorkload reaches w on port: HBONE to its ztunnel when it speaks HBONE, else TCP,
// on the address pickAddress chooses; a hostname-only workload is left to resolve.
func (r Router) toWorkload(w, src *state.Workload, port uint16, target netip.Addr, families workloadapi.IPFamilies, extraIDs []identity.Identity, e *explainer) (Plan, error) {
	if w.Network != src.Network { // only a service crosses networks (Rust NoService)
		return Plan{}, fmt.Errorf("%w: %s is on network %q and was not addressed by service", ErrOtherNetwork, w.Uid, w.Network)
	}
	ip, ok := pickAddress(w, target, families)
	resolve := ""
	switch {
	case ok:
		if e != nil {
			e.add("address %s of %v (asked %s, families %s)", ip, w.IPs, target, families)
		}
	case w.Hostname != "":
		resolve = w.Hostname
		if e != nil {
			e.add("%s has no address: its hostname %s is resolved at connect time", w.Uid, w.Hostname)
		}
	default:
		return Plan{}, fmt.Errorf("%w: %s has %v, families %s", ErrNoAddress, w.Uid, w.IPs, families)
	}
	app, authority := netip.AddrPortFrom(ip, port), ""
	if ok {
		authority = app.String()
	}
	if w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE {
		if e != nil {
			e.add("plain TCP: %s does not speak HBONE", w.Uid)
		}
		return Plan{Kind: Direct, Dial: app, Dst: w, Resolve: resolve, appPort: port}, nil
	}
	if e != nil {
		e.add("HBONE to %s's ztunnel on port %d", w.Uid, r.hbonePort())
	}
	return Plan{Kind: Tunnel, Dial: netip.AddrPortFrom(ip, r.hbonePort()), Authority: authority,
		Expected: append([]identity.Identity{WorkloadID(w)}, extraIDs...), Dst: w, Resolve: resolve, appPort: port}, nil
}

func lbMode(svc *state.Service) string {
	if svc.LoadBalancing == nil {
		return "default"
	}
	return svc.LoadBalancing.Mode.String()
}

func gatewayString(g *workloadapi.GatewayAddress) string {
	if h := g.GetHostname(); h != nil {
		return fmt.Sprintf("%s/%s:%d", h.Namespace, h.Hostname, g.HboneMtlsPort)
	}
	ip, _ := netip.AddrFromSlice(g.GetAddress().GetAddress())
	return fmt.Sprintf("%s/%s:%d", g.GetAddress().GetNetwork(), ip, g.HboneMtlsPort)
}
