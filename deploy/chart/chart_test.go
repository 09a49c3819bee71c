// Package chart_test checks that Istio's own ztunnel chart, rendered with our values,
// describes a pod our binary runs as it is: every env var the chart can set is one we
// honour or document as ignored, and the config the pod would get loads.
package chart_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// ignored are the chart's variables ztunnel does not read, and why (README says so).
var ignored = map[string]string{
	"RUST_BACKTRACE": "a Go panic always prints every goroutine's stack",
	// istiod's switch; for ztunnel the chart only mounts root-cert.pem from a
	// ClusterTrustBundle instead of the ConfigMap, at the same path.
	"ENABLE_CLUSTER_TRUST_BUNDLE_API": "istiod's; root-cert.pem is mounted at the same path",
}

// declared reports whether ztunnel reads name: a variable of its table, or one of a
// family (ISTIO_META_*).
func declared(name string) bool {
	for _, v := range config.Variables() {
		if v.Name == name || strings.HasSuffix(v.Name, "*") && strings.HasPrefix(name, strings.TrimSuffix(v.Name, "*")) {
			return true
		}
	}
	return false
}

// The stock chart, and the chart with every option that adds env set, render a pod
// whose variables are all ours or documented as ignored, and whose config loads.
func TestChartPodConfig(t *testing.T) {
	ztest.NoLeaks(t)
	cases := []struct {
		name        string
		args        []string
		limit, req  string
		check       func(*config.Config) bool
		description string
	}{
		{"defaults", nil, "8", "1", func(c *config.Config) bool {
			return c.InPod && c.XDSAddress == "https://istiod.istio-system.svc:15012" && c.LogFormat == "plain" &&
				c.NodeName == "node-a" && c.PodName == "ztunnel-x7k2p" && c.WorkerThreadsSet && c.WorkerThreads == 2 && c.CRLPath == ""
		}, "in-pod, istiod by its in-cluster name, 2 threads (Rust's default_worker_threads: a quarter of the node's 8 CPUs, at least 2)"},
		{"every option", []string{"--set", "peerCaCrl.enabled=true", "--set", "logAsJson=true",
			"--set", "resources.limits.cpu=2", "--set", "env.ISTIO_META_DNS_CAPTURE=false",
			"--set", "meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_PROXY_ADDR=localhost:15054"}, "2", "1",
			func(c *config.Config) bool {
				return c.LogFormat == "json" && c.WorkerThreads == 2 && c.WorkerThreadsSet && !c.DNS.Enabled &&
					c.CRLPath == "/var/run/secrets/istio/crl/ca-crl.pem" && c.Addrs.DNS[0].Port() == 15054
			}, "JSON logs, 2 threads from the CPU limit, no DNS capture, the CRL path"},
		{"network and trust bundle", []string{"--set", "network=net-east", "--set", "env.ENABLE_CLUSTER_TRUST_BUNDLE_API=true"}, "8", "1",
			func(c *config.Config) bool {
				return c.Network == "net-east" && c.CARootCert == c.XDSRootCert
			}, "on network net-east, the root from the same root-cert.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := render(t, tc.args...).Containers[0]
			if c.Image != "ghcr.io/ztunnel-go/ztunnel:latest" || !slices.Equal(c.Args, []string{"proxy", "ztunnel"}) {
				t.Errorf("image %q args %q", c.Image, c.Args)
			}
			if c.ReadinessProbe.HTTPGet.Port != 15021 || c.ReadinessProbe.HTTPGet.Path != "/healthz/ready" {
				t.Errorf("readiness probe %+v, want our :15021/healthz/ready", c.ReadinessProbe)
			}
			for _, e := range c.Env {
				if _, skip := ignored[e.Name]; !skip && !declared(e.Name) {
					t.Errorf("the chart sets %s, which ztunnel neither reads nor documents as ignored", e.Name)
				}
			}
			cfg, err := config.Load(config.Source{Env: kubeletEnv(c, podFields("ztunnel-x7k2p", "node-a", "10.244.1.5"), tc.limit, tc.req), NumCPU: 8,
				FileExists: func(string) bool { return true }, IPv6: func() bool { return true }})
			if err != nil {
				t.Fatalf("the chart's pod would not start: %v", err)
			}
			if !tc.check(cfg) {
				t.Errorf("config is not %s: %+v", tc.description, cfg)
			}
			// What ztunnel reads by default is where the chart mounts it (cwd /).
			for _, path := range []string{cfg.InPodUDS, "/var/run/secrets/istio/root-cert.pem", "/var/run/secrets/tokens/istio-token", "/tmp/"} {
				if !slices.ContainsFunc(c.VolumeMounts, func(m mount) bool { return strings.HasPrefix(path, m.MountPath+"/") }) {
					t.Errorf("nothing mounted for %s", path)
				}
			}
		})
	}
}
