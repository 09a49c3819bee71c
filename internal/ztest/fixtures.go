// Package ztest is the test kit: fixtures built from the real Istio proto types, and (in
// later files) fake istiod, CA and istio-cni servers speaking the real protocols.
package ztest

import (
	"net/netip"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"
)

// Workload builds an HBONE pod workload "<ns>/<name>" with uid "Kubernetes//Pod/<ns>/<name>".
func Workload(ns, name string, ips ...string) *workloadapi.Workload {
	w := &workloadapi.Workload{
		Uid:            "Kubernetes//Pod/" + ns + "/" + name,
		Name:           name,
		Namespace:      ns,
		ServiceAccount: name,
		TunnelProtocol: workloadapi.TunnelProtocol_HBONE,
		WorkloadType:   workloadapi.WorkloadType_POD,
		WorkloadName:   name,
		CanonicalName:  name,
		Node:           "node-a",
	}
	for _, ip := range ips {
		w.Addresses = append(w.Addresses, IP(ip))
	}
	return w
}

// WithService makes w an endpoint of ns/host, mapping service ports to target ports
// given as pairs: 80, 8080, 443, 8443.
func WithService(w *workloadapi.Workload, key string, portPairs ...uint32) *workloadapi.Workload {
	if w.Services == nil {
		w.Services = map[string]*workloadapi.PortList{}
	}
	pl := &workloadapi.PortList{}
	for i := 0; i+1 < len(portPairs); i += 2 {
		pl.Ports = append(pl.Ports, &workloadapi.Port{ServicePort: portPairs[i], TargetPort: portPairs[i+1]})
	}
	w.Services[key] = pl
	return w
}

// Service builds a service with VIPs ("10.96.0.1" or CIDRs "10.96.0.0/16") on the
// default network and service→target port pairs.
func Service(ns, name string, vips []string, portPairs ...uint32) *workloadapi.Service {
	s := &workloadapi.Service{
		Name:      name,
		Namespace: ns,
		Hostname:  name + "." + ns + ".svc.cluster.local",
	}
	for _, v := range vips {
		s.Addresses = append(s.Addresses, NetworkAddress("", v))
	}
	for i := 0; i+1 < len(portPairs); i += 2 {
		s.Ports = append(s.Ports, &workloadapi.Port{ServicePort: portPairs[i], TargetPort: portPairs[i+1]})
	}
	return s
}

// NetworkAddress parses "ip" or "ip/len".
func NetworkAddress(network, v string) *workloadapi.NetworkAddress {
	na := &workloadapi.NetworkAddress{Network: network}
	if p, err := netip.ParsePrefix(v); err == nil {
		n := uint32(p.Bits())
		na.Address, na.Length = p.Addr().AsSlice(), &n
		return na
	}
	na.Address = IP(v)
	return na
}

// IP is the proto form of an address; it panics on a malformed literal (test input).
func IP(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// AsAddress wraps a workload or service for a state update.
func AsAddress(v any) *workloadapi.Address {
	switch t := v.(type) {
	case *workloadapi.Workload:
		return &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: t}}
	case *workloadapi.Service:
		return &workloadapi.Address{Type: &workloadapi.Address_Service{Service: t}}
	}
	panic("ztest.AsAddress: want *Workload or *Service")
}

// AsAddresses wraps workloads and services for one state update, in order.
func AsAddresses(items ...any) []*workloadapi.Address {
	out := make([]*workloadapi.Address, 0, len(items))
	for _, it := range items {
		out = append(out, AsAddress(it))
	}
	return out
}

// DenyFromNamespace is the seed's policy: deny sources in namespace from, in ns.
func DenyFromNamespace(ns, name, from string) *security.Authorization {
	return &security.Authorization{
		Name: name, Namespace: ns, Scope: security.Scope_NAMESPACE, Action: security.Action_DENY,
		Groups: []*security.Group{{Rules: []*security.Rules{{Matches: []*security.Match{{
			Namespaces: []*security.StringMatch{{MatchType: &security.StringMatch_Exact{Exact: from}}},
		}}}}}},
	}
}
