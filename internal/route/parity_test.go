package route

import (
	"errors"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// snapOf applies each item (workload or service) in its own batch, in order.
func snapOf(t testing.TB, items ...any) *state.Snapshot {
	t.Helper()
	s := state.NewStore()
	for _, it := range items {
		if errs := s.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(it)}}); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	return s.Snapshot()
}

func onNetwork(w *workloadapi.Workload, network string) *workloadapi.Workload {
	w.Network = network
	return w
}

func gwAddr(network, ip string, port uint32) *workloadapi.GatewayAddress {
	return &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Address{
		Address: ztest.NetworkAddress(network, ip)}, HboneMtlsPort: port}
}

// outbound routes src (by name in namespace ns) to dst with a deterministic Router.
func outbound(t *testing.T, snap *state.Snapshot, ns, src, dst string) (Plan, error) {
	t.Helper()
	w := snap.WorkloadByName(ns, src)
	if w == nil {
		t.Fatalf("no source %s/%s", ns, src)
	}
	return Router{Rand: cycle()}.Outbound(snap, w, w.IPs[0], ap(dst))
}

// TestBuildRequestServiceVisibility pins Rust find_upstream's use of get_best_by_vip
// with the client's namespace: a NAMESPACE-scoped service is unknown to other
// namespaces (their connection passes through as to any address the mesh does not
// know), and of two services on one VIP the client's namespace's is used.
func TestBuildRequestServiceVisibility(t *testing.T) {
	ztest.NoLeaks(t)
	private := ztest.Service("a", "db", []string{"10.96.0.1"}, 80, 8080)
	private.Visibility = workloadapi.Service_NAMESPACE
	sharedA := ztest.Service("a", "api", []string{"10.96.0.2"}, 80, 8080)
	sharedB := ztest.Service("b", "api", []string{"10.96.0.2"}, 80, 9090)
	snap := snapOf(t, private, sharedA, sharedB,
		ztest.WithService(ztest.Workload("a", "db-0", "10.0.0.10"), "a/db.a.svc.cluster.local", 80, 8080),
		ztest.WithService(ztest.Workload("a", "api-a", "10.0.0.11"), "a/api.a.svc.cluster.local", 80, 8080),
		ztest.WithService(ztest.Workload("b", "api-b", "10.0.0.12"), "b/api.b.svc.cluster.local", 80, 9090),
		ztest.Workload("a", "client-a", "10.0.1.1"), ztest.Workload("b", "client-b", "10.0.1.2"))
	tests := []struct {
		ns, src, dst string
		kind         Kind
		dial         string
	}{
		{"a", "client-a", "10.96.0.1:80", Tunnel, "10.0.0.10:15008"},
		{"b", "client-b", "10.96.0.1:80", Passthrough, "10.96.0.1:80"},
		{"a", "client-a", "10.96.0.2:80", Tunnel, "10.0.0.11:15008"},
		{"b", "client-b", "10.96.0.2:80", Tunnel, "10.0.0.12:15008"},
	}
	for _, tt := range tests {
		pl, err := outbound(t, snap, tt.ns, tt.src, tt.dst)
		if err != nil || pl.Kind != tt.kind || pl.Dial != ap(tt.dial) {
			t.Errorf("%s → %s: %v %s, %v; want %v %s", tt.src, tt.dst, pl.Kind, pl.Dial, err, tt.kind, tt.dial)
		}
	}
}

