// Package route answers, over one state.Snapshot, where a connection goes: outbound,
// from a source workload to an original destination (a plan: a tunnel to the
// destination's ztunnel, one through a waypoint, plain TCP, or a refusal with its
// reason); inbound, whether a CONNECT is for this ztunnel and for which workload and
// service. It does no I/O and keeps no state: the proxy asks, then dials.
package route

import (
	"net/netip"
	"slices"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Router is what routing knows of the ztunnel asking: its network, its peers' HBONE
// port and its own data-plane ports. The zero value is node mode on the default
// network with Istio's ports.
type Router struct {
	Network string
	// HBONEPort is dialed on a peer's ztunnel for HBONE; 0 is Istio's 15008.
	HBONEPort uint16
	// OwnPorts are ztunnel's data-plane ports besides Istio's fixed 15001, 15006 and
	// 15008 (tests' and SOCKS5's): never a target, a tunnel to one would loop.
	OwnPorts []uint16
	// Pod, in in-pod mode, is the one workload served: the source of every outbound
	// connection and the destination of every inbound one, whatever the addresses.
	Pod *identity.Workload
}

func (r Router) hbonePort() uint16 {
	if r.HBONEPort == 0 {
		return 15008
	}
	return r.HBONEPort
}

// IsOwnPort reports a port of ztunnel's own data plane.
func (r Router) IsOwnPort(port uint16) bool {
	switch port {
	case 15001, 15006, 15008, r.hbonePort():
		return true
	}
	return slices.Contains(r.OwnPorts, port)
}

// Source is the workload calling from src: the pod served (in-pod mode), or the
// workload owning src on this network (node mode); nil when unknown.
func (r Router) Source(snap *state.Snapshot, src netip.Addr) *state.Workload {
	return r.local(snap, src)
}

// Local is the workload an inbound connection reached at local, as Source.
func (r Router) Local(snap *state.Snapshot, local netip.Addr) *state.Workload {
	return r.local(snap, local)
}

func (r Router) local(snap *state.Snapshot, ip netip.Addr) *state.Workload {
	if pod := r.Pod; pod != nil {
		return snap.WorkloadByName(pod.Namespace, pod.Name)
	}
	return snap.WorkloadByAddr(r.Network, ip)
}

// Peer is the workload at a peer's address on this network, whichever the mode (for
// telemetry of inbound connections); nil when unknown.
func (r Router) Peer(snap *state.Snapshot, ip netip.Addr) *state.Workload {
	return snap.WorkloadByAddr(r.Network, ip)
}

// WorkloadID is the identity a workload's certificate proves.
func WorkloadID(w *state.Workload) identity.Identity {
	return identity.New(w.TrustDomain, w.Namespace, w.ServiceAccount)
}

// ServiceByHost is the service of a hostname, preferring the one in namespace ns when
// several namespaces have it (the client's, or the destination's); nil when none.
func ServiceByHost(snap *state.Snapshot, host, ns string) *state.Service {
	var svc *state.Service
	for _, s := range snap.ServicesByHost(host) {
		if svc == nil || s.Namespace == ns {
			svc = s
		}
	}
	return svc
}

// sans are the extra identities a service allows its endpoints to prove.
func sans(svc *state.Service) []identity.Identity {
	var out []identity.Identity
	for _, s := range svc.SubjectAltNames {
		if id, err := identity.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}
