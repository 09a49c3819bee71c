package xds_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/examples"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// load parses a static config and applies it to a new store.
func load(t *testing.T, data []byte) *state.Snapshot {
	t.Helper()
	c, err := xds.ParseLocalConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	s := state.NewStore()
	if err := c.Apply(s); err != nil {
		t.Fatal(err)
	}
	return s.Snapshot()
}

func TestStandaloneExampleLoads(t *testing.T) {
	ztest.NoLeaks(t)
	snap := load(t, examples.Standalone)
	svc := snap.ServiceByVIP("", netip.MustParseAddr("127.0.10.1"), "")
	if svc == nil || len(svc.Endpoints) != 2 {
		t.Fatalf("httpbin VIP = %+v", svc)
	}
	if p, ok := svc.TargetPort(svc.Endpoints[0], 8000); !ok || p != 8080 {
		t.Errorf("8000 → %d, want 8080", p)
	}
	if w := snap.WorkloadByAddr("", netip.MustParseAddr("127.0.0.5")); w == nil || w.TunnelProtocol != workloadapi.TunnelProtocol_NONE {
		t.Errorf("legacy-tcp = %v", w)
	}
	p := snap.Policy("default/httpbin")
	if p == nil || p.Action != security.Action_DENY || p.Groups[0].Rules[0].Matches[0].Namespaces[0].GetExact() != "foo" {
		t.Errorf("seed policy = %v", p)
	}
}

func TestFullFieldSet(t *testing.T) {
	ztest.NoLeaks(t)
	yaml := `
workloads:
- uid: c//Pod/ns/w
  name: w
  namespace: ns
  workloadIps: ["10.0.0.1", "fd00::1"]
  protocol: HBONE
  networkMode: HostNetwork
  trustDomain: td
  serviceAccount: sa
  network: n1
  workloadType: pod
  hostname: w.example
  nativeTunnel: true
  waypoint: {destination: "n1/10.0.0.9", hboneMtlsPort: 15008}
  networkGateway: {destination: "istio-system/gw.example", hboneMtlsPort: 15008}
  applicationTunnel: {protocol: PROXY, port: 15088}
  authorizationPolicies: [ns/sel]
  status: Unhealthy
  clusterId: c
  locality: {region: r, zone: z, subzone: s}
  capacity: 3
  services: {"ns/svc.example": {80: 8080}}
services:
- name: svc
  namespace: ns
  hostname: svc.example
  vips: ["n1/10.96.0.1", "10.97.0.0/16"]
  ports: {80: 0}
  subjectAltNames: [spiffe://td/ns/ns/sa/sa]
  loadBalancer: {routingPreferences: [Zone, Node], mode: Failover, healthPolicy: AllowAll}
  ipFamilies: Dual
  visibility: Namespace
policies:
- name: sel
  namespace: ns
  scope: WorkloadSelector
  action: Allow
  dryRun: true
  rules:
  - - - principals: [{Prefix: td/ns/}, {Presence: []}]
        notNamespaces: [{Suffix: -test}]
        sourceIps: ["10.0.0.0/8", "192.168.1.1"]
        notDestinationPorts: [22]
        serviceAccounts: [{namespace: ns, serviceAccount: sa}]
`
	snap := load(t, []byte(yaml))
	w := snap.WorkloadByUID("c//Pod/ns/w")
	if w == nil || w.Capacity.GetValue() != 3 || w.ApplicationTunnel.Port != 15088 || w.Locality.Zone != "z" ||
		w.Waypoint.GetAddress().GetNetwork() != "n1" || w.NetworkGateway.GetHostname().GetHostname() != "gw.example" {
		t.Fatalf("workload = %v", w)
	}
	// Round trip: the dump form of what was loaded reads like what was written.
	got, _ := json.Marshal(w.JSON())
	for _, frag := range []string{`"networkMode":"HostNetwork"`, `"status":"Unhealthy"`, `"waypoint":{"destination":"n1/10.0.0.9","hboneMtlsPort":15008}`, `"services":["ns/svc.example"]`, `"workloadType":"pod"`} {
		if !strings.Contains(string(got), frag) {
			t.Errorf("workload JSON lacks %s: %s", frag, got)
		}
	}
	svc := snap.ServiceByKey("ns/svc.example")
	sj, _ := json.Marshal(svc.JSON())
	for _, frag := range []string{`"vips":["n1/10.96.0.1"]`, `"cidrVips":["/10.97.0.0/16"]`, `"ipFamilies":"Dual"`, `"mode":"Failover"`, `"routingPreferences":["Zone","Node"]`, `"visibility":"Namespace"`} {
		if !strings.Contains(string(sj), frag) {
			t.Errorf("service JSON lacks %s: %s", frag, sj)
		}
	}
	pj, _ := json.Marshal(state.PolicyToJSON(snap.Policy("ns/sel")))
	want := `{"name":"sel","namespace":"ns","scope":"WorkloadSelector","action":"Allow","rules":[[[{"notNamespaces":[{"Suffix":"-test"}],"principals":[{"Prefix":"td/ns/"},{"Presence":[]}],"sourceIps":["10.0.0.0/8","192.168.1.1/32"],"notDestinationPorts":[22],"serviceAccounts":[{"namespace":"ns","serviceAccount":"sa"}]}]]],"dryRun":true}`
	if string(pj) != want {
		t.Errorf("policy JSON\n got %s\nwant %s", pj, want)
	}
}

