package route

import (
	"errors"
	"net/netip"
	"testing"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// mesh is the snapshot the tables route over: a client; a service "svc" (VIP
// 10.96.0.1, 80→8080) of one HBONE endpoint "echo"; "legacy", a workload without
// HBONE; "reviews" (10.96.0.2) behind waypoint "wp" (service wp, VIP 10.96.0.9),
// and "ratings", a pod with that waypoint of its own; "pass", a PASSTHROUGH service;
// "empty", a service without endpoints; and "svc" again in namespace "other".
func mesh(t testing.TB) *state.Snapshot {
	t.Helper()
	wpAddr := &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Address{
		Address: ztest.NetworkAddress("", "10.96.0.9")}, HboneMtlsPort: 15008}
	legacy := ztest.Workload("ns", "legacy", "10.0.0.3")
	legacy.TunnelProtocol = workloadapi.TunnelProtocol_NONE
	ratings := ztest.Workload("ns", "ratings", "10.0.0.5")
	ratings.Waypoint = wpAddr
	reviews := ztest.Service("ns", "reviews", []string{"10.96.0.2"}, 80, 9080)
	reviews.Waypoint = wpAddr
	pass := ztest.Service("ns", "pass", []string{"10.96.0.3"}, 80, 80)
	pass.LoadBalancing = &workloadapi.LoadBalancing{Mode: workloadapi.LoadBalancing_PASSTHROUGH}
	wpSvc := ztest.Service("ns", "wp", []string{"10.96.0.9"}, 15008, 15008)
	wpSvc.SubjectAltNames = []string{"spiffe://cluster.local/ns/ns/sa/wp-extra"}
	addrs := []any{
		ztest.Workload("ns", "client", "10.0.0.1"),
		ztest.WithService(ztest.Workload("ns", "echo", "10.0.0.2"), "ns/svc.ns.svc.cluster.local", 80, 8080),
		legacy, ratings,
		ztest.WithService(ztest.Workload("ns", "wp", "10.0.0.9"), "ns/wp.ns.svc.cluster.local", 15008, 15008),
		ztest.Service("ns", "svc", []string{"10.96.0.1"}, 80, 8080), reviews, pass, wpSvc,
		ztest.Service("ns", "empty", []string{"10.96.0.4"}, 80, 80),
		ztest.Service("other", "svc", []string{"10.96.1.1"}, 80, 8080),
	}
	var u state.Update
	for _, a := range addrs {
		u.Addresses = append(u.Addresses, ztest.AsAddress(a))
	}
	s := state.NewStore()
	if errs := s.Apply(u); len(errs) > 0 {
		t.Fatal(errs)
	}
	return s.Snapshot()
}

func id(sa string) identity.Identity { return identity.New("cluster.local", "ns", sa) }

