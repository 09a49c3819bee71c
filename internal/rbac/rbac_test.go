package rbac_test

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/emptypb"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Builders: a policy is rules → clauses → matches.
func pol(name string, action security.Action, rules ...*security.Group) *security.Authorization {
	return &security.Authorization{Name: name, Namespace: "default", Scope: security.Scope_NAMESPACE, Action: action, Groups: rules}
}
func deny(name string, rules ...*security.Group) *security.Authorization {
	return pol(name, security.Action_DENY, rules...)
}
func allow(name string, rules ...*security.Group) *security.Authorization {
	return pol(name, security.Action_ALLOW, rules...)
}
func dry(p *security.Authorization) *security.Authorization { p.DryRun = true; return p }
func rule(clauses ...*security.Rules) *security.Group       { return &security.Group{Rules: clauses} }
func clause(ms ...*security.Match) *security.Rules          { return &security.Rules{Matches: ms} }
func ex(s string) []*security.StringMatch {
	return []*security.StringMatch{{MatchType: &security.StringMatch_Exact{Exact: s}}}
}
func pre(s string) []*security.StringMatch {
	return []*security.StringMatch{{MatchType: &security.StringMatch_Prefix{Prefix: s}}}
}
func suf(s string) []*security.StringMatch {
	return []*security.StringMatch{{MatchType: &security.StringMatch_Suffix{Suffix: s}}}
}
func present() []*security.StringMatch {
	return []*security.StringMatch{{MatchType: &security.StringMatch_Presence{Presence: &emptypb.Empty{}}}}
}
func cidr(s string) []*security.Address {
	p := netip.MustParsePrefix(s)
	return []*security.Address{{Address: p.Addr().AsSlice(), Length: uint32(p.Bits())}}
}
func sa(ns, name string) []*security.ServiceAccountMatch {
	return []*security.ServiceAccountMatch{{Namespace: ns, ServiceAccount: name}}
}

var (
	sleep = identity.New("cluster.local", "foo", "sleep")
	bar   = identity.New("cluster.local", "bar", "client")
)

// conn is from src (identity may be zero) to 10.244.1.5:port.
func conn(src string, id identity.Identity, port uint16) rbac.Conn {
	return rbac.NewConn(netip.MustParseAddr(src), id, netip.AddrPortFrom(netip.MustParseAddr("10.244.1.5"), port), "")
}