// TestLoadBalanceNetworkPreferred pins load_balance's NETWORK-first rule: the client's
// network is preferred, not required; an endpoint on another network is ranked by the
// other scopes. Under STRICT it never matches all, so it is never chosen.
func TestLoadBalanceNetworkPreferred(t *testing.T) {
	ztest.NoLeaks(t)
	net, zone := workloadapi.LoadBalancing_NETWORK, workloadapi.LoadBalancing_ZONE
	at := func(name, ip, network, z string) *workloadapi.Workload {
		w := onNetwork(ztest.WithService(ztest.Workload("ns", name, ip), svcKey, 80, 8080), network)
		w.Locality = &workloadapi.Locality{Zone: z}
		w.NetworkGateway = gwAddr(network, "192.168.9.9", 15008)
		return w
	}
	client := ztest.Workload("ns", "client", "10.0.1.1")
	client.Locality = &workloadapi.Locality{Zone: "z1"}
	tests := []struct {
		name string
		mode workloadapi.LoadBalancing_Mode
		eps  []*workloadapi.Workload
		want string // the endpoint always chosen, "" for none
	}{
		{"the local network beats a remote one in the client's zone", workloadapi.LoadBalancing_FAILOVER,
			[]*workloadapi.Workload{at("remote-near", "10.9.0.1", "net2", "z1"), at("local-far", "10.0.0.2", "", "z2")}, "local-far"},
		{"among local endpoints the zone still ranks", workloadapi.LoadBalancing_FAILOVER,
			[]*workloadapi.Workload{at("local-far", "10.0.0.2", "", "z2"), at("local-near", "10.0.0.3", "", "z1")}, "local-near"},
		{"only remote endpoints: the best of them", workloadapi.LoadBalancing_FAILOVER,
			[]*workloadapi.Workload{at("remote-far", "10.9.0.2", "net2", "z2"), at("remote-near", "10.9.0.1", "net2", "z1")}, "remote-near"},
		{"STRICT never takes another network", workloadapi.LoadBalancing_STRICT,
			[]*workloadapi.Workload{at("remote-near", "10.9.0.1", "net2", "z1")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := ztest.Service("ns", "svc", []string{"10.96.0.1"}, 80, 8080)
			svc.LoadBalancing = &workloadapi.LoadBalancing{Mode: tt.mode, RoutingPreference: []workloadapi.LoadBalancing_Scope{net, zone}}
			items := []any{svc, client}
			for _, w := range tt.eps {
				items = append(items, w)
			}
			snap := snapOf(t, items...)
			r := Router{Rand: cycle()}
			for range 10 {
				w, _, err := r.loadBalance(snap, snap.WorkloadByName("ns", "client"), snap.ServiceByKey(svcKey), 80, standard)
				if got := nameOf(w); got != tt.want || (err != nil) != (tt.want == "") {
					t.Fatalf("chose %q (%v), want %q", got, err, tt.want)
				}
			}
		})
	}
}

