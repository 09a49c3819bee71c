package dns

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Mesh answers A and AAAA queries from the state snapshot, as the client workload sees
// the mesh. It does no I/O, so the same code serves queries, the /debug/dns explanation
// and the benchmark.
type Mesh struct {
	Domain string // cluster domain, cluster.local
	IPv6   bool   // IPV6_ENABLED: false answers every AAAA empty
	// PreferredNamespace breaks ties between services of one hostname in several
	// namespaces, after the client's own and canonical ones (PREFERED_SERVICE_NAMESPACE).
	PreferredNamespace string
	// Search is a fixed search list (dedicated mode: ztunnel's resolv.conf). Nil means
	// each client's Kubernetes list, from its namespace.
	Search []string
}

// Answer is what the mesh knows of a name. When Found is false the query is forwarded.
type Answer struct {
	Found    bool
	Host     string // the hostname that matched (a wildcard host for wildcard matches)
	Kind     string // "service", "headless service" or "workload"
	Key      string // namespace/hostname of the service, or the workload's uid
	Alias    string // the alias of the query that matched
	Stripped string // set: the answer is a CNAME from the query to Stripped, then the records
	Addrs    []netip.Addr
	Empty    string // why a found name has no records for this type
	Tried    []string
}

// Lookup answers qname (lowercase, no trailing dot) of type A or AAAA for client. With
// explain set, every host tried is listed in Answer.Tried.
func (m *Mesh) Lookup(snap *state.Snapshot, client *state.Workload, qname string, qtype uint16, explain bool) Answer {
	var ans Answer
	search := func() []string {
		if m.Search != nil {
			return m.Search
		}
		return kubeSearch(client.Namespace, m.Domain)
	}
	eachAlias(qname, client.Namespace, m.Domain, search, func(a alias) bool {
		eachWildcard(a.name, func(host string, wildcard bool) bool {
			if explain {
				ans.Tried = append(ans.Tried, host)
			}
			if m.match(snap, client, host, wildcard, &ans) {
				ans.Alias = a.name
				if !wildcard { // Rust: no CNAME for wildcard matches (since 1.29)
					ans.Stripped = a.stripped
				}
			}
			return !ans.Found
		})
		return !ans.Found
	})
	if ans.Found {
		m.records(snap, client, qtype, &ans)
	}
	return ans
}

// match looks host up as a service, then (exact names only) as a workload hostname.
func (m *Mesh) match(snap *state.Snapshot, client *state.Workload, host string, wildcard bool, ans *Answer) bool {
	if svc := m.bestService(snap.ServicesByHost(host), client.Namespace); svc != nil {
		kind := "service"
		if len(svc.VIPs) == 0 {
			kind = "headless service"
		}
		*ans = Answer{Found: true, Host: host, Kind: kind, Key: svc.Key, Tried: ans.Tried}
		return true
	}
	if wildcard {
		return false
	}
	for _, w := range snap.WorkloadsByHostname(host) {
		if len(w.IPs) > 0 { // a hostname-only workload is resolved on demand, not by us
			*ans = Answer{Found: true, Host: host, Kind: "workload", Key: w.Uid, Tried: ans.Tried}
			return true
		}
	}
	return false
}

// bestService is Rust's find_server filter then ServiceMatch::find_best_match
// (state.BestService): services without a VIP count only when they are Kubernetes
// headless services (their hostname under .svc.<domain>); VIP-less ServiceEntries are
// left to upstream DNS.
func (m *Mesh) bestService(svcs []*state.Service, clientNS string) *state.Service {
	leftUpstream := func(s *state.Service) bool {
		return len(s.VIPs) == 0 && !strings.HasSuffix(s.Hostname, ".svc."+m.Domain)
	}
	if slices.ContainsFunc(svcs, leftUpstream) {
		svcs = slices.DeleteFunc(slices.Clone(svcs), leftUpstream)
	}
	return state.BestService(svcs, clientNS, m.PreferredNamespace)
}

// records fills in the addresses of the matched name for qtype, shuffled for DNS load
// balancing as Rust does; an empty list is a NOERROR with no answer, never NXDOMAIN.
func (m *Mesh) records(snap *state.Snapshot, client *state.Workload, qtype uint16, ans *Answer) {
	v6 := qtype == mdns.TypeAAAA
	if v6 && !m.IPv6 {
		ans.Empty = "IPv6 is disabled"
		return
	}
	want := func(ip netip.Addr) bool { return ip.Unmap().Is6() == v6 }
	if ans.Kind == "workload" {
		for _, w := range snap.WorkloadsByHostname(ans.Host) {
			if w.Uid == ans.Key {
				ans.Addrs = appendFamily(ans.Addrs, w.IPs, want, false)
			}
		}
	} else if svc := snap.ServiceByKey(ans.Key); !familyAllowed(svc.IpFamilies, v6) {
		ans.Empty = "service does not support this record type"
		return
	} else if ans.Kind == "service" {
		for _, vip := range svc.VIPs {
			if vip.Network == client.Network && want(vip.Addr) {
				ans.Addrs = append(ans.Addrs, vip.Addr.Unmap())
			}
		}
	} else { // headless: the endpoints' own addresses
		for _, ep := range svc.Endpoints {
			if w := snap.WorkloadByUID(ep.WorkloadUID); w != nil {
				ans.Addrs = appendFamily(ans.Addrs, w.IPs, want, true)
			}
		}
	}
	if len(ans.Addrs) == 0 {
		ans.Empty = "no records"
	}
	rand.Shuffle(len(ans.Addrs), func(i, j int) { ans.Addrs[i], ans.Addrs[j] = ans.Addrs[j], ans.Addrs[i] })
}

// appendFamily adds the IPs of one family; first keeps only the first (a headless
// endpoint answers one address per family, as in Rust).
func appendFamily(out, ips []netip.Addr, want func(netip.Addr) bool, first bool) []netip.Addr {
	for _, ip := range ips {
		if want(ip) {
			out = append(out, ip.Unmap())
			if first {
				break
			}
		}
	}
	return out
}

// familyAllowed is Rust's service_family_allowed: a service declared single-stack has
// no records of the other family.
func familyAllowed(f workloadapi.IPFamilies, v6 bool) bool {
	switch f {
	case workloadapi.IPFamilies_IPV4_ONLY:
		return !v6
	case workloadapi.IPFamilies_IPV6_ONLY:
		return v6
	}
	return true
}
