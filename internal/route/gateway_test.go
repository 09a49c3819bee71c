package route

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

const remoteSAN = "spiffe://cluster.local/ns/ns/sa/echo"

// remoteMesh is network "" (the client's) and net2 behind the east-west gateway at
// 192.168.9.9 (its workload, as istiod sends it, uid NetworkGateway/…); svc's only
// endpoint is net2's split-horizon workload, as istiod coalesces a remote network's
// endpoints. tweak edits the items before they are applied.
func remoteMesh(t testing.TB, tweak func(svc *workloadapi.Service, remote, gw *workloadapi.Workload) []any) *state.Snapshot {
	t.Helper()
	svc := ztest.Service("ns", "svc", []string{"10.96.0.1"}, 80, 8080)
	svc.SubjectAltNames = []string{remoteSAN}
	remote := onNetwork(ztest.WithService(ztest.Workload("ns", "svc-net2"), svcKey, 80, 8080), "net2")
	remote.Uid = "net2/NetworkGateway/ns/svc"
	remote.NetworkGateway = gwAddr("net2", "192.168.9.9", 15008)
	gw := onNetwork(ztest.Workload("istio-system", "ew-gateway", "192.168.9.9"), "net2")
	gw.Uid = "NetworkGateway/net2/192.168.9.9"
	items := []any{svc, remote, gw, ztest.Workload("ns", "client", "10.0.1.1")}
	if tweak != nil {
		items = append(items, tweak(svc, remote, gw)...)
	}
	return snapOf(t, items...)
}

