package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MeshConfigFile is where Istio mounts the mesh config; its defaultConfig is the base
// of PROXY_CONFIG (Rust: parse_proxy_config), relative to the working directory as in
// Rust (the image runs from /).
const MeshConfigFile = "./etc/istio/config/mesh"

// proxyConfig is the part of Istio's ProxyConfig that ztunnel reads (Rust's ProxyConfig
// struct): other fields are ignored, as serde ignores them there.
type proxyConfig struct {
	DiscoveryAddress *string           `yaml:"discoveryAddress"`
	ProxyAdminPort   *uint16           `yaml:"proxyAdminPort"`
	StatsPort        *uint16           `yaml:"statsPort"`
	Concurrency      *int              `yaml:"concurrency"`
	ProxyMetadata    map[string]string `yaml:"proxyMetadata"`
}

// merge lays o over p, as Rust's ProxyConfig::merge: set fields of o win, metadata adds.
func (p proxyConfig) merge(o proxyConfig) proxyConfig {
	p.DiscoveryAddress = cmpOr(o.DiscoveryAddress, p.DiscoveryAddress)
	p.ProxyAdminPort = cmpOr(o.ProxyAdminPort, p.ProxyAdminPort)
	p.StatsPort = cmpOr(o.StatsPort, p.StatsPort)
	p.Concurrency = cmpOr(o.Concurrency, p.Concurrency)
	p.ProxyMetadata = maps.Clone(p.ProxyMetadata)
	if p.ProxyMetadata == nil {
		p.ProxyMetadata = map[string]string{}
	}
	maps.Copy(p.ProxyMetadata, o.ProxyMetadata)
	return p
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// loadProxyConfig builds the ProxyConfig as Rust does: the mesh file's defaultConfig,
// then PROXY_CONFIG over it; environment variables win over both where they overlap
// (XDS_ADDRESS over discoveryAddress, ZTUNNEL_WORKER_THREADS over concurrency,
// ISTIO_META_* over proxyMetadata). Metadata keys lose an ISTIO_META_ prefix.
func (r *reader) loadProxyConfig() proxyConfig {
	var mesh struct {
		DefaultConfig *proxyConfig `yaml:"defaultConfig"`
	}
	pc := proxyConfig{}.merge(proxyConfig{})
	data, err := r.src.readFile(MeshConfigFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		r.errs = append(r.errs, fmt.Errorf("reading the mesh config file %s: %w", MeshConfigFile, err))
	default:
		if err := yaml.Unmarshal(data, &mesh); err != nil {
			r.errs = append(r.errs, fmt.Errorf("parsing the mesh config file %s: %w", MeshConfigFile, err))
		} else if mesh.DefaultConfig != nil {
			pc = pc.merge(*mesh.DefaultConfig)
		}
	}
	if v, _ := r.get("PROXY_CONFIG"); strings.TrimSpace(v) != "" {
		var env proxyConfig
		if err := yaml.Unmarshal([]byte(v), &env); err != nil {
			r.fail("PROXY_CONFIG", v, fmt.Errorf("want ProxyConfig YAML: %w", err))
		} else {
			pc = pc.merge(env)
		}
	}
	meta := make(map[string]string, len(pc.ProxyMetadata))
	for k, v := range pc.ProxyMetadata {
		meta[strings.TrimPrefix(k, "ISTIO_META_")] = v
	}
	pc.ProxyMetadata = meta
	return pc
}

func (s Source) readFile(path string) ([]byte, error) {
	if s.ReadFile != nil {
		return s.ReadFile(path)
	}
	return os.ReadFile(path)
}
