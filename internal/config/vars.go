package config

import (
	"reflect"
	"slices"
)

// Variable documents one environment variable that Load reads. The table below is the
// single source of truth: the README's configuration table is checked against it by a
// test, and Load refuses to read a name that is not declared here, so the three cannot
// drift apart.
type Variable struct {
	Name    string // exact name, or a prefix ending in "*" for families (XDS_HEADER_*)
	Default string // as a user would write it; "–" when unset means "off" or "none"
	Meaning string
}

// Variables lists every environment variable ztunnel reads, in README order.
func Variables() []Variable { return append([]Variable(nil), variables...) }

var variables = slices.Concat([]Variable{
	{"PROXY_MODE", "shared", "`shared`: node proxy for many workloads; `dedicated`: one workload, no impersonation"},
	{"PROXY_WORKLOAD_INFO", "–", "`namespace/name/serviceaccount` of the one workload; required with `dedicated`"},
	{"INPOD_ENABLED", "true (shared, in a cluster); false (standalone)", "in-pod redirection (pod netns from istio-cni over ZDS); false = node mode (one netns, source found by IP)"},
	{"INPOD_UDS", "/var/run/ztunnel/ztunnel.sock", "ZDS socket of istio-cni"},
	{"INPOD_PORT_REUSE", "true", "SO_REUSEPORT on listeners inside pod netns"},
	{"XDS_ADDRESS", "https://istiod.istio-system.svc:15012", "istiod delta xDS; `https://` is added when no scheme is given; empty disables xDS"},
	{"CA_ADDRESS", "same as XDS_ADDRESS", "Istio CA; ignored with FAKE_CA"},
	{"XDS_ROOT_CA", "./var/run/secrets/istio/root-cert.pem", "roots for XDS_ADDRESS: a file (re-read when it changes: the connection is rebuilt and xDS resumes from the versions held), `SYSTEM`, or inline PEM"},
	{"CA_ROOT_CA", "./var/run/secrets/istio/root-cert.pem", "roots for CA_ADDRESS, as XDS_ROOT_CA"},
	{"ALT_XDS_HOSTNAME", "–", "the name checked on istiod's xDS certificate, instead of XDS_ADDRESS's host"},
	{"ALT_CA_HOSTNAME", "–", "the name checked on the CA's certificate, instead of CA_ADDRESS's host"},
	{"AUTH_TOKEN", "./var/run/secrets/tokens/istio-token", "bearer token for xDS and CA: a file path, or a literal token"},
	{"XDS_HEADER_*", "–", "extra gRPC metadata on xDS: `XDS_HEADER_X_FOO=v` sends `x_foo: v` (name lowercased)"},
	{"CA_HEADER_*", "–", "extra gRPC metadata on CA calls, as XDS_HEADER_*"},
	{"XDS_ON_DEMAND", "false", "fetch Address resources on demand"},
	{"LOCAL_XDS_PATH", "–", "static config file (YAML), applied at start"},
	{"LOCAL_XDS", "–", "static config inline (YAML); exclusive with LOCAL_XDS_PATH"},
	{"FAKE_CA", "false (true in standalone)", "built-in CA that signs any identity; not for production clusters"},
	{"SECRET_TTL", "24h", "requested certificate validity"},
	{"CRL_PATH", "–", "the mesh CA's CRLs (PEM, or one DER), as Istio's chart mounts them with `peerCaCrl.enabled`: HBONE peers whose leaf or intermediate is revoked are refused at the handshake, and open connections with them are closed when a new CRL arrives (`CERT_REVOKED`). The file is looked at every second (a ConfigMap's symlink swap included); one that does not parse or is not signed by a mesh CA is refused, and the CRLs in force stay"},
	{"TLS12_ENABLED", "false", "also allow TLS 1.2 on HBONE (ECDHE-ECDSA/RSA with AES-GCM), as Rust"},
	{"COMPLIANCE_POLICY", "–", "`pqc`: HBONE key exchange X25519MLKEM768 only; peers that cannot are refused"},
	{"CLUSTER_ID", "Kubernetes", "cluster name (`ISTIO_META_CLUSTER_ID` wins)"},
	{"KUBERNETES_SERVICE_HOST", "– (set by the kubelet)", "its presence (or a service-account token file) means ztunnel runs in a cluster: istiod's default address is the in-cluster one"},
	{"PROXY_CONFIG", "–", "ProxyConfig YAML (`discoveryAddress`, `proxyAdminPort`, `statsPort`, `concurrency`, `proxyMetadata`) laid over the mesh config file's `defaultConfig` (./etc/istio/config/mesh); the variables above win where both set a value"},
	{"CLUSTER_DOMAIN", "cluster.local", "DNS suffix of services"},
	{"TRUST_DOMAIN", "cluster.local", "trust domain of ztunnel's own identity"},
	{"NETWORK", "–", "network of this node"},
	{"NODE_NAME", "– (local in standalone)", "this node's name: certificates are prefetched for the HBONE workloads on it"},
	{"INSTANCE_IP", "–", "this pod's IP, in the xDS node id"},
	{"POD_NAME", "–", "this pod's name, in the xDS node id"},
	{"POD_NAMESPACE", "–", "this pod's namespace, in the xDS node id"},
	{"SERVICE_ACCOUNT", "–", "this pod's service account (ztunnel's own identity)"},
	{"PACKET_MARK", "1337 (shared); none (dedicated)", "SO_MARK on ztunnel's sockets, so istio-cni's rules let them through"},
	{"ENABLE_ORIG_SRC", "– (auto)", "keep the client IP on inbound connections to the app (IP_TRANSPARENT)"},
	{"IPV6_ENABLED", "true", "bind dual-stack `[::]`; false binds `0.0.0.0`"},
	{"KEEPALIVE_ENABLED", "true", "TCP keepalive on accepted and outbound sockets"},
	{"KEEPALIVE_TIME", "180s", "idle time before the first keepalive probe"},
	{"KEEPALIVE_INTERVAL", "180s", "time between keepalive probes"},
	{"KEEPALIVE_RETRIES", "9", "probes before the connection is dropped"},
	{"USER_TIMEOUT_ENABLED", "false", "TCP_USER_TIMEOUT = time + retries × interval"},
}, taggedVariables(reflect.TypeFor[HTTP2]()), []Variable{
	{"POOL_MAX_STREAMS_PER_CONNECTION", "100", "streams per pooled HBONE connection"},
	{"POOL_UNUSED_RELEASE_TIMEOUT", "5m", "idle pooled connections are closed after this"},
	{"MAX_CONNECTIONS", "65536", "proxied connections held at once (all pods); past it new ones are refused at once (RST, or 503 on HBONE). Ours"},
	{"TLS_HANDSHAKE_TIMEOUT", "10s", "bound on a TLS handshake and the HTTP/2 preface after it. Ours"},
	{"CONNECTION_IDLE_TIMEOUT", "0 (never)", "a proxied connection with no byte either way for this long is closed. Ours"},
	{"HALF_CLOSED_TIMEOUT", "10m", "after one side's FIN, this long without a byte from the other closes the connection (0: never). Ours"},
	{"CONNECTION_TERMINATION_DEADLINE", "5s", "how long draining may take; overrides the one derived from TERMINATION_GRACE_PERIOD_SECONDS"},
	{"TERMINATION_GRACE_PERIOD_SECONDS", "–", "pod grace period N; the drain deadline becomes N−5 s when N > 10, else N−1 s (at least 1 s)"},
	{"ZTUNNEL_WORKER_THREADS", "see ZTUNNEL_CPU_LIMIT", "sets GOMAXPROCS: `N`, `N%` of the pod's CPUs, or 0 for all; wins over every other sizing"},
	{"ZTUNNEL_CPU_LIMIT", "–", "the pod's CPU count (Istio's chart fills it from limits.cpu, else the node's cores): the base of `N%`; when set (or a CPU request is), GOMAXPROCS is Rust's default, a quarter of it rounded up, at least 2 and at least the request; with none of the CPU variables set, Go's cgroup-aware count of all CPUs"},
	{"ZTUNNEL_RESOURCE_CPU_LIMIT", "–", "the chart's resources.limits.cpu (`2`, `1.5`, `500m`, rounded up): the base of `N%`, and GOMAXPROCS when ZTUNNEL_WORKER_THREADS is unset, as Rust's worker threads"},
	{"ZTUNNEL_RESOURCE_CPU_REQUEST", "–", "the chart's resources.requests.cpu: that GOMAXPROCS is at least it"},
	{"AUTOMEMLIMIT", "0.9", "GOMEMLIMIT becomes this share of the pod's memory limit (cgroup memory.max; the chart sets none by default, and then nothing changes), so the collector works harder before the OOM killer would; `off`, or GOMEMLIMIT set, keeps Go's own limit"},
	{"GOMEMLIMIT", "–", "Go's soft memory limit; when set it wins over AUTOMEMLIMIT. GOGC is Go's too (100)"},
	{"UNSTABLE_ENABLE_SOCKS5", "false (true in standalone)", "SOCKS5 listener on 127.0.0.1:15080"},
	{"ENABLE_PROXY", "true", "false runs no proxy listener (15001, 15006, 15008), only the DNS proxy, as Rust; with the DNS proxy off too, start-up fails"},
	{"LOCALHOST_APP_TUNNEL", "true", "inbound connections to a workload with a PROXY application tunnel (a sandwiched waypoint) go to its 127.0.0.1 (or ::1), from loopback; false: to its pod IP, from the client's"},
	{"ENABLE_RESPONSE_BAGGAGE", "true", "inbound answers a CONNECT with a `baggage` header describing the destination and reads the request's; outbound fills unknown peers' labels from it"},
	{"AUTHZ_POLICY_INFO_LOGGING", "false", "log allowed authorization decisions at info instead of debug (denials are at info either way)"},
	{"ISTIO_META_DNS_CAPTURE", "true", "DNS proxy on 15053 (istio-cni sends every pod's DNS there): unset or `true` is on, any other value off"},
	{"ISTIO_META_DNS_PROXY_ADDR", "localhost:15053", "where the DNS proxy listens, UDP and TCP: `localhost:PORT` (127.0.0.1, and [::1] where it exists) or `IP:PORT`"},
	{"PREFERED_SERVICE_NAMESPACE", "–", "(sic, Rust's name) namespace preferred when a DNS name matches services in several namespaces, after the client's own and canonical ones"},
	{"ISTIO_META_*", "–", "xDS node metadata, prefix stripped (`ISTIO_META_ISTIO_VERSION` is the `istio_build` tag)"},
	{"ISTIO_METAJSON_*", "–", "xDS node metadata parsed as JSON"},
	{"LOG_FORMAT", "plain", "`plain` or `json`"},
	{"RUST_LOG", "info", "log levels: `info`, or per component `info,xds=debug` (Rust ztunnel's variable, kept so Istio's chart works)"},
})

// declared reports whether name is in the table, directly or through a prefix family.
func declared(name string) bool {
	for _, v := range variables {
		if v.Name == name {
			return true
		}
		if p, ok := familyPrefix(v.Name); ok && len(name) > len(p) && name[:len(p)] == p {
			return true
		}
	}
	return false
}

func familyPrefix(name string) (string, bool) {
	if n := len(name); n > 0 && name[n-1] == '*' {
		return name[:n-1], true
	}
	return "", false
}
