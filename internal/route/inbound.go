package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Connect is what routing reads of an inbound HBONE CONNECT, already parsed by hbone:
// its authority in one of two forms, and the host= of its forwarded header.
type Connect struct {
	Addr netip.AddrPort // the address form, when Host is empty
	Host string         // the hostname form (a service, as in double HBONE)
	Port uint16
	// ForwardedHost is the service the client addressed, as its ztunnel wrote it.
	ForwardedHost string
}

// Inbound is where an accepted CONNECT goes.
type Inbound struct {
	Target   netip.AddrPort  // always on the local workload's IP the client reached
	Workload *state.Workload // the local workload
	Service  *state.Service  // the service the client addressed, if known
	// Tunnel is set when the workload declares an application tunnel (a sandwiched
	// waypoint): Target's port is then the tunnel's.
	Tunnel *AppTunnel
}

// AppTunnel is Rust's TunnelRequest: what the app behind an application tunnel is
// told of the connection.
type AppTunnel struct {
	// Addressed is where the client was going, the PROXY header's destination: the
	// CONNECT's address, or for a hostname a VIP of the service (this network's, IPv4
	// preferred), since PROXY carries no hostnames.
	Addressed netip.AddrPort
	PROXY     bool // the app reads a PROXY v2 header first
}

// ErrMalformed marks a refusal that is the client's fault (HTTP 400); other refusals
// name what cannot be reached (503).
var ErrMalformed = errors.New("malformed request")

// Inbound checks a CONNECT that arrived at local, and says which local address:port it
// reaches: refused as ErrMalformed for an IP that is not this workload's; otherwise
// for a workload or service unknown here, or one of ztunnel's own ports (Rust's
// SelfCall, answered as any unreachable upstream). The upstream is always local's
// IP: the authority's IP is never dialed.
func (r Router) Inbound(snap *state.Snapshot, local netip.Addr, c Connect) (Inbound, error) {
	w := r.Local(snap, local)
	if w == nil {
		return Inbound{}, fmt.Errorf("no workload at %s", local)
	}
	port := c.Port
	if c.Host != "" {
		var err error
		if port, err = hostnameTarget(snap, w, c.Host, c.Port); err != nil {
			return Inbound{}, err
		}
	} else if c.Addr.Addr() != local {
		ok, key := servesAsWaypoint(snap, w, local, c.Addr.Addr())
		if !ok {
			_, err := r.miss(key, Plan{}, fmt.Errorf("%w: ip mismatch: %s is not %s", ErrMalformed, c.Addr.Addr(), local))
			return Inbound{}, err
		}
	}
	if r.IsOwnPort(port) {
		return Inbound{}, fmt.Errorf("port %d is ztunnel's own", port)
	}
	in := Inbound{Target: netip.AddrPortFrom(local, port), Workload: w, Service: addressedService(snap, c, w)}
	if at := w.ApplicationTunnel; at != nil {
		addressed, err := tunnelAddressed(snap, w, c)
		if err != nil {
			return Inbound{}, err
		}
		if at.Port != 0 { // Rust find_inbound_upstream: the tunnel's own port, e.g. 15088
			in.Target = netip.AddrPortFrom(local, uint16(at.Port))
		}
		in.Tunnel = &AppTunnel{Addressed: addressed, PROXY: at.Protocol == workloadapi.ApplicationTunnel_PROXY}
	}
	return in, nil
}

// tunnelAddressed is the destination a PROXY header names: the CONNECT's address, or
// a VIP of the hostname's service on w's network (IPv4 first), then any VIP.
func tunnelAddressed(snap *state.Snapshot, w *state.Workload, c Connect) (netip.AddrPort, error) {
	if c.Host == "" {
		return c.Addr, nil
	}
	svc := snap.ServiceByHost(c.Host, w.Namespace)
	var best netip.Addr
	bestRank := -1
	for _, v := range svc.VIPs {
		rank := 0
		if v.Network == w.Network {
			rank = 1
			if v.Addr.Is4() {
				rank = 2
			}
		}
		if rank > bestRank {
			best, bestRank = v.Addr, rank
		}
	}
	if !best.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("service %s has no VIP for the application tunnel's PROXY header", c.Host)
	}
	return netip.AddrPortFrom(best, c.Port), nil
}

// addressedService is the service the client addressed: the hostname authority, or
// the host= of its forwarded header; preferring the destination's own namespace.
func addressedService(snap *state.Snapshot, c Connect, w *state.Workload) *state.Service {
	host := c.Host
	if c.ForwardedHost != "" {
		host = c.ForwardedHost
	}
	return snap.ServiceByHost(host, w.Namespace)
}

// hostnameTarget resolves host:servicePort to w's target port, preferring the service
// in w's own namespace.
func hostnameTarget(snap *state.Snapshot, w *state.Workload, host string, port uint16) (uint16, error) {
	svc := snap.ServiceByHost(host, w.Namespace)
	if svc == nil {
		return 0, fmt.Errorf("unknown service %s", host)
	}
	ep := svc.Endpoint(w.Uid)
	if ep == nil {
		return 0, fmt.Errorf("%s is not an endpoint of %s", w.Name, host)
	}
	target, ok := svc.TargetPort(ep, uint32(port))
	if !ok {
		return 0, fmt.Errorf("service %s has no target for port %d", host, port)
	}
	return uint16(target), nil
}

// servesAsWaypoint is Rust validate_destination for a CONNECT naming ip while it
// reached local: allowed when w has an application tunnel (the app reads the target
// from the PROXY header), or when the service or workload at ip has w as its waypoint
// (for a service, its waypoint or one of its weighted waypoints).
// key names ip for an on-demand lookup when nothing is known there.
func servesAsWaypoint(snap *state.Snapshot, w *state.Workload, local, ip netip.Addr) (bool, string) {
	if w.ApplicationTunnel != nil {
		return true, ""
	}
	var gws []*workloadapi.GatewayAddress
	if t := snap.WorkloadByAddr(w.Network, ip); t != nil {
		gws = append(gws, t.Waypoint)
	} else if svc := snap.ServiceByVIP(w.Network, ip, ""); svc != nil {
		gws = append(gws, svc.Waypoint)
		for _, ww := range svc.WeightedWaypoints { // beyond Rust: each of a canary's waypoints
			gws = append(gws, ww.Destination)
		}
	} else {
		return false, w.Network + "/" + ip.String()
	}
	for _, gw := range gws {
		if gw == nil {
			continue
		}
		ww, svc, _ := gatewayTarget(snap, gw)
		if svc != nil && svc.Endpoint(w.Uid) != nil || ww != nil && slices.Contains(ww.IPs, local.Unmap()) {
			return true, ""
		}
	}
	return false, ""
}
