package route

import (
	"fmt"
	"net/netip"
	"slices"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// serviceWaypoint is Rust fetch_service_waypoint's choice: one of the weighted
// waypoints sampled by weight (sample_weighted_waypoint), else the single waypoint;
// nil for none. All weights 0 falls back to the single waypoint, as in Rust.
func (r Router) serviceWaypoint(svc *state.Service, e *explainer) *workloadapi.GatewayAddress {
	var total uint64
	for _, ww := range svc.WeightedWaypoints {
		total += uint64(ww.Weight)
	}
	if total > 0 {
		n := r.random(total)
		for _, ww := range svc.WeightedWaypoints {
			if n < uint64(ww.Weight) {
				if e != nil {
					e.add("weighted waypoint %s sampled (weight %d of %d)", gatewayString(ww.Destination), ww.Weight, total)
				}
				return ww.Destination
			}
			n -= uint64(ww.Weight)
		}
	}
	return svc.Waypoint
}

// viaWaypoint is Rust fetch_waypoint: the waypoint named by address is looked up as a
// service VIP (visible to src) or a workload, by hostname as a service or a workload;
// a service is load-balanced on its HBONE port. The authority is the original
// destination: the waypoint picks the endpoint. A waypoint on another network is
// reached through its gateway, for the service target only (nil: workload-addressed),
// with target's hostname as the authority and the waypoint service's SANs inside.
func (r Router) viaWaypoint(snap *state.Snapshot, src *state.Workload, gw *workloadapi.GatewayAddress, target *state.Service, dst netip.AddrPort, e *explainer) (Plan, error) {
	port := uint16(gw.HboneMtlsPort)
	if port == 0 {
		port = r.hbonePort()
	}
	var (
		w      *state.Workload
		svc    *state.Service
		family = dst.Addr() // the family to prefer
		key    string
	)
	if a := gw.GetAddress(); a != nil {
		ip, _ := netip.AddrFromSlice(a.Address)
		family = ip
		if svc = snap.ServiceByVIP(a.Network, ip, src.Namespace); svc == nil {
			if w = snap.WorkloadByAddr(a.Network, ip); w == nil {
				key = a.Network + "/" + ip.String()
			}
		}
	} else {
		h := gw.GetHostname()
		key = h.Namespace + "/" + h.Hostname
		if svc = snap.ServiceByKey(key); svc == nil {
			w = workloadByHost(snap, h.Namespace, h.Hostname)
		}
	}
	if svc == nil && w == nil {
		return r.miss(key, Plan{}, fmt.Errorf("waypoint %s not found", gatewayString(gw)))
	}
	var extra []identity.Identity
	if svc != nil {
		var err error
		if w, port, err = r.loadBalance(snap, src, svc, port, forWaypoint); err != nil {
			return Plan{}, fmt.Errorf("waypoint %s: %w", svc.Hostname, err)
		}
		extra = sans(svc)
	}
	if e != nil {
		e.add("via waypoint %s (workload %s, port %d)", gatewayString(gw), w.Uid, port)
	}
	if w.Network != src.Network && target != nil {
		pl, err := r.throughGateway(snap, src, w, hostAuthority(target, dst.Port()), extra, dst, e)
		if err != nil {
			return Plan{}, fmt.Errorf("waypoint: %w", err)
		}
		pl.ServiceHost = target.Hostname
		return pl, nil
	}
	pl, err := r.toWorkload(w, src, port, family, workloadapi.IPFamilies_AUTOMATIC, extra, e)
	if err != nil {
		return Plan{}, fmt.Errorf("waypoint: %w", err)
	}
	// A waypoint always takes HBONE, on its port, whatever its workload declares.
	pl.Kind, pl.Authority = Waypoint, dst.String()
	pl.Dial = netip.AddrPortFrom(pl.Dial.Addr(), port)
	pl.Expected = append([]identity.Identity{WorkloadID(w)}, extra...)
	return pl, nil
}

// fromWaypoint is Rust check_from_waypoint: the caller is the waypoint gw when one of
// gw's workloads has the caller's identity and the caller's IP.
func (r Router) fromWaypoint(snap *state.Snapshot, gw *workloadapi.GatewayAddress, id identity.Identity, ip netip.Addr) (bool, error) {
	w, svc, key := gatewayTarget(snap, gw)
	is := func(w *state.Workload) bool { return WorkloadID(w) == id && slices.Contains(w.IPs, ip.Unmap()) }
	switch {
	case w != nil:
		return is(w), nil
	case svc != nil:
		for _, ep := range svc.Endpoints {
			if ew := snap.WorkloadByUID(ep.WorkloadUID); ew != nil && is(ew) {
				return true, nil
			}
		}
		return false, nil
	}
	_, err := r.miss(key, Plan{}, nil)
	return false, err
}

// isWaypoint reports whether src is one of the waypoint gw's own workloads, so that a
// waypoint's egress to the service it fronts is not sent back to it (beyond Rust, which
// relies on waypoints not being captured).
func (r Router) isWaypoint(snap *state.Snapshot, src *state.Workload, gw *workloadapi.GatewayAddress) bool {
	w, svc, _ := gatewayTarget(snap, gw)
	return w != nil && w.Uid == src.Uid || svc != nil && svc.Endpoint(src.Uid) != nil
}

// gatewayTarget is Rust find_destination for a gateway address, with no client
// namespace: by address a workload first, then a service VIP; by hostname the service,
// then a workload of that hostname. key is its on-demand name.
func gatewayTarget(snap *state.Snapshot, gw *workloadapi.GatewayAddress) (*state.Workload, *state.Service, string) {
	if a := gw.GetAddress(); a != nil {
		ip, _ := netip.AddrFromSlice(a.Address)
		if w := snap.WorkloadByAddr(a.Network, ip); w != nil {
			return w, nil, ""
		}
		if svc := snap.ServiceByVIP(a.Network, ip, ""); svc != nil {
			return nil, svc, ""
		}
		return nil, nil, a.Network + "/" + ip.String()
	}
	h := gw.GetHostname()
	key := h.GetNamespace() + "/" + h.GetHostname()
	if svc := snap.ServiceByKey(key); svc != nil {
		return nil, svc, key
	}
	return workloadByHost(snap, h.GetNamespace(), h.GetHostname()), nil, key
}

func workloadByHost(snap *state.Snapshot, ns, host string) *state.Workload {
	for _, w := range snap.WorkloadsByHostname(host) {
		if w.Namespace == ns {
			return w
		}
	}
	return nil
}
