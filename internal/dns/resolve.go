package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Bounds of how long a resolved workload hostname is reused: the records' own TTL,
// within [minTTL, maxTTL]; a name that resolved to nothing is asked again after minTTL.
const (
	minTTL = time.Second
	maxTTL = 30 * time.Second
)

// Resolver resolves the hostnames of workloads known by name only (ServiceEntries with
// DNS resolution) when a connection needs one, as Rust resolve_on_demand_dns does with
// the node's resolv.conf. Answers are cached for their TTL (bounded), so a burst of
// connections to one name asks once.
type Resolver struct {
	fwd *forwarder
	now func() time.Time

	mu    sync.Mutex // guards cache
	cache map[string]cached
}

type cached struct {
	ips   []netip.Addr
	err   error // why there are none
	until time.Time
}

// NewResolver asks up's servers, over sockets from dial.
func NewResolver(up Upstream, dial Dialer) *Resolver {
	if up.Timeout <= 0 {
		up.Timeout = 2 * time.Second
	}
	return &Resolver{fwd: &forwarder{up: up, dial: dial, limit: 64, inflight: map[string]int{}},
		now: time.Now, cache: map[string]cached{}}
}

// LookupIP returns host's IPv4 and IPv6 addresses; an error when it has none.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	name := mdns.Fqdn(host)
	r.mu.Lock()
	c, ok := r.cache[name]
	r.mu.Unlock()
	if !ok || !r.now().Before(c.until) {
		c = r.query(ctx, name)
		r.mu.Lock()
		r.cache[name] = c
		if len(r.cache) > 4096 { // names come from istiod, but bound it anyway
			clear(r.cache)
		}
		r.mu.Unlock()
	}
	if len(c.ips) == 0 {
		if c.err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, c.err)
		}
		return nil, fmt.Errorf("resolving %s: no address", host)
	}
	return c.ips, nil
}

func (r *Resolver) query(ctx context.Context, name string) cached {
	var ips []netip.Addr
	ttl := maxTTL
	var errs []error
	for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		req := new(mdns.Msg).SetQuestion(name, qtype)
		req.RecursionDesired = true
		rep, err := r.fwd.exchange(ctx, req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rep.msg.Answer {
			var ip netip.Addr
			switch a := rr.(type) {
			case *mdns.A:
				ip, _ = netip.AddrFromSlice(a.A.To4())
			case *mdns.AAAA:
				ip, _ = netip.AddrFromSlice(a.AAAA)
			default:
				continue
			}
			ips = append(ips, ip)
			ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
		}
	}
	if len(ips) == 0 {
		return cached{err: errors.Join(errs...), until: r.now().Add(minTTL)}
	}
	return cached{ips: ips, until: r.now().Add(max(ttl, minTTL))}
}
