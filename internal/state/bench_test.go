package state_test

import (
	"fmt"
	"testing"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// benchStore holds 1,000 workloads in 100 services and one CIDR service: a busy node.
func benchStore() *state.Store {
	s := state.NewStore()
	var u state.Update
	for i := range 100 {
		u.Addresses = append(u.Addresses, ztest.AsAddress(ztest.Service("ns", fmt.Sprintf("s%d", i), []string{fmt.Sprintf("10.96.0.%d", i)}, 80, 8080)))
	}
	u.Addresses = append(u.Addresses, ztest.AsAddress(ztest.Service("ns", "cidr", []string{"10.200.0.0/16"}, 80, 80)))
	for i := range 1000 {
		w := ztest.Workload("ns", fmt.Sprintf("w-%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250))
		ztest.WithService(w, fmt.Sprintf("ns/s%d.ns.svc.cluster.local", i%100), 80, 8080)
		u.Addresses = append(u.Addresses, ztest.AsAddress(w))
	}
	s.Apply(u)
	return s
}

func BenchmarkWorkloadByAddr(b *testing.B) {
	snap := benchStore().Snapshot()
	addr := ip("10.0.3.7")
	b.ReportAllocs()
	for b.Loop() {
		if snap.WorkloadByAddr("", addr) == nil {
			b.Fatal("miss")
		}
	}
}

func BenchmarkServiceByVIP(b *testing.B) {
	snap := benchStore().Snapshot()
	for _, tc := range []struct{ name, ip string }{{"exact", "10.96.0.42"}, {"cidr", "10.200.3.4"}} {
		addr := ip(tc.ip)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if snap.ServiceByVIP("", addr, "") == nil {
					b.Fatal("miss")
				}
			}
		})
	}
}

// BenchmarkApply is the cost of one xDS push of one workload on a 1,000-workload node,
// which rebuilds the snapshot.
func BenchmarkApply(b *testing.B) {
	s := benchStore()
	w := ztest.Workload("ns", "churn", "10.9.0.1")
	u := state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(w)}}
	b.ReportAllocs()
	for b.Loop() {
		s.Apply(u)
	}
}
