// Package route answers, over one state.Snapshot, where a connection goes: outbound,
// from a source workload to an original destination (a plan: a tunnel to the
// destination's ztunnel, one through a waypoint, plain TCP, or a refusal with its
// reason); inbound, whether a CONNECT is for this ztunnel and for which workload and
// service. It does no I/O and keeps no state: the proxy asks, then dials.
package route

import (
	"fmt"
	"math/rand/v2"
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
	// OnDemand (XDS_ON_DEMAND): a lookup that misses returns a *Missing naming the
	// resource to ask istiod for, instead of deciding without it.
	OnDemand bool
	// Explain records each decision in Plan.Why (route check, /debug/route).
	Explain bool
	// Rand, when set, draws in [0, n) for load balancing and weighted waypoints (tests
	// seed it); nil is math/rand/v2.
	Rand func(n uint64) uint64
}

func (r Router) random(n uint64) uint64 {
	if r.Rand != nil {
		return r.Rand(n)
	}
	return rand.Uint64N(n)
}

// Missing asks for a resource istiod has not sent (on-demand mode): the caller fetches
// Key (Rust fetch_on_demand) and routes again; if it is still missing, Plan and Err
// are the decision without it.
type Missing struct {
	Key  string // network/IP, namespace/hostname or a workload uid
	Plan Plan
	Err  error
}

func (m *Missing) Error() string { return "on-demand lookup of " + m.Key + " needed" }

// miss is a decision that depends on an absent resource: final without on-demand.
func (r Router) miss(key string, pl Plan, err error) (Plan, error) {
	if !r.OnDemand || key == "" {
		return pl, err
	}
	return Plan{}, &Missing{Key: key, Plan: pl, Err: err}
}

// explainer collects Plan.Why; a nil one (Explain off) records and formats nothing.
type explainer struct{ why []string }

func (e *explainer) list() []string {
	if e == nil {
		return nil
	}
	return e.why
}

func (r Router) explainer() *explainer {
	if r.Explain {
		return &explainer{}
	}
	return nil
}

func (e *explainer) add(format string, args ...any) {
	if e != nil {
		e.why = append(e.why, fmt.Sprintf(format, args...))
	}
}

// hidden notes the services on ip that visibility hides from namespace ns.
func (e *explainer) hidden(snap *state.Snapshot, network string, ip netip.Addr, ns string) {
	if e == nil {
		return
	}
	for _, s := range snap.ServicesByVIP(network, ip) {
		if !s.VisibleTo(ns) {
			e.add("service %s has VIP %s but is visible only to namespace %s", s.Key, ip, s.Namespace)
		}
	}
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
