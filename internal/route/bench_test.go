package route

import (
	"testing"
)

// BenchmarkOutbound is one connection's routing decision: a VIP to an endpoint, and a
// pod IP behind a waypoint. Explanations off, as on the data path.
func BenchmarkOutbound(b *testing.B) {
	snap := mesh(b)
	src := snap.WorkloadByName("ns", "client")
	for _, dst := range []string{"10.96.0.1:80", "10.0.0.5:80"} {
		b.Run(dst, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (Router{}).Outbound(snap, src, src.IPs[0], ap(dst)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOutboundDoubleHBONE is the decision for a VIP whose endpoint is another
// network's: load balancing, then the gateway's lookup and identities.
func BenchmarkOutboundDoubleHBONE(b *testing.B) {
	snap := remoteMesh(b, nil)
	src := snap.WorkloadByName("ns", "client")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Router{}).Outbound(snap, src, src.IPs[0], ap("10.96.0.1:80")); err != nil {
			b.Fatal(err)
		}
	}
}
