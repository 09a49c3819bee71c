// Package conns knows every live proxied connection and the pods ztunnel serves, for
// /config_dump's workloadState (read by `istioctl ztunnel-config connections`).
package conns

import (
	"sort"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// Conn is one live connection as the dump shows it.
type Conn struct {
	Inbound     bool
	Src         string
	OriginalDst string // the service hostname (inbound) or address the app asked for; "" for none
	ActualDst   string
	Protocol    string // TCP | HBONE
}

// Registry is safe for concurrent use. A nil *Registry records nothing.
type Registry struct {
	mu    sync.Mutex
	pods  map[string]podState         // guarded by mu
	conns map[*Conn]identity.Workload // guarded by mu
}

type podState struct {
	w  identity.Workload
	up bool
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{pods: map[string]podState{}, conns: map[*Conn]identity.Workload{}}
}

// Add records a live connection of w until the returned function is called.
func (r *Registry) Add(w identity.Workload, c *Conn) func() {
	if r == nil {
		return func() {}
	}
	r.mu.Lock()
	r.conns[c] = w
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}
}

// SetPod records a pod istio-cni handed over, Up when its proxies run.
func (r *Registry) SetPod(w identity.Workload, up bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pods[w.UID] = podState{w, up}
}

// RemovePod forgets a pod.
func (r *Registry) RemovePod(key string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pods, key)
}

// State is one workload's entry in the dump.
type State struct {
	Workload identity.Workload
	State    string // Up | Pending, for pods; "" in node mode
	Inbound  []Conn
	Outbound []Conn
}

// Dump groups the live connections by workload, with every pod even when idle.
func (r *Registry) Dump() map[string]*State {
	out := map[string]*State{}
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, p := range r.pods {
		st := &State{Workload: p.w, State: "Pending"}
		if p.up {
			st.State = "Up"
		}
		out[key] = st
	}
	for c, w := range r.conns {
		st := out[w.UID]
		if st == nil {
			st = &State{Workload: w}
			out[w.UID] = st
		}
		if c.Inbound {
			st.Inbound = append(st.Inbound, *c)
		} else {
			st.Outbound = append(st.Outbound, *c)
		}
	}
	for _, st := range out {
		sort.Slice(st.Inbound, func(i, j int) bool { return st.Inbound[i].Src < st.Inbound[j].Src })
		sort.Slice(st.Outbound, func(i, j int) bool { return st.Outbound[i].Src < st.Outbound[j].Src })
	}
	return out
}
