package state

import (
	"errors"
	"fmt"
	"net/netip"

	"istio.io/istio/pkg/workloadapi"
)

// Service is a validated service with the endpoints derived from workloads.
type Service struct {
	*workloadapi.Service // must not be modified
	Key                  string
	VIPs                 []NetAddr   // exact VIPs
	CIDRs                []NetPrefix // VIPs with a prefix shorter than the address
	// Endpoints that may receive traffic (health policy applied), sorted by workload uid.
	Endpoints []*Endpoint
	seq       uint64
}

// NetPrefix is a CIDR VIP on a network.
type NetPrefix struct {
	Network string
	Prefix  netip.Prefix
}

// Endpoint is one workload behind a service, with that workload's port mapping.
type Endpoint struct {
	WorkloadUID string
	Service     string            // namespace/hostname
	Ports       map[uint32]uint32 // service port → target port (0: use the service's)
	Status      workloadapi.WorkloadStatus
}

// AllowsUnhealthy is the ALLOW_ALL health policy: unhealthy endpoints stay in rotation.
func (s *Service) AllowsUnhealthy() bool {
	return s.LoadBalancing.GetHealthPolicy() == workloadapi.LoadBalancing_ALLOW_ALL
}

// TargetPort translates a service port for one endpoint: the endpoint's own mapping
// wins, then the service's; false when neither names a target (a named port the
// workload does not expose), so the caller refuses rather than guesses.
func (s *Service) TargetPort(ep *Endpoint, servicePort uint32) (uint32, bool) {
	var svcTarget uint32
	found := false
	for _, p := range s.Ports {
		if p.ServicePort == servicePort {
			svcTarget, found = p.TargetPort, true
			break
		}
	}
	if !found {
		return 0, false
	}
	if t := ep.Ports[servicePort]; t != 0 {
		return t, true
	}
	return svcTarget, svcTarget != 0
}

// Endpoint returns the endpoint of one workload, or nil.
func (s *Service) Endpoint(uid string) *Endpoint {
	lo, hi := 0, len(s.Endpoints)
	for lo < hi { // Endpoints is sorted by uid
		m := int(uint(lo+hi) >> 1)
		if s.Endpoints[m].WorkloadUID < uid {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s.Endpoints) && s.Endpoints[lo].WorkloadUID == uid {
		return s.Endpoints[lo]
	}
	return nil
}

func newService(in *workloadapi.Service) (*Service, error) {
	if in.GetNamespace() == "" || in.GetHostname() == "" {
		return nil, errors.New("missing namespace or hostname")
	}
	s := &Service{Service: in, Key: in.Namespace + "/" + in.Hostname}
	for i, a := range in.Addresses {
		ip, ok := netip.AddrFromSlice(a.Address)
		if !ok {
			return nil, fmt.Errorf("addresses[%d]: want 4 or 16 bytes, got %d", i, len(a.Address))
		}
		if a.Length == nil || int(*a.Length) == ip.BitLen() {
			s.VIPs = append(s.VIPs, NetAddr{a.Network, ip})
			continue
		}
		p, err := ip.Prefix(int(*a.Length))
		if err != nil || p.Addr() != ip {
			return nil, fmt.Errorf("addresses[%d]: %s/%d is not a network prefix", i, ip, *a.Length)
		}
		s.CIDRs = append(s.CIDRs, NetPrefix{a.Network, p})
	}
	for i, p := range in.Ports {
		if p.ServicePort == 0 || p.ServicePort > 65535 || p.TargetPort > 65535 {
			return nil, fmt.Errorf("ports[%d]: %d→%d out of range", i, p.ServicePort, p.TargetPort)
		}
	}
	if err := validGateway(in.Waypoint); err != nil {
		return nil, fmt.Errorf("waypoint: %w", err)
	}
	return s, nil
}

func endpointFor(w *Workload, svcKey string, ports *workloadapi.PortList) *Endpoint {
	m := make(map[uint32]uint32, len(ports.GetPorts()))
	for _, p := range ports.GetPorts() {
		m[p.ServicePort] = p.TargetPort
	}
	return &Endpoint{WorkloadUID: w.Uid, Service: svcKey, Ports: m, Status: w.Status}
}
