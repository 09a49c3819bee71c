package state

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"istio.io/istio/pkg/workloadapi"
)

// ServiceJSON is a service in Rust ztunnel's JSON form (dump and static config).
type ServiceJSON struct {
	Name            string                  `json:"name" yaml:"name"`
	Namespace       string                  `json:"namespace" yaml:"namespace"`
	Hostname        string                  `json:"hostname" yaml:"hostname"`
	VIPs            []string                `json:"vips" yaml:"vips"` // "network/ip"; static config also takes "network/cidr"
	CIDRVIPs        []string                `json:"cidrVips,omitempty" yaml:"-"`
	Ports           map[uint32]uint32       `json:"ports" yaml:"ports"`
	Endpoints       map[string]EndpointJSON `json:"endpoints" yaml:"endpoints"`
	SubjectAltNames []string                `json:"subjectAltNames" yaml:"subjectAltNames"`
	Waypoint        *GatewayJSON            `json:"waypoint,omitempty" yaml:"waypoint"`
	LoadBalancer    *LoadBalancerJSON       `json:"loadBalancer,omitempty" yaml:"loadBalancer"`
	IPFamilies      string                  `json:"ipFamilies,omitempty" yaml:"ipFamilies"` // Dual | IPv4 | IPv6
	Canonical       bool                    `json:"canonical" yaml:"canonical"`
	Visibility      string                  `json:"visibility" yaml:"visibility"` // Public | Namespace
}

// EndpointJSON is one endpoint of a service, keyed by workload uid.
type EndpointJSON struct {
	WorkloadUID string            `json:"workloadUid" yaml:"workloadUid"`
	Service     string            `json:"service" yaml:"service"`
	Port        map[uint32]uint32 `json:"port" yaml:"port"`
	Status      string            `json:"status" yaml:"status"`
}

// LoadBalancerJSON is the service's load-balancing policy.
type LoadBalancerJSON struct {
	RoutingPreferences []string `json:"routingPreferences" yaml:"routingPreferences"`
	Mode               string   `json:"mode" yaml:"mode"`
	HealthPolicy       string   `json:"healthPolicy" yaml:"healthPolicy"`
}

var (
	lbModes = map[string]workloadapi.LoadBalancing_Mode{"Standard": workloadapi.LoadBalancing_UNSPECIFIED_MODE,
		"Strict": workloadapi.LoadBalancing_STRICT, "Failover": workloadapi.LoadBalancing_FAILOVER,
		"Passthrough": workloadapi.LoadBalancing_PASSTHROUGH}
	lbHealth = map[string]workloadapi.LoadBalancing_HealthPolicy{"OnlyHealthy": workloadapi.LoadBalancing_ONLY_HEALTHY,
		"AllowAll": workloadapi.LoadBalancing_ALLOW_ALL}
	lbScopes = map[string]workloadapi.LoadBalancing_Scope{"Region": workloadapi.LoadBalancing_REGION,
		"Zone": workloadapi.LoadBalancing_ZONE, "Subzone": workloadapi.LoadBalancing_SUBZONE,
		"Node": workloadapi.LoadBalancing_NODE, "Cluster": workloadapi.LoadBalancing_CLUSTER,
		"Network": workloadapi.LoadBalancing_NETWORK}
	ipFamilies = map[string]workloadapi.IPFamilies{"": workloadapi.IPFamilies_AUTOMATIC,
		"IPv4": workloadapi.IPFamilies_IPV4_ONLY, "IPv6": workloadapi.IPFamilies_IPV6_ONLY, "Dual": workloadapi.IPFamilies_DUAL}
	visibilities = map[string]workloadapi.Service_Visibility{"": workloadapi.Service_PUBLIC,
		"Public": workloadapi.Service_PUBLIC, "Namespace": workloadapi.Service_NAMESPACE}
)

// JSON renders a service, with its endpoints, as the dump shows it.
func (s *Service) JSON() ServiceJSON {
	j := ServiceJSON{
		Name: s.Name, Namespace: s.Namespace, Hostname: s.Hostname,
		VIPs: make([]string, 0, len(s.VIPs)), Ports: map[uint32]uint32{},
		Endpoints:       make(map[string]EndpointJSON, len(s.Endpoints)),
		SubjectAltNames: append([]string{}, s.SubjectAltNames...),
		Waypoint:        gatewayJSON(s.Waypoint), IPFamilies: nameOf(ipFamilies, s.IpFamilies),
		Canonical: s.Canonical, Visibility: nameOf(visibilities, s.Visibility),
	}
	for _, v := range s.VIPs {
		j.VIPs = append(j.VIPs, v.String())
	}
	for _, c := range s.CIDRs {
		j.CIDRVIPs = append(j.CIDRVIPs, c.Network+"/"+c.Prefix.String())
	}
	for _, p := range s.Ports {
		j.Ports[p.ServicePort] = p.TargetPort
	}
	for _, ep := range s.Endpoints {
		j.Endpoints[ep.WorkloadUID] = ep.JSON()
	}
	if lb := s.LoadBalancing; lb != nil {
		j.LoadBalancer = &LoadBalancerJSON{RoutingPreferences: []string{},
			Mode: nameOf(lbModes, lb.Mode), HealthPolicy: nameOf(lbHealth, lb.HealthPolicy)}
		for _, sc := range lb.RoutingPreference {
			j.LoadBalancer.RoutingPreferences = append(j.LoadBalancer.RoutingPreferences, nameOf(lbScopes, sc))
		}
	}
	return j
}

