// Package config holds ztunnel's one immutable configuration, loaded from the same
// environment variables as Istio's Rust ztunnel so that Istio's Helm chart drives either.
package config

import (
	"net/netip"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// ProxyMode says whether ztunnel serves many workloads (shared) or one (dedicated).
type ProxyMode string

const (
	Shared    ProxyMode = "shared"
	Dedicated ProxyMode = "dedicated"
)

// Config is built once by Load and never changed; every subsystem reads it.
type Config struct {
	ProxyMode    ProxyMode
	WorkloadInfo *identity.Workload // dedicated mode only; no UID
	// InPod: listeners inside each pod's netns (istio-cni ZDS). False is node mode: one
	// netns, the source workload found by its IP.
	InPod          bool
	InPodUDS       string
	InPodPortReuse bool
	// Standalone is set when nothing points ztunnel at a control plane or a static config
	// and it does not run in a cluster: it then serves the embedded example config.
	Standalone bool

	XDSAddress string // "" disables xDS
	CAAddress  string
	// XDSAltHostname and CAAltHostname, when set, are the names checked on istiod's
	// certificates instead of the addresses' hosts (ALT_XDS_HOSTNAME, ALT_CA_HOSTNAME).
	XDSAltHostname string
	CAAltHostname  string
	XDSRootCert    RootCert
	CARootCert     RootCert
	AuthToken      Token
	XDSHeaders     []Header
	CAHeaders      []Header
	XDSOnDemand    bool

	LocalXDSPath string
	LocalXDS     string // inline YAML

	FakeCA    bool
	SecretTTL time.Duration
	// CRLPath is Istio's chart's peerCaCrl file (CRL_PATH): the mesh CA's revocation
	// lists, enforced on HBONE peers both ways (internal/crl).
	CRLPath string
	// TLS12Enabled also allows TLS 1.2 on HBONE; CompliancePolicy "pqc" allows only the
	// X25519MLKEM768 key exchange.
	TLS12Enabled     bool
	CompliancePolicy string

	ClusterID      string
	ClusterDomain  string
	TrustDomain    string
	Network        string
	NodeName       string
	InstanceIP     string
	PodName        string
	PodNamespace   string
	ServiceAccount string
	// SelfNetns is the network namespace file ztunnel's own inbound (the self-proxy, on
	// Addrs.Inbound) listens in; empty is ztunnel's own. Not an environment variable:
	// tests run several ztunnels in one process, each "node" a namespace.
	SelfNetns string

	PacketMark    uint32 // 0: no mark
	EnableOrigSrc *bool  // nil: best effort (auto)
	IPv6Enabled   bool
	Keepalive     Keepalive
	UserTimeout   bool

	HTTP2 HTTP2 // HBONE's HTTP/2 settings (http2.go)

	PoolMaxStreamsPerConn    uint16
	PoolUnusedReleaseTimeout time.Duration

	// Limits against floods and stuck peers; ours (Rust ztunnel has fixed values or
	// none): see Limits.
	Limits Limits

	// TerminationDeadline bounds draining on shutdown.
	TerminationDeadline time.Duration
	WorkerThreads       int // effective GOMAXPROCS
	// WorkerThreadsSet: ZTUNNEL_WORKER_THREADS was given, so start-up sets GOMAXPROCS.
	// Otherwise Go's own default stays, which follows the container's CPU limit.
	WorkerThreadsSet bool
	// MemoryLimitRatio is the share of the cgroup's memory limit start-up gives Go as
	// GOMEMLIMIT (AUTOMEMLIMIT, default 0.9); 0 leaves Go's limit alone (GOMEMLIMIT set,
	// or AUTOMEMLIMIT=off).
	MemoryLimitRatio float64
	Socks5Enabled    bool
	// EnableProxy false runs the DNS proxy only (ENABLE_PROXY), as Rust.
	EnableProxy bool
	// AuthzInfoLogging logs allowed authorization decisions at info, not debug.
	AuthzInfoLogging bool
	// ResponseBaggage sends a baggage header describing the destination on inbound's
	// 200 and reads the request's (ENABLE_RESPONSE_BAGGAGE, Rust enable_enhanced_baggage).
	ResponseBaggage bool
	// LocalhostAppTunnel (LOCALHOST_APP_TUNNEL) sends PROXY application tunnels to the
	// pod's loopback, from loopback, so the app need bind nowhere else.
	LocalhostAppTunnel bool
	// Warnings are environment variables that look like ztunnel's but are not read
	// (typos): start-up logs each.
	Warnings []string

	// DNS is the DNS proxy (15053); its listen addresses are in Addrs.
	DNS DNS

	// ProxyMetadata holds ISTIO_META_* with the prefix stripped; ProxyMetadataJSON holds
	// ISTIO_METAJSON_* values, already checked to be JSON.
	ProxyMetadata     map[string]string
	ProxyMetadataJSON map[string]string

	LogFormat string // "plain" or "json"
	LogLevel  string // RUST_LOG syntax

	Addrs Addresses
}

// Limits bound what peers can make ztunnel hold. Rust ztunnel has no connection cap and
// no idle timeouts (it relies on TCP keepalive); ours default to values that no
// well-behaved workload reaches, and 0 turns a timeout off.
type Limits struct {
	MaxConnections    int           // proxied connections held at once, all pods together
	HandshakeTimeout  time.Duration // TLS handshake, and the HTTP/2 preface after it
	IdleTimeout       time.Duration // a connection with no byte either way is closed (0: never)
	HalfClosedTimeout time.Duration // after one side's FIN, silence this long closes it (0: never)
}

// Addresses are the listeners of the ztunnel process itself (not those in pod netns).
type Addresses struct {
	Admin            []netip.AddrPort // localhost, v4 and (when available) v6
	Stats            netip.AddrPort
	Readiness        netip.AddrPort
	Inbound          netip.AddrPort
	InboundPlaintext netip.AddrPort
	Outbound         netip.AddrPort
	Socks5           netip.AddrPort
	// DNS is where the DNS proxy listens, UDP and TCP, in each pod's namespace (in-pod
	// mode) or ztunnel's own; DNSOptional are skipped where they do not exist ([::1]).
	DNS         []netip.AddrPort
	DNSOptional []netip.AddrPort
}

// DNS configures the DNS proxy.
type DNS struct {
	Enabled bool // ISTIO_META_DNS_CAPTURE unset or "true", as in Rust
	// ResolvConf is ztunnel's own resolv.conf, whose nameservers (kube-dns in a cluster)
	// get the names the mesh does not know. Not an environment variable: Rust reads
	// /etc/resolv.conf too; tests and embedders point it elsewhere.
	ResolvConf string
	// PreferredNamespace breaks ties between services of one hostname (Rust's
	// PREFERED_SERVICE_NAMESPACE, sic).
	PreferredNamespace string
}

// RootCert is where trusted roots come from: a file, the system pool, or inline PEM.
type RootCert struct {
	File   string
	System bool
	PEM    string
}

// Token is the bearer credential for istiod: a file re-read on every use, or a literal.
type Token struct {
	File    string
	Literal string
}

// Header is one extra gRPC metadata entry; kept as a list to keep the env order stable.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Keepalive is TCP keepalive for accepted and outbound sockets.
type Keepalive struct {
	Enabled  bool
	Time     time.Duration
	Interval time.Duration
	Retries  uint32
}

// IstioVersion is the `tag` of istio_build, from ISTIO_META_ISTIO_VERSION.
func (c *Config) IstioVersion() string {
	if v := c.ProxyMetadata["ISTIO_VERSION"]; v != "" {
		return v
	}
	return "unknown"
}