// TestBuildRequestDoubleHBONE pins Rust build_request_double_hbone,
// build_request_through_gateway and fetch_network_gateway: an endpoint on another
// network is reached through its gateway (outer CONNECT to the gateway proving the
// gateway's identity, the inner one proving the service's SANs, both carrying the
// service's hostname:port), never at its pod IP; and what it refuses, naming why.
func TestBuildRequestDoubleHBONE(t *testing.T) {
	ztest.NoLeaks(t)
	gwID := identity.New("cluster.local", "istio-system", "ew-gateway")
	wantSvc := Plan{Kind: DoubleHBONE, Dial: ap("192.168.9.9:15008"), Authority: "svc.ns.svc.cluster.local:80",
		Expected: []identity.Identity{gwID}, Inner: []identity.Identity{id("echo")}}
	tests := []struct {
		name  string
		tweak func(svc *workloadapi.Service, remote, gw *workloadapi.Workload) []any
		dst   string
		want  Plan
		err   error
		why   string // in the refusal
	}{
		{name: "by VIP through the gateway named by address", dst: "10.96.0.1:80", want: wantSvc},
		{name: "the gateway named by hostname is load-balanced on its HBONE port", dst: "10.96.0.1:80",
			tweak: func(svc *workloadapi.Service, remote, gw *workloadapi.Workload) []any {
				remote.NetworkGateway = &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Hostname{
					Hostname: &workloadapi.NamespacedHostname{Namespace: "istio-system", Hostname: "ew.istio-system.svc.cluster.local"}},
					HboneMtlsPort: 15009}
				ew := ztest.Service("istio-system", "ew", []string{"192.168.9.10"}, 15009, 15008)
				ew.Addresses[0].Network = "net2"
				ew.SubjectAltNames = []string{"spiffe://cluster.local/ns/istio-system/sa/ew-sans"}
				ztest.WithService(gw, "istio-system/ew.istio-system.svc.cluster.local", 15009, 15008)
				return []any{ew, gw}
			},
			want: Plan{Kind: DoubleHBONE, Dial: ap("192.168.9.9:15008"), Authority: "svc.ns.svc.cluster.local:80",
				Expected: []identity.Identity{identity.New("cluster.local", "istio-system", "ew-sans"), gwID}, Inner: []identity.Identity{id("echo")}}},
		{name: "a local endpoint is preferred (failover to the remote one only)", dst: "10.96.0.1:80",
			tweak: func(svc *workloadapi.Service, _, _ *workloadapi.Workload) []any {
				svc.LoadBalancing = &workloadapi.LoadBalancing{Mode: workloadapi.LoadBalancing_FAILOVER,
					RoutingPreference: []workloadapi.LoadBalancing_Scope{workloadapi.LoadBalancing_NETWORK}}
				return []any{ztest.WithService(ztest.Workload("ns", "local", "10.0.2.2"), svcKey, 80, 8080)}
			},
			want: Plan{Kind: Tunnel, Dial: ap("10.0.2.2:15008"), Authority: "10.0.2.2:8080", Expected: []identity.Identity{id("local"), id("echo")}}},
		{name: "no gateway: never dialled (NoValidDestination)", dst: "10.96.0.1:80", err: ErrOtherNetwork, why: "has no network gateway",
			tweak: func(_ *workloadapi.Service, remote, _ *workloadapi.Workload) []any {
				remote.NetworkGateway = nil
				remote.Addresses = [][]byte{ztest.IP("10.9.0.1")}
				return nil
			}},
		{name: "an unknown gateway (UnknownNetworkGateway)", dst: "10.96.0.1:80", err: ErrOtherNetwork, why: "not found",
			tweak: func(_ *workloadapi.Service, remote, _ *workloadapi.Workload) []any {
				remote.NetworkGateway = gwAddr("net2", "192.168.9.77", 15008)
				return nil
			}},
		{name: "a service without SANs: the far end could not be verified", dst: "10.96.0.1:80", err: ErrOtherNetwork, why: "no subject_alt_names",
			tweak: func(svc *workloadapi.Service, _, _ *workloadapi.Workload) []any {
				svc.SubjectAltNames = nil
				return nil
			}},
		{name: "a gateway behind another gateway: a loop", dst: "10.96.0.1:80", err: ErrGatewayLoop, why: "itself behind",
			tweak: func(_ *workloadapi.Service, _, gw *workloadapi.Workload) []any {
				gw.NetworkGateway = gwAddr("net3", "192.168.8.8", 15008)
				return nil
			}},
		{name: "a remote pod by its IP, proving its own identity (beyond Rust)", dst: "10.9.0.5:8080",
			tweak: func(_ *workloadapi.Service, _, _ *workloadapi.Workload) []any {
				pod := onNetwork(ztest.Workload("ns", "pod", "10.9.0.5"), "net2")
				pod.NetworkGateway = gwAddr("net2", "192.168.9.9", 15008)
				return []any{pod}
			},
			want: Plan{Kind: DoubleHBONE, Dial: ap("192.168.9.9:15008"), Authority: "10.9.0.5:8080",
				Expected: []identity.Identity{gwID}, Inner: []identity.Identity{id("pod")}}},
		{name: "a remote endpoint that does not speak HBONE: the gateway opens only 15008", dst: "10.96.0.1:80", err: ErrOtherNetwork, why: "does not speak HBONE",
			tweak: func(_ *workloadapi.Service, remote, _ *workloadapi.Workload) []any {
				remote.TunnelProtocol = workloadapi.TunnelProtocol_NONE
				return nil
			}},
		{name: "a remote pod by IP that does not speak HBONE", dst: "10.9.0.5:8080", err: ErrOtherNetwork, why: "does not speak HBONE",
			tweak: func(_ *workloadapi.Service, _, _ *workloadapi.Workload) []any {
				pod := onNetwork(ztest.Workload("ns", "pod", "10.9.0.5"), "net2")
				pod.NetworkGateway, pod.TunnelProtocol = gwAddr("net2", "192.168.9.9", 15008), workloadapi.TunnelProtocol_NONE
				return []any{pod}
			}},
		{name: "a pod IP on two remote networks is ambiguous", dst: "10.9.0.5:8080", err: ErrOtherNetwork, why: "ambiguous",
			tweak: func(_ *workloadapi.Service, _, _ *workloadapi.Workload) []any {
				var out []any
				for _, n := range []string{"net2", "net3"} {
					pod := onNetwork(ztest.Workload("ns", "pod-"+n, "10.9.0.5"), n)
					pod.NetworkGateway = gwAddr(n, "192.168.9.9", 15008)
					out = append(out, pod)
				}
				return out
			}},
		{name: "a remote waypoint: through its gateway, the waypoint service's SANs inside", dst: "10.96.0.1:80",
			tweak: func(svc *workloadapi.Service, _, _ *workloadapi.Workload) []any {
				svc.Waypoint = &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Hostname{
					Hostname: &workloadapi.NamespacedHostname{Namespace: "ns", Hostname: "wp.ns.svc.cluster.local"}}, HboneMtlsPort: 15008}
				wp := ztest.Service("ns", "wp", []string{"10.96.0.9"}, 15008, 15008)
				wp.SubjectAltNames = []string{"spiffe://cluster.local/ns/ns/sa/waypoint"}
				wpRemote := onNetwork(ztest.WithService(ztest.Workload("ns", "wp-net2"), "ns/wp.ns.svc.cluster.local", 15008, 15008), "net2")
				wpRemote.NetworkGateway = gwAddr("net2", "192.168.9.9", 15008)
				return []any{wp, wpRemote, svc}
			},
			want: Plan{Kind: DoubleHBONE, Dial: ap("192.168.9.9:15008"), Authority: "svc.ns.svc.cluster.local:80",
				Expected: []identity.Identity{gwID}, Inner: []identity.Identity{id("waypoint")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := remoteMesh(t, tt.tweak)
			pl, err := outbound(t, snap, "ns", "client", tt.dst)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.why) {
					t.Fatalf("%v %s, %v; want %v (%s)", pl.Kind, pl.Dial, err, tt.err, tt.why)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pl.Kind != tt.want.Kind || pl.Dial != tt.want.Dial || pl.Authority != tt.want.Authority ||
				!slices.Equal(pl.Expected, tt.want.Expected) || !slices.Equal(pl.Inner, tt.want.Inner) {
				t.Fatalf("got %v %s %q expected %v inner %v\nwant %v %s %q expected %v inner %v", pl.Kind, pl.Dial, pl.Authority,
					pl.Expected, pl.Inner, tt.want.Kind, tt.want.Dial, tt.want.Authority, tt.want.Expected, tt.want.Inner)
			}
		})
	}
}

