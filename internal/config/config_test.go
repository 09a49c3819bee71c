package config

import (
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// load runs Load on a machine that is "in a cluster" unless standalone is asked for.
func load(t *testing.T, inCluster bool, env ...string) (*Config, error) {
	t.Helper()
	return Load(Source{
		Env:        env,
		FileExists: func(string) bool { return inCluster },
		IPv6:       func() bool { return true },
		NumCPU:     8,
	})
}

func mustLoad(t *testing.T, env ...string) *Config {
	t.Helper()
	c, err := load(t, true, env...)
	if err != nil {
		t.Fatalf("Load(%v): %v", env, err)
	}
	return c
}

func TestDefaultsInCluster(t *testing.T) {
	ztest.NoLeaks(t)
	c := mustLoad(t)
	want := &Config{
		ProxyMode: Shared, InPod: true, InPodUDS: "/var/run/ztunnel/ztunnel.sock", InPodPortReuse: true,
		XDSAddress: clusterIstiod, CAAddress: clusterIstiod,
		XDSRootCert: RootCert{File: defaultRootCert}, CARootCert: RootCert{File: defaultRootCert},
		AuthToken: Token{File: defaultIstioToken}, SecretTTL: 24 * time.Hour,
		ClusterID: "Kubernetes", ClusterDomain: "cluster.local", TrustDomain: "cluster.local",
		PacketMark: 1337, IPv6Enabled: true,
		Keepalive:             Keepalive{Enabled: true, Time: 180 * time.Second, Interval: 180 * time.Second, Retries: 9},
		PoolMaxStreamsPerConn: 100, PoolUnusedReleaseTimeout: 5 * time.Minute,
		Limits:              Limits{MaxConnections: 65536, HandshakeTimeout: 10 * time.Second, HalfClosedTimeout: 10 * time.Minute},
		TerminationDeadline: 5 * time.Second, WorkerThreads: 8, MemoryLimitRatio: 0.9,
		ProxyMetadata: map[string]string{}, ProxyMetadataJSON: map[string]string{},
		LogFormat: "plain", LogLevel: "info",
		DNS:   DNS{Enabled: true, ResolvConf: "/etc/resolv.conf"},
		Addrs: addresses(true), EnableProxy: true, ResponseBaggage: true, LocalhostAppTunnel: true,
	}
	want.Addrs.DNS = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:15053")}
	want.Addrs.DNSOptional = []netip.AddrPort{netip.MustParseAddrPort("[::1]:15053")}
	// HTTP2 is pinned field by field: a field added later is pinned against hbone's own
	// (Rust's) defaults by app's TestConfigDefaultsAreTheComponents instead.
	pinned := HTTP2{StreamWindow: 4 << 20, ConnWindow: 16 << 20, FrameSize: 1 << 20, MaxStreams: 200, MaxHeaderListSize: 64 << 10,
		MaxQueuedControl: 10000, MaxEmptyData: 100,
		ResetsPerSecond: 200} // the table's default, HTTP2_MAX_CONCURRENT_STREAMS
	got, pin := reflect.ValueOf(c.HTTP2), reflect.ValueOf(pinned)
	for i := range pin.NumField() {
		if !pin.Field(i).IsZero() && got.Field(i).Uint() != pin.Field(i).Uint() {
			t.Errorf("HTTP2.%s = %d, want %d", pin.Type().Field(i).Name, got.Field(i).Uint(), pin.Field(i).Uint())
		}
	}
	want.HTTP2 = c.HTTP2
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.Addrs.Admin; len(got) != 2 || got[0].String() != "127.0.0.1:15000" || got[1].String() != "[::1]:15000" {
		t.Errorf("admin addresses = %v", got)
	}
	for name, a := range map[string]netip.AddrPort{"stats": c.Addrs.Stats, "readiness": c.Addrs.Readiness,
		"inbound": c.Addrs.Inbound, "plaintext": c.Addrs.InboundPlaintext, "outbound": c.Addrs.Outbound} {
		if a.Addr() != netip.IPv6Unspecified() {
			t.Errorf("%s binds %v, want [::]", name, a)
		}
	}
	if c.Addrs.Socks5.String() != "127.0.0.1:15080" {
		t.Errorf("socks5 = %v", c.Addrs.Socks5)
	}
}

func TestStandalone(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		name      string
		inCluster bool
		env       []string
		want      bool
	}{
		{"nothing set, no token", false, nil, true},
		{"token file present", true, nil, false},
		{"xds address set", false, []string{"XDS_ADDRESS=istiod:15012"}, false},
		{"local file set", false, []string{"LOCAL_XDS_PATH=/x.yaml"}, false},
		{"inline config set", false, []string{"LOCAL_XDS=workloads: []"}, false},
		{"auth token set", false, []string{"AUTH_TOKEN=abc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.inCluster, tt.env...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Standalone != tt.want {
				t.Fatalf("Standalone = %v, want %v", c.Standalone, tt.want)
			}
			if tt.want && (c.InPod || !c.FakeCA || c.XDSAddress != "" || c.CAAddress != "") {
				t.Errorf("standalone should be node mode, built-in CA, no xDS: %+v", c)
			}
		})
	}
}

