package admin

import (
	"encoding/json"
	"net/http"
	"net/netip"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Explainer is the authorization engine as /debug/authz sees it.
type Explainer interface {
	Explain(snap *state.Snapshot, w *state.Workload, c *rbac.Conn) rbac.Explanation
}

// AuthzAnswer is /debug/authz's JSON: the decision, what decided it, and every policy
// that applied to the destination with its result.
type AuthzAnswer struct {
	Src         string           `json:"src"`
	SrcIdentity string           `json:"srcIdentity"`
	Dst         string           `json:"dst"`
	DstWorkload string           `json:"dstWorkload"`
	Decision    string           `json:"decision"` // allow | deny
	Reason      string           `json:"reason"`
	Policy      string           `json:"policy,omitempty"`
	Where       *rbac.Where      `json:"where,omitempty"`
	DryRun      []string         `json:"dryRunMatched,omitempty"`
	Considered  []ConsideredJSON `json:"considered"`
}

// ConsideredJSON is one policy's part.
type ConsideredJSON struct {
	Policy  string      `json:"policy"`
	Action  string      `json:"action"`
	DryRun  bool        `json:"dryRun,omitempty"`
	Via     string      `json:"selectedBy"`
	Matched bool        `json:"matched"`
	Where   *rbac.Where `json:"where,omitempty"`
}

// authz answers "would src (as srcId) be allowed to reach dst?" without a connection.
func (s *Server) authz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Authz == nil {
		http.Error(w, "authorization is not enabled", http.StatusServiceUnavailable)
		return
	}
	q := r.URL.Query()
	src, err1 := netip.ParseAddr(q.Get("src"))
	dst, err2 := netip.ParseAddrPort(q.Get("dst"))
	var id identity.Identity
	var err3 error
	if v := q.Get("srcId"); v != "" {
		id, err3 = identity.Parse(v)
	}
	if err1 != nil || err2 != nil || err3 != nil {
		http.Error(w, "usage: /debug/authz?src=<ip>&dst=<ip:port>[&srcId=spiffe://td/ns/<ns>/sa/<sa>]", http.StatusBadRequest)
		return
	}
	snap := s.deps.State.Snapshot()
	wl := snap.WorkloadByAddr(s.deps.Config.Network, dst.Addr())
	c := rbac.NewConn(src, id, dst, s.deps.Config.Network)
	writeJSON(w, answerOf(s.deps.Authz.Explain(snap, wl, &c), src, id, dst, wl))
}

func answerOf(x rbac.Explanation, src netip.Addr, id identity.Identity, dst netip.AddrPort, wl *state.Workload) AuthzAnswer {
	a := AuthzAnswer{Src: src.String(), SrcIdentity: id.String(), Dst: dst.String(), Decision: "deny",
		Reason: x.Decision.Reason.String(), Policy: x.Decision.Policy, Considered: []ConsideredJSON{}}
	if wl != nil {
		a.DstWorkload = wl.Namespace + "/" + wl.Name
	}
	if x.Decision.Allow {
		a.Decision = "allow"
	}
	if x.Decision.Policy != "" && x.Decision.Where.Rule >= 0 {
		a.Where = &x.Decision.Where
	}
	for _, k := range []string{x.Decision.DryRunDeny, x.Decision.DryRunAllow} {
		if k != "" {
			a.DryRun = append(a.DryRun, k)
		}
	}
	for _, c := range x.Considered {
		j := ConsideredJSON{Policy: c.Policy, Action: c.Action, DryRun: c.DryRun, Via: c.Via, Matched: c.Matched}
		if c.Matched {
			where := c.Where
			j.Where = &where
		}
		a.Considered = append(a.Considered, j)
	}
	return a
}

func writeJSON(w http.ResponseWriter, v any) {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(out, '\n'))
}
