package state_test

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ip = netip.MustParseAddr

func apply(t *testing.T, s *state.Store, items ...any) {
	t.Helper()
	var u state.Update
	for _, it := range items {
		switch v := it.(type) {
		case *security.Authorization:
			u.Policies = append(u.Policies, v)
		default:
			u.Addresses = append(u.Addresses, ztest.AsAddress(v))
		}
	}
	if errs := s.Apply(u); len(errs) > 0 {
		t.Fatalf("Apply: %v", errs)
	}
}

func TestVIPToEndpointsWithPortTranslation(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	svc := ztest.Service("default", "httpbin", []string{"10.96.130.105"}, 8000, 80, 9000, 0)
	a := ztest.WithService(ztest.Workload("default", "httpbin-a", "10.244.1.7"), "default/httpbin.default.svc.cluster.local", 8000, 80, 9000, 9090)
	b := ztest.WithService(ztest.Workload("default", "httpbin-b", "10.244.1.8"), "default/httpbin.default.svc.cluster.local", 8000, 0)
	apply(t, s, svc, a, b)

	got := s.Snapshot().ServiceByVIP("", ip("10.96.130.105"), "")
	if got == nil || len(got.Endpoints) != 2 {
		t.Fatalf("service by VIP = %+v", got)
	}
	tests := []struct {
		ep       int
		port     uint32
		want     uint32
		resolves bool
	}{
		{0, 8000, 80, true},   // endpoint mapping
		{1, 8000, 80, true},   // endpoint says 0: the service's target
		{0, 9000, 9090, true}, // named port resolved by the endpoint
		{1, 9000, 0, false},   // named port the endpoint does not expose
		{0, 1234, 0, false},   // not a service port
	}
	for _, tt := range tests {
		p, ok := got.TargetPort(got.Endpoints[tt.ep], tt.port)
		if p != tt.want || ok != tt.resolves {
			t.Errorf("endpoint %d port %d → %d,%v; want %d,%v", tt.ep, tt.port, p, ok, tt.want, tt.resolves)
		}
	}
	if got.Endpoint(a.Uid) == nil || got.Endpoint("nope") != nil {
		t.Error("Endpoint(uid) lookup wrong")
	}
}

func TestCIDRVIPLongestPrefix(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	apply(t, s,
		ztest.Service("ns", "wide", []string{"10.0.0.0/8"}, 80, 80),
		ztest.Service("ns", "narrow", []string{"10.1.0.0/16"}, 80, 80),
		ztest.Service("ns", "exact", []string{"10.1.2.3"}, 80, 80),
		ztest.Service("ns", "v6", []string{"fd00::/64"}, 80, 80),
	)
	snap := s.Snapshot()
	tests := []struct{ ip, want string }{
		{"10.1.2.3", "exact"},
		{"10.1.9.9", "narrow"},
		{"10.200.0.1", "wide"},
		{"11.0.0.1", ""},
		{"fd00::5", "v6"},
		{"::ffff:10.1.9.9", "narrow"}, // v4-mapped
	}
	for _, tt := range tests {
		got := snap.ServiceByVIP("", ip(tt.ip), "")
		if name := nameOf(got); name != tt.want {
			t.Errorf("ServiceByVIP(%s) = %q, want %q", tt.ip, name, tt.want)
		}
	}
	if snap.ServiceByVIP("other-net", ip("10.1.2.3"), "") != nil {
		t.Error("VIPs are per network")
	}
}

func nameOf(s *state.Service) string {
	if s == nil {
		return ""
	}
	return s.Name
}

func TestStagedEndpointsJoinTheirService(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	key := "default/late.default.svc.cluster.local"
	apply(t, s, ztest.WithService(ztest.Workload("default", "w", "10.0.0.1"), key, 80, 8080))
	if st := s.Snapshot().Staged()[key]; len(st) != 1 || st[0].Ports[80] != 8080 {
		t.Fatalf("staged = %+v", s.Snapshot().Staged())
	}
	apply(t, s, ztest.Service("default", "late", []string{"10.96.0.9"}, 80, 0))
	snap := s.Snapshot()
	if len(snap.Staged()) != 0 {
		t.Errorf("still staged: %v", snap.Staged())
	}
	if svc := snap.ServiceByKey(key); svc == nil || len(svc.Endpoints) != 1 {
		t.Errorf("endpoint did not join: %+v", svc)
	}
}

