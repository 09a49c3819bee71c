package proxy

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// authorize decides a new inbound connection and logs the outcome: a denial at info as
// Rust ztunnel's "RBAC rejected conn=<src>(<identity>)-><dst>", with the deciding policy.
func (p *Proxy) authorize(log *slog.Logger, c rbac.Conn, dst *state.Workload) bool {
	if p.deps.Authz == nil {
		return true
	}
	d := p.deps.Authz.Authorize(context.Background(), c, dst.Uid)
	logDryRun(log, d)
	if d.Allow {
		if lvl := p.policyLevel(); log.Enabled(context.Background(), lvl) { // no formatting per connection when off
			log.Log(context.Background(), lvl, "RBAC allowed", "conn", connString(c), "reason", d.String())
		}
		return true
	}
	log.Info("RBAC rejected", "conn", connString(c), "reason", d.String())
	return false
}

func logDryRun(log *slog.Logger, d rbac.Decision) {
	if d.DryRunDeny != "" {
		log.Info("dry-run: policy would deny", "policy", d.DryRunDeny)
	}
	if d.DryRunAllow != "" {
		log.Info("dry-run: policy would allow", "policy", d.DryRunAllow)
	}
}

func connString(c rbac.Conn) string {
	id := "None"
	if !c.SrcID.IsZero() {
		id = c.SrcID.String()
	}
	return c.SrcIP.String() + "(" + id + ")->" + netip.AddrPortFrom(c.DstIP, c.DstPort).String()
}

// recheck is kept with an inbound connection so a policy change can end it.
func (p *Proxy) recheck(log *slog.Logger, c rbac.Conn, r *record) func(*state.Snapshot) bool {
	uid := r.dstW.Uid
	return func(snap *state.Snapshot) bool {
		d := p.deps.Authz.Decide(snap, snap.WorkloadByUID(uid), &c)
		// A policy the workload names but that has not arrived does not close an open
		// connection: istiod sends the workload (WDS) and the policy (WADS) apart, and
		// closing every connection in between would punish the order they come in. Its
		// arrival is a state change, and this check runs again then. (New connections
		// wait for it, then fail closed: rbac.Engine.Authorize.)
		if d.Reason == rbac.PolicyMissing {
			return true
		}
		if !d.Allow {
			r.denied.Store(true)
			log.Info("connection closed due to policy change", "conn", connString(c), "reason", d.String())
		}
		return d.Allow
	}
}

// enforceLate re-decides every open inbound connection whenever the state changes
// (policies, or a workload's selector policies), and closes those now denied, until ctx
// ends. Unlike Rust ztunnel, which re-checks on policy pushes only, a workload update
// that attaches a selector policy is enforced too.
func (p *Proxy) enforceLate(ctx context.Context) {
	for {
		snap := p.deps.State.Snapshot()
		select {
		case <-snap.Stale():
			p.live.recheck(p.deps.State.Snapshot())
		case <-ctx.Done():
			return
		}
	}
}

// inboundConn prepares the authorization view of an inbound connection.
func (p *Proxy) inboundConn(src netip.AddrPort, id identity.Identity, dst netip.AddrPort) rbac.Conn {
	return rbac.NewConn(src.Addr(), id, dst, p.deps.Network)
}

// policyLevel is where allowed decisions are logged: debug, or info with
// AUTHZ_POLICY_INFO_LOGGING (Rust's authpol_log!). Denials are at info either way.
func (p *Proxy) policyLevel() slog.Level {
	if p.deps.AuthzInfoLogging {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
