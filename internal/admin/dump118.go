package admin

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// dump118 is /config_dump?layout=1.18: the eleven sections of the seed article, in the
// snake_case, IP-keyed shape ztunnel 1.18 wrote, for tools and readers of that era.
type dump118 struct {
	Certificates        []cert118              `json:"certificates"`
	Config              config118              `json:"config"`
	LocalNode           *string                `json:"local_node"`
	Policies            map[string]policy118   `json:"policies"`
	PoliciesByNamespace map[string][]string    `json:"policies_by_namespace"`
	ProxyMode           string                 `json:"proxy_mode"`
	StaticConfig        any                    `json:"static_config"`
	Version             version118             `json:"version"`
	VIPs                map[string][][2]any    `json:"vips"`            // "VIP:port" → [[ip, targetPort]]
	WorkloadToVIP       map[string][][2]any    `json:"workload_to_vip"` // ip → [["VIP:port", targetPort]]
	Workloads           map[string]workload118 `json:"workloads"`
}

// cert118 is a certificate as 1.18 showed it; the certificate manager fills these.
type cert118 struct {
	Identity  string        `json:"identity"`
	State     string        `json:"state"`
	CACert    []certInfo118 `json:"ca_cert"`
	CertChain []certInfo118 `json:"cert_chain"`
}

type certInfo118 struct {
	PEM            string `json:"pem"`
	SerialNumber   string `json:"serial_number"`
	ValidFrom      string `json:"valid_from"`
	ExpirationTime string `json:"expiration_time"`
}

// version118 has 1.18's keys; go_version stands where 1.18 had rust_version.
type version118 struct {
	Version      string `json:"version"`
	GitRevision  string `json:"git_revision"`
	GoVersion    string `json:"go_version"`
	BuildProfile string `json:"build_profile"`
	BuildStatus  string `json:"build_status"`
	GitTag       string `json:"git_tag"`
}

type workload118 struct {
	WorkloadIP            string   `json:"workloadIp"`
	WaypointAddresses     []string `json:"waypointAddresses"`
	GatewayAddress        *string  `json:"gatewayAddress"`
	Protocol              string   `json:"protocol"`
	Name                  string   `json:"name"`
	Namespace             string   `json:"namespace"`
	TrustDomain           string   `json:"trustDomain"`
	ServiceAccount        string   `json:"serviceAccount"`
	WorkloadName          string   `json:"workloadName"`
	WorkloadType          string   `json:"workloadType"`
	CanonicalName         string   `json:"canonicalName"`
	CanonicalRevision     string   `json:"canonicalRevision"`
	Node                  string   `json:"node"`
	NativeHbone           bool     `json:"nativeHbone"`
	AuthorizationPolicies []string `json:"authorizationPolicies"`
	Status                string   `json:"status"`
	ClusterID             string   `json:"clusterId"`
}

// policy118 is a policy with 1.18's "groups" for today's "rules", and no dry run.
type policy118 struct {
	Name      string                `json:"name"`
	Namespace string                `json:"namespace"`
	Scope     string                `json:"scope"`
	Action    string                `json:"action"`
	Groups    [][][]state.MatchJSON `json:"groups"`
}

func (s *Server) buildDump118(snap *state.Snapshot) dump118 {
	v := s.deps.Version
	d := dump118{
		Certificates: s.certificates118(), Config: s.config118(), LocalNode: optString(s.deps.Config.NodeName),
		Policies: map[string]policy118{}, PoliciesByNamespace: map[string][]string{},
		ProxyMode: proxyModeName(s.deps.Config.ProxyMode), StaticConfig: s.deps.Static,
		Version: version118{Version: v.Version, GitRevision: v.GitRevision, GoVersion: v.GoVersion,
			BuildProfile: "release", BuildStatus: v.BuildStatus, GitTag: v.Version},
		VIPs: map[string][][2]any{}, WorkloadToVIP: map[string][][2]any{}, Workloads: map[string]workload118{},
	}
	if d.StaticConfig == nil {
		d.StaticConfig = emptyStatic
	}
	for _, key := range snap.PolicyKeys() {
		pj := state.PolicyToJSON(snap.Policy(key))
		d.Policies[key] = policy118{Name: pj.Name, Namespace: pj.Namespace, Scope: pj.Scope, Action: pj.Action, Groups: pj.Rules}
		d.PoliciesByNamespace[pj.Namespace] = append(d.PoliciesByNamespace[pj.Namespace], key)
	}
	for _, w := range snap.Workloads() {
		for _, ip := range w.IPs {
			d.Workloads[ip.String()] = workload118Of(snap, w, ip)
		}
	}
	s.vips118(snap, &d)
	return d
}

