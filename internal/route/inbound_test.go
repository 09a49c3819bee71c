package route

import (
	"errors"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestInbound pins Rust's Inbound::validate_destination and find_inbound_upstream: the
// upstream is always the local workload's IP; an authority naming another IP is 400,
// except for a waypoint, which receives traffic addressed to what it serves; a
// hostname authority resolves to the workload's target port; ztunnel's own ports are
// refused (SelfCall).
func TestInbound(t *testing.T) {
	ztest.NoLeaks(t)
	snap := mesh(t)
	tests := []struct {
		name, local string
		c           Connect
		pod         *identity.Workload
		target, wl  string
		svc         string
		malformed   bool
		err         bool
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
			got, err := Router{Pod: tt.pod}.Inbound(snap, ap(tt.local+":1").Addr(), tt.c)
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

// A hostname in several namespaces (ServiceEntries) is the one in the preferred
// namespace, else the first: SOCKS5 prefers the client's, inbound the destination's.
func TestServiceByHost(t *testing.T) {
	ztest.NoLeaks(t)
	var u state.Update
	for _, ns := range []string{"a", "b"} {
		svc := ztest.Service(ns, "shared", []string{"10.96.2." + map[string]string{"a": "1", "b": "2"}[ns]}, 80, 80)
		svc.Hostname = "shared.example.com"
		u.Addresses = append(u.Addresses, ztest.AsAddress(svc))
	}
	s := state.NewStore()
	s.Apply(u)
	snap := s.Snapshot()
	first := snap.ServicesByHost("shared.example.com")[0].Namespace
	for ns, want := range map[string]string{"a": "a", "b": "b", "": first, "elsewhere": first} {
		if got := ServiceByHost(snap, "shared.example.com", ns); got == nil || got.Namespace != want {
			t.Errorf("preferring %q: %v, want the service of %q", ns, got, want)
		}
	}
	if ServiceByHost(snap, "nope.example.com", "a") != nil {
		t.Error("an unknown hostname found a service")
	}
}
