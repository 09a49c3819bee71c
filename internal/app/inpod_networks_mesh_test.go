//go:build linux

package app_test

import (
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// gatewayAt is net's gateway address, as istiod names it in network_gateway.
func gatewayAt(network, ip string) *workloadapi.GatewayAddress {
	return &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Address{
		Address: ztest.NetworkAddress(network, ip)}, HboneMtlsPort: 15008}
}

func onNet(w *workloadapi.Workload, network, node string) *workloadapi.Workload {
	w.Network, w.Node, w.Uid = network, node, network+"//"+w.Namespace+"/"+w.Name
	return w
}

// netAView is what net-a's istiod sends: its pods; ztunnel n1 itself (so that a mesh
// pod's connection to it is tunnelled to its own inbound); echo, whose only endpoint
// here is net-b's split-horizon workload behind gw-b, as istiod coalesces a remote
// network's endpoints; gw-b's workload; and (beyond what istiod sends, for routing by
// pod IP) net-b's server pod behind gw-b.
func netAView() []*workloadapi.Address {
	client := onNet(ztest.Workload("foo", "client", "10.70.1.10"), "net-a", "n1")
	intruder := onNet(ztest.Workload("foo", "intruder", "10.70.1.11"), "net-a", "n1")
	prom := onNet(ztest.Workload("monitoring", "prom", "10.70.1.12"), "net-a", "n1")
	sandwich := onNet(ztest.Workload("default", "sandwich", "10.70.1.13"), "net-a", "n1")
	sandwich.ApplicationTunnel = &workloadapi.ApplicationTunnel{Protocol: workloadapi.ApplicationTunnel_PROXY, Port: proxyPort}
	self := onNet(ztest.Workload("istio-system", "ztunnel-n1", "10.70.1.1"), "net-a", "n1")
	self.ServiceAccount = "ztunnel"
	split := onNet(ztest.WithService(ztest.Workload("default", "echo-net-b"), "default/"+echoHost, 80, 8080), "net-b", "")
	split.Uid, split.NetworkGateway = "net-b/NetworkGateway/default/echo", gatewayAt("net-b", gwB)
	gateway := onNet(ztest.Workload("istio-system", gwSA, gwB), "net-b", "")
	gateway.Uid = "NetworkGateway/net-b/" + gwB
	server := serverWorkload()
	server.NetworkGateway, server.Services = gatewayAt("net-b", gwB), nil
	// imposter's SANs name someone the server is not; looped's gateway is itself behind
	// another gateway.
	imposter, impSplit := remoteService("imposter", "10.96.0.11", "spiffe://cluster.local/ns/default/sa/not-echo", gatewayAt("net-b", gwB))
	looped, loopSplit := remoteService("looped", "10.96.0.12", echoSAN, gatewayAt("net-c", "10.70.9.9"))
	chained := onNet(ztest.Workload("istio-system", "chained-gateway", "10.70.9.9"), "net-c", "")
	chained.NetworkGateway = gatewayAt("net-b", gwB)
	legacy := onNet(ztest.Workload("default", "legacy", "10.70.2.11"), "net-b", "n2") // no ztunnel of its own
	legacy.TunnelProtocol, legacy.NetworkGateway = workloadapi.TunnelProtocol_NONE, gatewayAt("net-b", gwB)
	return ztest.AsAddresses(echoService("net-a"), client, intruder, prom, sandwich, self, split, gateway, server,
		imposter, impSplit, looped, loopSplit, chained, legacy, webService("net-a"), webWorkload())
}

// web is net-a's service for traffic the other way: net-b reaches it through gw-a.
func webService(network string) *workloadapi.Service {
	s := ztest.Service("default", "web", []string{webVIP}, 80, 8080)
	s.Addresses[0].Network, s.SubjectAltNames = network, []string{"spiffe://cluster.local/ns/default/sa/web"}
	return s
}

func webWorkload() *workloadapi.Workload {
	return onNet(ztest.WithService(ztest.Workload("default", "web", "10.70.1.15"), "default/web.default.svc.cluster.local", 80, 8080), "net-a", "n1")
}

// gwAView is what gw-a routes on.
func gwAView() []*workloadapi.Address { return ztest.AsAddresses(webService("net-a"), webWorkload()) }

// remoteService is a service of net-a's view whose one endpoint is a split-horizon
// workload behind gw.
func remoteService(name, vip, san string, gw *workloadapi.GatewayAddress) (*workloadapi.Service, *workloadapi.Workload) {
	s := ztest.Service("default", name, []string{vip}, 80, 8080)
	s.Addresses[0].Network, s.SubjectAltNames = "net-a", []string{san}
	w := onNet(ztest.WithService(ztest.Workload("default", name+"-remote"), "default/"+s.Hostname, 80, 8080), "net-b", "")
	w.NetworkGateway = gw
	return s, w
}

// netBView is net-b's: the server, echo's endpoint, allowed only to foo/client; and
// web, whose endpoint is net-a's behind gw-a.
func netBView() []*workloadapi.Address {
	web := onNet(ztest.WithService(ztest.Workload("default", "web-net-a"), "default/web.default.svc.cluster.local", 80, 8080), "net-a", "")
	web.Uid, web.NetworkGateway = "net-a/NetworkGateway/default/web", gatewayAt("net-a", gwA)
	gateway := onNet(ztest.Workload("istio-system", gwSA, gwA), "net-a", "")
	gateway.Uid = "NetworkGateway/net-a/" + gwA
	return ztest.AsAddresses(echoService("net-b"), serverWorkload(), webService("net-b"), web, gateway)
}

// gwBView is what gw-b routes on: net-b's view, where the server also backs imposter.
func gwBView() []*workloadapi.Address {
	imposter := echoService("net-b")
	imposter.Name, imposter.Hostname, imposter.Addresses = "imposter", "imposter.default.svc.cluster.local", nil
	server := ztest.WithService(serverWorkload(), "default/imposter.default.svc.cluster.local", 80, 8080)
	return ztest.AsAddresses(echoService("net-b"), imposter, server)
}

func serverWorkload() *workloadapi.Workload {
	w := onNet(ztest.WithService(ztest.Workload("default", "server", "10.70.2.10"), "default/"+echoHost, 80, 8080), "net-b", "n2")
	w.ServiceAccount, w.AuthorizationPolicies = "echo", []string{"default/allow-client"}
	return w
}

func echoService(network string) *workloadapi.Service {
	s := ztest.Service("default", "echo", []string{echoVIP}, 80, 8080)
	s.Addresses[0].Network, s.SubjectAltNames = network, []string{echoSAN}
	return s
}

// allowClient is the server's policy: only foo/client's identity.
var allowClient = &security.Authorization{Name: "allow-client", Namespace: "default", Scope: security.Scope_WORKLOAD_SELECTOR,
	Action: security.Action_ALLOW, Groups: []*security.Group{{Rules: []*security.Rules{{Matches: []*security.Match{{
		Principals: []*security.StringMatch{{MatchType: &security.StringMatch_Exact{Exact: "cluster.local/ns/foo/sa/client"}}},
	}}}}}}}
