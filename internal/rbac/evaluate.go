package rbac

import "istio.io/istio/pkg/workloadapi/security"

// Reason says why a decision was taken.
type Reason uint8

const (
	Denied          Reason = iota // a DENY policy matched
	Allowed                       // an ALLOW policy matched
	NoAllowPolicy                 // no ALLOW policy applies: allowed by default
	NoneAllowed                   // ALLOW policies apply, none matched
	PolicyMissing                 // the workload names a policy that has not arrived
	WorkloadUnknown               // the destination is not a known workload
)

var reasons = [...]string{
	Denied:          "explicitly denied by",
	Allowed:         "allowed by",
	NoAllowPolicy:   "no allow policies exist",
	NoneAllowed:     "allow policies exist, but none allowed",
	PolicyMissing:   "a policy named by the workload has not arrived:",
	WorkloadUnknown: "destination workload unknown",
}

func (r Reason) String() string { return reasons[r] }

// Decision is the outcome for one connection and the policy that decided it.
type Decision struct {
	Allow  bool
	Reason Reason
	Policy string // the deciding policy's key, when one decided
	Where  Where
	// Dry-run policies never decide; these name the first that matched, for the log.
	DryRunDeny, DryRunAllow string
}

// String reads like Rust ztunnel's log: "explicitly denied by: ns/name".
func (d Decision) String() string {
	if d.Policy == "" {
		return d.Reason.String()
	}
	return d.Reason.String() + " " + d.Policy
}

// Evaluate applies Istio's order: a matching DENY denies; with no ALLOW policy the
// connection is allowed; else a matching ALLOW allows and anything else is denied.
// Dry-run policies are evaluated for the log only. It allocates nothing.
func Evaluate(c *Conn, policies []*Policy) Decision {
	var d Decision
	for _, p := range policies {
		if p.Action != security.Action_DENY {
			continue
		}
		ok, where := p.Matches(c)
		switch {
		case ok && p.DryRun:
			if d.DryRunDeny == "" {
				d.DryRunDeny = p.Key
			}
		case ok:
			d.Reason, d.Policy, d.Where = Denied, p.Key, where
			return d
		}
	}
	hasAllow := false
	for _, p := range policies {
		if p.Action != security.Action_ALLOW {
			continue
		}
		ok, where := p.Matches(c)
		if p.DryRun {
			if ok && d.DryRunAllow == "" {
				d.DryRunAllow = p.Key
			}
			continue
		}
		hasAllow = true
		if ok {
			d.Allow, d.Reason, d.Policy, d.Where = true, Allowed, p.Key, where
			return d
		}
	}
	if !hasAllow {
		d.Allow, d.Reason = true, NoAllowPolicy
		return d
	}
	d.Reason = NoneAllowed
	return d
}