// TestOutbound pins the choices of Rust's Outbound::build_request: a VIP goes to an
// endpoint's ztunnel with the target port in the authority, a waypoint takes the
// original destination, a workload without HBONE and an unknown address get TCP.
func TestOutbound(t *testing.T) {
	ztest.NoLeaks(t)
	snap := mesh(t)
	tests := []struct {
		name, src, dst string
		want           Plan // Dst and Service compared by name
		dstName, svc   string
		err            error
	}{
		{"a VIP goes to the endpoint's ztunnel, target port in the authority", "client", "10.96.0.1:80",
			Plan{Kind: Tunnel, Dial: ap("10.0.0.2:15008"), Authority: "10.0.0.2:8080", Expected: []identity.Identity{id("echo")},
				ServiceHost: "svc.ns.svc.cluster.local"}, "echo", "svc.ns.svc.cluster.local", nil},
		{"a pod IP is tunnelled as addressed", "client", "10.0.0.2:8080",
			Plan{Kind: Tunnel, Dial: ap("10.0.0.2:15008"), Authority: "10.0.0.2:8080", Expected: []identity.Identity{id("echo")}}, "echo", "", nil},
		{"a workload without HBONE gets TCP", "client", "10.0.0.3:80", Plan{Kind: Direct, Dial: ap("10.0.0.3:80")}, "legacy", "", nil},
		{"an address outside the mesh passes through", "client", "192.0.2.1:443", Plan{Kind: Passthrough, Dial: ap("192.0.2.1:443")}, "", "", nil},
		{"a PASSTHROUGH service keeps the VIP", "client", "10.96.0.3:80", Plan{Kind: Passthrough, Dial: ap("10.96.0.3:80")}, "", "", nil},
		{"a service with a waypoint goes to it, VIP as the authority", "client", "10.96.0.2:80",
			Plan{Kind: Waypoint, Dial: ap("10.0.0.9:15008"), Authority: "10.96.0.2:80", Expected: []identity.Identity{id("wp"), id("wp-extra")}},
			"wp", "reviews.ns.svc.cluster.local", nil},
		{"a workload with a waypoint goes to it", "client", "10.0.0.5:80",
			Plan{Kind: Waypoint, Dial: ap("10.0.0.9:15008"), Authority: "10.0.0.5:80", Expected: []identity.Identity{id("wp"), id("wp-extra")}}, "wp", "", nil},
		{"the waypoint's own egress is not sent back to it", "wp", "10.0.0.5:80",
			Plan{Kind: Tunnel, Dial: ap("10.0.0.5:15008"), Authority: "10.0.0.5:80", Expected: []identity.Identity{id("ratings")}}, "ratings", "", nil},
		{"a service without endpoints is refused", "client", "10.96.0.4:80", Plan{}, "", "", ErrNoEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := snap.WorkloadByName("ns", tt.src)
			got, err := Router{}.Outbound(snap, src, src.IPs[0], ap(tt.dst))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Outbound: %v, want %v", err, tt.err)
			}
			if name := nameOf(got.Dst); name != tt.dstName {
				t.Errorf("Dst = %q, want %q", name, tt.dstName)
			}
			if got.Service != nil && got.Service.Hostname != tt.svc || got.Service == nil && tt.svc != "" {
				t.Errorf("Service = %v, want %q", got.Service, tt.svc)
			}
			got.Dst, got.Service = nil, nil
			if !equalPlan(got, tt.want) {
				t.Errorf("Outbound =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func equalPlan(a, b Plan) bool {
	if a.Kind != b.Kind || a.Dial != b.Dial || a.Authority != b.Authority || a.ServiceHost != b.ServiceHost || len(a.Expected) != len(b.Expected) {
		return false
	}
	for i := range a.Expected {
		if a.Expected[i] != b.Expected[i] {
			return false
		}
	}
	return true
}

func nameOf(w *state.Workload) string {
	if w == nil {
		return ""
	}
	return w.Name
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestInbound pins Rust's Inbound::validate_destination and find_inbound_upstream: the
// upstream is always the local workload's IP; an authority naming another IP is 400,
// except for a waypoint, which receives traffic addressed to what it serves; a
// hostname authority resolves to the workload's target port; ztunnel's own ports are
// refused (SelfCall).
func TestInbound(t *testing.T) {
	ztest.NoLeaks(t)
	snap := mesh(t)
	var router Router // node mode, unless a case names the pod served
	tests := []struct {
		name, local     string
		c               Connect
		pod             *identity.Workload
		target, wl, svc string // the target, its workload's name and its service's host
		malformed       bool
		err             bool
	}{
		{name: "the local IP and port", local: "10.0.0.2", c: Connect{Addr: ap("10.0.0.2:8080"), Port: 8080},
			target: "10.0.0.2:8080", wl: "echo"},
		{name: "the forwarded host names the service", local: "10.0.0.2",
			c:      Connect{Addr: ap("10.0.0.2:8080"), Port: 8080, ForwardedHost: "svc.ns.svc.cluster.local"},
			target: "10.0.0.2:8080", wl: "echo", svc: "svc.ns.svc.cluster.local"},
		{name: "another IP is malformed", local: "10.0.0.2", c: Connect{Addr: ap("10.0.0.3:8080"), Port: 8080}, malformed: true, err: true},
		{name: "a waypoint takes a VIP it serves", local: "10.0.0.9", c: Connect{Addr: ap("10.96.0.2:80"), Port: 80},
			target: "10.0.0.9:80", wl: "wp"},
		{name: "a waypoint takes a workload it serves", local: "10.0.0.9", c: Connect{Addr: ap("10.0.0.5:80"), Port: 80},
			target: "10.0.0.9:80", wl: "wp"},
		{name: "a hostname resolves to the target port", local: "10.0.0.2", c: Connect{Host: "svc.ns.svc.cluster.local", Port: 80},
			target: "10.0.0.2:8080", wl: "echo", svc: "svc.ns.svc.cluster.local"},
		{name: "a hostname of a service it is not in", local: "10.0.0.2", c: Connect{Host: "reviews.ns.svc.cluster.local", Port: 80}, err: true},
		{name: "an unknown hostname", local: "10.0.0.2", c: Connect{Host: "nope.ns.svc.cluster.local", Port: 80}, err: true},
		{name: "no workload at the local IP", local: "10.0.0.77", c: Connect{Addr: ap("10.0.0.77:80"), Port: 80}, err: true},
		{name: "ztunnel's own port (SelfCall)", local: "10.0.0.2", c: Connect{Addr: ap("10.0.0.2:15008"), Port: 15008}, err: true},
		{name: "in-pod mode: the pod, whatever the address", local: "10.0.0.50", c: Connect{Addr: ap("10.0.0.50:8080"), Port: 8080},
			pod: &identity.Workload{Namespace: "ns", Name: "echo"}, target: "10.0.0.50:8080", wl: "echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			router.Pod = tt.pod
			got, err := router.Inbound(snap, ap(tt.local+":1").Addr(), tt.c)
			if (err != nil) != tt.err || errors.Is(err, ErrMalformed) != tt.malformed {
				t.Fatalf("Inbound: %v, want error %v (malformed %v)", err, tt.err, tt.malformed)
			}
			if err != nil {
				return
			}
			if got.Target != ap(tt.target) || nameOf(got.Workload) != tt.wl {
				t.Errorf("Inbound = %s of %q, want %s of %q", got.Target, nameOf(got.Workload), tt.target, tt.wl)
			}
			if host := ""; got.Service != nil {
				if host = got.Service.Hostname; host != tt.svc {
					t.Errorf("Service = %q, want %q", host, tt.svc)
				}
			} else if tt.svc != "" {
				t.Errorf("no Service, want %q", tt.svc)
			}
		})
	}
}
