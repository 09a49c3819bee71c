package admin

import (
	"net/netip"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
)

// durationJSON is Rust's serde form of a Duration.
type durationJSON struct {
	Secs  int64 `json:"secs"`
	Nanos int64 `json:"nanos"`
}

func durJSON(d time.Duration) durationJSON {
	return durationJSON{Secs: int64(d / time.Second), Nanos: int64(d % time.Second)}
}

// rootCertJSON is {"File": path}, {"Static": pem} or "Default" (the system pool), as the
// seed shows for ca_root_cert and xds_root_cert.
func rootCertJSON(r config.RootCert) any {
	switch {
	case r.System:
		return "Default"
	case r.PEM != "":
		return map[string]string{"Static": r.PEM}
	}
	return map[string]string{"File": r.File}
}

// dnsAddrJSON is Rust's serde form of its config::Address: {"Localhost": [ipv6, port]}
// for localhost:PORT, {"SocketAddr": "ip:port"} otherwise.
func dnsAddrJSON(a config.Addresses) any {
	if len(a.DNS) != 1 {
		return nil
	}
	if d := a.DNS[0]; d.Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return map[string][]any{"Localhost": {len(a.DNSOptional) > 0, d.Port()}}
	}
	return map[string]string{"SocketAddr": a.DNS[0].String()}
}

func proxyModeName(m config.ProxyMode) string {
	if m == config.Dedicated {
		return "Dedicated"
	}
	return "Shared"
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// configJSON is the effective config, every field, camelCase (current layout).
type configJSON struct {
	ProxyMode                string            `json:"proxyMode"`
	InpodEnabled             bool              `json:"inpodEnabled"`
	Standalone               bool              `json:"standalone"`
	ProxyWorkloadInformation *workloadInfoJSON `json:"proxyWorkloadInformation"`
	WindowSize               uint32            `json:"windowSize"`
	ConnectionWindowSize     uint32            `json:"connectionWindowSize"`
	FrameSize                uint32            `json:"frameSize"`
	PoolMaxStreamsPerConn    uint16            `json:"poolMaxStreamsPerConn"`
	PoolUnusedReleaseTimeout durationJSON      `json:"poolUnusedReleaseTimeout"`
	Socks5Addr               *string           `json:"socks5Addr"`
	AdminAddr                []string          `json:"adminAddr"`
	StatsAddr                string            `json:"statsAddr"`
	ReadinessAddr            string            `json:"readinessAddr"`
	InboundAddr              string            `json:"inboundAddr"`
	InboundPlaintextAddr     string            `json:"inboundPlaintextAddr"`
	OutboundAddr             string            `json:"outboundAddr"`
	DNSProxy                 bool              `json:"dnsProxy"`
	DNSProxyAddr             any               `json:"dnsProxyAddr"`
	PreferedServiceNamespace *string           `json:"preferedServiceNamespace"`
	Network                  string            `json:"network"`
	LocalNode                *string           `json:"localNode"`
	LocalIP                  *string           `json:"localIp"`
	ClusterID                string            `json:"clusterId"`
	ClusterDomain            string            `json:"clusterDomain"`
	TrustDomain              string            `json:"trustDomain"`
	XDSAddress               *string           `json:"xdsAddress"`
	XDSRootCert              any               `json:"xdsRootCert"`
	XDSOnDemand              bool              `json:"xdsOnDemand"`
	XDSHeaders               []config.Header   `json:"xdsHeaders"`
	CAAddress                *string           `json:"caAddress"`
	CARootCert               any               `json:"caRootCert"`
	CAHeaders                []config.Header   `json:"caHeaders"`
	AltXDSHostname           *string           `json:"altXdsHostname"`
	AltCAHostname            *string           `json:"altCaHostname"`
	CRLPath                  *string           `json:"crlPath"`
	TLS                      mtls.PolicyJSON   `json:"tls"` // ours: the HBONE TLS policy in force
	FakeCA                   bool              `json:"fakeCa"`
	SecretTTL                durationJSON      `json:"secretTtl"`
	LocalXDSPath             *string           `json:"localXdsPath"`
	ProxyMetadata            map[string]string `json:"proxyMetadata"`
	NumWorkerThreads         int               `json:"numWorkerThreads"`
	RequireOriginalSource    *bool             `json:"requireOriginalSource"`
	InpodUDS                 string            `json:"inpodUds"`
	InpodPortReuse           bool              `json:"inpodPortReuse"`
	PacketMark               *uint32           `json:"packetMark"`
	IPv6Enabled              bool              `json:"ipv6Enabled"`
	SocketConfig             socketConfigJSON  `json:"socketConfig"`
	TerminationDeadline      durationJSON      `json:"terminationDeadline"`
	LogFormat                string            `json:"logFormat"`
	LogLevel                 string            `json:"logLevel"`
	LocalhostAppTunnel       bool              `json:"localhostAppTunnel"`
	// ztunnel's own identity and workload, from POD_NAMESPACE, SERVICE_ACCOUNT and
	// POD_NAME (all three, as Rust): its own inbound runs as them.
	ZtunnelIdentity *string           `json:"ztunnelIdentity"`
	ZtunnelWorkload *workloadInfoJSON `json:"ztunnelWorkload"`
}

type workloadInfoJSON struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	ServiceAccount string `json:"serviceAccount"`
}

