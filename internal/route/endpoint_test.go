package route

import (
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

const svcKey = "ns/svc.ns.svc.cluster.local"

// endpoint is a workload of the service in a zone, with a capacity (nil: default 1).
func endpoint(name, ip, zone string, capacity *uint32) *workloadapi.Workload {
	w := ztest.WithService(ztest.Workload("ns", name, ip), svcKey, 80, 8080)
	w.Locality = &workloadapi.Locality{Region: "r1", Zone: zone}
	if capacity != nil {
		w.Capacity = wrapperspb.UInt32(*capacity)
	}
	return w
}

// TestLoadBalance pins Rust ProxyState::load_balance (test_load_balance): capacity as
// weight, FAILOVER keeping the best-ranked endpoints, STRICT only those matching every
// scope.
func TestLoadBalance(t *testing.T) {
	ztest.NoLeaks(t)
	zero, heavy := uint32(0), uint32(1000)
	prefs := []workloadapi.LoadBalancing_Scope{workloadapi.LoadBalancing_REGION, workloadapi.LoadBalancing_ZONE}
	tests := []struct {
		name  string
		mode  workloadapi.LoadBalancing_Mode
		eps   []*workloadapi.Workload
		want  map[string]bool // names that may be chosen
		empty bool
	}{
		{"standard spreads", 0, []*workloadapi.Workload{endpoint("a", "10.0.0.1", "z1", nil), endpoint("b", "10.0.0.2", "z2", nil)},
			map[string]bool{"a": true, "b": true}, false},
		{"capacity 0 is never chosen", 0, []*workloadapi.Workload{endpoint("a", "10.0.0.1", "z1", &zero), endpoint("b", "10.0.0.2", "z2", nil)},
			map[string]bool{"b": true}, false},
		{"failover prefers the client's zone", workloadapi.LoadBalancing_FAILOVER,
			[]*workloadapi.Workload{endpoint("near", "10.0.0.1", "z1", nil), endpoint("far", "10.0.0.2", "z2", &heavy)},
			map[string]bool{"near": true}, false},
		{"failover falls back to another zone", workloadapi.LoadBalancing_FAILOVER,
			[]*workloadapi.Workload{endpoint("far", "10.0.0.2", "z2", nil)}, map[string]bool{"far": true}, false},
		{"strict refuses another zone", workloadapi.LoadBalancing_STRICT,
			[]*workloadapi.Workload{endpoint("far", "10.0.0.2", "z2", nil)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := state.NewStore()
			svc := ztest.Service("ns", "svc", []string{"10.96.0.1"}, 80, 0)
			svc.LoadBalancing = &workloadapi.LoadBalancing{Mode: tt.mode, RoutingPreference: prefs}
			client := ztest.Workload("ns", "client", "10.0.1.1")
			client.Locality = &workloadapi.Locality{Region: "r1", Zone: "z1"}
			u := state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(svc), ztest.AsAddress(client)}}
			for _, w := range tt.eps {
				u.Addresses = append(u.Addresses, ztest.AsAddress(w))
			}
			s.Apply(u)
			snap := s.Snapshot()
			src := snap.WorkloadByUID(client.Uid)
			got := map[string]bool{}
			r := Router{Rand: cycle()}
			for range 50 {
				w, port, err := r.loadBalance(snap, src, snap.ServiceByKey(svcKey), 80, standard)
				if tt.empty {
					if err == nil {
						t.Fatalf("chose %s, want no endpoint", w.Name)
					}
					return
				}
				if err != nil || port != 8080 {
					t.Fatalf("pick = %v, port %d, %v", w, port, err)
				}
				got[w.Name] = true
			}
			for name := range got {
				if !tt.want[name] {
					t.Errorf("chose %s, want only %v", name, tt.want)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("chose %v over 50 picks, want all of %v", got, tt.want)
			}
		})
	}
}

// cycle draws 0, 1, 2, … modulo n: every weight slot in turn, so that a table sees each
// choice a weighted pick can make without depending on chance.
func cycle() func(uint64) uint64 {
	var i uint64
	return func(n uint64) uint64 {
		i++
		return (i - 1) % n
	}
}
