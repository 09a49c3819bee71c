// Package state is ztunnel's picture of the mesh: workloads, services and authorization
// policies, indexed for the data path. Writers (xDS, the static config) apply batches to
// a Store; readers take an immutable Snapshot and never lock. It does no network I/O.
package state

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"google.golang.org/protobuf/proto"
	"istio.io/istio/pkg/workloadapi"
)

// Defaults Istio leaves implicit in the proto and Rust ztunnel fills in.
const (
	DefaultTrustDomain    = "cluster.local"
	DefaultServiceAccount = "default"
	DefaultClusterID      = "Kubernetes"
)

// NetAddr is an IP on a network: the key of workloads and service VIPs.
type NetAddr struct {
	Network string
	Addr    netip.Addr
}

func (a NetAddr) String() string { return a.Network + "/" + a.Addr.String() }

// Workload is a validated workload. Its proto has Istio's implicit defaults filled in
// (trust domain, service account, cluster id) and must not be modified.
type Workload struct {
	*workloadapi.Workload
	IPs []netip.Addr // the proto's addresses, parsed
	seq uint64       // insertion order: the newest wins an address conflict
}

// Healthy reports whether the workload may receive service traffic under ONLY_HEALTHY.
func (w *Workload) Healthy() bool { return w.Status == workloadapi.WorkloadStatus_HEALTHY }

// CapacityOrDefault is the load-balancing weight; unset means 1.
func (w *Workload) CapacityOrDefault() uint32 {
	if w.Capacity == nil {
		return 1
	}
	return w.Capacity.Value
}

// newWorkload validates a workload and returns a defaulted copy; the caller's proto is
// never modified, since xDS may still hold it.
func newWorkload(in *workloadapi.Workload) (*Workload, error) {
	if in.GetUid() == "" {
		return nil, errors.New("missing uid")
	}
	if in.TunnelProtocol == workloadapi.TunnelProtocol_LEGACY_ISTIO_MTLS {
		return nil, errors.New("tunnel protocol LEGACY_ISTIO_MTLS is not supported")
	}
	ips, err := parseIPs(in.Addresses)
	if err != nil {
		return nil, err
	}
	for key := range in.Services {
		if _, _, err := SplitNamespacedHost(key); err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
	}
	if err := validGateway(in.Waypoint); err != nil {
		return nil, fmt.Errorf("waypoint: %w", err)
	}
	if err := validGateway(in.NetworkGateway); err != nil {
		return nil, fmt.Errorf("network gateway: %w", err)
	}
	w := proto.Clone(in).(*workloadapi.Workload)
	if w.TrustDomain == "" {
		w.TrustDomain = DefaultTrustDomain
	}
	if w.ServiceAccount == "" {
		w.ServiceAccount = DefaultServiceAccount
	}
	if w.ClusterId == "" {
		w.ClusterId = DefaultClusterID
	}
	return &Workload{Workload: w, IPs: ips}, nil
}

func parseIPs(raw [][]byte) ([]netip.Addr, error) {
	ips := make([]netip.Addr, 0, len(raw))
	for i, b := range raw {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			return nil, fmt.Errorf("addresses[%d]: want 4 or 16 bytes, got %d", i, len(b))
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

func validGateway(g *workloadapi.GatewayAddress) error {
	if g == nil {
		return nil
	}
	switch d := g.Destination.(type) {
	case *workloadapi.GatewayAddress_Address:
		if _, ok := netip.AddrFromSlice(d.Address.GetAddress()); !ok {
			return errors.New("address: want 4 or 16 bytes")
		}
	case *workloadapi.GatewayAddress_Hostname:
		if d.Hostname.GetHostname() == "" {
			return errors.New("empty hostname")
		}
	default:
		return errors.New("no destination")
	}
	return nil
}

// SplitNamespacedHost splits a "namespace/hostname" key.
func SplitNamespacedHost(key string) (ns, host string, err error) {
	ns, host, ok := strings.Cut(key, "/")
	if !ok || ns == "" || host == "" {
		return "", "", fmt.Errorf("%q is not namespace/hostname", key)
	}
	return ns, host, nil
}