type socketConfigJSON struct {
	KeepaliveTime      durationJSON `json:"keepaliveTime"`
	KeepaliveInterval  durationJSON `json:"keepaliveInterval"`
	KeepaliveRetries   uint32       `json:"keepaliveRetries"`
	KeepaliveEnabled   bool         `json:"keepaliveEnabled"`
	UserTimeoutEnabled bool         `json:"userTimeoutEnabled"`
}

// EffectiveConfig is the config as the dump shows it, for the start-up log line.
func EffectiveConfig(c *config.Config, levels *logging.Levels) any {
	return (&Server{deps: Deps{Config: c, Levels: levels}}).configJSON()
}

func (s *Server) configJSON() configJSON {
	c := s.deps.Config
	j := configJSON{
		ProxyMode: proxyModeName(c.ProxyMode), InpodEnabled: c.InPod, Standalone: c.Standalone,
		WindowSize: c.HTTP2.StreamWindow, ConnectionWindowSize: c.HTTP2.ConnWindow, FrameSize: c.HTTP2.FrameSize,
		PoolMaxStreamsPerConn: c.PoolMaxStreamsPerConn, PoolUnusedReleaseTimeout: durJSON(c.PoolUnusedReleaseTimeout),
		AdminAddr: addrStrings(c.Addrs.Admin), StatsAddr: c.Addrs.Stats.String(),
		ReadinessAddr: c.Addrs.Readiness.String(), InboundAddr: c.Addrs.Inbound.String(),
		InboundPlaintextAddr: c.Addrs.InboundPlaintext.String(), OutboundAddr: c.Addrs.Outbound.String(),
		Network: c.Network, LocalNode: optString(c.NodeName), LocalIP: optString(c.InstanceIP),
		ClusterID: c.ClusterID, ClusterDomain: c.ClusterDomain, TrustDomain: c.TrustDomain,
		XDSAddress: optString(c.XDSAddress), XDSRootCert: rootCertJSON(c.XDSRootCert), XDSOnDemand: c.XDSOnDemand,
		XDSHeaders: headersJSON(c.XDSHeaders), CAAddress: optString(c.CAAddress), CARootCert: rootCertJSON(c.CARootCert),
		CAHeaders: headersJSON(c.CAHeaders), FakeCA: c.FakeCA, SecretTTL: durJSON(c.SecretTTL),
		LocalXDSPath: optString(c.LocalXDSPath), ProxyMetadata: c.ProxyMetadata, NumWorkerThreads: c.WorkerThreads,
		RequireOriginalSource: c.EnableOrigSrc, InpodUDS: c.InPodUDS, InpodPortReuse: c.InPodPortReuse,
		IPv6Enabled: c.IPv6Enabled, TerminationDeadline: durJSON(c.TerminationDeadline),
		LogFormat: c.LogFormat, LogLevel: s.deps.Levels.Current().String(),
		SocketConfig: socketConfigJSON{KeepaliveTime: durJSON(c.Keepalive.Time), KeepaliveInterval: durJSON(c.Keepalive.Interval),
			KeepaliveRetries: c.Keepalive.Retries, KeepaliveEnabled: c.Keepalive.Enabled, UserTimeoutEnabled: c.UserTimeout},
	}
	if c.Socks5Enabled {
		j.Socks5Addr = optString(c.Addrs.Socks5.String())
	}
	j.AltXDSHostname, j.AltCAHostname, j.CRLPath = optString(c.XDSAltHostname), optString(c.CAAltHostname), optString(c.CRLPath)
	j.TLS = (&mtls.Policy{TLS12: c.TLS12Enabled, PQC: c.CompliancePolicy == "pqc"}).Describe()
	j.TLS.CRL = c.CRLPath != ""
	j.DNSProxy, j.DNSProxyAddr, j.PreferedServiceNamespace = c.DNS.Enabled, dnsAddrJSON(c.Addrs), optString(c.DNS.PreferredNamespace)
	if w := c.WorkloadInfo; w != nil {
		j.ProxyWorkloadInformation = &workloadInfoJSON{Namespace: w.Namespace, Name: w.Name, ServiceAccount: w.ServiceAccount}
	}
	if c.PacketMark != 0 {
		j.PacketMark = &c.PacketMark
	}
	j.LocalhostAppTunnel = c.LocalhostAppTunnel
	if c.PodName != "" && c.PodNamespace != "" && c.ServiceAccount != "" {
		j.ZtunnelIdentity = optString(identity.New(c.TrustDomain, c.PodNamespace, c.ServiceAccount).String())
		j.ZtunnelWorkload = &workloadInfoJSON{Namespace: c.PodNamespace, Name: c.PodName, ServiceAccount: c.ServiceAccount}
	}
	return j
}

