package admin

import (
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
	WorkloadState  map[string]any                           `json:"workloadState"`
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
		WorkloadState:  map[string]any{},
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
