package route

import (
	"math/rand/v2"
	"slices"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

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
		return nil, 0, ErrNoEndpoint
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
