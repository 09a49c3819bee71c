package dns

import (
	"slices"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// meshYAML is the mesh of the lookup tests, after Rust's src/dns/server.rs test state:
// a client in ns1 on the default network, services across namespaces and networks,
// single- and dual-stack, wildcard hosts, headless services and a headless pod.
const meshYAML = `
workloads:
- {uid: c/client, name: client, namespace: ns1, workloadIps: ["10.0.0.1"], canonicalName: client, canonicalRevision: v1}
- {uid: c/other, name: other, namespace: ns2, workloadIps: ["10.0.0.2"]}
- {uid: c/hl-0, name: hl-0, namespace: ns1, workloadIps: ["30.30.30.30", "2001:db8::30"],
   services: {"ns1/headless.ns1.svc.cluster.local": {80: 80}}}
- {uid: c/hl-1, name: hl-1, namespace: ns1, workloadIps: ["31.31.31.31", "2001:db8::31"],
   services: {"ns1/headless.ns1.svc.cluster.local": {80: 80}}}
- {uid: c/hl6, name: hl6, namespace: ns1, workloadIps: ["2001:db8::33"],
   services: {"ns1/headless-ipv6.ns1.svc.cluster.local": {80: 80}}}
- {uid: c/ext-0, name: ext-0, namespace: ns1, workloadIps: ["40.40.40.40"],
   services: {"ns1/headless.example.com": {80: 80}}}
- {uid: c/web-0, name: web-0, namespace: ns1, workloadIps: ["10.0.5.5"], hostname: web-0.web.ns1.svc.cluster.local}
- {uid: c/dns-only, name: dns-only, namespace: ns1, hostname: dns-only.example.com}
services:
- {name: productpage, namespace: ns1, hostname: productpage.ns1.svc.cluster.local, vips: ["/9.9.9.9"]}
- {name: example, namespace: ns2, hostname: example.ns2.svc.cluster.local, vips: ["/10.10.10.10"]}
- {name: details, namespace: ns2, hostname: details.ns2.svc.cluster.remote, vips: ["/11.11.11.11", "/12.12.12.12"]}
- {name: dual, namespace: ns1, hostname: dual.localhost, vips: ["/2.2.2.2", "/2001:db8::ff00:42:8329"]}
- {name: ipv6, namespace: ns1, hostname: ipv6.localhost, vips: ["/2001:db8::1"]}
- {name: ipv4, namespace: ns1, hostname: ipv4.localhost, vips: ["/3.3.3.3"]}
- {name: v4only, namespace: ns1, hostname: v4only.localhost, vips: ["/4.4.4.4", "/2001:db8::4"], ipFamilies: IPv4}
- {name: wild, namespace: ns1, hostname: "*.wildcard", vips: ["/10.10.10.10"]}
- {name: wild2, namespace: ns1, hostname: "*.b.wildcard", vips: ["/11.11.11.11"]}
- {name: mesh, namespace: ns1, hostname: "*.svc.mesh.company.net", vips: ["/10.1.2.3"]}
- {name: nw2-only, namespace: ns1, hostname: nw2-only.ns1.svc.cluster.local, vips: ["nw2/21.21.21.22"]}
- {name: both, namespace: ns1, hostname: both-networks.ns1.svc.cluster.local, vips: ["/21.21.21.21", "nw2/21.21.21.22"]}
- {name: headless, namespace: ns1, hostname: headless.ns1.svc.cluster.local, vips: []}
- {name: headless-ipv6, namespace: ns1, hostname: headless-ipv6.ns1.svc.cluster.local, vips: []}
- {name: ext, namespace: ns1, hostname: headless.example.com, vips: []}
- {name: nslocal, namespace: ns2, hostname: nslocal.ns2.svc.cluster.local, vips: ["/10.10.10.240"], visibility: Namespace}
- {name: nslocalsame, namespace: ns1, hostname: nslocalsame.ns1.svc.cluster.local, vips: ["/10.10.10.241"], visibility: Namespace}
- {name: preferred, namespace: ns2, hostname: preferred.io, vips: ["/10.10.10.210"]}
- {name: preferred, namespace: preferred-ns, hostname: preferred.io, vips: ["/10.10.10.211"]}
- {name: everywhere, namespace: ns2, hostname: everywhere.io, vips: ["/10.10.10.111"]}
- {name: everywhere, namespace: ns1, hostname: everywhere.io, vips: ["/10.10.10.112"]}
- {name: canonical, namespace: ns3, hostname: canonical.svc, vips: ["/10.10.10.140"]}
- {name: canonical, namespace: ns2, hostname: canonical.svc, vips: ["/10.10.10.141"], canonical: true}
- {name: canonical, namespace: ns2, hostname: canonical.with.local, vips: ["/10.10.10.151"], canonical: true}
- {name: canonical, namespace: ns1, hostname: canonical.with.local, vips: ["/10.10.10.150"]}
`

// testStore holds a static config, as LOCAL_XDS would.
func testStore(t testing.TB, yaml string) *state.Store {
	t.Helper()
	lc, err := xds.ParseLocalConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	store := state.NewStore()
	if err := lc.Apply(store); err != nil {
		t.Fatal(err)
	}
	return store
}

func testSnapshot(t testing.TB, yaml string) *state.Snapshot { return testStore(t, yaml).Snapshot() }

func testMesh() *Mesh {
	return &Mesh{Domain: "cluster.local", IPv6: true, PreferredNamespace: "preferred-ns"}
}

// TestMeshLookup follows Rust's lookup cases (src/dns/server.rs `lookup`): which names
// the mesh answers, with which records, and which it leaves to upstream DNS.
func TestMeshLookup(t *testing.T) {
	ztest.NoLeaks(t)
	snap := testSnapshot(t, meshYAML)
	client := snap.WorkloadByUID("c/client")
	A, AAAA := mdns.TypeA, mdns.TypeAAAA
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		found    bool
		addrs    []string
		stripped string
	}{
		{"fqdn", "productpage.ns1.svc.cluster.local", A, true, []string{"9.9.9.9"}, ""},
		{"name.namespace", "productpage.ns1", A, true, []string{"9.9.9.9"}, ""},
		{"short name", "productpage", A, true, []string{"9.9.9.9"}, ""},
		{"search domain appended: CNAME", "productpage.ns1.ns1.svc.cluster.local", A, true, []string{"9.9.9.9"}, "productpage.ns1"},
		{"search domain, AAAA of an IPv4 service: empty", "productpage.ns1.ns1.svc.cluster.local", AAAA, true, nil, "productpage.ns1"},
		{"other namespace name.namespace", "example.ns2", A, true, []string{"10.10.10.10"}, ""},
		{"other namespace fqdn", "example.ns2.svc.cluster.local", A, true, []string{"10.10.10.10"}, ""},
		{"other namespace name.namespace.svc", "example.ns2.svc", A, true, []string{"10.10.10.10"}, ""},
		{"other namespace short name: forwarded", "example", A, false, nil, ""},
		{"namespace-visible service of another namespace: forwarded", "nslocal.ns2.svc.cluster.local", A, false, nil, ""},
		{"namespace-visible service of the client's namespace", "nslocalsame.ns1.svc.cluster.local", A, true, []string{"10.10.10.241"}, ""},
		{"remote domain fqdn", "details.ns2.svc.cluster.remote", A, true, []string{"11.11.11.11", "12.12.12.12"}, ""},
		{"remote domain short: forwarded", "details.ns2", A, false, nil, ""},
		{"dual stack A", "dual.localhost", A, true, []string{"2.2.2.2"}, ""},
		{"dual stack AAAA", "dual.localhost", AAAA, true, []string{"2001:db8::ff00:42:8329"}, ""},
		{"IPv6 only, A: empty", "ipv6.localhost", A, true, nil, ""},
		{"IPv4 only, AAAA: empty", "ipv4.localhost", AAAA, true, nil, ""},
		{"ipFamilies IPv4 hides the IPv6 VIP", "v4only.localhost", AAAA, true, nil, ""},
		{"wildcard", "foo.wildcard", A, true, []string{"10.10.10.10"}, ""},
		{"more specific wildcard", "a.b.wildcard", A, true, []string{"11.11.11.11"}, ""},
		{"wildcard with domain", "foo.svc.mesh.company.net", A, true, []string{"10.1.2.3"}, ""},
		{"wildcard deeper", "foo.foons.svc.mesh.company.net", A, true, []string{"10.1.2.3"}, ""},
		{"wildcard with search domain: no CNAME", "foo.svc.mesh.company.net.ns1.svc.cluster.local", A, true, []string{"10.1.2.3"}, ""},
		{"no VIP on the client's network", "nw2-only.ns1.svc.cluster.local", A, true, nil, ""},
		{"the client network's VIP only", "both-networks.ns1.svc.cluster.local", A, true, []string{"21.21.21.21"}, ""},
		{"headless A: endpoint IPs", "headless.ns1.svc.cluster.local", A, true, []string{"30.30.30.30", "31.31.31.31"}, ""},
		{"headless AAAA", "headless.ns1.svc.cluster.local", AAAA, true, []string{"2001:db8::30", "2001:db8::31"}, ""},
		{"headless IPv6 endpoints, AAAA", "headless-ipv6.ns1.svc.cluster.local", AAAA, true, []string{"2001:db8::33"}, ""},
		{"headless IPv6 endpoints, A: empty", "headless-ipv6.ns1.svc.cluster.local", A, true, nil, ""},
		{"VIP-less ServiceEntry: forwarded", "headless.example.com", A, false, nil, ""},
		{"headless pod fqdn", "web-0.web.ns1.svc.cluster.local", A, true, []string{"10.0.5.5"}, ""},
		{"headless pod host.subdomain", "web-0.web", A, true, []string{"10.0.5.5"}, ""},
		{"headless pod host.subdomain.ns", "web-0.web.ns1", A, true, []string{"10.0.5.5"}, ""},
		{"headless pod host.subdomain.ns.svc", "web-0.web.ns1.svc", A, true, []string{"10.0.5.5"}, ""},
		{"headless pod with search domain: CNAME", "web-0.web.ns1.ns1.svc.cluster.local", A, true, []string{"10.0.5.5"}, "web-0.web.ns1"},
		{"hostname-only workload: forwarded", "dns-only.example.com", A, false, nil, ""},
		{"preferred namespace wins when the client's has none", "preferred.io", A, true, []string{"10.10.10.211"}, ""},
		{"the client's namespace wins", "everywhere.io", A, true, []string{"10.10.10.112"}, ""},
		{"canonical wins over the first", "canonical.svc", A, true, []string{"10.10.10.141"}, ""},
		{"the client's namespace wins over canonical", "canonical.with.local", A, true, []string{"10.10.10.150"}, ""},
		{"unknown: forwarded", "www.example.org", A, false, nil, ""},
	}
	m := testMesh()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := m.Lookup(snap, client, tt.qname, tt.qtype, false)
			var got []string
			for _, a := range ans.Addrs {
				got = append(got, a.String())
			}
			slices.Sort(got)
			if ans.Found != tt.found || !slices.Equal(got, tt.addrs) || ans.Stripped != tt.stripped {
				t.Errorf("Lookup(%s) = found %v %v stripped %q; want %v %v %q (%+v)", tt.qname, ans.Found, got, ans.Stripped,
					tt.found, tt.addrs, tt.stripped, ans)
			}
			if ans.Found && len(ans.Addrs) == 0 && ans.Empty == "" {
				t.Errorf("an empty answer says why not")
			}
		})
	}
}

