package state

import (
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/types/known/emptypb"
	"istio.io/istio/pkg/workloadapi/security"
)

// PolicyJSON is an authorization policy in Rust ztunnel's JSON form. Rules nest as
// rules → clauses → matches: a rule matches when all its clauses do, a clause when any
// of its matches does.
type PolicyJSON struct {
	Name      string          `json:"name" yaml:"name"`
	Namespace string          `json:"namespace" yaml:"namespace"`
	Scope     string          `json:"scope" yaml:"scope"`   // Global | Namespace | WorkloadSelector
	Action    string          `json:"action" yaml:"action"` // Allow | Deny
	Rules     [][][]MatchJSON `json:"rules" yaml:"rules"`
	DryRun    bool            `json:"dryRun" yaml:"dryRun"`
}

// MatchJSON is one match; its fields are AND-ed.
type MatchJSON struct {
	Namespaces          []StringMatchJSON `json:"namespaces,omitempty" yaml:"namespaces"`
	NotNamespaces       []StringMatchJSON `json:"notNamespaces,omitempty" yaml:"notNamespaces"`
	Principals          []StringMatchJSON `json:"principals,omitempty" yaml:"principals"`
	NotPrincipals       []StringMatchJSON `json:"notPrincipals,omitempty" yaml:"notPrincipals"`
	SourceIPs           []string          `json:"sourceIps,omitempty" yaml:"sourceIps"`
	NotSourceIPs        []string          `json:"notSourceIps,omitempty" yaml:"notSourceIps"`
	DestinationIPs      []string          `json:"destinationIps,omitempty" yaml:"destinationIps"`
	NotDestinationIPs   []string          `json:"notDestinationIps,omitempty" yaml:"notDestinationIps"`
	DestinationPorts    []uint32          `json:"destinationPorts,omitempty" yaml:"destinationPorts"`
	NotDestinationPorts []uint32          `json:"notDestinationPorts,omitempty" yaml:"notDestinationPorts"`
	ServiceAccounts     []SAMatchJSON     `json:"serviceAccounts,omitempty" yaml:"serviceAccounts"`
	NotServiceAccounts  []SAMatchJSON     `json:"notServiceAccounts,omitempty" yaml:"notServiceAccounts"`
}

// StringMatchJSON is {"Exact": s}, {"Prefix": s}, {"Suffix": s} or {"Presence": []}.
type StringMatchJSON struct {
	Exact    *string   `json:"Exact,omitempty" yaml:"Exact"`
	Prefix   *string   `json:"Prefix,omitempty" yaml:"Prefix"`
	Suffix   *string   `json:"Suffix,omitempty" yaml:"Suffix"`
	Presence *[]string `json:"Presence,omitempty" yaml:"Presence"`
}

// SAMatchJSON matches a service account in a namespace.
type SAMatchJSON struct {
	Namespace      string `json:"namespace" yaml:"namespace"`
	ServiceAccount string `json:"serviceAccount" yaml:"serviceAccount"`
}

var (
	scopes = map[string]security.Scope{"Global": security.Scope_GLOBAL, "Namespace": security.Scope_NAMESPACE,
		"WorkloadSelector": security.Scope_WORKLOAD_SELECTOR}
	actions = map[string]security.Action{"Allow": security.Action_ALLOW, "Deny": security.Action_DENY}
)

// PolicyToJSON renders a policy as the dump shows it.
func PolicyToJSON(p *security.Authorization) PolicyJSON {
	j := PolicyJSON{Name: p.Name, Namespace: p.Namespace, Scope: nameOf(scopes, p.Scope),
		Action: nameOf(actions, p.Action), Rules: make([][][]MatchJSON, 0, len(p.Groups)), DryRun: p.DryRun}
	for _, g := range p.Groups {
		rule := make([][]MatchJSON, 0, len(g.Rules))
		for _, r := range g.Rules {
			clause := make([]MatchJSON, 0, len(r.Matches))
			for _, m := range r.Matches {
				clause = append(clause, matchJSON(m))
			}
			rule = append(rule, clause)
		}
		j.Rules = append(j.Rules, rule)
	}
	return j
}

func matchJSON(m *security.Match) MatchJSON {
	return MatchJSON{
		Namespaces: stringMatchesJSON(m.Namespaces), NotNamespaces: stringMatchesJSON(m.NotNamespaces),
		Principals: stringMatchesJSON(m.Principals), NotPrincipals: stringMatchesJSON(m.NotPrincipals),
		SourceIPs: addrsJSON(m.SourceIps), NotSourceIPs: addrsJSON(m.NotSourceIps),
		DestinationIPs: addrsJSON(m.DestinationIps), NotDestinationIPs: addrsJSON(m.NotDestinationIps),
		DestinationPorts: m.DestinationPorts, NotDestinationPorts: m.NotDestinationPorts,
		ServiceAccounts: saJSON(m.ServiceAccounts), NotServiceAccounts: saJSON(m.NotServiceAccounts),
	}
}