// TestSampleWeightedWaypoint pins Rust sample_weighted_waypoint (test_sample_weighted_
// waypoint): connections are split by weight; weight 0 is never chosen; all zero (or
// none) falls back to the single waypoint.
func TestSampleWeightedWaypoint(t *testing.T) {
	ztest.NoLeaks(t)
	ww := func(ip string, w uint32) *workloadapi.WeightedWaypoint {
		return &workloadapi.WeightedWaypoint{Destination: gwAddr("", ip, 15008), Weight: w}
	}
	tests := []struct {
		name     string
		weighted []*workloadapi.WeightedWaypoint
		want     map[string]int // waypoint IP → picks of 100
	}{
		{"80/20", []*workloadapi.WeightedWaypoint{ww("10.0.0.8", 80), ww("10.0.0.9", 20)}, map[string]int{"10.0.0.8": 80, "10.0.0.9": 20}},
		{"weight 0 never", []*workloadapi.WeightedWaypoint{ww("10.0.0.8", 0), ww("10.0.0.9", 5)}, map[string]int{"10.0.0.9": 100}},
		{"all zero: the single waypoint", []*workloadapi.WeightedWaypoint{ww("10.0.0.8", 0)}, map[string]int{"10.0.0.7": 100}},
		{"none: the single waypoint", nil, map[string]int{"10.0.0.7": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &state.Service{Service: &workloadapi.Service{Waypoint: gwAddr("", "10.0.0.7", 15008), WeightedWaypoints: tt.weighted}}
			r, got := Router{Rand: cycle()}, map[string]int{}
			for range 100 {
				ip, _ := netip.AddrFromSlice(r.serviceWaypoint(svc, nil).GetAddress().Address)
				got[ip.String()]++
			}
			if len(got) != len(tt.want) {
				t.Fatalf("picks %v, want %v", got, tt.want)
			}
			for ip, n := range tt.want {
				if got[ip] != n {
					t.Errorf("picks %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestPickWorkloadDestinationOrResolve pins Rust pick_workload_destination_or_resolve
// (and service_ip_families): the IP asked for when it is the workload's, else the
// family of the original destination within the service's families; a hostname-only
// workload is resolved at connect time; nothing suitable is refused.
func TestPickWorkloadDestinationOrResolve(t *testing.T) {
	ztest.NoLeaks(t)
	dual := ztest.Workload("ns", "dual", "10.0.0.2", "fd00::2")
	named := ztest.WithService(ztest.Workload("ns", "named"), svcKey, 80, 8080)
	named.Hostname = "api.example.com"
	tests := []struct {
		name     string
		w        *workloadapi.Workload
		target   string
		families workloadapi.IPFamilies
		want     string // the address, "resolve" or "refused"
	}{
		{"the IPv6 asked for", dual, "fd00::2", 0, "fd00::2"},
		{"the IPv4 asked for", dual, "10.0.0.2", 0, "10.0.0.2"},
		{"a VIP of v6 family prefers v6", dual, "fd00:96::1", 0, "fd00::2"},
		{"a VIP of v4 family prefers v4", dual, "10.96.0.1", 0, "10.0.0.2"},
		{"IPV4_ONLY even when v6 was asked", dual, "fd00:96::1", workloadapi.IPFamilies_IPV4_ONLY, "10.0.0.2"},
		{"IPV6_ONLY on a v4-only workload", ztest.Workload("ns", "v4", "10.0.0.3"), "10.96.0.1", workloadapi.IPFamilies_IPV6_ONLY, "refused"},
		{"hostname only: resolved at connect", named, "10.96.0.1", 0, "resolve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapOf(t, tt.w, ztest.Workload("ns", "client", "10.0.1.1"))
			w, src := snap.WorkloadByUID(tt.w.Uid), snap.WorkloadByName("ns", "client")
			pl, err := Router{}.toWorkload(w, src, 8080, netip.MustParseAddr(tt.target), tt.families, nil, nil)
			got := pl.Dial.Addr().String()
			switch {
			case errors.Is(err, ErrNoAddress):
				got = "refused"
			case err != nil:
				t.Fatal(err)
			case pl.Resolve != "":
				got = "resolve"
				if r := pl.Resolved(netip.MustParseAddr("192.0.2.7")); r.Dial != ap("192.0.2.7:15008") || r.Authority != "192.0.2.7:8080" {
					t.Errorf("Resolved = %s %s", r.Dial, r.Authority)
				}
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCheckFromWaypoint pins Rust check_from_waypoint: the source is its destination's
// waypoint only when a waypoint workload has both the source's identity and its IP.
// Then the connection goes on to the workload; otherwise it goes to the waypoint.
func TestCheckFromWaypoint(t *testing.T) {
	ztest.NoLeaks(t)
	dst := ztest.Workload("ns", "dst", "10.0.0.5")
	dst.Waypoint = gwAddr("", "10.96.0.9", 15008)
	wp := ztest.WithService(ztest.Workload("ns", "wp", "10.0.0.9"), "ns/wp.ns.svc.cluster.local", 15008, 15008)
	wp.ServiceAccount = "wp"
	impostor := ztest.Workload("ns", "impostor", "10.0.0.66") // another identity
	snap := snapOf(t, ztest.Service("ns", "wp", []string{"10.96.0.9"}, 15008, 15008), dst, wp, impostor)
	r := Router{}
	tests := []struct {
		name string
		id   identity.Identity
		ip   string
		want bool
	}{
		{"the waypoint's identity and IP", id("wp"), "10.0.0.9", true},
		{"the identity from another IP", id("wp"), "10.0.0.66", false},
		{"the IP with another identity", id("default"), "10.0.0.9", false},
	}
	for _, tt := range tests {
		got, err := r.fromWaypoint(snap, dst.Waypoint, tt.id, netip.MustParseAddr(tt.ip))
		if err != nil || got != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	w := snap.WorkloadByName("ns", "wp")
	if pl, err := r.Outbound(snap, w, w.IPs[0], ap("10.0.0.5:80")); err != nil || pl.Kind != Tunnel {
		t.Errorf("the waypoint's own egress: %v, %v; want a tunnel to the workload", pl.Kind, err)
	}
	if pl, err := r.Outbound(snap, w, netip.MustParseAddr("10.0.0.66"), ap("10.0.0.5:80")); err != nil || pl.Kind != Waypoint {
		t.Errorf("the waypoint's identity from another IP: %v, %v; want the waypoint", pl.Kind, err)
	}
}

// TestFetchWaypointPorts pins fetch_waypoint's lookup of a waypoint service on its
// HBONE port (ServiceResolutionMode::Waypoint): an endpoint without that port is left
// out unless it has an application tunnel, and the port mapped is the one dialled.
func TestFetchWaypointPorts(t *testing.T) {
	ztest.NoLeaks(t)
	svc := ztest.Service("ns", "reviews", []string{"10.96.0.2"}, 80, 9080)
	svc.Waypoint = &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Hostname{
		Hostname: &workloadapi.NamespacedHostname{Namespace: "ns", Hostname: "wp.ns.svc.cluster.local"}}, HboneMtlsPort: 15008}
	for _, tt := range []struct {
		name   string
		ports  []uint32 // the waypoint service's port pairs
		tunnel bool
		dial   string
	}{
		{"the HBONE port mapped", []uint32{15008, 15009}, false, "10.0.0.9:15009"},
		{"no HBONE port: no waypoint", []uint32{80, 80}, false, ""},
		{"no HBONE port but an app tunnel", []uint32{80, 80}, true, "10.0.0.9:15008"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wp := ztest.WithService(ztest.Workload("ns", "wp", "10.0.0.9"), "ns/wp.ns.svc.cluster.local", tt.ports...)
			if tt.tunnel {
				wp.ApplicationTunnel = &workloadapi.ApplicationTunnel{Protocol: workloadapi.ApplicationTunnel_PROXY, Port: 15088}
			}
			snap := snapOf(t, ztest.Service("ns", "wp", []string{"10.96.0.9"}, tt.ports...), svc, wp, ztest.Workload("ns", "client", "10.0.1.1"))
			pl, err := outbound(t, snap, "ns", "client", "10.96.0.2:80")
			if tt.dial == "" {
				if !errors.Is(err, ErrNoEndpoint) {
					t.Fatalf("%v %s, %v; want no endpoint", pl.Kind, pl.Dial, err)
				}
				return
			}
			if err != nil || pl.Kind != Waypoint || pl.Dial != ap(tt.dial) || pl.Authority != "10.96.0.2:80" {
				t.Fatalf("%v %s %s, %v; want the waypoint at %s", pl.Kind, pl.Dial, pl.Authority, err, tt.dial)
			}
		})
	}
}

// TestOnDemandMissing pins the on-demand lookups of fetch_address and fetch_waypoint:
// with OnDemand, a destination or waypoint not held asks for its key, and carries the
// decision to take if it is still not there.
func TestOnDemandMissing(t *testing.T) {
	ztest.NoLeaks(t)
	dst := ztest.Workload("ns", "dst", "10.0.0.5")
	dst.Waypoint = &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Hostname{
		Hostname: &workloadapi.NamespacedHostname{Namespace: "ns", Hostname: "wp.ns.svc.cluster.local"}}, HboneMtlsPort: 15008}
	snap := snapOf(t, dst, ztest.Workload("ns", "client", "10.0.1.1"))
	src := snap.WorkloadByName("ns", "client")
	r := Router{OnDemand: true}
	for dstAddr, key := range map[string]string{"192.0.2.1:80": "/192.0.2.1", "10.0.0.5:80": "ns/wp.ns.svc.cluster.local"} {
		_, err := r.Outbound(snap, src, src.IPs[0], ap(dstAddr))
		m, ok := errors.AsType[*Missing](err)
		if !ok || m.Key != key {
			t.Errorf("%s: %v, want a lookup of %q", dstAddr, err, key)
		}
	}
	_, err := r.Outbound(snap, src, src.IPs[0], ap("192.0.2.1:80"))
	if m, _ := errors.AsType[*Missing](err); m == nil || m.Plan.Kind != Passthrough || m.Err != nil {
		t.Errorf("the fallback of an unknown address: %+v", m)
	}
}

// TestValidateDestination pins Rust Inbound::validate_destination's application-tunnel
// case: a workload with its own tunnel takes any CONNECT address (its app reads the
// target from the PROXY header).
func TestValidateDestination(t *testing.T) {
	ztest.NoLeaks(t)
	wp := ztest.Workload("ns", "wp", "10.0.0.9")
	wp.ApplicationTunnel = &workloadapi.ApplicationTunnel{Protocol: workloadapi.ApplicationTunnel_PROXY}
	wp.Capacity = wrapperspb.UInt32(1)
	snap := snapOf(t, wp)
	got, err := Router{}.Inbound(snap, netip.MustParseAddr("10.0.0.9"), Connect{Addr: ap("10.96.5.5:80"), Port: 80})
	if err != nil || got.Target != ap("10.0.0.9:80") {
		t.Errorf("Inbound = %s, %v; want 10.0.0.9:80", got.Target, err)
	}
}
