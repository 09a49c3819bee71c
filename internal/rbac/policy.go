package rbac

import (
	"istio.io/istio/pkg/workloadapi/security"
)

// Policy is a compiled Authorization. Immutable.
type Policy struct {
	Key    string // namespace/name
	Action security.Action
	Scope  security.Scope
	DryRun bool
	rules  [][][]match // rules → clauses → matches
}

// Compile prepares an Authorization for evaluation.
func Compile(a *security.Authorization) *Policy {
	p := &Policy{Key: a.Namespace + "/" + a.Name, Action: a.Action, Scope: a.Scope, DryRun: a.DryRun}
	for _, g := range a.Groups {
		rule := make([][]match, 0, len(g.Rules))
		for _, r := range g.Rules {
			clause := make([]match, 0, len(r.Matches))
			for _, m := range r.Matches {
				clause = append(clause, compileMatch(m))
			}
			rule = append(rule, clause)
		}
		p.rules = append(p.rules, rule)
	}
	return p
}

// Where says which rule, clause and match decided a policy's outcome (-1: none).
type Where struct {
	Rule   int `json:"rule"`
	Clause int `json:"clause"`
	Match  int `json:"match"`
}

// Matches reports whether the policy matches c, and where: a policy matches when any
// rule does; a rule when all its clauses do (no clause: all); a clause when any of its
// non-empty matches does (no match at all: it holds; only empty ones: it does not). A
// policy without rules matches nothing.
func (p *Policy) Matches(c *Conn) (bool, Where) {
	for ri := range p.rules {
		if where, ok := ruleHolds(p.rules[ri], c); ok {
			where.Rule = ri
			return true, where
		}
	}
	return false, Where{-1, -1, -1}
}

func ruleHolds(rule [][]match, c *Conn) (Where, bool) {
	last := Where{Clause: -1, Match: -1}
	for ci := range rule {
		mi, ok := clauseHolds(rule[ci], c)
		if !ok {
			return last, false
		}
		last = Where{Clause: ci, Match: mi}
	}
	return last, true
}

// clauseHolds returns the index of the match that held (-1 for an empty clause).
func clauseHolds(clause []match, c *Conn) (int, bool) {
	if len(clause) == 0 {
		return -1, true
	}
	for mi := range clause {
		if !clause[mi].empty() && clause[mi].holds(c) {
			return mi, true
		}
	}
	return -1, false
}
