package state

import (
	"net/netip"

	"istio.io/istio/pkg/workloadapi"
)

// VisibleTo is Rust Service::visible_to: a NAMESPACE-scoped service exists only for
// clients of its own namespace. An empty ns is no client (a dump, a check by address
// alone): everything is visible.
func (s *Service) VisibleTo(ns string) bool {
	return ns == "" || s.Visibility != workloadapi.Service_NAMESPACE || s.Namespace == ns
}

// BestService is Rust ServiceMatch::find_best_match over candidates sharing one key
// (a VIP or a hostname), in insertion order: a service of the client's namespace ns
// at once; else the last canonical one; else the last of preferredNS (unless a
// canonical one came first); else the first. Services not visible to ns are skipped.
func BestService(svcs []*Service, ns, preferredNS string) *Service {
	var best *Service
	rank := 0 // 1 first, 2 preferred namespace, 3 canonical
	for _, s := range svcs {
		if !s.VisibleTo(ns) {
			continue
		}
		switch {
		case ns != "" && s.Namespace == ns:
			return s
		case s.Canonical:
			best, rank = s, 3
		case preferredNS != "" && s.Namespace == preferredNS && rank != 3:
			best, rank = s, 2
		case rank == 0:
			best, rank = s, 1
		}
	}
	return best
}

// ServiceByVIP is Rust get_best_by_vip for a client of namespace ns ("" for none): the
// best visible service on the exact VIP, else get_best_by_cidr_vip: over every CIDR
// containing ip, the client's namespace first, then the longest prefix, then a
// canonical service, ties to the oldest.
func (s *Snapshot) ServiceByVIP(network string, ip netip.Addr, ns string) *Service {
	ip = ip.Unmap()
	if svc := BestService(s.servicesByVIP[NetAddr{network, ip}], ns, ""); svc != nil {
		return svc
	}
	bits := s.cidrBits4
	if ip.Is6() {
		bits = s.cidrBits6
	}
	var best *Service
	var bestRank [3]int
	for _, n := range bits { // longest first
		p, err := ip.Prefix(n)
		if err != nil {
			continue
		}
		for _, svc := range s.cidrs[NetPrefix{network, p}] {
			if !svc.VisibleTo(ns) {
				continue
			}
			r := [3]int{b2i(ns != "" && svc.Namespace == ns), n, b2i(svc.Canonical)}
			if best == nil || greater(r, bestRank) {
				best, bestRank = svc, r
			}
		}
	}
	return best
}

// ServiceByHost is Rust get_best_by_host: the best service of that hostname visible to
// a client of namespace ns ("" for none).
func (s *Snapshot) ServiceByHost(host, ns string) *Service {
	return BestService(s.servicesByHost[host], ns, "")
}

// ServicesByVIP lists every service on an exact VIP, oldest first, whoever may see them
// (for route explanations and dumps).
func (s *Snapshot) ServicesByVIP(network string, ip netip.Addr) []*Service {
	return s.servicesByVIP[NetAddr{network, ip.Unmap()}]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func greater(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}
