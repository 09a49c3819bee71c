package dns

import (
	"fmt"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// benchSnapshot is a busy node's view: 1,000 services in 10 namespaces, a client pod.
func benchSnapshot() *state.Snapshot {
	s := state.NewStore()
	var u state.Update
	for i := range 1000 {
		u.Addresses = append(u.Addresses, ztest.AsAddress(ztest.Service(fmt.Sprintf("ns%d", i%10), fmt.Sprintf("s%d", i),
			[]string{fmt.Sprintf("10.96.%d.%d", i/250, i%250)}, 80, 8080)))
	}
	u.Addresses = append(u.Addresses, ztest.AsAddress(ztest.Workload("ns1", "client", "10.0.0.1")))
	s.Apply(u)
	return s.Snapshot()
}

// BenchmarkMeshLookup answers a mesh name from the snapshot the way each query does:
// the full name (the first alias matches), the short name a pod's resolver tries first
// with its search list, and a name the mesh does not know (every alias and wildcard is
// tried before it is forwarded).
func BenchmarkMeshLookup(b *testing.B) {
	snap := benchSnapshot()
	client := snap.WorkloadByName("ns1", "client")
	m := &Mesh{Domain: "cluster.local", IPv6: true}
	for _, bc := range []struct{ name, qname string }{
		{"fqdn", "s11.ns1.svc.cluster.local"},
		{"name.namespace.search", "s11.ns1.ns1.svc.cluster.local"},
		{"short", "s11"},
		{"miss", "www.example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ans := m.Lookup(snap, client, bc.qname, mdns.TypeA, false)
				if ans.Found == strings.HasPrefix(bc.qname, "www") {
					b.Fatalf("lookup of %s: %+v", bc.qname, ans)
				}
			}
		})
	}
}

// BenchmarkAnswer is a whole mesh answer as the handler builds it: parse, look up, and
// pack the reply (what a UDP query costs but for the two syscalls).
func BenchmarkAnswer(b *testing.B) {
	s := fuzzServer(b)
	q, _ := question("productpage.ns1.svc.cluster.local.", mdns.TypeA).Pack()
	b.ReportAllocs()
	for b.Loop() {
		if _, out := serveBytes(s, "udp", q); len(out) != 1 {
			b.Fatal("no answer")
		}
	}
}