func TestXDSAddressDefaults(t *testing.T) {
	ztest.NoLeaks(t)
	c, _ := load(t, false, "LOCAL_XDS_PATH=/x.yaml")
	if c.XDSAddress != "" {
		t.Errorf("outside a cluster with a static config, xDS = %q, want off", c.XDSAddress)
	}
	c, _ = load(t, false, "AUTH_TOKEN=abc")
	if c.XDSAddress != localIstiod {
		t.Errorf("outside a cluster = %q, want %q", c.XDSAddress, localIstiod)
	}
	c = mustLoad(t, "XDS_ADDRESS=")
	if c.XDSAddress != "" || c.CAAddress != clusterIstiod {
		t.Errorf("XDS_ADDRESS= should disable xDS only: xds %q ca %q", c.XDSAddress, c.CAAddress)
	}
	c = mustLoad(t, "XDS_ADDRESS=istiod-1.istio-system:15012")
	if c.XDSAddress != "https://istiod-1.istio-system:15012" || c.CAAddress != c.XDSAddress {
		t.Errorf("xds %q ca %q", c.XDSAddress, c.CAAddress)
	}
}

var parseCases = []struct {
	env   string
	check func(*Config) bool
	bad   string
}{
	{"PROXY_MODE=dedicated", func(c *Config) bool { return c.ProxyMode == Dedicated && c.PacketMark == 0 && !c.InPod }, "PROXY_MODE=sidecar"},
	{"PROXY_WORKLOAD_INFO=ns/name/sa", func(c *Config) bool {
		return *c.WorkloadInfo == identity.Workload{Namespace: "ns", Name: "name", ServiceAccount: "sa"}
	}, "PROXY_WORKLOAD_INFO=ns/name"},
	{"INPOD_ENABLED=false", func(c *Config) bool { return !c.InPod }, "INPOD_ENABLED=maybe"},
	{"INPOD_UDS=/run/z.sock", func(c *Config) bool { return c.InPodUDS == "/run/z.sock" }, ""},
	{"INPOD_PORT_REUSE=false", func(c *Config) bool { return !c.InPodPortReuse }, "INPOD_PORT_REUSE=nope"},
	{"XDS_ADDRESS=http://127.0.0.1:15010", func(c *Config) bool { return c.XDSAddress == "http://127.0.0.1:15010" }, "XDS_ADDRESS=ftp://x"},
	{"CA_ADDRESS=ca:15012", func(c *Config) bool { return c.CAAddress == "https://ca:15012" }, "CA_ADDRESS=https://"},
	{"XDS_ROOT_CA=SYSTEM", func(c *Config) bool { return c.XDSRootCert.System }, ""},
	{"ALT_XDS_HOSTNAME=istiod.corp", func(c *Config) bool { return c.XDSAltHostname == "istiod.corp" }, ""},
	{"ALT_CA_HOSTNAME=ca.corp", func(c *Config) bool { return c.CAAltHostname == "ca.corp" }, ""},
	{"TLS12_ENABLED=true", func(c *Config) bool { return c.TLS12Enabled }, "TLS12_ENABLED=yes"},
	{"COMPLIANCE_POLICY=pqc", func(c *Config) bool { return c.CompliancePolicy == "pqc" }, "COMPLIANCE_POLICY=fips"},
	{"KUBERNETES_SERVICE_HOST=10.96.0.1", func(c *Config) bool { return c.XDSAddress == clusterIstiod }, ""},
	{"PROXY_CONFIG={discoveryAddress: istiod-1.istio-system.svc:15012, concurrency: 3, proxyAdminPort: 15100, statsPort: 15120, proxyMetadata: {ISTIO_META_DNS_CAPTURE: \"false\", FOO: bar}}",
		func(c *Config) bool {
			return c.XDSAddress == "https://istiod-1.istio-system.svc:15012" && c.WorkerThreads == 3 && c.Addrs.Admin[0].Port() == 15100 &&
				c.Addrs.Stats.Port() == 15120 && !c.DNS.Enabled && c.ProxyMetadata["FOO"] == "bar"
		}, "PROXY_CONFIG={concurrency: many}"},
	{"CA_ROOT_CA=-----BEGIN CERTIFICATE-----x", func(c *Config) bool { return strings.HasPrefix(c.CARootCert.PEM, "-----BEGIN") }, ""},
	{"AUTH_TOKEN=eyJhbGciOi.x.y", func(c *Config) bool { return c.AuthToken.Literal == "eyJhbGciOi.x.y" }, ""},
	{"XDS_HEADER_X_Team=blue", func(c *Config) bool { return reflect.DeepEqual(c.XDSHeaders, []Header{{"x_team", "blue"}}) }, "XDS_HEADER_BAD=a\x01b"},
	{"CA_HEADER_Tenant=t1", func(c *Config) bool { return reflect.DeepEqual(c.CAHeaders, []Header{{"tenant", "t1"}}) }, "CA_HEADER_X-BIN=v"},
	{"XDS_ON_DEMAND=true", func(c *Config) bool { return c.XDSOnDemand }, "XDS_ON_DEMAND=2"}, // TestParse turns DNS off for it
	{"LOCAL_XDS_PATH=/etc/z.yaml", func(c *Config) bool { return c.LocalXDSPath == "/etc/z.yaml" }, ""},
	{"LOCAL_XDS=workloads: []", func(c *Config) bool { return c.LocalXDS == "workloads: []" }, ""},
	{"FAKE_CA=true", func(c *Config) bool { return c.FakeCA }, "FAKE_CA=yes please"},
	{"CRL_PATH=/var/run/secrets/istio/crl/ca-crl.pem", func(c *Config) bool { return c.CRLPath == "/var/run/secrets/istio/crl/ca-crl.pem" }, ""},
	{"SECRET_TTL=1d", func(c *Config) bool { return c.SecretTTL == 24*time.Hour }, "SECRET_TTL=forever"},
	{"CLUSTER_ID=east", func(c *Config) bool { return c.ClusterID == "east" }, ""},
	{"CLUSTER_DOMAIN=corp.local", func(c *Config) bool { return c.ClusterDomain == "corp.local" }, ""},
	{"TRUST_DOMAIN=td.example", func(c *Config) bool { return c.TrustDomain == "td.example" }, ""},
	{"NETWORK=net1", func(c *Config) bool { return c.Network == "net1" }, ""},
	{"NODE_NAME=node-a", func(c *Config) bool { return c.NodeName == "node-a" }, ""},
	{"INSTANCE_IP=10.0.0.7", func(c *Config) bool { return c.InstanceIP == "10.0.0.7" }, "INSTANCE_IP=10.0.0.300"},
	{"POD_NAME=ztunnel-x", func(c *Config) bool { return c.PodName == "ztunnel-x" }, ""},
	{"POD_NAMESPACE=istio-system", func(c *Config) bool { return c.PodNamespace == "istio-system" }, ""},
	{"SERVICE_ACCOUNT=ztunnel", func(c *Config) bool { return c.ServiceAccount == "ztunnel" }, ""},
	{"PACKET_MARK=0x539", func(c *Config) bool { return c.PacketMark == 1337 }, "PACKET_MARK=-1"},
	{"ENABLE_ORIG_SRC=false", func(c *Config) bool { return c.EnableOrigSrc != nil && !*c.EnableOrigSrc }, "ENABLE_ORIG_SRC=auto"},
	{"IPV6_ENABLED=false", func(c *Config) bool { return c.Addrs.Stats.String() == "0.0.0.0:15020" && len(c.Addrs.Admin) == 1 }, "IPV6_ENABLED=v4"},
	{"KEEPALIVE_ENABLED=false", func(c *Config) bool { return !c.Keepalive.Enabled }, "KEEPALIVE_ENABLED=off"},
	{"KEEPALIVE_TIME=60", func(c *Config) bool { return c.Keepalive.Time == time.Minute }, "KEEPALIVE_TIME=1 minute"},
	{"KEEPALIVE_INTERVAL=15s", func(c *Config) bool { return c.Keepalive.Interval == 15*time.Second }, "KEEPALIVE_INTERVAL=-5s"},
	{"KEEPALIVE_RETRIES=3", func(c *Config) bool { return c.Keepalive.Retries == 3 }, "KEEPALIVE_RETRIES=0"},
	{"USER_TIMEOUT_ENABLED=true", func(c *Config) bool { return c.UserTimeout }, "USER_TIMEOUT_ENABLED=x"},
	{"HTTP2_STREAM_WINDOW_SIZE=1048576", func(c *Config) bool { return c.HTTP2.StreamWindow == 1<<20 }, "HTTP2_STREAM_WINDOW_SIZE=4294967296"},
	{"HTTP2_CONNECTION_WINDOW_SIZE=65535", func(c *Config) bool { return c.HTTP2.ConnWindow == 65535 }, "HTTP2_CONNECTION_WINDOW_SIZE=100"},
	{"HTTP2_FRAME_SIZE=16384", func(c *Config) bool { return c.HTTP2.FrameSize == 16384 }, "HTTP2_FRAME_SIZE=16777216"},
	{"POOL_MAX_STREAMS_PER_CONNECTION=50", func(c *Config) bool { return c.PoolMaxStreamsPerConn == 50 }, "POOL_MAX_STREAMS_PER_CONNECTION=0"},
	{"POOL_UNUSED_RELEASE_TIMEOUT=30s", func(c *Config) bool { return c.PoolUnusedReleaseTimeout == 30*time.Second }, "POOL_UNUSED_RELEASE_TIMEOUT=soon"},
	{"MAX_CONNECTIONS=1000", func(c *Config) bool { return c.Limits.MaxConnections == 1000 }, "MAX_CONNECTIONS=0"},
	{"HTTP2_MAX_CONCURRENT_STREAMS=100", func(c *Config) bool { return c.HTTP2.MaxStreams == 100 && c.HTTP2.ResetsPerSecond == 100 }, "HTTP2_MAX_CONCURRENT_STREAMS=0"},
	{"HTTP2_MAX_HEADER_LIST_SIZE=16384", func(c *Config) bool { return c.HTTP2.MaxHeaderListSize == 16384 }, "HTTP2_MAX_HEADER_LIST_SIZE=10"},
	{"HTTP2_MAX_QUEUED_CONTROL_FRAMES=500", func(c *Config) bool { return c.HTTP2.MaxQueuedControl == 500 }, "HTTP2_MAX_QUEUED_CONTROL_FRAMES=1"},
	{"HTTP2_MAX_EMPTY_DATA_FRAMES=10", func(c *Config) bool { return c.HTTP2.MaxEmptyData == 10 }, "HTTP2_MAX_EMPTY_DATA_FRAMES=0"},
	{"HTTP2_MAX_RESETS_PER_SECOND=50", func(c *Config) bool { return c.HTTP2.ResetsPerSecond == 50 }, "HTTP2_MAX_RESETS_PER_SECOND=many"},
	{"TLS_HANDSHAKE_TIMEOUT=5s", func(c *Config) bool { return c.Limits.HandshakeTimeout == 5*time.Second }, "TLS_HANDSHAKE_TIMEOUT=0"},
	{"CONNECTION_IDLE_TIMEOUT=1h", func(c *Config) bool { return c.Limits.IdleTimeout == time.Hour }, "CONNECTION_IDLE_TIMEOUT=idle"},
	{"HALF_CLOSED_TIMEOUT=0", func(c *Config) bool { return c.Limits.HalfClosedTimeout == 0 }, "HALF_CLOSED_TIMEOUT=-1s"},
	{"CONNECTION_TERMINATION_DEADLINE=20s", func(c *Config) bool { return c.TerminationDeadline == 20*time.Second }, "CONNECTION_TERMINATION_DEADLINE=5x"},
	{"TERMINATION_GRACE_PERIOD_SECONDS=30", func(c *Config) bool { return c.TerminationDeadline == 25*time.Second }, "TERMINATION_GRACE_PERIOD_SECONDS=thirty"},
	{"ZTUNNEL_WORKER_THREADS=25%", func(c *Config) bool { return c.WorkerThreads == 2 && c.WorkerThreadsSet }, "ZTUNNEL_WORKER_THREADS=150%"},
	{"ZTUNNEL_CPU_LIMIT=4", func(c *Config) bool { return c.WorkerThreads == 2 && c.WorkerThreadsSet }, "ZTUNNEL_CPU_LIMIT=lots"},
	{"ZTUNNEL_RESOURCE_CPU_LIMIT=1500m", func(c *Config) bool { return c.WorkerThreads == 2 && c.WorkerThreadsSet }, "ZTUNNEL_RESOURCE_CPU_LIMIT=-1"},
	{"ZTUNNEL_RESOURCE_CPU_REQUEST=3", func(c *Config) bool { return c.WorkerThreads == 3 && c.WorkerThreadsSet }, "ZTUNNEL_RESOURCE_CPU_REQUEST=0"},
	{"AUTOMEMLIMIT=0.5", func(c *Config) bool { return c.MemoryLimitRatio == 0.5 }, "AUTOMEMLIMIT=2"},
	{"AUTOMEMLIMIT=off", func(c *Config) bool { return c.MemoryLimitRatio == 0 }, "AUTOMEMLIMIT=none"},
	{"GOMEMLIMIT=200MiB", func(c *Config) bool { return c.MemoryLimitRatio == 0 }, ""},
	{"ENABLE_PROXY=false", func(c *Config) bool { return !c.EnableProxy && c.DNS.Enabled }, "ENABLE_PROXY=off"},
	{"ENABLE_RESPONSE_BAGGAGE=false", func(c *Config) bool { return !c.ResponseBaggage }, "ENABLE_RESPONSE_BAGGAGE=maybe"},
	{"LOCALHOST_APP_TUNNEL=false", func(c *Config) bool { return !c.LocalhostAppTunnel }, "LOCALHOST_APP_TUNNEL=maybe"},
	{"AUTHZ_POLICY_INFO_LOGGING=true", func(c *Config) bool { return c.AuthzInfoLogging }, "AUTHZ_POLICY_INFO_LOGGING=loud"},
	{"UNSTABLE_ENABLE_SOCKS5=true", func(c *Config) bool { return c.Socks5Enabled }, "UNSTABLE_ENABLE_SOCKS5=1.0"},
	{"ISTIO_META_DNS_CAPTURE=FALSE", func(c *Config) bool { return !c.DNS.Enabled && c.ProxyMetadata["DNS_CAPTURE"] == "FALSE" }, ""},
	{"ISTIO_META_DNS_CAPTURE=True", func(c *Config) bool { return c.DNS.Enabled }, ""},
	{"ISTIO_META_DNS_PROXY_ADDR=10.0.0.1:53", func(c *Config) bool {
		return len(c.Addrs.DNS) == 1 && c.Addrs.DNS[0].String() == "10.0.0.1:53" && c.Addrs.DNSOptional == nil
	}, "ISTIO_META_DNS_PROXY_ADDR=not-an-address"},
	{"ISTIO_META_DNS_PROXY_ADDR=localhost:5353", func(c *Config) bool {
		return c.Addrs.DNS[0].String() == "127.0.0.1:5353" && c.Addrs.DNSOptional[0].String() == "[::1]:5353"
	}, "ISTIO_META_DNS_PROXY_ADDR=localhost:dns"},
	{"PREFERED_SERVICE_NAMESPACE=istio-system", func(c *Config) bool { return c.DNS.PreferredNamespace == "istio-system" }, ""},
	{"ISTIO_META_ISTIO_VERSION=1.28.0", func(c *Config) bool { return c.IstioVersion() == "1.28.0" }, ""},
	{"ISTIO_METAJSON_LABELS={\"app\":\"z\"}", func(c *Config) bool { return c.ProxyMetadataJSON["LABELS"] == `{"app":"z"}` }, "ISTIO_METAJSON_LABELS={app"},
	{"LOG_FORMAT=json", func(c *Config) bool { return c.LogFormat == "json" }, "LOG_FORMAT=xml"},
	{"RUST_LOG=info,xds=debug", func(c *Config) bool { return c.LogLevel == "info,xds=debug" }, "RUST_LOG=loud"},
}

