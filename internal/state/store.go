package state

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"
)

// Store is the writer side of the state. Each Apply validates every resource, applies the
// valid ones and publishes one new Snapshot.
//
// A snapshot is rebuilt whole from the primary maps on every batch. That costs O(size) per
// batch (milliseconds at 10k workloads) but makes the indexes correct by construction: a
// removed or changed workload can leave no stale entry in any index.
type Store struct {
	mu sync.Mutex // serializes writers; guards the fields below
	// Primary data, keyed as xDS names resources.
	workloads map[string]*Workload // by uid
	services  map[string]*Service  // by namespace/hostname
	policies  map[string]*security.Authorization
	seq       uint64

	cur atomic.Pointer[Snapshot] // written under mu, read by anyone
}

// Update is one batch of changes. Removed names are xDS resource names: for addresses a
// workload uid or a service's namespace/hostname, for policies namespace/name.
type Update struct {
	Addresses        []*workloadapi.Address
	RemovedAddresses []string
	Policies         []*security.Authorization
	RemovedPolicies  []string
}

// ResourceError is why one resource of an Update was refused; the others still apply.
// Kind and Name are apart so that xDS can name the resource in its NACK.
type ResourceError struct {
	Kind string // "workload", "service", "policy", or "address" when neither could be told
	Name string // the resource's key: a workload's uid, "ns/hostname", "ns/name"; may be empty
	Err  error
}

func (e *ResourceError) Error() string {
	if e.Name == "" {
		return e.Kind + ": " + e.Err.Error()
	}
	return e.Kind + " " + e.Name + ": " + e.Err.Error()
}
func (e *ResourceError) Unwrap() error { return e.Err }

// NewStore returns an empty store whose snapshot is already readable.
func NewStore() *Store {
	s := &Store{
		workloads: map[string]*Workload{},
		services:  map[string]*Service{},
		policies:  map[string]*security.Authorization{},
	}
	s.cur.Store(emptySnapshot())
	return s
}

// Snapshot is the current state; it never changes once returned.
func (s *Store) Snapshot() *Snapshot { return s.cur.Load() }

// Apply applies a batch and returns one error per refused resource.
func (s *Store) Apply(u Update) []*ResourceError {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []*ResourceError
	for _, name := range u.RemovedAddresses {
		s.removeAddressLocked(name)
	}
	for _, name := range u.RemovedPolicies {
		delete(s.policies, name)
	}
	for _, a := range u.Addresses {
		if err := s.insertAddressLocked(a); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range u.Policies {
		if err := s.insertPolicyLocked(p); err != nil {
			errs = append(errs, err)
		}
	}
	s.publishLocked()
	return errs
}

// removeAddressLocked tries the name as a workload uid, then as namespace/hostname, as
// Rust ztunnel does: xDS removals do not say which kind they name.
func (s *Store) removeAddressLocked(name string) {
	if _, ok := s.workloads[name]; ok {
		delete(s.workloads, name)
		return
	}
	delete(s.services, name)
}

func (s *Store) insertAddressLocked(a *workloadapi.Address) *ResourceError {
	s.seq++
	switch t := a.GetType().(type) {
	case *workloadapi.Address_Workload:
		w, err := newWorkload(t.Workload)
		if err != nil {
			return &ResourceError{Kind: "workload", Name: t.Workload.GetUid(), Err: err}
		}
		w.seq = s.seq
		s.workloads[w.Uid] = w
	case *workloadapi.Address_Service:
		svc, err := newService(t.Service)
		if err != nil {
			name := t.Service.GetNamespace() + "/" + t.Service.GetHostname()
			return &ResourceError{Kind: "service", Name: name, Err: err}
		}
		svc.seq = s.seq
		s.services[svc.Key] = svc
	default:
		return &ResourceError{Kind: "address", Err: errors.New("neither workload nor service")}
	}
	return nil
}

func (s *Store) insertPolicyLocked(p *security.Authorization) *ResourceError {
	key := p.GetNamespace() + "/" + p.GetName()
	if err := validPolicy(p); err != nil {
		return &ResourceError{Kind: "policy", Name: key, Err: err}
	}
	s.policies[key] = p
	return nil
}

func (s *Store) publishLocked() {
	next := build(s.workloads, s.services, s.policies)
	prev := s.cur.Load()
	next.version = prev.version + 1
	s.cur.Store(next)
	close(prev.stale)
}

func validPolicy(p *security.Authorization) error {
	if p.GetName() == "" {
		return errors.New("missing name")
	}
	for gi, g := range p.Groups {
		for ri, r := range g.Rules {
			for mi, m := range r.Matches {
				if err := validMatchAddrs(m); err != nil {
					return fmt.Errorf("rules[%d][%d][%d]: %w", gi, ri, mi, err)
				}
			}
		}
	}
	return nil
}

func validMatchAddrs(m *security.Match) error {
	for _, list := range [][]*security.Address{m.SourceIps, m.NotSourceIps, m.DestinationIps, m.NotDestinationIps} {
		for _, a := range list {
			if _, err := PrefixOf(a); err != nil {
				return err
			}
		}
	}
	return nil
}