func TestUnhealthyEndpointsFiltered(t *testing.T) {
	ztest.NoLeaks(t)
	for _, policy := range []workloadapi.LoadBalancing_HealthPolicy{workloadapi.LoadBalancing_ONLY_HEALTHY, workloadapi.LoadBalancing_ALLOW_ALL} {
		s := state.NewStore()
		svc := ztest.Service("ns", "svc", []string{"10.96.0.1"}, 80, 80)
		svc.LoadBalancing = &workloadapi.LoadBalancing{HealthPolicy: policy}
		sick := ztest.WithService(ztest.Workload("ns", "sick", "10.0.0.2"), "ns/svc.ns.svc.cluster.local", 80, 80)
		sick.Status = workloadapi.WorkloadStatus_UNHEALTHY
		well := ztest.WithService(ztest.Workload("ns", "well", "10.0.0.3"), "ns/svc.ns.svc.cluster.local", 80, 80)
		apply(t, s, svc, sick, well)
		want := 1
		if policy == workloadapi.LoadBalancing_ALLOW_ALL {
			want = 2
		}
		if got := len(s.Snapshot().ServiceByKey("ns/svc.ns.svc.cluster.local").Endpoints); got != want {
			t.Errorf("%v: %d endpoints, want %d", policy, got, want)
		}
	}
}

func TestRemovedWorkloadLeavesNoTrace(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	key := "ns/svc.ns.svc.cluster.local"
	w := ztest.WithService(ztest.Workload("ns", "w", "10.0.0.1", "fd00::1"), key, 80, 80)
	staged := ztest.WithService(ztest.Workload("ns", "w2", "10.0.0.2"), "ns/none.ns.svc.cluster.local", 80, 80)
	apply(t, s, ztest.Service("ns", "svc", []string{"10.96.0.1"}, 80, 80), w, staged)

	s.Apply(state.Update{RemovedAddresses: []string{w.Uid, staged.Uid}})
	snap := s.Snapshot()
	if snap.WorkloadByUID(w.Uid) != nil || snap.WorkloadByAddr("", ip("10.0.0.1")) != nil ||
		snap.WorkloadByAddr("", ip("fd00::1")) != nil || len(snap.Workloads()) != 0 {
		t.Error("workload still indexed")
	}
	if eps := snap.ServiceByKey(key).Endpoints; len(eps) != 0 {
		t.Errorf("endpoint left behind: %+v", eps)
	}
	if len(snap.Staged()) != 0 {
		t.Errorf("staged endpoint left behind: %+v", snap.Staged())
	}
	s.Apply(state.Update{RemovedAddresses: []string{key}})
	snap = s.Snapshot()
	if snap.ServiceByKey(key) != nil || snap.ServiceByVIP("", ip("10.96.0.1"), "") != nil ||
		len(snap.ServicesByHost("svc.ns.svc.cluster.local")) != 0 {
		t.Error("service still indexed")
	}
}

func TestChangedWorkloadAddressReindexed(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	apply(t, s, ztest.Workload("ns", "w", "10.0.0.1"))
	apply(t, s, ztest.Workload("ns", "w", "10.0.0.9"))
	snap := s.Snapshot()
	if snap.WorkloadByAddr("", ip("10.0.0.1")) != nil || snap.WorkloadByAddr("", ip("10.0.0.9")) == nil {
		t.Error("old address still indexed or new one missing")
	}
}

func TestNewestWinsAddressConflict(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	apply(t, s, ztest.Workload("ns", "old", "10.0.0.1"))
	apply(t, s, ztest.Workload("ns", "new", "10.0.0.1"))
	if got := s.Snapshot().WorkloadByAddr("", ip("10.0.0.1")); got == nil || got.Name != "new" {
		t.Errorf("got %v, want the newest", got)
	}
}

func TestHostNetworkNotIndexedByIP(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	w := ztest.Workload("ns", "hostnet", "10.0.0.1")
	w.NetworkMode = workloadapi.NetworkMode_HOST_NETWORK
	apply(t, s, w)
	if s.Snapshot().WorkloadByAddr("", ip("10.0.0.1")) != nil || s.Snapshot().WorkloadByUID(w.Uid) == nil {
		t.Error("host-network workload must be found by uid only")
	}
}