// TestParse covers every variable: one good value with its effect, and (where a value
// can be malformed) one bad value whose error must name the variable and the value.
func TestParse(t *testing.T) {
	ztest.NoLeaks(t)
	tests := parseCases
	for _, tt := range tests {
		name, _, _ := strings.Cut(tt.env, "=")
		t.Run(name, func(t *testing.T) {
			env := []string{tt.env}
			switch name {
			case "PROXY_MODE":
				env = append(env, "PROXY_WORKLOAD_INFO=ns/n/sa")
			case "XDS_ON_DEMAND":
				env = append(env, "ISTIO_META_DNS_CAPTURE=false")
			}
			if c := mustLoad(t, env...); !tt.check(c) {
				t.Errorf("%s not applied: %+v", tt.env, c)
			}
			if tt.bad == "" {
				return
			}
			_, err := load(t, true, tt.bad)
			badName, badValue, _ := strings.Cut(tt.bad, "=")
			if err == nil || !strings.Contains(err.Error(), badName+"="+strconv.Quote(badValue)) {
				t.Errorf("%s: error %v should name the variable and the value", tt.bad, err)
			}
		})
	}
}

func TestEveryErrorReported(t *testing.T) {
	ztest.NoLeaks(t)
	_, err := load(t, true, "PACKET_MARK=x", "LOG_FORMAT=xml", "SECRET_TTL=never")
	if err == nil {
		t.Fatal("want errors")
	}
	for _, name := range []string{"PACKET_MARK", "LOG_FORMAT", "SECRET_TTL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %s", err, name)
		}
	}
}

