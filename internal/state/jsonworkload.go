package state

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/istio/pkg/workloadapi"
)

// WorkloadJSON is a workload in Rust ztunnel's JSON form: the shape of /config_dump
// (read by istioctl) and of static config files. Field order follows Rust's.
type WorkloadJSON struct {
	WorkloadIPs           []string       `json:"workloadIps" yaml:"workloadIps"`
	Waypoint              *GatewayJSON   `json:"waypoint,omitempty" yaml:"waypoint"`
	NetworkGateway        *GatewayJSON   `json:"networkGateway,omitempty" yaml:"networkGateway"`
	Protocol              string         `json:"protocol" yaml:"protocol"`       // TCP | HBONE
	NetworkMode           string         `json:"networkMode" yaml:"networkMode"` // Standard | HostNetwork
	UID                   string         `json:"uid,omitempty" yaml:"uid"`
	Name                  string         `json:"name" yaml:"name"`
	Namespace             string         `json:"namespace" yaml:"namespace"`
	TrustDomain           string         `json:"trustDomain,omitempty" yaml:"trustDomain"`
	ServiceAccount        string         `json:"serviceAccount,omitempty" yaml:"serviceAccount"`
	Network               string         `json:"network,omitempty" yaml:"network"`
	WorkloadName          string         `json:"workloadName,omitempty" yaml:"workloadName"`
	WorkloadType          string         `json:"workloadType,omitempty" yaml:"workloadType"`
	CanonicalName         string         `json:"canonicalName,omitempty" yaml:"canonicalName"`
	CanonicalRevision     string         `json:"canonicalRevision,omitempty" yaml:"canonicalRevision"`
	Hostname              string         `json:"hostname,omitempty" yaml:"hostname"`
	Node                  string         `json:"node,omitempty" yaml:"node"`
	NativeTunnel          bool           `json:"nativeTunnel,omitempty" yaml:"nativeTunnel"`
	ApplicationTunnel     *AppTunnelJSON `json:"applicationTunnel,omitempty" yaml:"applicationTunnel"`
	AuthorizationPolicies []string       `json:"authorizationPolicies,omitempty" yaml:"authorizationPolicies"`
	Status                string         `json:"status" yaml:"status"` // Healthy | Unhealthy
	ClusterID             string         `json:"clusterId" yaml:"clusterId"`
	Locality              *LocalityJSON  `json:"locality,omitempty" yaml:"locality"`
	Services              []string       `json:"services,omitempty" yaml:"-"` // dump only: "ns/hostname"
	Capacity              *uint32        `json:"capacity,omitempty" yaml:"capacity"`
}

// GatewayJSON is a waypoint or network gateway: "network/ip" or "namespace/hostname".
type GatewayJSON struct {
	Destination   string `json:"destination" yaml:"destination"`
	HBONEMTLSPort uint32 `json:"hboneMtlsPort" yaml:"hboneMtlsPort"`
}

// AppTunnelJSON is the workload's application tunnel (PROXY protocol to the app).
type AppTunnelJSON struct {
	Protocol string  `json:"protocol" yaml:"protocol"` // NONE | PROXY
	Port     *uint32 `json:"port,omitempty" yaml:"port"`
}

// LocalityJSON is region/zone/subzone.
type LocalityJSON struct {
	Region  string `json:"region" yaml:"region"`
	Zone    string `json:"zone" yaml:"zone"`
	Subzone string `json:"subzone" yaml:"subzone"`
}

