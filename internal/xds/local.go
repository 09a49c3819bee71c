// Package xds is where state comes from: istiod over delta xDS, and the static config
// (LOCAL_XDS_PATH / LOCAL_XDS) in Rust ztunnel's YAML format.
package xds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// LocalConfig is the static config file: workloads, services and policies in the same
// camelCase shape as /config_dump.
type LocalConfig struct {
	Workloads []LocalWorkload     `json:"workloads" yaml:"workloads"`
	Policies  []state.PolicyJSON  `json:"policies" yaml:"policies"`
	Services  []state.ServiceJSON `json:"services" yaml:"services"`
}

// LocalWorkload is a workload plus the services it backs: {"ns/hostname": {port: target}}.
type LocalWorkload struct {
	state.WorkloadJSON `yaml:",inline"`
	Services           map[string]map[uint32]uint32 `json:"services" yaml:"services"`
}

// ReadLocalConfig reads a static config file.
func ReadLocalConfig(path string) (*LocalConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading static config: %w", err)
	}
	c, err := ParseLocalConfig(data)
	if err != nil {
		return nil, fmt.Errorf("static config %s: %w", path, err)
	}
	return c, nil
}

// ParseLocalConfig decodes strictly: an unknown field, a wrong type or a bad value is an
// error naming its path in the file (workloads[1].workloadIps[0]) and its line.
func ParseLocalConfig(data []byte) (*LocalConfig, error) {
	var c LocalConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, locate(data, err)
	}
	if _, err := c.Update(); err != nil {
		return nil, err
	}
	c.normalize()
	return &c, nil
}

// normalize fills the defaults a reader of the dump would otherwise have to know
// (protocol TCP, status Healthy, …) and turns absent lists into empty ones.
func (c *LocalConfig) normalize() {
	c.Workloads = nonNil(c.Workloads)
	c.Services = nonNil(c.Services)
	c.Policies = nonNil(c.Policies)
	for i := range c.Workloads {
		w := &c.Workloads[i]
		w.Protocol = orDefault(w.Protocol, "TCP")
		w.NetworkMode = orDefault(w.NetworkMode, "Standard")
		w.Status = orDefault(w.Status, "Healthy")
		w.ClusterID = orDefault(w.ClusterID, state.DefaultClusterID)
		if w.Services == nil {
			w.Services = map[string]map[uint32]uint32{}
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		s.VIPs, s.SubjectAltNames = nonNil(s.VIPs), nonNil(s.SubjectAltNames)
		if s.Ports == nil {
			s.Ports = map[uint32]uint32{}
		}
		if s.Endpoints == nil {
			s.Endpoints = map[string]state.EndpointJSON{}
		}
		s.Visibility = orDefault(s.Visibility, "Public")
	}
	for i := range c.Policies {
		c.Policies[i].Rules = nonNil(c.Policies[i].Rules)
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Update converts the config to one state batch; every bad resource is reported.
func (c *LocalConfig) Update() (state.Update, error) {
	var u state.Update
	var errs []error
	for i := range c.Workloads {
		w, err := c.Workloads[i].proto()
		if err != nil {
			errs = append(errs, fmt.Errorf("workloads[%d].%w", i, err))
			continue
		}
		u.Addresses = append(u.Addresses, &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: w}})
	}
	for i := range c.Services {
		s, err := c.Services[i].Proto()
		if err != nil {
			errs = append(errs, fmt.Errorf("services[%d].%w", i, err))
			continue
		}
		u.Addresses = append(u.Addresses, &workloadapi.Address{Type: &workloadapi.Address_Service{Service: s}})
	}
	for i := range c.Policies {
		p, err := c.Policies[i].Proto()
		if err != nil {
			errs = append(errs, fmt.Errorf("policies[%d].%w", i, err))
			continue
		}
		u.Policies = append(u.Policies, p)
	}
	return u, errors.Join(errs...)
}

func (lw *LocalWorkload) proto() (*workloadapi.Workload, error) {
	w, err := lw.WorkloadJSON.Proto()
	if err != nil {
		return nil, err
	}
	for key, ports := range lw.Services {
		if _, _, err := state.SplitNamespacedHost(key); err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		pl := &workloadapi.PortList{}
		for svcPort, target := range ports {
			pl.Ports = append(pl.Ports, &workloadapi.Port{ServicePort: svcPort, TargetPort: target})
		}
		if w.Services == nil {
			w.Services = map[string]*workloadapi.PortList{}
		}
		w.Services[key] = pl
	}
	return w, nil
}

// Apply loads the config into the store. Static config is all or nothing: a resource the
// store refuses fails start-up rather than starting with part of what the user wrote.
func (c *LocalConfig) Apply(s *state.Store) error {
	u, err := c.Update()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range s.Apply(u) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Counts summarises the config for the start-up log line.
func (c *LocalConfig) Counts() (workloads, services, policies int) {
	return len(c.Workloads), len(c.Services), len(c.Policies)
}
