package config

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// Files whose presence means "running in a Kubernetes pod": the projected Istio token and
// the default service-account token.
const (
	defaultIstioToken = "./var/run/secrets/tokens/istio-token"
	k8sTokenFile      = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	defaultRootCert   = "./var/run/secrets/istio/root-cert.pem"
	clusterIstiod     = "https://istiod.istio-system.svc:15012"
	localIstiod       = "https://localhost:15012"
)

// Source is everything Load reads. Tests build one by hand; FromOS reads the process.
type Source struct {
	Env        []string          // KEY=VALUE pairs, as os.Environ returns them
	FileExists func(string) bool // nil: os.Stat
	IPv6       func() bool       // nil: probe by binding [::1]
	NumCPU     int               // 0: runtime.GOMAXPROCS(0), Go's cgroup-aware CPU count
	// ReadFile reads the mesh config file (MeshConfigFile); nil: os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// FromOS is the Source of a real start-up.
func FromOS() Source { return Source{Env: os.Environ()} }

// Load builds the Config. Every malformed variable is reported, each naming the variable
// and its value, so one start-up attempt shows all mistakes at once.
func Load(src Source) (*Config, error) {
	r := newReader(src)
	c := r.loadAll()
	if err := errors.Join(r.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *reader) loadAll() *Config {
	c := &Config{}
	r.pc = r.loadProxyConfig()
	r.loadMetadata(c)
	r.loadMode(c)
	r.loadControlPlane(c)
	r.loadIdentity(c)
	r.loadNetwork(c)
	r.loadHTTP2(c)
	r.loadRuntime(c)
	r.loadTLS(c)
	c.Addrs = addresses(c.IPv6Enabled && r.src.ipv6())
	if p := r.pc.ProxyAdminPort; p != nil {
		for i := range c.Addrs.Admin {
			c.Addrs.Admin[i] = netip.AddrPortFrom(c.Addrs.Admin[i].Addr(), *p)
		}
	}
	if p := r.pc.StatsPort; p != nil {
		c.Addrs.Stats = netip.AddrPortFrom(c.Addrs.Stats.Addr(), *p)
	}
	c.Addrs.DNS, c.Addrs.DNSOptional = r.dnsAddrs(c.IPv6Enabled)
	if !c.EnableProxy && !c.DNS.Enabled {
		r.fail("ENABLE_PROXY", "false", errors.New("and the DNS proxy is off (ISTIO_META_DNS_CAPTURE): ztunnel would run no server"))
	}
	if c.XDSOnDemand && c.DNS.Enabled {
		// Rust validate_config: the DNS proxy answers only from what it holds, so with
		// on-demand xDS it would forward mesh names it has not fetched yet.
		r.fail("XDS_ON_DEMAND", "true", errors.New("and the DNS proxy is on: the DNS proxy does not support on-demand mode (set ISTIO_META_DNS_CAPTURE=false)"))
	}
	c.Warnings = r.typos()
	return c
}

func (s Source) exists(path string) bool {
	if s.FileExists != nil {
		return s.FileExists(path)
	}
	_, err := os.Stat(path)
	return err == nil
}

func (s Source) ipv6() bool {
	if s.IPv6 != nil {
		return s.IPv6()
	}
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (s Source) cpus() int {
	if s.NumCPU > 0 {
		return s.NumCPU
	}
	return runtime.GOMAXPROCS(0)
}

// loadMode decides shared/dedicated, in-pod/node and standalone. Standalone is chosen
// only when nothing names a control plane or a static config and no token file says we
// run in a cluster: then ztunnel serves an embedded example in node mode with the
// built-in CA, so `go run ./cmd/ztunnel` works on a laptop.
func (r *reader) loadMode(c *Config) {
	c.ProxyMode = Shared
	switch v, _ := r.get("PROXY_MODE"); v {
	case "", "shared":
	case "dedicated":
		c.ProxyMode = Dedicated
	default:
		r.fail("PROXY_MODE", v, errors.New(`want "shared" or "dedicated"`))
	}
	if v, ok := r.get("PROXY_WORKLOAD_INFO"); ok {
		c.WorkloadInfo = r.workloadInfo(v)
	} else if c.ProxyMode == Dedicated {
		r.fail("PROXY_WORKLOAD_INFO", "", errors.New("required with PROXY_MODE=dedicated"))
	}
	_, xds := r.get("XDS_ADDRESS")
	xds = xds || r.pc.DiscoveryAddress != nil
	_, path := r.get("LOCAL_XDS_PATH")
	_, inline := r.get("LOCAL_XDS")
	_, token := r.get("AUTH_TOKEN")
	c.Standalone = !xds && !path && !inline && !token && !r.inCluster()
	c.InPod = r.boolean("INPOD_ENABLED", c.ProxyMode == Shared && !c.Standalone)
	if c.InPod && c.ProxyMode == Dedicated {
		r.fail("INPOD_ENABLED", "true", errors.New("in-pod mode needs PROXY_MODE=shared"))
	}
	c.InPodUDS = r.str("INPOD_UDS", "/var/run/ztunnel/ztunnel.sock")
	c.InPodPortReuse = r.boolean("INPOD_PORT_REUSE", true)
}

// inCluster: Rust looks at KUBERNETES_SERVICE_HOST, which the kubelet sets in every
// pod; the token files also tell a pod whose environment was trimmed.
func (r *reader) inCluster() bool {
	return r.has("KUBERNETES_SERVICE_HOST") || r.src.exists(defaultIstioToken) || r.src.exists(k8sTokenFile)
}

func (r *reader) workloadInfo(v string) *identity.Workload {
	parts := strings.Split(v, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		r.fail("PROXY_WORKLOAD_INFO", v, errors.New("want namespace/name/serviceaccount"))
		return nil
	}
	return &identity.Workload{Namespace: parts[0], Name: parts[1], ServiceAccount: parts[2]}
}

// loadControlPlane reads istiod's addresses, roots and credentials. Outside a cluster an
// unset XDS_ADDRESS means "no xDS" (rather than Rust's https://localhost:15012), because a
// laptop or VM user with a static config has no istiod to reach.
func (r *reader) loadControlPlane(c *Config) {
	def := clusterIstiod
	if !r.inCluster() {
		def = localIstiod
		if c.Standalone || r.has("LOCAL_XDS_PATH") || r.has("LOCAL_XDS") {
			def = ""
		}
	}
	if a := r.pc.DiscoveryAddress; a != nil {
		def = *a
		if def != "" && !strings.Contains(def, "://") {
			def = "https://" + def
		}
	}
	c.XDSAddress = r.url("XDS_ADDRESS", def)
	c.XDSAltHostname = r.str("ALT_XDS_HOSTNAME", "")
	c.CAAltHostname = r.str("ALT_CA_HOSTNAME", "")
	caDef := c.XDSAddress
	if caDef == "" && !c.Standalone {
		caDef = map[bool]string{true: clusterIstiod, false: localIstiod}[r.inCluster()]
	}
	c.CAAddress = r.url("CA_ADDRESS", caDef)
	c.XDSRootCert = r.rootCert("XDS_ROOT_CA")
	c.CARootCert = r.rootCert("CA_ROOT_CA")
	c.AuthToken = r.token("AUTH_TOKEN")
	c.XDSHeaders = r.headers("XDS_HEADER_")
	c.CAHeaders = r.headers("CA_HEADER_")
	c.XDSOnDemand = r.boolean("XDS_ON_DEMAND", false)
	c.LocalXDSPath = r.str("LOCAL_XDS_PATH", "")
	c.LocalXDS = r.str("LOCAL_XDS", "")
	if c.LocalXDSPath != "" && c.LocalXDS != "" {
		r.fail("LOCAL_XDS", "(inline)", errors.New("set LOCAL_XDS or LOCAL_XDS_PATH, not both"))
	}
	c.FakeCA = r.boolean("FAKE_CA", c.Standalone)
	c.SecretTTL = r.duration("SECRET_TTL", 24*time.Hour)
	c.CRLPath = r.str("CRL_PATH", "")
}

func (r *reader) loadIdentity(c *Config) {
	c.ClusterID = r.str("CLUSTER_ID", "Kubernetes")
	if v, ok := r.get("ISTIO_META_CLUSTER_ID"); ok && v != "" {
		c.ClusterID = v
	}
	c.ClusterDomain = r.str("CLUSTER_DOMAIN", "cluster.local")
	c.TrustDomain = r.str("TRUST_DOMAIN", "cluster.local")
	c.Network = r.str("NETWORK", "")
	c.NodeName = r.str("NODE_NAME", map[bool]string{true: "local"}[c.Standalone])
	c.InstanceIP = r.str("INSTANCE_IP", "")
	if c.InstanceIP != "" {
		if _, err := netip.ParseAddr(c.InstanceIP); err != nil {
			r.fail("INSTANCE_IP", c.InstanceIP, errors.New("want an IP address"))
		}
	}
	c.PodName = r.str("POD_NAME", "")
	c.PodNamespace = r.str("POD_NAMESPACE", "")
	c.ServiceAccount = r.str("SERVICE_ACCOUNT", "")
}

func (r *reader) loadNetwork(c *Config) {
	mark := uint64(0)
	if c.ProxyMode == Shared {
		mark = 1337
	}
	c.PacketMark = uint32(r.uint("PACKET_MARK", mark, 0, 1<<32-1))
	if _, ok := r.get("ENABLE_ORIG_SRC"); ok {
		v := r.boolean("ENABLE_ORIG_SRC", false)
		c.EnableOrigSrc = &v
	}
	c.IPv6Enabled = r.boolean("IPV6_ENABLED", true)
	c.Keepalive = Keepalive{
		Enabled:  r.boolean("KEEPALIVE_ENABLED", true),
		Time:     r.duration("KEEPALIVE_TIME", 180*time.Second),
		Interval: r.duration("KEEPALIVE_INTERVAL", 180*time.Second),
		Retries:  uint32(r.uint("KEEPALIVE_RETRIES", 9, 1, 255)),
	}
	c.UserTimeout = r.boolean("USER_TIMEOUT_ENABLED", false)
	c.Socks5Enabled = r.boolean("UNSTABLE_ENABLE_SOCKS5", c.Standalone)
	c.EnableProxy = r.boolean("ENABLE_PROXY", true)
	c.AuthzInfoLogging = r.boolean("AUTHZ_POLICY_INFO_LOGGING", false)
	c.ResponseBaggage = r.boolean("ENABLE_RESPONSE_BAGGAGE", true)
	c.LocalhostAppTunnel = r.boolean("LOCALHOST_APP_TUNNEL", true)
	r.has("ISTIO_META_DNS_CAPTURE") // read through the merged metadata
	v, set := c.ProxyMetadata["DNS_CAPTURE"]
	c.DNS = DNS{
		Enabled:            !set || strings.EqualFold(strings.TrimSpace(v), "true"),
		ResolvConf:         "/etc/resolv.conf",
		PreferredNamespace: r.str("PREFERED_SERVICE_NAMESPACE", ""),
	}
}

// dnsAddrs reads ISTIO_META_DNS_PROXY_ADDR as Rust does: `localhost:PORT` is 127.0.0.1
// and, with IPv6, [::1] wherever it exists (a pod may lack it); anything else must be
// an IP:port.
func (r *reader) dnsAddrs(v6 bool) (addrs, optional []netip.AddrPort) {
	r.has("ISTIO_META_DNS_PROXY_ADDR") // read through the merged metadata
	v, ok := r.metadata["DNS_PROXY_ADDR"]
	if !ok {
		v = "localhost:15053"
	}
	if port, ok := strings.CutPrefix(v, "localhost:"); ok {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			r.fail("ISTIO_META_DNS_PROXY_ADDR", v, errors.New("want localhost:PORT or IP:PORT"))
			return nil, nil
		}
		addrs = []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(p))}
		if v6 {
			optional = []netip.AddrPort{netip.AddrPortFrom(netip.IPv6Loopback(), uint16(p))}
		}
		return addrs, optional
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		r.fail("ISTIO_META_DNS_PROXY_ADDR", v, errors.New("want localhost:PORT or IP:PORT"))
		return nil, nil
	}
	return []netip.AddrPort{ap}, nil
}

