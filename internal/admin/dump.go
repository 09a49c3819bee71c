package admin

import (
	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// dump is /config_dump in the shape current Rust ztunnel writes and
// `istioctl ztunnel-config` reads: camelCase, lists. Field order is Rust's.
type dump struct {
	Workloads      []state.WorkloadJSON                     `json:"workloads"`
	Services       []state.ServiceJSON                      `json:"services"`
	Policies       []state.PolicyJSON                       `json:"policies"`
	StagedServices map[string]map[string]state.EndpointJSON `json:"stagedServices"`
	StaticConfig   any                                      `json:"staticConfig"`
	Version        versionJSON                              `json:"version"`
	Config         configJSON                               `json:"config"`
	Certificates   []CertificateJSON                        `json:"certificates"`
	WorkloadState  map[string]WorkloadStateJSON             `json:"workloadState"`
}

type versionJSON struct {
	Version        string `json:"version"`
	GitRevision    string `json:"gitRevision"`
	GoVersion      string `json:"goVersion"`
	BuildProfile   string `json:"buildProfile"`
	BuildStatus    string `json:"buildStatus"`
	IstioVersion   string `json:"istioVersion"`
	CryptoProvider string `json:"cryptoProvider"`
}

// CertificateJSON is one identity's certificate in the current layout; the
// certificate manager fills these (empty until it exists).
type CertificateJSON struct {
	Identity  string         `json:"identity"`
	State     string         `json:"state"`
	CertChain []CertInfoJSON `json:"certChain"`
	RootCerts []CertInfoJSON `json:"rootCerts"`
}

// CertInfoJSON describes one certificate of a chain.
type CertInfoJSON struct {
	PEM            string `json:"pem"`
	SerialNumber   string `json:"serialNumber"`
	ValidFrom      string `json:"validFrom"`
	ExpirationTime string `json:"expirationTime"`
}

// emptyStatic is what the dump shows when no static config was loaded.
var emptyStatic = map[string][]any{"workloads": {}, "policies": {}, "services": {}}

func (s *Server) buildDump(snap *state.Snapshot) dump {
	d := dump{
		Workloads:      make([]state.WorkloadJSON, 0, len(snap.Workloads())),
		Services:       make([]state.ServiceJSON, 0, len(snap.Services())),
		Policies:       make([]state.PolicyJSON, 0, len(snap.PolicyKeys())),
		StagedServices: map[string]map[string]state.EndpointJSON{},
		StaticConfig:   s.deps.Static,
		Version:        s.versionJSON(),
		Config:         s.configJSON(),
		Certificates:   s.certificatesJSON(),
		WorkloadState:  workloadState(s.deps.Conns),
	}
	for _, w := range snap.Workloads() {
		d.Workloads = append(d.Workloads, w.JSON())
	}
	for _, svc := range snap.Services() {
		d.Services = append(d.Services, svc.JSON())
	}
	for _, k := range snap.PolicyKeys() {
		d.Policies = append(d.Policies, state.PolicyToJSON(snap.Policy(k)))
	}
	for key, eps := range snap.Staged() {
		m := make(map[string]state.EndpointJSON, len(eps))
		for _, ep := range eps {
			m[ep.WorkloadUID] = ep.JSON()
		}
		d.StagedServices[key] = m
	}
	if d.StaticConfig == nil {
		d.StaticConfig = emptyStatic
	}
	return d
}

func (s *Server) versionJSON() versionJSON {
	v := s.deps.Version
	return versionJSON{Version: v.Version, GitRevision: v.GitRevision, GoVersion: v.GoVersion,
		BuildProfile: "release", BuildStatus: v.BuildStatus,
		IstioVersion: s.deps.Config.IstioVersion(), CryptoProvider: "go"}
}

// WorkloadStateJSON is one pod's (or workload's) entry: its state and live connections,
// in the shape `istioctl ztunnel-config connections` reads.
type WorkloadStateJSON struct {
	State       string           `json:"state,omitempty"`
	Connections ConnectionsJSON  `json:"connections"`
	Info        WorkloadInfoJSON `json:"info"`
}

// ConnectionsJSON are the live connections of a workload.
type ConnectionsJSON struct {
	Inbound  []ConnJSON `json:"inbound"`
	Outbound []ConnJSON `json:"outbound"`
}

// ConnJSON is one connection; originalDst is null when there is none.
type ConnJSON struct {
	Src         string  `json:"src"`
	OriginalDst *string `json:"originalDst"`
	ActualDst   string  `json:"actualDst"`
	Protocol    string  `json:"protocol"`
}

// WorkloadInfoJSON names the workload.
type WorkloadInfoJSON struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
}

func workloadState(r *conns.Registry) map[string]WorkloadStateJSON {
	out := map[string]WorkloadStateJSON{}
	for key, st := range r.Dump() {
		w := st.Workload
		j := WorkloadStateJSON{State: st.State, Info: WorkloadInfoJSON{Name: w.Name, Namespace: w.Namespace, ServiceAccount: w.ServiceAccount},
			Connections: ConnectionsJSON{Inbound: connsJSON(st.Inbound), Outbound: connsJSON(st.Outbound)}}
		out[key] = j
	}
	return out
}

func connsJSON(cs []conns.Conn) []ConnJSON {
	out := make([]ConnJSON, 0, len(cs))
	for _, c := range cs {
		j := ConnJSON{Src: c.Src, ActualDst: c.ActualDst, Protocol: c.Protocol}
		if c.OriginalDst != "" {
			j.OriginalDst = optString(c.OriginalDst)
		}
		out = append(out, j)
	}
	return out
}
