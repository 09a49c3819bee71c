package dns

import (
	"reflect"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func collect(f func(yield func(string) bool) bool) []string {
	var out []string
	f(func(s string) bool { out = append(out, s); return true })
	return out
}

// TestKubeFQDNs pins Rust's to_kube_fqdns (src/dns/server.rs test_to_kube_fqdns): the
// same hosts, the same expansions, in the same order.
func TestKubeFQDNs(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		host string
		want []string
	}{
		{"name", []string{"name.ns1.svc.cluster.local"}},
		{"name.ns2", []string{"name.ns2.svc.cluster.local", "name.ns2.ns1.svc.cluster.local"}},
		{"name.ns2.svc", []string{"name.ns2.svc.cluster.local", "name.ns2.svc.svc.cluster.local"}},
		{"name.ns2.not-svc", []string{"name.ns2.not-svc.svc.cluster.local"}},
		{"pod.sub-domain.ns.svc", []string{"pod.sub-domain.ns.svc.cluster.local"}},
		{"pod.sub-domain.ns.not-svc", nil},
		{"name.ns2.svc.cluster", nil},
		{"name.ns2.svc.cluster.local", nil},
		{"www.google.com", []string{"www.google.com.svc.cluster.local"}},
	}
	for _, tt := range tests {
		got := collect(func(y func(string) bool) bool { return kubeFQDNs(tt.host, "ns1", "cluster.local", y) })
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("kubeFQDNs(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// TestWildcards pins Rust's get_wildcards.
func TestWildcards(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		name string
		want []string
	}{
		{"svc1", []string{"svc1"}},
		{"svc1.ns1", []string{"svc1.ns1", "*.ns1"}},
		{"svc1.ns1.svc.cluster.local", []string{"svc1.ns1.svc.cluster.local", "*.ns1.svc.cluster.local", "*.svc.cluster.local", "*.cluster.local", "*.local"}},
	}
	for _, tt := range tests {
		var got []string
		eachWildcard(tt.name, func(h string, _ bool) bool { got = append(got, h); return true })
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("wildcards(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDomains pins Rust's has_domain and trim_domain (src/dns/name_util.rs).
func TestDomains(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		name, domain, trimmed string
		has                   bool
	}{
		{"name.ns.svc.cluster.local", "svc.cluster.local", "name.ns", true},
		{"name.ns.a.different.domain", "svc.cluster.local", "", false},
		{"cluster.com", "svc.cluster.local", "", false},
		{"svc.cluster.local", "svc.cluster.local", "", false},
		{"xsvc.cluster.local", "svc.cluster.local", "", false}, // a label, not a suffix of one
		{"a.b", "*.b", "", false},
	}
	for _, tt := range tests {
		if got := hasDomain(tt.name, tt.domain); got != tt.has {
			t.Errorf("hasDomain(%q, %q) = %v", tt.name, tt.domain, got)
		}
		if got, ok := trimDomain(tt.name, tt.domain); got != tt.trimmed || ok != tt.has {
			t.Errorf("trimDomain(%q, %q) = %q, %v", tt.name, tt.domain, got, ok)
		}
	}
}

// TestAliases pins Rust's get_aliases order for a pod in ns1 with Kubernetes' search
// list: the name, its expansions, then each search domain stripped and expanded, with
// no name twice.
func TestAliases(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		name string
		want []alias
	}{
		{"httpbin", []alias{{"httpbin", ""}, {"httpbin.ns1.svc.cluster.local", ""}}},
		{"httpbin.default", []alias{{"httpbin.default", ""}, {"httpbin.default.svc.cluster.local", ""},
			{"httpbin.default.ns1.svc.cluster.local", ""}}},
		{"httpbin.default.ns1.svc.cluster.local", []alias{
			{"httpbin.default.ns1.svc.cluster.local", ""},
			{"httpbin.default", "httpbin.default"},
			{"httpbin.default.svc.cluster.local", "httpbin.default"},
			{"httpbin.default.ns1", "httpbin.default.ns1"},
			{"httpbin.default.ns1.svc", "httpbin.default.ns1.svc"},
		}},
	}
	for _, tt := range tests {
		var got []alias
		eachAlias(tt.name, "ns1", "cluster.local", func() []string { return kubeSearch("ns1", "cluster.local") },
			func(a alias) bool { got = append(got, a); return true })
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("aliases(%q) =\n %q\nwant\n %q", tt.name, got, tt.want)
		}
	}
}

// TestAliasesStopEarly: the first alias that matches ends the walk, so a full service
// name costs nothing more.
func TestAliasesStopEarly(t *testing.T) {
	ztest.NoLeaks(t)
	n := 0
	eachAlias("a.b.c.d.e.f", "ns1", "cluster.local", func() []string { t.Fatal("search list built"); return nil },
		func(alias) bool { n++; return false })
	if n != 1 {
		t.Errorf("yielded %d aliases after a stop", n)
	}
}