// loadHTTP2 bounds the HBONE settings by what RFC 9113 allows, so that a typo fails at
// start-up rather than as a protocol error on the first connection.
func (r *reader) loadHTTP2(c *Config) {
	r.loadTagged(&c.HTTP2)
	c.PoolMaxStreamsPerConn = uint16(r.uint("POOL_MAX_STREAMS_PER_CONNECTION", 100, 1, 65535))
	c.PoolUnusedReleaseTimeout = r.duration("POOL_UNUSED_RELEASE_TIMEOUT", 5*time.Minute)
	c.Limits = Limits{
		MaxConnections:    int(r.uint("MAX_CONNECTIONS", 65536, 1, 1<<24)),
		HandshakeTimeout:  r.duration("TLS_HANDSHAKE_TIMEOUT", 10*time.Second),
		IdleTimeout:       r.duration("CONNECTION_IDLE_TIMEOUT", 0),
		HalfClosedTimeout: r.duration("HALF_CLOSED_TIMEOUT", 10*time.Minute),
	}
	if v, _ := r.get("TLS_HANDSHAKE_TIMEOUT"); c.Limits.HandshakeTimeout == 0 {
		r.fail("TLS_HANDSHAKE_TIMEOUT", v, errors.New("must be positive: a silent client would hold its socket forever"))
	}
}

