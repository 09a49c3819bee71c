package state

import (
	"net/netip"

	"istio.io/istio/pkg/workloadapi/security"
)

// Snapshot is one immutable version of the state. Every lookup is a map access with no
// allocation, so the data path can call them per connection.
type Snapshot struct {
	version uint64
	stale   chan struct{} // closed when a newer snapshot is published

	workloadsByUID  map[string]*Workload
	workloadsByAddr map[NetAddr]*Workload  // host-network workloads are not indexed by IP
	gatewayNetworks []string               // networks with a workload behind a network gateway
	workloadsByName map[string]*Workload   // namespace/name, for pods named by istio-cni
	workloadsByHost map[string][]*Workload // by hostname (headless pods, DNS workloads), sorted by uid
	servicesByKey   map[string]*Service
	servicesByHost  map[string][]*Service  // oldest first, as Rust's by_host
	servicesByVIP   map[NetAddr][]*Service // oldest first: several namespaces may share a VIP
	cidrs           map[NetPrefix][]*Service
	cidrBits4       []int // distinct IPv4 CIDR VIP lengths, longest first
	cidrBits6       []int
	staged          map[string][]*Endpoint // endpoints of services not (yet) known, by service key

	policies     map[string]*security.Authorization
	policiesByNS map[string][]string // NAMESPACE-scope policy keys, sorted
	global       []string            // GLOBAL-scope policy keys, sorted

	// Sorted views for dumps.
	workloads   []*Workload
	services    []*Service
	policyOrder []string
}

func emptySnapshot() *Snapshot { return build(nil, nil, nil) }

// Version increases by one with every published batch.
func (s *Snapshot) Version() uint64 { return s.version }

// Stale is closed once a newer snapshot exists: watchers select on it.
func (s *Snapshot) Stale() <-chan struct{} { return s.stale }

// WorkloadByUID returns the workload with that uid, or nil.
func (s *Snapshot) WorkloadByUID(uid string) *Workload { return s.workloadsByUID[uid] }

// WorkloadByName returns the workload named name in namespace ns (a pod), or nil.
func (s *Snapshot) WorkloadByName(ns, name string) *Workload { return s.workloadsByName[ns+"/"+name] }

// WorkloadByAddr returns the workload owning ip on network, or nil.
func (s *Snapshot) WorkloadByAddr(network string, ip netip.Addr) *Workload {
	return s.workloadsByAddr[NetAddr{network, ip.Unmap()}]
}

// RemoteWorkloadsByAddr returns the workloads at ip on networks other than local that
// are reachable through a network gateway (one per network: pod IPs may overlap).
func (s *Snapshot) RemoteWorkloadsByAddr(local string, ip netip.Addr) []*Workload {
	var out []*Workload
	for _, n := range s.gatewayNetworks {
		if w := s.workloadsByAddr[NetAddr{n, ip.Unmap()}]; n != local && w != nil && w.NetworkGateway != nil {
			out = append(out, w)
		}
	}
	return out
}

// ServiceByKey returns the service namespace/hostname, or nil.
func (s *Snapshot) ServiceByKey(key string) *Service { return s.servicesByKey[key] }

// WorkloadsByHostname returns the workloads that carry that hostname, for the DNS proxy.
func (s *Snapshot) WorkloadsByHostname(host string) []*Workload { return s.workloadsByHost[host] }

// ServicesByHost returns every service with that hostname (one per namespace), oldest
// first.
func (s *Snapshot) ServicesByHost(host string) []*Service { return s.servicesByHost[host] }

// Policy returns the policy namespace/name, or nil.
func (s *Snapshot) Policy(key string) *security.Authorization { return s.policies[key] }

// NamespacePolicies are the keys of NAMESPACE-scope policies of ns.
func (s *Snapshot) NamespacePolicies(ns string) []string { return s.policiesByNS[ns] }

// GlobalPolicies are the keys of GLOBAL-scope policies, which apply to every workload.
func (s *Snapshot) GlobalPolicies() []string { return s.global }

// Workloads, Services and PolicyKeys list everything, sorted, for dumps.
func (s *Snapshot) Workloads() []*Workload { return s.workloads }
func (s *Snapshot) Services() []*Service   { return s.services }
func (s *Snapshot) PolicyKeys() []string   { return s.policyOrder }

// Staged returns endpoints waiting for their service, by service key.
func (s *Snapshot) Staged() map[string][]*Endpoint { return s.staged }