func workload118Of(snap *state.Snapshot, w *state.Workload, ip netip.Addr) workload118 {
	j := workload118{
		WorkloadIP: ip.String(), WaypointAddresses: waypointIPs(snap, w.Waypoint),
		Protocol: w.JSON().Protocol, Name: w.Name, Namespace: w.Namespace, TrustDomain: w.TrustDomain,
		ServiceAccount: w.ServiceAccount, WorkloadName: w.WorkloadName,
		WorkloadType: strings.ToLower(w.WorkloadType.String()), CanonicalName: w.CanonicalName,
		CanonicalRevision: w.CanonicalRevision, Node: w.Node, NativeHbone: w.NativeTunnel,
		AuthorizationPolicies: append([]string{}, w.AuthorizationPolicies...),
		Status:                w.JSON().Status, ClusterID: w.ClusterId,
	}
	if gw := w.NetworkGateway.GetAddress(); gw != nil {
		if gip, ok := netip.AddrFromSlice(gw.Address); ok {
			a := netip.AddrPortFrom(gip, uint16(w.NetworkGateway.HboneMtlsPort)).String()
			j.GatewayAddress = &a
		}
	}
	return j
}

// waypointIPs gives a waypoint as 1.18 did, as IPs: a hostname waypoint is shown by
// its service's VIPs.
func waypointIPs(snap *state.Snapshot, g *workloadapi.GatewayAddress) []string {
	out := []string{}
	if a := g.GetAddress(); a != nil {
		if ip, ok := netip.AddrFromSlice(a.Address); ok {
			out = append(out, ip.String())
		}
	}
	if h := g.GetHostname(); h != nil {
		if svc := snap.ServiceByKey(h.Namespace + "/" + h.Hostname); svc != nil {
			for _, v := range svc.VIPs {
				out = append(out, v.Addr.String())
			}
		}
	}
	return out
}

// vips118 lists, for every exact VIP and service port, the endpoint IPs (of the VIP's
// family) with their target ports, and the reverse map. CIDR VIPs have no single
// "VIP:port" and are left out, as 1.18 had none.
func (s *Server) vips118(snap *state.Snapshot, d *dump118) {
	for _, svc := range snap.Services() {
		for _, vip := range svc.VIPs {
			for _, p := range svc.Ports {
				key := netip.AddrPortFrom(vip.Addr, uint16(p.ServicePort)).String()
				d.VIPs[key] = [][2]any{}
				for _, ep := range svc.Endpoints {
					s.addEndpoint118(snap, d, svc, ep, vip.Addr, key, p.ServicePort)
				}
				sortPairs(d.VIPs[key])
			}
		}
	}
	for ip := range d.WorkloadToVIP {
		sortPairs(d.WorkloadToVIP[ip])
	}
}

func (s *Server) addEndpoint118(snap *state.Snapshot, d *dump118, svc *state.Service, ep *state.Endpoint, vip netip.Addr, key string, port uint32) {
	target, ok := svc.TargetPort(ep, port)
	w := snap.WorkloadByUID(ep.WorkloadUID)
	if !ok || w == nil {
		return
	}
	for _, ip := range w.IPs {
		if ip.Is4() != vip.Is4() {
			continue
		}
		d.VIPs[key] = append(d.VIPs[key], [2]any{ip.String(), target})
		d.WorkloadToVIP[ip.String()] = append(d.WorkloadToVIP[ip.String()], [2]any{key, target})
	}
}

func sortPairs(ps [][2]any) {
	slices.SortFunc(ps, func(a, b [2]any) int {
		if c := cmp.Compare(a[0].(string), b[0].(string)); c != 0 {
			return c
		}
		return cmp.Compare(a[1].(uint32), b[1].(uint32))
	})
}