func (r *reader) loadRuntime(c *Config) {
	c.TerminationDeadline = 5 * time.Second
	if r.has("TERMINATION_GRACE_PERIOD_SECONDS") {
		n := r.uint("TERMINATION_GRACE_PERIOD_SECONDS", 6, 0, 1<<31)
		c.TerminationDeadline = time.Duration(graceToDeadline(n)) * time.Second
	}
	if r.has("CONNECTION_TERMINATION_DEADLINE") {
		c.TerminationDeadline = r.duration("CONNECTION_TERMINATION_DEADLINE", c.TerminationDeadline)
	}
	r.loadWorkers(c)
	c.MemoryLimitRatio = r.memoryLimitRatio()
	c.LogFormat = r.oneOf("LOG_FORMAT", "plain", "plain", "json")
	c.LogLevel = r.logLevel("RUST_LOG", "info")
}

// loadWorkers sets GOMAXPROCS as Rust ztunnel sizes its worker threads (config.rs
// parse_worker_threads, get_cpu_count, default_worker_threads). ZTUNNEL_WORKER_THREADS
// wins: N, N% of the CPU count (ZTUNNEL_RESOURCE_CPU_LIMIT, else ZTUNNEL_CPU_LIMIT,
// else the CPUs Go sees), or 0 for all of them. Else the ProxyConfig's concurrency (0:
// all). Else, under Istio's chart (which always sets ZTUNNEL_CPU_LIMIT), Rust's default:
// the chart's limits.cpu raised to its requests.cpu, or without a limit a quarter of the
// CPUs, at least 2 and at least the request. With none of these set (ztunnel run by
// hand, outside the chart), Go's own cgroup-aware GOMAXPROCS stays: all the CPUs it
// may use, where Rust would take a quarter.
func (r *reader) loadWorkers(c *Config) {
	limit := r.cpuQuantity("ZTUNNEL_RESOURCE_CPU_LIMIT")
	request := r.cpuQuantity("ZTUNNEL_RESOURCE_CPU_REQUEST")
	chart := r.cpuQuantity("ZTUNNEL_CPU_LIMIT")
	basis := r.src.cpus()
	if chart > 0 {
		basis = chart
	}
	if limit > 0 {
		basis = limit
	}
	c.WorkerThreadsSet = true
	switch n := r.pc.Concurrency; {
	case r.has("ZTUNNEL_WORKER_THREADS"):
		c.WorkerThreads = r.workerThreads("ZTUNNEL_WORKER_THREADS", basis)
	case n != nil && *n > 0:
		c.WorkerThreads = *n
	case n != nil:
		c.WorkerThreads = basis
	case limit > 0:
		c.WorkerThreads = max(limit, request)
	case chart > 0 || request > 0:
		c.WorkerThreads = max((basis+3)/4, request, 2)
	default:
		c.WorkerThreads, c.WorkerThreadsSet = r.src.cpus(), false
	}
}