// TestNetworkGatewayOnDemand: an unknown gateway is asked for by address before the
// connection is refused.
func TestNetworkGatewayOnDemand(t *testing.T) {
	ztest.NoLeaks(t)
	snap := remoteMesh(t, func(_ *workloadapi.Service, remote, _ *workloadapi.Workload) []any {
		remote.NetworkGateway = gwAddr("net2", "192.168.9.77", 15008)
		return nil
	})
	src := snap.WorkloadByName("ns", "client")
	_, err := Router{OnDemand: true}.Outbound(snap, src, src.IPs[0], ap("10.96.0.1:80"))
	if m, ok := errors.AsType[*Missing](err); !ok || m.Key != "net2/192.168.9.77" {
		t.Fatalf("%v; want a lookup of net2/192.168.9.77", err)
	}
}

// TestFindInboundUpstream pins Rust find_inbound_upstream's application tunnel: the
// tunnel's port overrides the target; the PROXY header names the CONNECT's address,
// or for a hostname the service's VIP on the workload's network (IPv4 first); a
// tunnel of protocol NONE only moves the port; a workload without one gets none.
func TestFindInboundUpstream(t *testing.T) {
	ztest.NoLeaks(t)
	svc := ztest.Service("ns", "svc", []string{"fd00::10", "10.96.0.10"}, 80, 8080)
	other := ztest.NetworkAddress("net2", "10.99.0.10")
	svc.Addresses = append([]*workloadapi.NetworkAddress{other}, svc.Addresses...)
	tunnel := func(p workloadapi.ApplicationTunnel_Protocol, port uint32) *workloadapi.Workload {
		w := ztest.WithService(ztest.Workload("ns", "wp", "10.0.0.9"), svcKey, 80, 8080)
		if p >= 0 {
			w.ApplicationTunnel = &workloadapi.ApplicationTunnel{Protocol: p, Port: port}
		}
		return w
	}
	tests := []struct {
		name   string
		w      *workloadapi.Workload
		c      Connect
		target string
		tunnel *AppTunnel
	}{
		{"PROXY on its own port, by address", tunnel(workloadapi.ApplicationTunnel_PROXY, 15088),
			Connect{Addr: ap("10.96.0.10:80"), Port: 80}, "10.0.0.9:15088", &AppTunnel{Addressed: ap("10.96.0.10:80"), PROXY: true}},
		{"PROXY by hostname: the local IPv4 VIP", tunnel(workloadapi.ApplicationTunnel_PROXY, 15088),
			Connect{Host: "svc.ns.svc.cluster.local", Port: 80}, "10.0.0.9:15088", &AppTunnel{Addressed: ap("10.96.0.10:80"), PROXY: true}},
		{"PROXY without a port keeps the target", tunnel(workloadapi.ApplicationTunnel_PROXY, 0),
			Connect{Host: "svc.ns.svc.cluster.local", Port: 80}, "10.0.0.9:8080", &AppTunnel{Addressed: ap("10.96.0.10:80"), PROXY: true}},
		{"NONE moves the port only", tunnel(workloadapi.ApplicationTunnel_NONE, 15088),
			Connect{Addr: ap("10.0.0.9:8080"), Port: 8080}, "10.0.0.9:15088", &AppTunnel{Addressed: ap("10.0.0.9:8080")}},
		{"no tunnel declared: no header", tunnel(-1, 0), Connect{Addr: ap("10.0.0.9:8080"), Port: 8080}, "10.0.0.9:8080", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapOf(t, svc, tt.w)
			got, err := Router{}.Inbound(snap, netip.MustParseAddr("10.0.0.9"), tt.c)
			if err != nil || got.Target != ap(tt.target) || (got.Tunnel == nil) != (tt.tunnel == nil) ||
				got.Tunnel != nil && *got.Tunnel != *tt.tunnel {
				t.Fatalf("Inbound = %s %+v, %v; want %s %+v", got.Target, got.Tunnel, err, tt.target, tt.tunnel)
			}
		})
	}
	_, err := Router{}.Inbound(snapOf(t, svc, tunnel(-1, 0)), netip.MustParseAddr("10.0.0.9"), Connect{Addr: ap("10.96.0.10:80"), Port: 80})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("a foreign address for a workload without a tunnel: %v; want ip mismatch", err)
	}
}
