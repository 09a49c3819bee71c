package dns

import "strings"

// Names here are lowercase, without the trailing dot, and compared label by label the
// way Rust ztunnel's name_util does (hickory Names). A query name with an escaped dot
// (`a\.b`) never equals a mesh hostname, so it is forwarded, as it should be.

// normalize is a name as this package compares it: lowercase, no trailing dot.
func normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// alias is one name a query may stand for. stripped is set when the alias was made by
// taking one of the client's search domains off the query: the answer then carries a
// CNAME from the query to stripped (Rust's Alias.stripped).
type alias struct {
	name     string
	stripped string
}

// labels counts the labels of a name ("" has none).
func labels(name string) int {
	if name == "" {
		return 0
	}
	return strings.Count(name, ".") + 1
}

// hasDomain reports whether name lies strictly below domain (more labels, the last ones
// equal to domain's): Rust's has_domain. A wildcard domain has nothing below it.
func hasDomain(name, domain string) bool {
	if strings.HasPrefix(domain, "*") || labels(name) <= labels(domain) {
		return false
	}
	return strings.HasSuffix(name, "."+domain)
}

// trimDomain takes domain off the end of name: Rust's trim_domain.
func trimDomain(name, domain string) (string, bool) {
	if !hasDomain(name, domain) {
		return "", false
	}
	return name[:len(name)-len(domain)-1], true
}

// kubeFQDNs are the Kubernetes names a short name expands to for a client in namespace
// ns: Rust's to_kube_fqdns, case by case on the number of labels.
//
//	name                  → name.<ns>.svc.<domain>
//	name.ns2              → name.ns2.svc.<domain>, name.ns2.<ns>.svc.<domain>
//	name.ns2.svc          → name.ns2.svc.<domain>, name.ns2.svc.svc.<domain>
//	name.ns2.other        → name.ns2.other.svc.<domain>
//	pod.sub.ns2.svc       → pod.sub.ns2.svc.<domain>
//
// Longer names, and four labels not ending in svc, are taken as they are.
func kubeFQDNs(name, ns, domain string, yield func(string) bool) bool {
	svcDomain := "svc." + domain
	endsSvc := hasDomain(name, "svc")
	switch labels(name) {
	case 1:
		return yield(name + "." + ns + "." + svcDomain)
	case 2:
		return yield(name+"."+svcDomain) && yield(name+"."+ns+"."+svcDomain)
	case 3:
		if endsSvc && !yield(name+"."+domain) {
			return false
		}
		return yield(name + "." + svcDomain)
	case 4:
		if endsSvc {
			return yield(name + "." + domain)
		}
	}
	return true
}

// eachAlias yields, in Rust's get_aliases order and without repeats, every name a query
// may mean: the name itself, its Kubernetes expansions, then for each search domain the
// client's resolver may have appended, the name without it and that name's expansions.
// It stops when yield returns false. It allocates only as far as it gets: a query for a
// full service name that exists costs no alias at all.
func eachAlias(name, ns, domain string, search func() []string, yield func(alias) bool) {
	var arr [12]string // more than any name yields: no allocation to remember them
	seen := arr[:0]
	add := func(a alias) bool {
		for _, s := range seen {
			if s == a.name {
				return true
			}
		}
		seen = append(seen, a.name)
		return yield(a)
	}
	if !add(alias{name: name}) {
		return
	}
	if !kubeFQDNs(name, ns, domain, func(n string) bool { return add(alias{name: n}) }) {
		return
	}
	for _, sd := range search() {
		stripped, ok := trimDomain(name, sd)
		if !ok {
			continue
		}
		if !add(alias{name: stripped, stripped: stripped}) {
			return
		}
		if !kubeFQDNs(stripped, ns, domain, func(n string) bool { return add(alias{name: n, stripped: stripped}) }) {
			return
		}
	}
}

// eachWildcard yields name, then each wildcard host that covers it, most specific first
// (a.b.c → *.b.c → *.c): Rust's get_wildcards.
func eachWildcard(name string, yield func(host string, wildcard bool) bool) {
	if !yield(name, false) {
		return
	}
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return
		}
		rest = rest[i+1:]
		if !yield("*."+rest, true) {
			return
		}
	}
}

// kubeSearch is the search list of a Kubernetes pod in namespace ns. In-pod mode serves
// many pods, so it is built per client rather than read from ztunnel's own resolv.conf
// (which names ztunnel's namespace): Rust's SearchDomains::Dynamic.
func kubeSearch(ns, domain string) []string {
	return []string{ns + ".svc." + domain, "svc." + domain, domain}
}