// loadTLS reads the mesh TLS policy (Rust src/lib.rs reads both as exact strings).
func (r *reader) loadTLS(c *Config) {
	c.TLS12Enabled = r.boolean("TLS12_ENABLED", false)
	switch v, _ := r.get("COMPLIANCE_POLICY"); v {
	case "":
	case "pqc":
		c.CompliancePolicy = v
	default:
		r.fail("COMPLIANCE_POLICY", v, errors.New(`want "pqc" or unset`))
	}
}

// memoryLimitRatio reads AUTOMEMLIMIT as automemlimit does (a ratio, or off), but here,
// so that a bad value fails start-up naming it rather than being ignored.
func (r *reader) memoryLimitRatio() float64 {
	if r.has("GOMEMLIMIT") {
		return 0
	}
	v, ok := r.get("AUTOMEMLIMIT")
	switch {
	case !ok:
		return 0.9
	case v == "off":
		return 0
	}
	ratio, err := strconv.ParseFloat(v, 64)
	if err != nil || !(ratio > 0 && ratio <= 1) {
		r.fail("AUTOMEMLIMIT", v, errors.New("want a ratio in (0, 1] or off"))
		return 0
	}
	return ratio
}

// graceToDeadline leaves the kubelet time to see ztunnel exit before it kills it:
// 5 s of margin for long grace periods, 1 s for short ones, never less than 1 s.
func graceToDeadline(secs uint64) uint64 {
	switch {
	case secs > 10:
		return secs - 5
	case secs > 1:
		return secs - 1
	}
	return 1
}