// JSON renders a workload as the dump shows it.
func (w *Workload) JSON() WorkloadJSON {
	j := WorkloadJSON{
		Waypoint: gatewayJSON(w.Waypoint), NetworkGateway: gatewayJSON(w.NetworkGateway),
		Protocol: protocolName(w.TunnelProtocol), NetworkMode: networkModeName(w.NetworkMode),
		UID: w.Uid, Name: w.Name, Namespace: w.Namespace, TrustDomain: w.TrustDomain,
		ServiceAccount: w.ServiceAccount, Network: w.Network, WorkloadName: w.WorkloadName,
		WorkloadType:  strings.ToLower(w.WorkloadType.String()),
		CanonicalName: w.CanonicalName, CanonicalRevision: w.CanonicalRevision,
		Hostname: w.Hostname, Node: w.Node, NativeTunnel: w.NativeTunnel,
		AuthorizationPolicies: w.AuthorizationPolicies, Status: statusName(w.Status),
		ClusterID: w.ClusterId, Services: sortedKeys(w.Services),
	}
	j.WorkloadIPs = make([]string, len(w.IPs))
	for i, ip := range w.IPs {
		j.WorkloadIPs[i] = ip.String()
	}
	if t := w.ApplicationTunnel; t != nil {
		j.ApplicationTunnel = &AppTunnelJSON{Protocol: t.Protocol.String()}
		if t.Port != 0 {
			j.ApplicationTunnel.Port = &t.Port
		}
	}
	if l := w.Locality; l != nil {
		j.Locality = &LocalityJSON{Region: l.Region, Zone: l.Zone, Subzone: l.Subzone}
	}
	c := w.CapacityOrDefault()
	j.Capacity = &c
	return j
}

func protocolName(p workloadapi.TunnelProtocol) string {
	if p == workloadapi.TunnelProtocol_HBONE {
		return "HBONE"
	}
	return "TCP"
}

func networkModeName(m workloadapi.NetworkMode) string {
	if m == workloadapi.NetworkMode_HOST_NETWORK {
		return "HostNetwork"
	}
	return "Standard"
}

func statusName(s workloadapi.WorkloadStatus) string {
	if s == workloadapi.WorkloadStatus_UNHEALTHY {
		return "Unhealthy"
	}
	return "Healthy"
}

func gatewayJSON(g *workloadapi.GatewayAddress) *GatewayJSON {
	if g == nil {
		return nil
	}
	j := &GatewayJSON{HBONEMTLSPort: g.HboneMtlsPort}
	switch d := g.Destination.(type) {
	case *workloadapi.GatewayAddress_Address:
		ip, _ := netip.AddrFromSlice(d.Address.Address)
		j.Destination = d.Address.Network + "/" + ip.String()
	case *workloadapi.GatewayAddress_Hostname:
		j.Destination = d.Hostname.Namespace + "/" + d.Hostname.Hostname
	}
	return j
}

// Proto converts a static-config workload. Errors name the offending field relative to
// the workload ("workloadIps[1]: …"), for the caller to prefix with its own path.
func (j *WorkloadJSON) Proto() (*workloadapi.Workload, error) {
	if j.Namespace == "" {
		return nil, errors.New("namespace: required")
	}
	if len(j.WorkloadIPs) == 0 && j.Hostname == "" {
		return nil, errors.New("workloadIps: required (or hostname)")
	}
	w := &workloadapi.Workload{
		Uid: j.UID, Name: j.Name, Namespace: j.Namespace, TrustDomain: j.TrustDomain,
		ServiceAccount: j.ServiceAccount, Network: j.Network, WorkloadName: j.WorkloadName,
		CanonicalName: j.CanonicalName, CanonicalRevision: j.CanonicalRevision, Hostname: j.Hostname,
		Node: j.Node, NativeTunnel: j.NativeTunnel, AuthorizationPolicies: j.AuthorizationPolicies,
		ClusterId: j.ClusterID,
	}
	for i, s := range j.WorkloadIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("workloadIps[%d]: %q is not an IP address", i, s)
		}
		w.Addresses = append(w.Addresses, ip.AsSlice())
	}
	if err := j.enums(w); err != nil {
		return nil, err
	}
	if err := j.gateways(w); err != nil {
		return nil, err
	}
	if j.Locality != nil {
		w.Locality = &workloadapi.Locality{Region: j.Locality.Region, Zone: j.Locality.Zone, Subzone: j.Locality.Subzone}
	}
	if j.Capacity != nil {
		w.Capacity = wrapperspb.UInt32(*j.Capacity)
	}
	if w.Uid == "" {
		w.Uid = fmt.Sprintf("%s//Pod/%s/%s", orDefault(j.ClusterID, DefaultClusterID), j.Namespace, j.Name)
	}
	return w, nil
}

