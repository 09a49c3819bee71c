package rbac

import (
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Explanation is a decision with its reasoning: every policy that applied to the
// destination, how it was selected, and whether (and where) it matched.
type Explanation struct {
	Decision   Decision
	Considered []Considered
}

// Considered is one policy's part in a decision.
type Considered struct {
	Policy  string
	Action  string // Allow | Deny
	DryRun  bool
	Via     string // namespace | global | workload
	Matched bool
	Where   Where
}

// Explain evaluates c against w's policies in snap and says why, as the admin
// /debug/authz endpoint shows it.
func (e *Engine) Explain(snap *state.Snapshot, w *state.Workload, c *Conn) Explanation {
	if w == nil {
		return Explanation{Decision: Decision{Reason: WorkloadUnknown}}
	}
	s := e.selectFor(snap, w, nil, true)
	x := Explanation{Decision: e.Decide(snap, w, c), Considered: []Considered{}}
	for i, p := range s.policies {
		ok, where := p.Matches(c)
		action := "Allow"
		if p.Action != 0 {
			action = "Deny"
		}
		x.Considered = append(x.Considered, Considered{Policy: p.Key, Action: action, DryRun: p.DryRun,
			Via: s.via[i], Matched: ok, Where: where})
	}
	return x
}