func TestEvaluate(t *testing.T) {
	ztest.NoLeaks(t)
	fromFoo := clause(&security.Match{Namespaces: ex("foo")})
	tests := []struct {
		name     string
		policies []*security.Authorization
		c        rbac.Conn
		allow    bool
		reason   rbac.Reason
		policy   string
	}{
		// The seed's scenario.
		{"seed: DENY from foo refuses foo/sleep", []*security.Authorization{deny("httpbin", rule(fromFoo))}, conn("10.244.2.12", sleep, 80), false, rbac.Denied, "default/httpbin"},
		{"seed: DENY from foo lets bar through", []*security.Authorization{deny("httpbin", rule(fromFoo))}, conn("10.244.2.13", bar, 80), true, rbac.NoAllowPolicy, ""},
		// Order.
		{"no policy allows", nil, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"allow matches", []*security.Authorization{allow("a", rule(fromFoo))}, conn("10.0.0.1", sleep, 80), true, rbac.Allowed, "default/a"},
		{"allow exists, none matches", []*security.Authorization{allow("a", rule(fromFoo))}, conn("10.0.0.1", bar, 80), false, rbac.NoneAllowed, ""},
		{"deny beats allow", []*security.Authorization{allow("a", rule(fromFoo)), deny("d", rule(fromFoo))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"second allow matches", []*security.Authorization{allow("a", rule(clause(&security.Match{Namespaces: ex("x")}))), allow("b", rule(fromFoo))}, conn("10.0.0.1", sleep, 80), true, rbac.Allowed, "default/b"},
		{"dry-run deny does not deny", []*security.Authorization{dry(deny("d", rule(fromFoo)))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"dry-run allow does not count as an allow policy", []*security.Authorization{dry(allow("a", rule(fromFoo)))}, conn("10.0.0.1", bar, 80), true, rbac.NoAllowPolicy, ""},
		{"dry-run allow beside a real one", []*security.Authorization{dry(allow("a", rule(fromFoo))), allow("b", rule(clause(&security.Match{Namespaces: ex("x")})))}, conn("10.0.0.1", sleep, 80), false, rbac.NoneAllowed, ""},
		// Structure.
		{"allow without rules denies all", []*security.Authorization{allow("nothing")}, conn("10.0.0.1", sleep, 80), false, rbac.NoneAllowed, ""},
		{"deny without rules denies nothing", []*security.Authorization{deny("nothing")}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"rule without clauses matches all", []*security.Authorization{deny("d", rule())}, conn("10.0.0.1", bar, 80), false, rbac.Denied, "default/d"},
		{"clause without matches holds", []*security.Authorization{deny("d", rule(clause(), fromFoo))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"clause of empty matches never holds", []*security.Authorization{deny("d", rule(clause(&security.Match{}), fromFoo))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"clauses are AND-ed", []*security.Authorization{deny("d", rule(fromFoo, clause(&security.Match{DestinationPorts: []uint32{81}})))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"matches in a clause are OR-ed", []*security.Authorization{deny("d", rule(clause(&security.Match{Namespaces: ex("x")}, &security.Match{DestinationPorts: []uint32{80}})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"rules are OR-ed", []*security.Authorization{deny("d", rule(clause(&security.Match{Namespaces: ex("x")})), rule(fromFoo))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"fields of a match are AND-ed", []*security.Authorization{deny("d", rule(clause(&security.Match{Namespaces: ex("foo"), DestinationPorts: []uint32{81}})))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		// Principals (without spiffe://).
		{"principal exact", []*security.Authorization{deny("d", rule(clause(&security.Match{Principals: ex("cluster.local/ns/foo/sa/sleep")})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"principal with spiffe:// never matches", []*security.Authorization{deny("d", rule(clause(&security.Match{Principals: ex("spiffe://cluster.local/ns/foo/sa/sleep")})))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"principal prefix", []*security.Authorization{deny("d", rule(clause(&security.Match{Principals: pre("cluster.local/ns/foo/")})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"principal suffix", []*security.Authorization{deny("d", rule(clause(&security.Match{Principals: suf("/sa/sleep")})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"principal presence with identity", []*security.Authorization{allow("a", rule(clause(&security.Match{Principals: present()})))}, conn("10.0.0.1", sleep, 80), true, rbac.Allowed, "default/a"},
		{"principal presence without identity", []*security.Authorization{allow("a", rule(clause(&security.Match{Principals: present()})))}, conn("10.0.0.1", identity.Identity{}, 80), false, rbac.NoneAllowed, ""},
		{"notPrincipals", []*security.Authorization{deny("d", rule(clause(&security.Match{NotPrincipals: ex("cluster.local/ns/bar/sa/client")})))}, conn("10.0.0.1", bar, 80), true, rbac.NoAllowPolicy, ""},
		{"STRICT: notPrincipals presence denies plaintext", []*security.Authorization{deny("istio_converted_static_strict", rule(clause(&security.Match{NotPrincipals: present()})))}, conn("10.0.0.1", identity.Identity{}, 80), false, rbac.Denied, "default/istio_converted_static_strict"},
		{"STRICT: notPrincipals presence lets mTLS through", []*security.Authorization{deny("s", rule(clause(&security.Match{NotPrincipals: present()})))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		// Namespaces come from the peer identity.
		{"namespace prefix", []*security.Authorization{deny("d", rule(clause(&security.Match{Namespaces: pre("fo")})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"notNamespaces", []*security.Authorization{allow("a", rule(clause(&security.Match{NotNamespaces: ex("foo")})))}, conn("10.0.0.1", bar, 80), true, rbac.Allowed, "default/a"},
		{"plaintext: DENY namespaces foo does not deny (Istio semantics)", []*security.Authorization{deny("d", rule(fromFoo))}, conn("10.0.0.1", identity.Identity{}, 80), true, rbac.NoAllowPolicy, ""},
		{"plaintext: ALLOW notNamespaces foo allows (Istio semantics)", []*security.Authorization{allow("a", rule(clause(&security.Match{NotNamespaces: ex("foo")})))}, conn("10.0.0.1", identity.Identity{}, 80), true, rbac.Allowed, "default/a"},
		{"literal match: a.b is not axb", []*security.Authorization{deny("d", rule(clause(&security.Match{Namespaces: ex("a.b")})))}, conn("10.0.0.1", identity.New("td", "axb", "s"), 80), true, rbac.NoAllowPolicy, ""},
		// Service accounts.
		{"serviceAccounts", []*security.Authorization{deny("d", rule(clause(&security.Match{ServiceAccounts: sa("foo", "sleep")})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"serviceAccounts other namespace", []*security.Authorization{deny("d", rule(clause(&security.Match{ServiceAccounts: sa("bar", "sleep")})))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"serviceAccounts without identity", []*security.Authorization{allow("a", rule(clause(&security.Match{ServiceAccounts: sa("foo", "sleep")})))}, conn("10.0.0.1", identity.Identity{}, 80), false, rbac.NoneAllowed, ""},
		{"notServiceAccounts", []*security.Authorization{deny("d", rule(clause(&security.Match{NotServiceAccounts: sa("foo", "sleep")})))}, conn("10.0.0.1", bar, 80), false, rbac.Denied, "default/d"},
		// Addresses and ports.
		{"sourceIps CIDR", []*security.Authorization{deny("d", rule(clause(&security.Match{SourceIps: cidr("10.244.2.0/24")})))}, conn("10.244.2.12", sleep, 80), false, rbac.Denied, "default/d"},
		{"sourceIps v4-mapped source", []*security.Authorization{deny("d", rule(clause(&security.Match{SourceIps: cidr("10.244.2.0/24")})))}, conn("::ffff:10.244.2.12", sleep, 80), false, rbac.Denied, "default/d"},
		{"notSourceIps", []*security.Authorization{deny("d", rule(clause(&security.Match{NotSourceIps: cidr("10.0.0.0/8")})))}, conn("192.168.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"sourceIps 0.0.0.0/0", []*security.Authorization{deny("d", rule(clause(&security.Match{SourceIps: cidr("0.0.0.0/0")})))}, conn("192.168.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"destinationIps", []*security.Authorization{deny("d", rule(clause(&security.Match{DestinationIps: cidr("10.244.1.5/32")})))}, conn("10.0.0.1", sleep, 80), false, rbac.Denied, "default/d"},
		{"notDestinationIps", []*security.Authorization{deny("d", rule(clause(&security.Match{NotDestinationIps: cidr("10.244.1.0/24")})))}, conn("10.0.0.1", sleep, 80), true, rbac.NoAllowPolicy, ""},
		{"destinationPorts is the target port", []*security.Authorization{allow("a", rule(clause(&security.Match{DestinationPorts: []uint32{8080}})))}, conn("10.0.0.1", sleep, 8080), true, rbac.Allowed, "default/a"},
		{"notDestinationPorts (PERMISSIVE port)", []*security.Authorization{deny("s", rule(clause(&security.Match{NotPrincipals: present(), NotDestinationPorts: []uint32{9090}})))}, conn("10.0.0.1", identity.Identity{}, 9090), true, rbac.NoAllowPolicy, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []*rbac.Policy
			for _, p := range tt.policies {
				ps = append(ps, rbac.Compile(p))
			}
			d := rbac.Evaluate(&tt.c, ps)
			if d.Allow != tt.allow || d.Reason != tt.reason || d.Policy != tt.policy {
				t.Errorf("got allow=%v %q, want allow=%v %q %s", d.Allow, d, tt.allow, tt.reason, tt.policy)
			}
		})
	}
	if len(tests) < 40 {
		t.Errorf("%d cases; the matcher table should keep at least 40", len(tests))
	}
}

func TestDryRunReported(t *testing.T) {
	ztest.NoLeaks(t)
	c := conn("10.0.0.1", sleep, 80)
	d := rbac.Evaluate(&c, []*rbac.Policy{rbac.Compile(dry(deny("d", rule()))), rbac.Compile(dry(allow("a", rule())))})
	if !d.Allow || d.DryRunDeny != "default/d" || d.DryRunAllow != "default/a" {
		t.Errorf("decision %+v", d)
	}
	if d.String() != "no allow policies exist" {
		t.Errorf("String() = %q", d.String())
	}
}

func BenchmarkEvaluate(b *testing.B) {
	ps := []*rbac.Policy{
		rbac.Compile(deny("strict", rule(clause(&security.Match{NotPrincipals: present()})))),
		rbac.Compile(deny("httpbin", rule(clause(&security.Match{Namespaces: ex("foo")})))),
		rbac.Compile(allow("a", rule(clause(&security.Match{Principals: pre("cluster.local/ns/bar/"), SourceIps: cidr("10.0.0.0/8")}), clause(&security.Match{DestinationPorts: []uint32{80, 8080}})))),
	}
	c := conn("10.244.2.13", bar, 8080)
	b.ReportAllocs()
	for b.Loop() {
		if d := rbac.Evaluate(&c, ps); !d.Allow {
			b.Fatal(d)
		}
	}
}