// TestMeshIPv6Disabled: IPV6_ENABLED=false answers every AAAA empty, even dual-stack.
func TestMeshIPv6Disabled(t *testing.T) {
	ztest.NoLeaks(t)
	snap := testSnapshot(t, meshYAML)
	m := testMesh()
	m.IPv6 = false
	ans := m.Lookup(snap, snap.WorkloadByUID("c/client"), "dual.localhost", mdns.TypeAAAA, false)
	if !ans.Found || len(ans.Addrs) != 0 || ans.Empty != "IPv6 is disabled" {
		t.Errorf("AAAA with IPv6 off = %+v", ans)
	}
}

// TestMeshStaticSearch: dedicated mode strips ztunnel's own search list, not the
// Kubernetes list of the client's namespace.
func TestMeshStaticSearch(t *testing.T) {
	ztest.NoLeaks(t)
	snap := testSnapshot(t, meshYAML)
	m := testMesh()
	m.Search = []string{"corp.example"}
	client := snap.WorkloadByUID("c/client")
	if ans := m.Lookup(snap, client, "productpage.ns1.corp.example", mdns.TypeA, false); !ans.Found || ans.Stripped != "productpage.ns1" {
		t.Errorf("static search: %+v", ans)
	}
	if ans := m.Lookup(snap, client, "productpage.ns1.ns1.svc.cluster.local", mdns.TypeA, false); ans.Found {
		t.Errorf("the Kubernetes list must not apply: %+v", ans)
	}
}

// TestMeshExplain lists the hosts tried, in order, up to the match.
func TestMeshExplain(t *testing.T) {
	ztest.NoLeaks(t)
	snap := testSnapshot(t, meshYAML)
	ans := testMesh().Lookup(snap, snap.WorkloadByUID("c/client"), "productpage", mdns.TypeA, true)
	want := []string{"productpage", "productpage.ns1.svc.cluster.local"}
	if !slices.Equal(ans.Tried, want) || ans.Key != "ns1/productpage.ns1.svc.cluster.local" || ans.Alias != want[1] {
		t.Errorf("explain = %+v", ans)
	}
}
