// Package rbac is the L4 part of Istio's AuthorizationPolicy, as ztunnel enforces it at
// the destination: policies compiled from istio.security.Authorization, evaluated
// against a connection without allocating. It does no I/O.
package rbac

import (
	"net/netip"
	"slices"
	"strings"

	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Conn is what a policy can see of a connection.
type Conn struct {
	SrcIP      netip.Addr
	SrcID      identity.Identity // zero for plaintext
	DstIP      netip.Addr        // the destination workload's IP
	DstPort    uint16            // the target port, after service-port translation
	DstNetwork string
	principal  string // SrcID without "spiffe://", built once per connection
}

// NewConn prepares a connection for evaluation; addresses are canonicalised (a
// v4-mapped v6 source is its IPv4 address).
func NewConn(src netip.Addr, srcID identity.Identity, dst netip.AddrPort, network string) Conn {
	c := Conn{SrcIP: src.Unmap(), SrcID: srcID, DstIP: dst.Addr().Unmap(), DstPort: dst.Port(), DstNetwork: network}
	if !srcID.IsZero() {
		c.principal = strings.TrimPrefix(srcID.String(), "spiffe://")
	}
	return c
}

// stringMatch is one of Exact, Prefix, Suffix or Presence.
type stringMatch struct {
	kind  uint8 // exact, prefix, suffix, presence
	value string
}

const (
	exact uint8 = iota
	prefix
	suffix
	presence
)

func (m stringMatch) matches(s string) bool {
	switch m.kind {
	case exact:
		return s == m.value
	case prefix:
		return strings.HasPrefix(s, m.value)
	case suffix:
		return strings.HasSuffix(s, m.value)
	}
	return s != "" // presence
}

// match is one compiled Match: every field set must hold (AND); within a positive list
// any element may match, within a negative list none may.
type match struct {
	namespaces, notNamespaces []stringMatch
	principals, notPrincipals []stringMatch
	sas, notSAs               []saMatch
	srcIPs, notSrcIPs         []netip.Prefix
	dstIPs, notDstIPs         []netip.Prefix
	ports, notPorts           []uint16
}

type saMatch struct{ namespace, serviceAccount string }

func (m *match) empty() bool {
	return len(m.namespaces)+len(m.notNamespaces)+len(m.principals)+len(m.notPrincipals)+len(m.sas)+
		len(m.notSAs)+len(m.srcIPs)+len(m.notSrcIPs)+len(m.dstIPs)+len(m.notDstIPs)+len(m.ports)+len(m.notPorts) == 0
}

// holds evaluates the match. Without an identity, principals are never matched (not
// even by presence) and the namespace is "", exactly as in Rust ztunnel and Istio.
func (m *match) holds(c *Conn) bool {
	return both(m.dstIPs, m.notDstIPs, func(p netip.Prefix) bool { return p.Contains(c.DstIP) }) &&
		both(m.srcIPs, m.notSrcIPs, func(p netip.Prefix) bool { return p.Contains(c.SrcIP) }) &&
		both(m.ports, m.notPorts, func(p uint16) bool { return p == c.DstPort }) &&
		both(m.sas, m.notSAs, func(s saMatch) bool {
			return !c.SrcID.IsZero() && s.namespace == c.SrcID.Namespace && s.serviceAccount == c.SrcID.ServiceAccount
		}) &&
		both(m.principals, m.notPrincipals, func(s stringMatch) bool { return c.principal != "" && s.matches(c.principal) }) &&
		both(m.namespaces, m.notNamespaces, func(s stringMatch) bool { return s.matches(c.SrcID.Namespace) })
}

// both is ztunnel's matches_internal: any positive (or none declared), and no negative.
func both[T any](pos, neg []T, pred func(T) bool) bool {
	if len(pos) > 0 && !slices.ContainsFunc(pos, pred) {
		return false
	}
	return !slices.ContainsFunc(neg, pred)
}

// compileMatch turns the proto into a match; addresses were validated by the state
// store, so a bad one here is skipped rather than failing the policy.
func compileMatch(p *security.Match) match {
	return match{
		namespaces: strings_(p.Namespaces), notNamespaces: strings_(p.NotNamespaces),
		principals: strings_(p.Principals), notPrincipals: strings_(p.NotPrincipals),
		sas: sas(p.ServiceAccounts), notSAs: sas(p.NotServiceAccounts),
		srcIPs: prefixes(p.SourceIps), notSrcIPs: prefixes(p.NotSourceIps),
		dstIPs: prefixes(p.DestinationIps), notDstIPs: prefixes(p.NotDestinationIps),
		ports: ports(p.DestinationPorts), notPorts: ports(p.NotDestinationPorts),
	}
}

func strings_(in []*security.StringMatch) []stringMatch {
	var out []stringMatch
	for _, s := range in {
		switch t := s.GetMatchType().(type) {
		case *security.StringMatch_Exact:
			out = append(out, stringMatch{exact, t.Exact})
		case *security.StringMatch_Prefix:
			out = append(out, stringMatch{prefix, t.Prefix})
		case *security.StringMatch_Suffix:
			out = append(out, stringMatch{suffix, t.Suffix})
		case *security.StringMatch_Presence:
			out = append(out, stringMatch{kind: presence})
		}
	}
	return out
}

func sas(in []*security.ServiceAccountMatch) []saMatch {
	var out []saMatch
	for _, s := range in {
		out = append(out, saMatch{s.Namespace, s.ServiceAccount})
	}
	return out
}

func prefixes(in []*security.Address) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range in {
		p, err := state.PrefixOf(a)
		if err != nil {
			continue
		}
		if p.Addr().Is4In6() { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p)
	}
	return out
}

func ports(in []uint32) []uint16 {
	var out []uint16
	for _, p := range in {
		out = append(out, uint16(p))
	}
	return out
}
