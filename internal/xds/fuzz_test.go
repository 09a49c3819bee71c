package xds

import (
	"testing"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// FuzzLocalConfig: a static config file either loads into state or fails with an error;
// it never panics, whatever the YAML.
func FuzzLocalConfig(f *testing.F) {
	f.Add([]byte(`workloads: [{uid: a, name: a, namespace: ns, workloadIps: ["10.0.0.1"], protocol: HBONE}]`))
	f.Add([]byte(`services: [{name: s, namespace: ns, hostname: s.ns.svc, vips: ["/10.1.0.1"], ports: {80: 8080}}]`))
	f.Add([]byte(`policies: [{name: p, namespace: ns, scope: Namespace, action: Deny, rules: [[[{notPrincipals: ["*"]}]]]}]`))
	f.Add([]byte("workloads: [{workloadIps: [\"300.1.1.1\"]}]"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseLocalConfig(data)
		if err != nil {
			return
		}
		c.Apply(state.NewStore())
	})
}

// FuzzResourceConversion: an xDS resource istiod (or anything posing as it) sends is
// decoded and converted into state, or rejected with a reason; never a panic. The
// input is the protobuf body of a Workload/Address or an Authorization.
func FuzzResourceConversion(f *testing.F) {
	w, _ := proto.Marshal(&workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: &workloadapi.Workload{
		Uid: "c//w", Name: "w", Namespace: "ns", Addresses: [][]byte{{10, 0, 0, 1}}, TunnelProtocol: workloadapi.TunnelProtocol_HBONE}}})
	s, _ := proto.Marshal(&workloadapi.Address{Type: &workloadapi.Address_Service{Service: &workloadapi.Service{
		Name: "s", Namespace: "ns", Hostname: "s.ns.svc", Addresses: []*workloadapi.NetworkAddress{{Address: []byte{10, 1, 0, 1}}}}}})
	p, _ := proto.Marshal(&security.Authorization{Name: "p", Namespace: "ns", Action: security.Action_DENY,
		Groups: []*security.Group{{Rules: []*security.Rules{{Matches: []*security.Match{{NotPrincipals: []*security.StringMatch{{}}}}}}}}})
	f.Add(w, false)
	f.Add(s, false)
	f.Add(p, true)
	f.Add([]byte{0x0a, 0xff}, false)
	f.Fuzz(func(t *testing.T, body []byte, policy bool) {
		i := 0
		if policy {
			i = 1
		}
		resp := &discoverypb.DeltaDiscoveryResponse{Resources: []*discoverypb.Resource{
			{Name: "fuzzed", Resource: &anypb.Any{TypeUrl: resourceTypes[i].url, Value: body}}}}
		u, bad := decode(i, resp)
		errs := state.NewStore().Apply(u)
		if len(bad)+len(errs) > 1 {
			t.Errorf("one resource, %d rejections and %d state errors", len(bad), len(errs))
		}
	})
}
