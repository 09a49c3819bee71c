package rbac_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// world: workload httpbin in default (10.244.1.5), plus the given policies.
func world(t testing.TB, w *workloadapi.Workload, policies ...*security.Authorization) (*state.Store, *workloadapi.Workload) {
	t.Helper()
	if w == nil {
		w = ztest.Workload("default", "httpbin", "10.244.1.5")
	}
	s := state.NewStore()
	if errs := s.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(w)}, Policies: policies}); len(errs) > 0 {
		t.Fatal(errs)
	}
	return s, w
}

func decide(e *rbac.Engine, s *state.Store, uid string, c rbac.Conn) rbac.Decision {
	snap := s.Snapshot()
	return e.Decide(snap, snap.WorkloadByUID(uid), &c)
}

func TestScopes(t *testing.T) {
	ztest.NoLeaks(t)
	global := deny("g", rule())
	global.Namespace, global.Scope = "istio-system", security.Scope_GLOBAL
	otherNS := deny("o", rule())
	otherNS.Namespace = "elsewhere"
	selector := deny("sel", rule())
	selector.Scope = security.Scope_WORKLOAD_SELECTOR
	c := conn("10.0.0.1", sleep, 80)
	tests := []struct {
		name   string
		policy *security.Authorization
		names  []string // the workload's authorization_policies
		allow  bool
	}{
		{"global applies everywhere", global, nil, false},
		{"another namespace's policy does not apply", otherNS, nil, true},
		{"a selector policy applies when the workload names it", selector, []string{"default/sel"}, false},
		{"a selector policy does not apply otherwise", selector, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ztest.Workload("default", "httpbin", "10.244.1.5")
			w.AuthorizationPolicies = tt.names
			s, w := world(t, w, tt.policy)
			if d := decide(rbac.NewEngine(s), s, w.Uid, c); d.Allow != tt.allow {
				t.Errorf("allow = %v (%s), want %v", d.Allow, d, tt.allow)
			}
		})
	}
}

func TestScopeChangeTakesEffect(t *testing.T) {
	ztest.NoLeaks(t)
	p := deny("d", rule())
	s, w := world(t, nil, p)
	e := rbac.NewEngine(s)
	c := conn("10.0.0.1", sleep, 80)
	if decide(e, s, w.Uid, c).Allow {
		t.Fatal("namespace policy not applied")
	}
	sel := deny("d", rule())
	sel.Scope = security.Scope_WORKLOAD_SELECTOR
	s.Apply(state.Update{Policies: []*security.Authorization{sel}})
	if !decide(e, s, w.Uid, c).Allow {
		t.Error("policy switched to selector scope still applies to an unselected workload")
	}
}

func TestMissingPolicyFailsClosed(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		w := ztest.Workload("default", "httpbin", "10.244.1.5")
		w.AuthorizationPolicies = []string{"default/late"}
		s, _ := world(t, w)
		e := rbac.NewEngine(s)
		start := time.Now()
		d := e.Authorize(context.Background(), conn("10.0.0.1", bar, 80), w.Uid)
		if d.Allow || d.Reason != rbac.PolicyMissing || d.Policy != "default/late" {
			t.Errorf("decision %+v, want denied for the missing policy", d)
		}
		if waited := time.Since(start); waited != rbac.MissingPolicyWait {
			t.Errorf("waited %v, want %v", waited, rbac.MissingPolicyWait)
		}
	})
}

func TestMissingPolicyArrivesInTime(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		w := ztest.Workload("default", "httpbin", "10.244.1.5")
		w.AuthorizationPolicies = []string{"default/late"}
		s, _ := world(t, w)
		e := rbac.NewEngine(s)
		go func() {
			time.Sleep(300 * time.Millisecond)
			late := allow("late", rule(clause(&security.Match{Namespaces: ex("bar")})))
			late.Scope = security.Scope_WORKLOAD_SELECTOR
			s.Apply(state.Update{Policies: []*security.Authorization{late}})
		}()
		if d := e.Authorize(context.Background(), conn("10.0.0.1", bar, 80), w.Uid); !d.Allow || d.Policy != "default/late" {
			t.Errorf("decision %+v, want allowed by the policy that arrived", d)
		}
	})
}

func TestExplain(t *testing.T) {
	ztest.NoLeaks(t)
	w := ztest.Workload("default", "httpbin", "10.244.1.5")
	s, _ := world(t, w, deny("httpbin", rule(clause(&security.Match{Namespaces: ex("x")})), rule(clause(&security.Match{Namespaces: ex("foo")}))),
		dry(allow("audit", rule())))
	snap := s.Snapshot()
	c := conn("10.244.2.12", sleep, 80)
	x := rbac.NewEngine(s).Explain(snap, snap.WorkloadByUID(w.Uid), &c)
	if x.Decision.Allow || len(x.Considered) != 2 {
		t.Fatalf("explanation %+v", x)
	}
	if got := x.Considered[1]; got.Policy != "default/httpbin" || !got.Matched || got.Via != "namespace" || got.Where != (rbac.Where{Rule: 1, Clause: 0, Match: 0}) {
		t.Errorf("considered %+v", got)
	}
	if got := x.Considered[0]; got.Policy != "default/audit" || !got.Matched || !got.DryRun {
		t.Errorf("considered %+v", got)
	}
}

func BenchmarkDecide(b *testing.B) {
	w := ztest.Workload("default", "httpbin", "10.244.1.5")
	w.AuthorizationPolicies = []string{"default/sel"}
	sel := allow("sel", rule(clause(&security.Match{Namespaces: ex("bar")})))
	sel.Scope = security.Scope_WORKLOAD_SELECTOR
	s, _ := world(b, w, deny("httpbin", rule(clause(&security.Match{Namespaces: ex("foo")}))), sel)
	e := rbac.NewEngine(s)
	snap := s.Snapshot()
	wl := snap.WorkloadByUID(w.Uid)
	c := conn("10.244.2.13", bar, 80)
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(snap, wl, &c); !d.Allow {
			b.Fatal(d)
		}
	}
}
