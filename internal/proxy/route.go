package proxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// plan is how one outbound connection travels.
type plan struct {
	hbone       bool           // false: plain TCP to dial
	dial        netip.AddrPort // the app (TCP) or the peer's HBONE port
	authority   string         // HBONE :authority
	expected    []identity.Identity
	serviceHost string          // the service the client addressed, for forwarded;host=
	service     *state.Service  // that service, for telemetry
	dst         *state.Workload // the destination workload, when known
	viaWaypoint bool
}

var errNoEndpoint = errors.New("no healthy endpoint")

// workloadID is the identity a workload's certificate proves.
func workloadID(w *state.Workload) identity.Identity {
	return identity.New(w.TrustDomain, w.Namespace, w.ServiceAccount)
}

// resolve decides where dst goes for src: a service VIP is load-balanced over its
// endpoints (or sent to its waypoint), a mesh workload gets HBONE (or its waypoint),
// a non-HBONE workload or an address unknown to the mesh gets plain TCP.
func (p *Proxy) resolve(snap *state.Snapshot, src *state.Workload, dst netip.AddrPort) (plan, error) {
	network := src.Network
	if svc := snap.ServiceByVIP(network, dst.Addr()); svc != nil {
		if svc.Waypoint != nil && !isWaypoint(snap, src, svc.Waypoint) {
			pl, err := p.viaWaypoint(snap, src, svc.Waypoint, dst)
			pl.service = svc
			return pl, err
		}
		if svc.LoadBalancing.GetMode() == workloadapi.LoadBalancing_PASSTHROUGH {
			return plan{dial: dst}, nil
		}
		w, port, err := pickEndpoint(snap, svc, src, dst.Port())
		if err != nil {
			return plan{}, fmt.Errorf("service %s: %w", svc.Hostname, err)
		}
		pl := p.toWorkload(w, port, sans(svc))
		pl.serviceHost, pl.service = svc.Hostname, svc
		return pl, nil
	}
	w := snap.WorkloadByAddr(network, dst.Addr())
	if w == nil {
		return plan{dial: dst}, nil // not in the mesh: passthrough
	}
	if w.Waypoint != nil && !isWaypoint(snap, src, w.Waypoint) {
		return p.viaWaypoint(snap, src, w.Waypoint, dst)
	}
	return p.toWorkload(w, dst.Port(), nil), nil
}

// toWorkload reaches w on port: HBONE to its ztunnel when it speaks HBONE, else TCP.
func (p *Proxy) toWorkload(w *state.Workload, port uint16, extraIDs []identity.Identity) plan {
	ip := w.IPs[0]
	target := netip.AddrPortFrom(ip, port)
	if w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE {
		return plan{dial: target, dst: w}
	}
	return plan{hbone: true, dial: netip.AddrPortFrom(ip, p.hbonePort), authority: target.String(),
		expected: append([]identity.Identity{workloadID(w)}, extraIDs...), dst: w}
}

// viaWaypoint sends the connection to a waypoint, with the original destination as the
// authority: the waypoint applies L7 policy and picks the endpoint itself.
func (p *Proxy) viaWaypoint(snap *state.Snapshot, src *state.Workload, gw *workloadapi.GatewayAddress, dst netip.AddrPort) (plan, error) {
	w, extra, err := waypointWorkload(snap, src, gw)
	if err != nil {
		return plan{}, fmt.Errorf("waypoint: %w", err)
	}
	port := uint16(gw.HboneMtlsPort)
	if port == 0 {
		port = p.hbonePort
	}
	return plan{hbone: true, dial: netip.AddrPortFrom(w.IPs[0], port), authority: dst.String(),
		expected: append([]identity.Identity{workloadID(w)}, extra...), dst: w, viaWaypoint: true}, nil
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

func sans(svc *state.Service) []identity.Identity {
	var out []identity.Identity
	for _, s := range svc.SubjectAltNames {
		if id, err := identity.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// candidate is an endpoint that can take the connection.
type candidate struct {
	w      *state.Workload
	port   uint32
	weight uint32
	rank   int // routing-preference scopes matched, in order
}

// pickEndpoint chooses an endpoint for port (0: any, as for a waypoint) by weight
// (capacity), within the routing preferences: STRICT keeps only endpoints matching every
// scope, FAILOVER the best-matching ones.
func pickEndpoint(snap *state.Snapshot, svc *state.Service, src *state.Workload, port uint16) (*state.Workload, uint16, error) {
	lb := svc.LoadBalancing
	var cands []candidate
	best := 0
	for _, ep := range svc.Endpoints {
		c, ok := candidateFor(snap, svc, ep, port)
		if !ok {
			continue
		}
		c.rank = rank(lb.GetRoutingPreference(), src, c.w)
		best = max(best, c.rank)
		cands = append(cands, c)
	}
	switch lb.GetMode() {
	case workloadapi.LoadBalancing_STRICT:
		n := len(lb.GetRoutingPreference())
		cands = slices.DeleteFunc(cands, func(c candidate) bool { return c.rank < n })
	case workloadapi.LoadBalancing_FAILOVER:
		cands = slices.DeleteFunc(cands, func(c candidate) bool { return c.rank < best })
	}
	c, ok := weighted(cands)
	if !ok {
		return nil, 0, errNoEndpoint
	}
	return c.w, uint16(c.port), nil
}

func candidateFor(snap *state.Snapshot, svc *state.Service, ep *state.Endpoint, port uint16) (candidate, bool) {
	w := snap.WorkloadByUID(ep.WorkloadUID)
	if w == nil || len(w.IPs) == 0 || w.CapacityOrDefault() == 0 {
		return candidate{}, false
	}
	target := uint32(port)
	if port != 0 {
		t, ok := svc.TargetPort(ep, uint32(port))
		if !ok {
			return candidate{}, false
		}
		target = t
	}
	return candidate{w: w, port: target, weight: w.CapacityOrDefault()}, true
}

func weighted(cands []candidate) (candidate, bool) {
	var total uint64
	for _, c := range cands {
		total += uint64(c.weight)
	}
	if total == 0 {
		return candidate{}, false
	}
	r := rand.Uint64N(total)
	for _, c := range cands {
		if r < uint64(c.weight) {
			return c, true
		}
		r -= uint64(c.weight)
	}
	return cands[len(cands)-1], true
}

// rank counts how many routing-preference scopes, in order, w shares with src.
func rank(scopes []workloadapi.LoadBalancing_Scope, src, w *state.Workload) int {
	n := 0
	for _, s := range scopes {
		if !sameScope(s, src, w) {
			break
		}
		n++
	}
	return n
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
