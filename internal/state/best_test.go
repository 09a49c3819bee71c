package state_test

import (
	"testing"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// svcOn is a service of namespace ns on one VIP (or CIDR), with hostname host.
func svcOn(ns, name, vip string, canonical bool, vis workloadapi.Service_Visibility) *workloadapi.Service {
	s := ztest.Service(ns, name, []string{vip}, 80, 80)
	s.Hostname, s.Canonical, s.Visibility = "shared.example.com", canonical, vis
	return s
}

// TestGetBestByVIP pins Rust ServiceStore::get_best_by_vip and find_best_match: among
// services sharing a VIP, one of the client's namespace, else the canonical one, else
// the oldest; a NAMESPACE-scoped service exists only for its own namespace; without a
// client namespace nothing is filtered.
func TestGetBestByVIP(t *testing.T) {
	const pub, nsOnly = workloadapi.Service_PUBLIC, workloadapi.Service_NAMESPACE
	tests := []struct {
		name     string
		services []*workloadapi.Service // applied in this order, one batch each
		clientNS string
		want     string // namespace of the service found, "" for none
		at       string // the address looked up; "" is 10.96.0.1
	}{
		{"the client's namespace first", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", false, pub), svcOn("b", "s", "10.96.0.1", true, pub)}, "b", "b", ""},
		{"the client's namespace beats canonical", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", true, pub), svcOn("b", "s", "10.96.0.1", false, pub)}, "b", "b", ""},
		{"else the canonical one", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", false, pub), svcOn("b", "s", "10.96.0.1", true, pub)}, "c", "b", ""},
		{"else the oldest", []*workloadapi.Service{svcOn("b", "s", "10.96.0.1", false, pub), svcOn("a", "s", "10.96.0.1", false, pub)}, "c", "b", ""},
		{"namespace-scoped is hidden from another namespace", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", false, nsOnly)}, "b", "", ""},
		{"namespace-scoped is seen by its own", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", false, nsOnly)}, "a", "a", ""},
		{"a hidden one leaves the visible one", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", true, nsOnly), svcOn("b", "s", "10.96.0.1", false, pub)}, "c", "b", ""},
		{"no client namespace sees everything", []*workloadapi.Service{svcOn("a", "s", "10.96.0.1", false, nsOnly)}, "", "a", ""},
		// get_best_by_cidr_vip: namespace, then prefix length, then canonical.
		{"CIDR: the client's namespace beats a longer prefix", []*workloadapi.Service{svcOn("a", "wide", "10.0.0.0/8", false, pub), svcOn("b", "narrow", "10.1.0.0/16", false, pub)}, "a", "a", "10.1.2.3"},
		{"CIDR: else the longest prefix", []*workloadapi.Service{svcOn("a", "wide", "10.0.0.0/8", true, pub), svcOn("b", "narrow", "10.1.0.0/16", false, pub)}, "c", "b", "10.1.2.3"},
		{"CIDR: a hidden narrow one falls back to the wide", []*workloadapi.Service{svcOn("a", "wide", "10.0.0.0/8", false, pub), svcOn("b", "narrow", "10.1.0.0/16", false, nsOnly)}, "c", "a", "10.1.2.3"},
		{"an exact VIP hidden falls back to a CIDR", []*workloadapi.Service{svcOn("a", "cidr", "10.1.0.0/16", false, pub), svcOn("b", "exact", "10.1.2.3", false, nsOnly)}, "c", "a", "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := state.NewStore()
			for _, svc := range tt.services {
				apply(t, s, svc)
			}
			if tt.at == "" {
				tt.at = "10.96.0.1"
			}
			got := s.Snapshot().ServiceByVIP("", ip(tt.at), tt.clientNS)
			if ns := nsOf(got); ns != tt.want {
				t.Errorf("got the service of %q, want %q", ns, tt.want)
			}
		})
	}
}

// TestGetBestByHost pins Rust ServiceStore::get_best_by_host: the same choice by
// hostname (ServiceEntries may repeat one in several namespaces).
func TestGetBestByHost(t *testing.T) {
	const pub, nsOnly = workloadapi.Service_PUBLIC, workloadapi.Service_NAMESPACE
	s := state.NewStore()
	apply(t, s, svcOn("a", "s", "10.96.0.1", false, pub))
	apply(t, s, svcOn("b", "s", "10.96.0.2", true, pub))
	apply(t, s, svcOn("c", "s", "10.96.0.3", false, nsOnly))
	snap := s.Snapshot()
	for clientNS, want := range map[string]string{"a": "a", "b": "b", "c": "c", "d": "b", "": "b"} {
		if got := nsOf(snap.ServiceByHost("shared.example.com", clientNS)); got != want {
			t.Errorf("client of %q: the service of %q, want %q", clientNS, got, want)
		}
	}
	if snap.ServiceByHost("nope.example.com", "a") != nil {
		t.Error("an unknown hostname found a service")
	}
	// preferred_namespace (PREFERED_SERVICE_NAMESPACE) ranks below canonical.
	if got := state.BestService(snap.ServicesByHost("shared.example.com"), "d", "a"); nsOf(got) != "b" {
		t.Errorf("preferred namespace beat canonical: %q", nsOf(got))
	}
}

func nsOf(s *state.Service) string {
	if s == nil {
		return ""
	}
	return s.Namespace
}
