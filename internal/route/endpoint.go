package route

import (
	"errors"
	"fmt"
	"net/netip"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// candidate is an endpoint that can take the connection.
type candidate struct {
	w      *state.Workload
	port   uint32
	weight uint32
	rank   int
}

// resolution is Rust's ServiceResolutionMode: a service addressed by a client needs
// the port on the service; a waypoint's service is looked up by its HBONE port, which
// an endpoint with an application tunnel need not declare.
type resolution int

const (
	standard resolution = iota
	forWaypoint
)

// loadBalance is Rust ProxyState::load_balance followed by find_upstream_from_service's
// port choice: the endpoints that can take svcPort, narrowed by the service's routing
// preferences, chosen by capacity. ErrNoEndpoint when none can.
func (r Router) loadBalance(snap *state.Snapshot, src *state.Workload, svc *state.Service, svcPort uint16, mode resolution) (*state.Workload, uint16, error) {
	_, onService := servicePort(svc, svcPort)
	if mode == standard && !onService {
		return nil, 0, fmt.Errorf("%w: port %d is not a port of the service", ErrNoEndpoint, svcPort)
	}
	lb := svc.LoadBalancing
	ranked := lb.GetMode() == workloadapi.LoadBalancing_STRICT || lb.GetMode() == workloadapi.LoadBalancing_FAILOVER
	var cands []candidate
	best := -1
	for _, ep := range svc.Endpoints {
		c, ok := candidateFor(snap, src, svc, ep, svcPort, mode)
		if !ok {
			continue
		}
		if ranked {
			var all bool
			c.rank, all = rank(lb.GetRoutingPreference(), src, c.w)
			if lb.GetMode() == workloadapi.LoadBalancing_STRICT && !all {
				continue
			}
			best = max(best, c.rank)
		}
		cands = append(cands, c)
	}
	if ranked {
		kept := cands[:0]
		for _, c := range cands {
			if c.rank == best {
				kept = append(kept, c)
			}
		}
		cands = kept
	}
	c, ok := r.weighted(cands)
	if !ok {
		return nil, 0, ErrNoEndpoint
	}
	return c.w, uint16(c.port), nil
}

// servicePort is the service's target for port, and whether the service has the port.
func servicePort(svc *state.Service, port uint16) (uint32, bool) {
	for _, p := range svc.Ports {
		if p.ServicePort == uint32(port) {
			return p.TargetPort, true
		}
	}
	return 0, false
}

// candidateFor is load_balance's filter and find_upstream_from_service's target port:
// the endpoint's mapping, else the service's, else (application tunnel with a port)
// the service port itself. A workload without any address is reachable only through
// its network gateway from another network.
func candidateFor(snap *state.Snapshot, src *state.Workload, svc *state.Service, ep *state.Endpoint, svcPort uint16, mode resolution) (candidate, bool) {
	w := snap.WorkloadByUID(ep.WorkloadUID)
	if w == nil || w.CapacityOrDefault() == 0 {
		return candidate{}, false
	}
	if len(w.IPs) == 0 && w.Hostname == "" && (w.Network == src.Network || w.NetworkGateway == nil) {
		return candidate{}, false
	}
	svcTarget, onService := servicePort(svc, svcPort)
	epTarget, onEndpoint := ep.Ports[uint32(svcPort)]
	tunnel := w.ApplicationTunnel
	switch {
	case mode == standard && svcTarget == 0 && !onEndpoint:
		return candidate{}, false // a named port this endpoint does not expose
	case mode == forWaypoint && !onService && tunnel == nil:
		return candidate{}, false
	}
	var target uint32
	switch {
	case onEndpoint && epTarget != 0:
		target = epTarget
	case svcTarget != 0:
		target = svcTarget
	case tunnel != nil && tunnel.Port != 0:
		target = uint32(svcPort)
	default:
		return candidate{}, false
	}
	return candidate{w: w, port: target, weight: w.CapacityOrDefault()}, true
}

func (r Router) weighted(cands []candidate) (candidate, bool) {
	var total uint64
	for _, c := range cands {
		total += uint64(c.weight)
	}
	if total == 0 {
		return candidate{}, false
	}
	n := r.random(total)
	for _, c := range cands {
		if n < uint64(c.weight) {
			return c, true
		}
		n -= uint64(c.weight)
	}
	return cands[len(cands)-1], true
}

// rank is load_balance's rank of w for src: the routing-preference scopes matched in
// order until the first miss, and whether all matched. When NETWORK comes first it is
// preferred, not required: an endpoint on another network is ranked by the other
// scopes, and one on the client's network is lifted above every such endpoint.
func rank(scopes []workloadapi.LoadBalancing_Scope, src, w *state.Workload) (int, bool) {
	networkPreferred := len(scopes) > 0 && scopes[0] == workloadapi.LoadBalancing_NETWORK
	n, adjust := 0, 0
	for _, s := range scopes {
		if s == workloadapi.LoadBalancing_NETWORK && networkPreferred {
			if src.Network != w.Network {
				continue
			}
			adjust = len(scopes) - 1
		}
		if !sameScope(s, src, w) {
			break
		}
		n++
	}
	return n + adjust, n == len(scopes)
}

func sameScope(s workloadapi.LoadBalancing_Scope, a, b *state.Workload) bool {
	la, lb := a.GetLocality(), b.GetLocality()
	switch s {
	case workloadapi.LoadBalancing_REGION:
		return la.GetRegion() == lb.GetRegion()
	case workloadapi.LoadBalancing_ZONE:
		return la.GetZone() == lb.GetZone()
	case workloadapi.LoadBalancing_SUBZONE:
		return la.GetSubzone() == lb.GetSubzone()
	case workloadapi.LoadBalancing_NODE:
		return a.Node == b.Node
	case workloadapi.LoadBalancing_CLUSTER:
		return a.ClusterId == b.ClusterId
	case workloadapi.LoadBalancing_NETWORK:
		return a.Network == b.Network
	}
	return false
}

// ErrNoAddress refuses a workload that has no address to dial: none of the family the
// service allows, and no hostname to resolve or gateway to go through.
var ErrNoAddress = errors.New("no suitable workload address")

// pickAddress is Rust pick_workload_destination_or_resolve without the I/O: the IP the
// client asked for when it is one of w's; else the first of the family of target that
// families allows, else the first allowed. ok is false when none fits: the caller
// resolves w's hostname, goes through its gateway, or refuses.
func pickAddress(w *state.Workload, target netip.Addr, families workloadapi.IPFamilies) (netip.Addr, bool) {
	target = target.Unmap()
	var first netip.Addr
	for _, ip := range w.IPs {
		if ip == target {
			return ip, true
		}
	}
	for _, ip := range w.IPs {
		if !familyAccepts(families, ip) {
			continue
		}
		if ip.Is6() == target.Is6() {
			return ip, true
		}
		if !first.IsValid() {
			first = ip
		}
	}
	return first, first.IsValid()
}

// familyAccepts is Rust IpFamily::accepts_ip; AUTOMATIC (and DUAL) accept both.
func familyAccepts(f workloadapi.IPFamilies, ip netip.Addr) bool {
	switch f {
	case workloadapi.IPFamilies_IPV4_ONLY:
		return ip.Is4()
	case workloadapi.IPFamilies_IPV6_ONLY:
		return ip.Is6()
	}
	return true
}