func stringMatchesJSON(in []*security.StringMatch) []StringMatchJSON {
	var out []StringMatchJSON
	for _, sm := range in {
		var j StringMatchJSON
		switch t := sm.MatchType.(type) {
		case *security.StringMatch_Exact:
			j.Exact = &t.Exact
		case *security.StringMatch_Prefix:
			j.Prefix = &t.Prefix
		case *security.StringMatch_Suffix:
			j.Suffix = &t.Suffix
		case *security.StringMatch_Presence:
			j.Presence = &[]string{}
		}
		out = append(out, j)
	}
	return out
}

func addrsJSON(in []*security.Address) []string {
	var out []string
	for _, a := range in {
		if p, err := PrefixOf(a); err == nil {
			out = append(out, p.String())
		}
	}
	return out
}

func saJSON(in []*security.ServiceAccountMatch) []SAMatchJSON {
	var out []SAMatchJSON
	for _, s := range in {
		out = append(out, SAMatchJSON{Namespace: s.Namespace, ServiceAccount: s.ServiceAccount})
	}
	return out
}

// Proto converts a static-config policy; errors name the field relative to the policy.
func (j *PolicyJSON) Proto() (*security.Authorization, error) {
	if j.Name == "" {
		return nil, errors.New("name: required")
	}
	p := &security.Authorization{Name: j.Name, Namespace: j.Namespace, DryRun: j.DryRun}
	var err error
	if p.Scope, err = enumOf(j.Scope, "scope", scopes); err != nil {
		return nil, err
	}
	if p.Action, err = enumOf(j.Action, "action", actions); err != nil {
		return nil, err
	}
	for gi, rule := range j.Rules {
		g := &security.Group{}
		for ri, clause := range rule {
			r := &security.Rules{}
			for mi, m := range clause {
				pm, err := m.proto()
				if err != nil {
					return nil, fmt.Errorf("rules[%d][%d][%d].%w", gi, ri, mi, err)
				}
				r.Matches = append(r.Matches, pm)
			}
			g.Rules = append(g.Rules, r)
		}
		p.Groups = append(p.Groups, g)
	}
	return p, nil
}

func (m *MatchJSON) proto() (*security.Match, error) {
	out := &security.Match{DestinationPorts: m.DestinationPorts, NotDestinationPorts: m.NotDestinationPorts}
	fields := []struct {
		name string
		in   []StringMatchJSON
		out  *[]*security.StringMatch
	}{{"namespaces", m.Namespaces, &out.Namespaces}, {"notNamespaces", m.NotNamespaces, &out.NotNamespaces},
		{"principals", m.Principals, &out.Principals}, {"notPrincipals", m.NotPrincipals, &out.NotPrincipals}}
	for _, f := range fields {
		for i, sm := range f.in {
			v, err := sm.proto()
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", f.name, i, err)
			}
			*f.out = append(*f.out, v)
		}
	}
	addrs := []struct {
		name string
		in   []string
		out  *[]*security.Address
	}{{"sourceIps", m.SourceIPs, &out.SourceIps}, {"notSourceIps", m.NotSourceIPs, &out.NotSourceIps},
		{"destinationIps", m.DestinationIPs, &out.DestinationIps}, {"notDestinationIps", m.NotDestinationIPs, &out.NotDestinationIps}}
	for _, f := range addrs {
		for i, s := range f.in {
			a, err := parsePolicyAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", f.name, i, err)
			}
			*f.out = append(*f.out, a)
		}
	}
	for _, sa := range m.ServiceAccounts {
		out.ServiceAccounts = append(out.ServiceAccounts, &security.ServiceAccountMatch{Namespace: sa.Namespace, ServiceAccount: sa.ServiceAccount})
	}
	for _, sa := range m.NotServiceAccounts {
		out.NotServiceAccounts = append(out.NotServiceAccounts, &security.ServiceAccountMatch{Namespace: sa.Namespace, ServiceAccount: sa.ServiceAccount})
	}
	return out, nil
}

func (sm StringMatchJSON) proto() (*security.StringMatch, error) {
	var set []*security.StringMatch
	if sm.Exact != nil {
		set = append(set, &security.StringMatch{MatchType: &security.StringMatch_Exact{Exact: *sm.Exact}})
	}
	if sm.Prefix != nil {
		set = append(set, &security.StringMatch{MatchType: &security.StringMatch_Prefix{Prefix: *sm.Prefix}})
	}
	if sm.Suffix != nil {
		set = append(set, &security.StringMatch{MatchType: &security.StringMatch_Suffix{Suffix: *sm.Suffix}})
	}
	if sm.Presence != nil {
		set = append(set, &security.StringMatch{MatchType: &security.StringMatch_Presence{Presence: &emptypb.Empty{}}})
	}
	if len(set) != 1 {
		return nil, errors.New("want exactly one of Exact, Prefix, Suffix, Presence")
	}
	return set[0], nil
}

func parsePolicyAddr(s string) (*security.Address, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		ip, err2 := netip.ParseAddr(s)
		if err2 != nil {
			return nil, fmt.Errorf("%q is not an IP or CIDR", s)
		}
		p = netip.PrefixFrom(ip, ip.BitLen())
	}
	return &security.Address{Address: p.Addr().AsSlice(), Length: uint32(p.Bits())}, nil
}