func TestConflicts(t *testing.T) {
	ztest.NoLeaks(t)
	for _, env := range [][]string{
		{"PROXY_MODE=dedicated"}, // needs PROXY_WORKLOAD_INFO
		{"PROXY_MODE=dedicated", "PROXY_WORKLOAD_INFO=a/b/c", "INPOD_ENABLED=true"},
		{"LOCAL_XDS=a: b", "LOCAL_XDS_PATH=/x"},
		{"XDS_ON_DEMAND=true"}, // the DNS proxy is on by default: Rust validate_config refuses
	} {
		if _, err := load(t, true, env...); err == nil {
			t.Errorf("%v: want an error", env)
		}
	}
}

func TestGraceToDeadline(t *testing.T) {
	ztest.NoLeaks(t)
	for _, tt := range []struct{ in, want uint64 }{{0, 1}, {1, 1}, {2, 1}, {10, 9}, {11, 6}, {30, 25}} {
		if got := graceToDeadline(tt.in); got != tt.want {
			t.Errorf("graceToDeadline(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestClusterIDFromMetadataWins(t *testing.T) {
	ztest.NoLeaks(t)
	c := mustLoad(t, "CLUSTER_ID=a", "ISTIO_META_CLUSTER_ID=b")
	if c.ClusterID != "b" {
		t.Errorf("ClusterID = %q, want b", c.ClusterID)
	}
}

func TestUndeclaredVariablePanics(t *testing.T) {
	ztest.NoLeaks(t)
	defer func() {
		if recover() == nil {
			t.Error("reading an undeclared variable should panic")
		}
	}()
	newReader(Source{}).get("NOT_A_ZTUNNEL_VARIABLE")
}

func TestParseCasesCoverEveryVariable(t *testing.T) {
	ztest.NoLeaks(t)
	covered := map[string]bool{}
	for _, c := range parseCases {
		name, _, _ := strings.Cut(c.env, "=")
		covered[name] = true
	}
	tagged := map[string]bool{} // their cases come from their tags: TestTaggedVariablesParse
	for _, v := range taggedVariables(reflect.TypeFor[HTTP2]()) {
		tagged[v.Name] = true
	}
	for _, v := range variables {
		p, family := familyPrefix(v.Name)
		found := covered[v.Name] || tagged[v.Name]
		for name := range covered {
			found = found || (family && strings.HasPrefix(name, p))
		}
		if !found {
			t.Errorf("%s has no parse case", v.Name)
		}
	}
}

// GOMAXPROCS from the CPU variables Istio's chart sets, as Rust's worker threads come
// from them (config.rs get_cpu_count and default_worker_threads, and their tests);
// the machine has 8 CPUs.
func TestWorkerThreadsFromTheChart(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		env  []string
		want int
		set  bool
	}{
		{nil, 8, false}, // Go's own GOMAXPROCS
		{[]string{"ZTUNNEL_CPU_LIMIT=8"}, 2, true},  // a quarter, at least 2
		{[]string{"ZTUNNEL_CPU_LIMIT=32"}, 8, true}, // a quarter of the node
		{[]string{"ZTUNNEL_CPU_LIMIT=10"}, 3, true}, // rounded up
		{[]string{"ZTUNNEL_CPU_LIMIT=32", "ZTUNNEL_RESOURCE_CPU_REQUEST=10"}, 10, true},
		{[]string{"ZTUNNEL_CPU_LIMIT=32", "ZTUNNEL_WORKER_THREADS=0"}, 32, true},
		{[]string{"ZTUNNEL_CPU_LIMIT=4", "ZTUNNEL_WORKER_THREADS=50%"}, 2, true},
		{[]string{"ZTUNNEL_RESOURCE_CPU_LIMIT=500m"}, 1, true},
		{[]string{"ZTUNNEL_RESOURCE_CPU_LIMIT=1", "ZTUNNEL_RESOURCE_CPU_REQUEST=3"}, 3, true},
		{[]string{"ZTUNNEL_RESOURCE_CPU_LIMIT=2.5", "ZTUNNEL_RESOURCE_CPU_REQUEST=1"}, 3, true},
		// An explicit resource limit takes precedence over ZTUNNEL_CPU_LIMIT.
		{[]string{"ZTUNNEL_RESOURCE_CPU_LIMIT=3", "ZTUNNEL_CPU_LIMIT=12", "ZTUNNEL_WORKER_THREADS=100%"}, 3, true},
		{[]string{"ZTUNNEL_RESOURCE_CPU_LIMIT=1", "ZTUNNEL_WORKER_THREADS=4"}, 4, true},
		{[]string{"ZTUNNEL_RESOURCE_CPU_REQUEST=2"}, 2, true},
		// ProxyConfig's concurrency: below ZTUNNEL_WORKER_THREADS, above the default.
		{[]string{"ZTUNNEL_CPU_LIMIT=32", "PROXY_CONFIG=concurrency: 5"}, 5, true},
		{[]string{"ZTUNNEL_CPU_LIMIT=32", "PROXY_CONFIG=concurrency: 0"}, 32, true},
		{[]string{"PROXY_CONFIG=concurrency: 5", "ZTUNNEL_WORKER_THREADS=6"}, 6, true},
	}
	for _, tt := range tests {
		c := mustLoad(t, tt.env...)
		if c.WorkerThreads != tt.want || c.WorkerThreadsSet != tt.set {
			t.Errorf("%v: %d threads (set %v), want %d (set %v)", tt.env, c.WorkerThreads, c.WorkerThreadsSet, tt.want, tt.set)
		}
	}
}

// Each tagged variable (config.HTTP2) takes the values within its bounds into its field
// and refuses, naming itself, a value past them or not a number.
func TestTaggedVariablesParse(t *testing.T) {
	ztest.NoLeaks(t)
	typ := reflect.TypeFor[HTTP2]()
	for i := range typ.NumField() {
		tag := typ.Field(i).Tag
		name, lo, hi := tag.Get("env"), tag.Get("min"), tag.Get("max")
		for _, v := range []string{lo, hi} {
			c, err := Load(Source{Env: []string{name + "=" + v}})
			got := reflect.ValueOf(c.HTTP2).Field(i).Uint()
			if err != nil || strconv.FormatUint(got, 10) != v && v != "0" {
				t.Errorf("%s=%s: field %d, %v", name, v, got, err)
			}
		}
		n, _ := strconv.ParseUint(hi, 10, 64)
		for _, bad := range []string{strconv.FormatUint(n+1, 10), "lots"} {
			if _, err := Load(Source{Env: []string{name + "=" + bad}}); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: %v, want an error naming the variable", name, bad, err)
			}
		}
	}
}
