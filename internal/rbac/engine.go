package rbac

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Engine evaluates connections against the policies in the state store. Policies are
// compiled once per state version. Safe for concurrent use.
type Engine struct {
	store   *state.Store
	wait    time.Duration               // how long a connection waits for a missing policy
	current atomic.Pointer[compiledSet] // replaced when the state version changes
}

type compiledSet struct {
	version uint64
	byKey   map[string]*Policy
}

// MissingPolicyWait is how long a connection waits for a policy its workload names
// but the store does not hold yet, before it is denied (fail closed).
const MissingPolicyWait = time.Second

// NewEngine evaluates against store.
func NewEngine(store *state.Store) *Engine {
	return &Engine{store: store, wait: MissingPolicyWait}
}

func (e *Engine) compiled(snap *state.Snapshot) *compiledSet {
	if c := e.current.Load(); c != nil && c.version == snap.Version() {
		return c
	}
	c := &compiledSet{version: snap.Version(), byKey: make(map[string]*Policy, len(snap.PolicyKeys()))}
	for _, k := range snap.PolicyKeys() {
		c.byKey[k] = Compile(snap.Policy(k))
	}
	e.current.Store(c)
	return c
}

// selection is the policies that apply to a workload: the NAMESPACE policies of its
// namespace, every GLOBAL policy, and those it names (selector policies), as Rust
// ztunnel gathers them. via, when asked for, says how each was selected.
type selection struct {
	policies []*Policy
	via      []string
	missing  string // a key the workload names that the store lacks
}

func (e *Engine) selectFor(snap *state.Snapshot, w *state.Workload, buf []*Policy, explain bool) selection {
	set := e.compiled(snap)
	s := selection{policies: buf[:0]}
	for _, group := range [...]struct {
		keys []string
		via  string
	}{{snap.NamespacePolicies(w.Namespace), "namespace"}, {snap.GlobalPolicies(), "global"}, {w.AuthorizationPolicies, "workload"}} {
		for _, k := range group.keys {
			p := set.byKey[k]
			if p == nil {
				if s.missing == "" {
					s.missing = k
				}
				continue
			}
			s.policies = append(s.policies, p)
			if explain {
				s.via = append(s.via, group.via)
			}
		}
	}
	return s
}

// Decide evaluates c against the policies of w in snap, without waiting.
func (e *Engine) Decide(snap *state.Snapshot, w *state.Workload, c *Conn) Decision {
	if w == nil {
		return Decision{Reason: WorkloadUnknown}
	}
	bp := policyBufs.Get().(*[]*Policy)
	s := e.selectFor(snap, w, *bp, false)
	d := Decision{Reason: PolicyMissing, Policy: s.missing}
	if s.missing == "" {
		d = Evaluate(c, s.policies)
	}
	clear(s.policies)
	*bp = s.policies[:0]
	policyBufs.Put(bp)
	return d
}

// policyBufs keeps Decide from allocating the list of a workload's policies.
var policyBufs = sync.Pool{New: func() any { b := make([]*Policy, 0, 16); return &b }}

// Authorize decides a new connection to the workload with uid. When the workload names
// a policy that has not arrived, it waits (bounded) for the state to catch up, then fails
// closed: a connection is never allowed for want of a policy.
func (e *Engine) Authorize(ctx context.Context, c Conn, uid string) Decision {
	timer := time.NewTimer(e.wait)
	defer timer.Stop()
	for {
		snap := e.store.Snapshot()
		d := e.Decide(snap, snap.WorkloadByUID(uid), &c)
		if d.Reason != PolicyMissing {
			return d
		}
		select {
		case <-snap.Stale():
		case <-timer.C:
			return d
		case <-ctx.Done():
			return d
		}
	}
}