func TestErrorsNameTheirPath(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct{ name, yaml, want string }{
		{"unknown top-level field", "workload: []", `workload (line 1): unknown field "workload"`},
		{"unknown workload field", "workloads:\n- name: a\n  namespace: b\n  workloadIps: [10.0.0.1]\n  colour: red",
			`workloads[0].colour (line 5): unknown field "colour"`},
		{"bad IP", "workloads:\n- name: a\n  namespace: b\n  workloadIps: [10.0.0.1, 10.0.0.300]",
			`workloads[0].workloadIps[1]: "10.0.0.300" is not an IP address`},
		{"wrong type", "services:\n- name: s\n  namespace: n\n  hostname: h\n  ports: {80: eighty}",
			"services[0].ports.80 (line 5): cannot unmarshal"},
		{"bad enum", "workloads:\n- namespace: b\n  workloadIps: [10.0.0.1]\n  protocol: QUIC",
			`workloads[0].protocol: "QUIC" is not one of HBONE, TCP`},
		{"bad VIP", "services:\n- namespace: n\n  hostname: h\n  vips: [n1/10.0.0.1/33]",
			`services[0].vips[0]: "n1/10.0.0.1/33" is not`},
		{"bad policy CIDR", "policies:\n- name: p\n  namespace: n\n  scope: Namespace\n  action: Deny\n  rules: [[[{sourceIps: [10.0.0.0/99]}]]]",
			`policies[0].rules[0][0][0].sourceIps[0]: "10.0.0.0/99" is not an IP or CIDR`},
		{"two string matches", "policies:\n- name: p\n  namespace: n\n  scope: Global\n  action: Allow\n  rules: [[[{namespaces: [{Exact: a, Prefix: b}]}]]]",
			"policies[0].rules[0][0][0].namespaces[0]: want exactly one of"},
		{"missing namespace", "workloads:\n- name: a\n  workloadIps: [10.0.0.1]", "workloads[0].namespace: required"},
		{"bad service key", "workloads:\n- namespace: b\n  workloadIps: [10.0.0.1]\n  services: {nohost: {80: 80}}", `workloads[0].services: "nohost" is not namespace/hostname`},
		{"endpoints given", "services:\n- namespace: n\n  hostname: h\n  endpoints: {u: {workloadUid: u}}", "services[0].endpoints: not accepted"},
		{"not YAML", "workloads: [", "parsing YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := xds.ParseLocalConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReadLocalConfig(t *testing.T) {
	ztest.NoLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "z.yaml")
	if err := os.WriteFile(path, []byte("workloads: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := xds.ReadLocalConfig(path); err != nil {
		t.Error(err)
	}
	if _, err := xds.ReadLocalConfig(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file error = %v", err)
	}
	if c, err := xds.ParseLocalConfig(nil); err != nil || len(c.Workloads) != 0 {
		t.Errorf("empty config: %v %v", c, err)
	}
}