// loadMetadata merges ISTIO_META_* over PROXY_CONFIG's proxyMetadata: the variables win.
func (r *reader) loadMetadata(c *Config) {
	c.ProxyMetadata = r.pc.ProxyMetadata
	r.metadata = c.ProxyMetadata
	c.ProxyMetadataJSON = map[string]string{}
	for _, kv := range r.withPrefix("ISTIO_META_") {
		c.ProxyMetadata[kv.Name] = kv.Value
	}
	for _, kv := range r.withPrefix("ISTIO_METAJSON_") {
		if !jsonValid(kv.Value) {
			r.fail("ISTIO_METAJSON_"+kv.Name, kv.Value, errors.New("want JSON"))
			continue
		}
		c.ProxyMetadataJSON[kv.Name] = kv.Value
	}
}

// addresses are the seed's listener addresses; without IPv6 the wildcard binds IPv4 only.
func addresses(v6 bool) Addresses {
	wild := netip.IPv6Unspecified()
	if !v6 {
		wild = netip.IPv4Unspecified()
	}
	a := Addresses{
		Admin:            []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 15000)},
		Stats:            netip.AddrPortFrom(wild, 15020),
		Readiness:        netip.AddrPortFrom(wild, 15021),
		Inbound:          netip.AddrPortFrom(wild, 15008),
		InboundPlaintext: netip.AddrPortFrom(wild, 15006),
		Outbound:         netip.AddrPortFrom(wild, 15001),
		Socks5:           netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 15080),
	}
	if v6 {
		a.Admin = append(a.Admin, netip.AddrPortFrom(netip.IPv6Loopback(), 15000))
	}
	return a
}
