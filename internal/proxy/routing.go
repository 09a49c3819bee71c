package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/route"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// DefaultSourceWait is how long an outbound connection waits for its source workload
// to arrive from istiod (Rust wait_for_workload's 5 s in get_workload): a new pod's
// first connection often races its own xDS push.
const DefaultSourceWait = 5 * time.Second

// maxDemands bounds the on-demand lookups one connection may make (the destination,
// its waypoint, the waypoint's own lookups).
const maxDemands = 4

// source finds the workload calling from src: asked of istiod first in on-demand mode,
// then waited for as new snapshots arrive, until SourceWait has passed or the proxy
// stops.
func (p *Proxy) source(src netip.Addr) (*state.Snapshot, *state.Workload) {
	snap := p.deps.State.Snapshot()
	if w := p.router.Source(snap, src); w != nil {
		return snap, w
	}
	if p.deps.Demand != nil {
		snap = p.demand(p.deps.Network + "/" + src.String())
		if w := p.router.Source(snap, src); w != nil {
			return snap, w
		}
	}
	wait := p.deps.SourceWait
	if wait == 0 {
		wait = DefaultSourceWait
	}
	if wait < 0 {
		return snap, nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-snap.Stale():
		case <-timer.C:
			return snap, nil
		case <-p.stopping:
			return snap, nil
		}
		snap = p.deps.State.Snapshot()
		if w := p.router.Source(snap, src); w != nil {
			return snap, w
		}
	}
}

// plan routes dst for src, fetching on demand what routing says it misses (Rust's
// fetch_address, fetch_hostname and friends) and routing again; a resource still
// missing once fetched is decided without.
func (p *Proxy) plan(snap *state.Snapshot, srcW *state.Workload, src netip.Addr, dst netip.AddrPort) (route.Plan, error) {
	var asked []string
	for {
		pl, err := p.router.Outbound(snap, srcW, src, dst)
		var m *route.Missing
		if !errors.As(err, &m) {
			return pl, err
		}
		if slices.Contains(asked, m.Key) || len(asked) == maxDemands {
			return m.Plan, m.Err
		}
		asked = append(asked, m.Key)
		snap = p.demand(m.Key)
	}
}

// demand asks istiod for one resource and returns the state once it has answered.
func (p *Proxy) demand(key string) *state.Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout/2)
	defer cancel()
	if err := p.deps.Demand(ctx, key); err != nil {
		p.log.Debug("on-demand lookup failed", "key", key, "error", err)
	}
	return p.deps.State.Snapshot()
}

// resolve gives a plan to a hostname-only workload its address: the node's resolver
// (Rust resolve_on_demand_dns), one of the family of the original destination when it
// has one, chosen at random; counted in istio_on_demand_dns_total.
func (p *Proxy) resolve(ctx context.Context, r *record, pl route.Plan, dst netip.AddrPort) (route.Plan, error) {
	if pl.Resolve == "" {
		return pl, nil
	}
	p.deps.Traffic.OnDemandDNS(r.labels(), pl.Resolve)
	if p.deps.Resolver == nil {
		return pl, fmt.Errorf("%s has no address and no resolver is configured", pl.Resolve)
	}
	ips, err := p.deps.Resolver.LookupIP(ctx, pl.Resolve)
	if err != nil {
		return pl, err
	}
	same := slices.DeleteFunc(slices.Clone(ips), func(ip netip.Addr) bool { return ip.Is6() != dst.Addr().Is6() })
	if len(same) > 0 {
		ips = same
	}
	return pl.Resolved(ips[rand.IntN(len(ips))]), nil
}