// headersJSON never returns nil, so an empty list dumps as [] rather than null.
func headersJSON(h []config.Header) []config.Header {
	if h == nil {
		return []config.Header{}
	}
	return h
}

func addrStrings(as []netip.AddrPort) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// config118 is the seed article's `config` block, key for key.
type config118 struct {
	WindowSize             uint32            `json:"window_size"`
	ConnectionWindowSize   uint32            `json:"connection_window_size"`
	FrameSize              uint32            `json:"frame_size"`
	Socks5Addr             string            `json:"socks5_addr"`
	AdminAddr              string            `json:"admin_addr"`
	StatsAddr              string            `json:"stats_addr"`
	ReadinessAddr          string            `json:"readiness_addr"`
	InboundAddr            string            `json:"inbound_addr"`
	InboundPlaintextAddr   string            `json:"inbound_plaintext_addr"`
	OutboundAddr           string            `json:"outbound_addr"`
	LocalNode              *string           `json:"local_node"`
	ProxyMode              string            `json:"proxy_mode"`
	LocalIP                *string           `json:"local_ip"`
	ClusterID              string            `json:"cluster_id"`
	CAAddress              *string           `json:"ca_address"`
	CARootCert             any               `json:"ca_root_cert"`
	XDSAddress             *string           `json:"xds_address"`
	XDSRootCert            any               `json:"xds_root_cert"`
	XDSOnDemand            bool              `json:"xds_on_demand"`
	FakeCA                 bool              `json:"fake_ca"`
	TerminationGracePeriod durationJSON      `json:"termination_grace_period"`
	ProxyMetadata          map[string]string `json:"proxy_metadata"`
	NumWorkerThreads       int               `json:"num_worker_threads"`
	EnableOriginalSource   *bool             `json:"enable_original_source"`
	ProxyArgs              string            `json:"proxy_args"`
}

func (s *Server) config118() config118 {
	c := s.deps.Config
	return config118{
		WindowSize: c.HTTP2.StreamWindow, ConnectionWindowSize: c.HTTP2.ConnWindow, FrameSize: c.HTTP2.FrameSize,
		Socks5Addr: c.Addrs.Socks5.String(), AdminAddr: c.Addrs.Admin[0].String(),
		StatsAddr: c.Addrs.Stats.String(), ReadinessAddr: c.Addrs.Readiness.String(),
		InboundAddr: c.Addrs.Inbound.String(), InboundPlaintextAddr: c.Addrs.InboundPlaintext.String(),
		OutboundAddr: c.Addrs.Outbound.String(), LocalNode: optString(c.NodeName),
		ProxyMode: proxyModeName(c.ProxyMode), LocalIP: optString(c.InstanceIP), ClusterID: c.ClusterID,
		CAAddress: optString(c.CAAddress), CARootCert: rootCertJSON(c.CARootCert),
		XDSAddress: optString(c.XDSAddress), XDSRootCert: rootCertJSON(c.XDSRootCert),
		XDSOnDemand: c.XDSOnDemand, FakeCA: c.FakeCA, TerminationGracePeriod: durJSON(c.TerminationDeadline),
		ProxyMetadata: c.ProxyMetadata, NumWorkerThreads: c.WorkerThreads,
		EnableOriginalSource: c.EnableOrigSrc, ProxyArgs: s.deps.ProxyArgs,
	}
}
