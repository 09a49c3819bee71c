package config

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The mesh config's defaultConfig, PROXY_CONFIG over it, the variables over both: Rust's
// construct_proxy_config and construct_config (ProxyConfig::merge).
func TestProxyConfigPrecedence(t *testing.T) {
	ztest.NoLeaks(t)
	const mesh = `
trustDomain: cluster.local
defaultConfig:
  discoveryAddress: istiod-mesh.istio-system.svc:15012
  statsPort: 15090
  proxyMetadata: {ISTIO_META_DNS_PROXY_ADDR: "127.0.0.1:15054", FROM: mesh}
`
	tests := []struct {
		name string
		mesh string // "" : no file
		env  []string
		want func(*Config) bool
		err  string
	}{
		{"mesh file alone", mesh, nil, func(c *Config) bool {
			return c.XDSAddress == "https://istiod-mesh.istio-system.svc:15012" && c.Addrs.Stats.Port() == 15090 &&
				c.Addrs.DNS[0].String() == "127.0.0.1:15054" && c.ProxyMetadata["FROM"] == "mesh"
		}, ""},
		{"PROXY_CONFIG over the mesh file", mesh, []string{"PROXY_CONFIG=discoveryAddress: istiod-env:15012\nproxyMetadata: {FROM: env}"},
			func(c *Config) bool {
				return c.XDSAddress == "https://istiod-env:15012" && c.Addrs.Stats.Port() == 15090 && c.ProxyMetadata["FROM"] == "env"
			}, ""},
		{"variables over both", mesh, []string{"PROXY_CONFIG=discoveryAddress: istiod-env:15012", "XDS_ADDRESS=istiod-var:15012",
			"ISTIO_META_FROM=var", "ISTIO_META_DNS_PROXY_ADDR=127.0.0.1:15055"},
			func(c *Config) bool {
				return c.XDSAddress == "https://istiod-var:15012" && c.ProxyMetadata["FROM"] == "var" &&
					c.Addrs.DNS[0].String() == "127.0.0.1:15055"
			}, ""},
		{"empty PROXY_CONFIG is none", "", []string{"PROXY_CONFIG="}, func(c *Config) bool { return c.XDSAddress == clusterIstiod }, ""},
		{"bad mesh file names it", "defaultConfig: [", nil, nil, MeshConfigFile},
		{"bad PROXY_CONFIG names it", "", []string{"PROXY_CONFIG=statsPort: ninety"}, nil, "PROXY_CONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Source{Env: tt.env, FileExists: func(string) bool { return true }, IPv6: func() bool { return true }, NumCPU: 8,
				ReadFile: func(path string) ([]byte, error) {
					if path != MeshConfigFile || tt.mesh == "" {
						return nil, fs.ErrNotExist
					}
					return []byte(tt.mesh), nil
				}})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Errorf("config not as expected: xds %s stats %s dns %v metadata %v", c.XDSAddress, c.Addrs.Stats, c.Addrs.DNS, c.ProxyMetadata)
			}
		})
	}
}

// A variable that looks like one of ztunnel's and is not gets a warning naming it and
// the one probably meant; the kubelet's service variables and others' do not.
func TestTyposWarned(t *testing.T) {
	ztest.NoLeaks(t)
	c := mustLoad(t, "XDS_ADRESS=istiod:15012", "SECRET_TLL=12h", "POOL_MAX_STREAMS=10", "CA_ROOT=x",
		"KUBERNETES_SERVICE_PORT=443", "ISTIOD_PORT_15012_TCP_ADDR=10.0.0.1", "ZTUNNEL_SERVICE_HOST=10.0.0.2",
		"HOSTNAME=node-a", "RUST_BACKTRACE=1", "GOMAXPROCS=2", "XDS_HEADER_X=1", "ISTIO_META_FOO=1")
	want := []string{
		"CA_ROOT is not a variable ztunnel reads: did you mean CA_ROOT_CA?",
		"POOL_MAX_STREAMS is not a variable ztunnel reads (the README lists those it does)",
		"SECRET_TLL is not a variable ztunnel reads: did you mean SECRET_TTL?",
		"XDS_ADRESS is not a variable ztunnel reads: did you mean XDS_ADDRESS?",
	}
	if strings.Join(c.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

// ENABLE_PROXY=false with the DNS proxy off would run nothing: Rust's validate_config
// refuses it, so does Load, naming the variable.
func TestNothingToRunRefused(t *testing.T) {
	ztest.NoLeaks(t)
	_, err := load(t, true, "ENABLE_PROXY=false", "ISTIO_META_DNS_CAPTURE=false")
	if err == nil || !strings.Contains(err.Error(), "ENABLE_PROXY") {
		t.Errorf("Load = %v, want an error naming ENABLE_PROXY", err)
	}
}