func (j *WorkloadJSON) enums(w *workloadapi.Workload) error {
	var err error
	if w.TunnelProtocol, err = enumOf(j.Protocol, "protocol", map[string]workloadapi.TunnelProtocol{
		"": 0, "TCP": workloadapi.TunnelProtocol_NONE, "HBONE": workloadapi.TunnelProtocol_HBONE}); err != nil {
		return err
	}
	if w.NetworkMode, err = enumOf(j.NetworkMode, "networkMode", map[string]workloadapi.NetworkMode{
		"": 0, "Standard": workloadapi.NetworkMode_STANDARD, "HostNetwork": workloadapi.NetworkMode_HOST_NETWORK}); err != nil {
		return err
	}
	if w.Status, err = enumOf(j.Status, "status", map[string]workloadapi.WorkloadStatus{
		"": 0, "Healthy": workloadapi.WorkloadStatus_HEALTHY, "Unhealthy": workloadapi.WorkloadStatus_UNHEALTHY}); err != nil {
		return err
	}
	if w.WorkloadType, err = enumOf(j.WorkloadType, "workloadType", map[string]workloadapi.WorkloadType{
		"": 0, "deployment": workloadapi.WorkloadType_DEPLOYMENT, "cronjob": workloadapi.WorkloadType_CRONJOB,
		"pod": workloadapi.WorkloadType_POD, "job": workloadapi.WorkloadType_JOB}); err != nil {
		return err
	}
	if t := j.ApplicationTunnel; t != nil {
		p, err := enumOf(t.Protocol, "applicationTunnel.protocol", map[string]workloadapi.ApplicationTunnel_Protocol{
			"NONE": workloadapi.ApplicationTunnel_NONE, "PROXY": workloadapi.ApplicationTunnel_PROXY})
		if err != nil {
			return err
		}
		w.ApplicationTunnel = &workloadapi.ApplicationTunnel{Protocol: p}
		if t.Port != nil {
			w.ApplicationTunnel.Port = *t.Port
		}
	}
	return nil
}

func (j *WorkloadJSON) gateways(w *workloadapi.Workload) error {
	var err error
	if w.Waypoint, err = j.Waypoint.proto(); err != nil {
		return fmt.Errorf("waypoint.%w", err)
	}
	if w.NetworkGateway, err = j.NetworkGateway.proto(); err != nil {
		return fmt.Errorf("networkGateway.%w", err)
	}
	return nil
}

func (g *GatewayJSON) proto() (*workloadapi.GatewayAddress, error) {
	if g == nil {
		return nil, nil
	}
	out := &workloadapi.GatewayAddress{HboneMtlsPort: g.HBONEMTLSPort}
	left, right, ok := strings.Cut(g.Destination, "/")
	if !ok || right == "" {
		return nil, fmt.Errorf("destination: %q is neither network/ip nor namespace/hostname", g.Destination)
	}
	if ip, err := netip.ParseAddr(right); err == nil {
		out.Destination = &workloadapi.GatewayAddress_Address{Address: &workloadapi.NetworkAddress{Network: left, Address: ip.AsSlice()}}
	} else {
		out.Destination = &workloadapi.GatewayAddress_Hostname{Hostname: &workloadapi.NamespacedHostname{Namespace: left, Hostname: right}}
	}
	return out, nil
}

func enumOf[E any](v, field string, names map[string]E) (E, error) {
	e, ok := names[v]
	if !ok {
		var zero E
		var want []string
		for k := range names {
			if k != "" {
				want = append(want, k)
			}
		}
		return zero, fmt.Errorf("%s: %q is not one of %s", field, v, strings.Join(sortStrings(want), ", "))
	}
	return e, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