// JSON renders an endpoint.
func (e *Endpoint) JSON() EndpointJSON {
	return EndpointJSON{WorkloadUID: e.WorkloadUID, Service: e.Service, Port: e.Ports, Status: statusName(e.Status)}
}

// nameOf inverts a name table. Each value has one real name; "" is only an input alias
// for the default, so it is returned only for a value with no other name.
func nameOf[E comparable](names map[string]E, v E) string {
	for k, e := range names {
		if e == v && k != "" {
			return k
		}
	}
	return ""
}

// Proto converts a static-config service. Endpoints are not accepted: they are derived
// from workloads' services, as xDS sends them.
func (j *ServiceJSON) Proto() (*workloadapi.Service, error) {
	if j.Namespace == "" || j.Hostname == "" {
		return nil, errors.New("namespace and hostname: required")
	}
	if len(j.Endpoints) > 0 {
		return nil, errors.New("endpoints: not accepted here; list the service under each workload's services")
	}
	s := &workloadapi.Service{Name: j.Name, Namespace: j.Namespace, Hostname: j.Hostname,
		SubjectAltNames: j.SubjectAltNames, Canonical: j.Canonical}
	for i, v := range j.VIPs {
		na, err := parseNetworkAddress(v)
		if err != nil {
			return nil, fmt.Errorf("vips[%d]: %w", i, err)
		}
		s.Addresses = append(s.Addresses, na)
	}
	for _, sp := range sortedPorts(j.Ports) {
		s.Ports = append(s.Ports, &workloadapi.Port{ServicePort: sp, TargetPort: j.Ports[sp]})
	}
	var err error
	if s.Waypoint, err = j.Waypoint.proto(); err != nil {
		return nil, fmt.Errorf("waypoint.%w", err)
	}
	if s.IpFamilies, err = enumOf(j.IPFamilies, "ipFamilies", ipFamilies); err != nil {
		return nil, err
	}
	if s.Visibility, err = enumOf(j.Visibility, "visibility", visibilities); err != nil {
		return nil, err
	}
	if s.LoadBalancing, err = j.LoadBalancer.proto(); err != nil {
		return nil, err
	}
	return s, nil
}

func (lb *LoadBalancerJSON) proto() (*workloadapi.LoadBalancing, error) {
	if lb == nil {
		return nil, nil
	}
	out := &workloadapi.LoadBalancing{}
	var err error
	if out.Mode, err = enumOf(lb.Mode, "loadBalancer.mode", withEmpty(lbModes)); err != nil {
		return nil, err
	}
	if out.HealthPolicy, err = enumOf(lb.HealthPolicy, "loadBalancer.healthPolicy", withEmpty(lbHealth)); err != nil {
		return nil, err
	}
	for i, r := range lb.RoutingPreferences {
		sc, err := enumOf(r, fmt.Sprintf("loadBalancer.routingPreferences[%d]", i), lbScopes)
		if err != nil {
			return nil, err
		}
		out.RoutingPreference = append(out.RoutingPreference, sc)
	}
	return out, nil
}

func withEmpty[E any](m map[string]E) map[string]E {
	out := map[string]E{"": *new(E)}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parseNetworkAddress reads "ip", "cidr", "network/ip" or "network/cidr".
func parseNetworkAddress(v string) (*workloadapi.NetworkAddress, error) {
	network, addr := "", v
	if _, err := netip.ParsePrefix(v); err != nil {
		if _, err := netip.ParseAddr(v); err != nil {
			network, addr, _ = strings.Cut(v, "/")
		}
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		return &workloadapi.NetworkAddress{Network: network, Address: ip.AsSlice()}, nil
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil || p.Masked() != p {
		return nil, fmt.Errorf("%q is not [network/]ip or [network/]cidr", v)
	}
	n := uint32(p.Bits())
	return &workloadapi.NetworkAddress{Network: network, Address: p.Addr().AsSlice(), Length: &n}, nil
}

func sortedPorts(m map[uint32]uint32) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