func TestBadResourcesRefusedOthersApplied(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	bad := ztest.Workload("ns", "bad", "10.0.0.1")
	bad.Addresses = append(bad.Addresses, []byte{1, 2, 3})
	legacy := ztest.Workload("ns", "legacy", "10.0.0.3")
	legacy.TunnelProtocol = workloadapi.TunnelProtocol_LEGACY_ISTIO_MTLS
	badSvc := ztest.Service("ns", "badsvc", nil, 0, 80)
	badPolicy := ztest.DenyFromNamespace("ns", "p", "foo")
	badPolicy.Groups[0].Rules[0].Matches[0].SourceIps = []*security.Address{{Address: []byte{1}}}
	errs := s.Apply(state.Update{
		Addresses: []*workloadapi.Address{ztest.AsAddress(bad), ztest.AsAddress(legacy),
			ztest.AsAddress(ztest.Workload("ns", "good", "10.0.0.2")), ztest.AsAddress(badSvc)},
		Policies: []*security.Authorization{badPolicy, ztest.DenyFromNamespace("ns", "ok", "foo")},
	})
	if len(errs) != 4 {
		t.Fatalf("errors = %v, want 4", errs)
	}
	for _, e := range errs {
		t.Log(e)
	}
	snap := s.Snapshot()
	if snap.WorkloadByAddr("", ip("10.0.0.2")) == nil || snap.Policy("ns/ok") == nil {
		t.Error("valid resources of the batch were not applied")
	}
	if snap.WorkloadByAddr("", ip("10.0.0.1")) != nil || snap.Policy("ns/p") != nil {
		t.Error("invalid resources were applied")
	}
}

func TestDefaultsFilledWithoutTouchingInput(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	w := ztest.Workload("ns", "w", "10.0.0.1")
	w.ServiceAccount = ""
	apply(t, s, w)
	got := s.Snapshot().WorkloadByUID(w.Uid)
	if got.TrustDomain != "cluster.local" || got.ServiceAccount != "default" || got.ClusterId != "Kubernetes" {
		t.Errorf("defaults not applied: %v", got.Workload)
	}
	if w.TrustDomain != "" || w.ServiceAccount != "" {
		t.Error("caller's proto was modified")
	}
}

func TestPoliciesByScope(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	global := ztest.DenyFromNamespace("istio-system", "g", "x")
	global.Scope = security.Scope_GLOBAL
	sel := ztest.DenyFromNamespace("default", "sel", "x")
	sel.Scope = security.Scope_WORKLOAD_SELECTOR
	apply(t, s, ztest.DenyFromNamespace("default", "b", "foo"), ztest.DenyFromNamespace("default", "a", "foo"), global, sel)
	snap := s.Snapshot()
	if got := snap.NamespacePolicies("default"); len(got) != 2 || got[0] != "default/a" || got[1] != "default/b" {
		t.Errorf("namespace policies = %v", got)
	}
	if got := snap.GlobalPolicies(); len(got) != 1 || got[0] != "istio-system/g" {
		t.Errorf("global = %v", got)
	}
	s.Apply(state.Update{RemovedPolicies: []string{"default/a", "istio-system/g"}})
	snap = s.Snapshot()
	if len(snap.NamespacePolicies("default")) != 1 || len(snap.GlobalPolicies()) != 0 || snap.Policy("default/a") != nil {
		t.Error("removed policies still indexed")
	}
}

func TestStaleClosedOnPublish(t *testing.T) {
	ztest.NoLeaks(t)
	s := state.NewStore()
	old := s.Snapshot()
	select {
	case <-old.Stale():
		t.Fatal("fresh snapshot reported stale")
	default:
	}
	apply(t, s, ztest.Workload("ns", "w", "10.0.0.1"))
	<-old.Stale()
	if s.Snapshot().Version() != old.Version()+1 {
		t.Error("version did not advance")
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	ztest.NoLeaks(t)
	s := benchStore()
	snap := s.Snapshot()
	wip, vip, cip := ip("10.0.3.7"), ip("10.96.0.7"), ip("10.200.1.1")
	allocs := testing.AllocsPerRun(1000, func() {
		_ = snap.WorkloadByAddr("", wip)
		_ = snap.ServiceByVIP("", vip, "")
		_ = snap.ServiceByVIP("", cip, "")
		_ = snap.WorkloadByUID("Kubernetes//Pod/ns/w-7")
		_ = snap.ServiceByKey("ns/s7.ns.svc.cluster.local")
	})
	if allocs != 0 {
		t.Errorf("lookups allocate %.1f times per run", allocs)
	}
}
