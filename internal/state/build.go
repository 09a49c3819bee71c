package state

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"
)

// build derives every index from the primary maps. Where two workloads claim one
// address, the one inserted last wins, as in Rust ztunnel; services sharing a VIP or a
// hostname are all kept, oldest first, for BestService to choose among.
func build(wls map[string]*Workload, svcs map[string]*Service, pols map[string]*security.Authorization) *Snapshot {
	s := &Snapshot{
		stale:           make(chan struct{}),
		workloadsByUID:  make(map[string]*Workload, len(wls)),
		workloadsByAddr: make(map[NetAddr]*Workload, len(wls)),
		workloadsByName: make(map[string]*Workload, len(wls)),
		workloadsByHost: map[string][]*Workload{},
		servicesByKey:   make(map[string]*Service, len(svcs)),
		servicesByHost:  make(map[string][]*Service, len(svcs)),
		servicesByVIP:   make(map[NetAddr][]*Service, len(svcs)),
		cidrs:           map[NetPrefix][]*Service{},
		staged:          map[string][]*Endpoint{},
		policies:        make(map[string]*security.Authorization, len(pols)),
		policiesByNS:    map[string][]string{},
	}
	s.indexWorkloads(wls)
	s.indexServices(svcs)
	s.deriveEndpoints()
	s.indexPolicies(pols)
	return s
}

func (s *Snapshot) indexWorkloads(wls map[string]*Workload) {
	for _, w := range wls {
		s.workloadsByUID[w.Uid] = w
		s.workloads = append(s.workloads, w)
	}
	slices.SortFunc(s.workloads, func(a, b *Workload) int { return cmp.Compare(a.Uid, b.Uid) })
	for _, w := range s.workloads {
		k := w.Namespace + "/" + w.Name
		if old := s.workloadsByName[k]; old == nil || old.seq < w.seq {
			s.workloadsByName[k] = w
		}
		if w.Hostname != "" {
			s.workloadsByHost[w.Hostname] = append(s.workloadsByHost[w.Hostname], w)
		}
		if w.NetworkMode == workloadapi.NetworkMode_HOST_NETWORK {
			continue
		}
		if w.NetworkGateway != nil && !slices.Contains(s.gatewayNetworks, w.Network) {
			s.gatewayNetworks = append(s.gatewayNetworks, w.Network)
		}
		for _, ip := range w.IPs {
			k := NetAddr{w.Network, ip}
			if old := s.workloadsByAddr[k]; old == nil || old.seq < w.seq {
				s.workloadsByAddr[k] = w
			}
		}
	}
}

// indexServices copies each service, since endpoints are derived per snapshot and the
// previous snapshot's readers still hold the old copy.
func (s *Snapshot) indexServices(svcs map[string]*Service) {
	for _, in := range svcs {
		svc := *in
		svc.Endpoints = nil
		s.servicesByKey[svc.Key] = &svc
		s.services = append(s.services, &svc)
	}
	slices.SortFunc(s.services, func(a, b *Service) int { return cmp.Compare(a.Key, b.Key) })
	byAge := slices.Clone(s.services)
	slices.SortStableFunc(byAge, func(a, b *Service) int { return cmp.Compare(a.seq, b.seq) })
	var bits4, bits6 []int
	for _, svc := range byAge {
		s.servicesByHost[svc.Hostname] = append(s.servicesByHost[svc.Hostname], svc)
		for _, v := range svc.VIPs {
			s.servicesByVIP[v] = append(s.servicesByVIP[v], svc)
		}
		for _, c := range svc.CIDRs {
			s.cidrs[c] = append(s.cidrs[c], svc)
			if c.Prefix.Addr().Is4() {
				bits4 = append(bits4, c.Prefix.Bits())
			} else {
				bits6 = append(bits6, c.Prefix.Bits())
			}
		}
	}
	s.cidrBits4, s.cidrBits6 = longestFirst(bits4), longestFirst(bits6)
}

func longestFirst(bits []int) []int {
	slices.Sort(bits)
	bits = slices.Compact(bits)
	slices.Reverse(bits)
	return bits
}

// deriveEndpoints turns each workload's services map into service endpoints. Endpoints
// of services that have not arrived are staged, unfiltered, until they do; unhealthy
// endpoints are dropped unless the service's health policy is ALLOW_ALL.
func (s *Snapshot) deriveEndpoints() {
	for _, w := range s.workloads { // sorted by uid, so Endpoints come out sorted
		for _, key := range sortedKeys(w.Services) {
			ep := endpointFor(w, key, w.Services[key])
			svc := s.servicesByKey[key]
			if svc == nil {
				s.staged[key] = append(s.staged[key], ep)
				continue
			}
			if w.Healthy() || svc.AllowsUnhealthy() {
				svc.Endpoints = append(svc.Endpoints, ep)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Snapshot) indexPolicies(pols map[string]*security.Authorization) {
	for key, p := range pols {
		s.policies[key] = p
		s.policyOrder = append(s.policyOrder, key)
		switch p.Scope {
		case security.Scope_GLOBAL:
			s.global = append(s.global, key)
		case security.Scope_NAMESPACE:
			s.policiesByNS[p.Namespace] = append(s.policiesByNS[p.Namespace], key)
		}
	}
	sort.Strings(s.policyOrder)
	sort.Strings(s.global)
	for _, keys := range s.policiesByNS {
		sort.Strings(keys)
	}
}

// PrefixOf parses a policy address: bytes plus a prefix length. istiod sends a plain IP
// with its full length and 0.0.0.0/0 with length 0, so 0 means "any address".
func PrefixOf(a *security.Address) (netip.Prefix, error) {
	ip, ok := netip.AddrFromSlice(a.GetAddress())
	if !ok {
		return netip.Prefix{}, errors.New("address: want 4 or 16 bytes")
	}
	bits := int(a.GetLength())
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %s/%d: %w", ip, bits, err)
	}
	return p, nil
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
