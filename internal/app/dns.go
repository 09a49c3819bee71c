package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/dns"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// clientWait is how long a pod's query waits for the pod to appear in the state, as
// Rust's LocalWorkloadFetcher does.
const clientWait = 5 * time.Second

// loadDNS reads ztunnel's resolv.conf once, as Rust does at start: its nameservers get
// the names the mesh does not know; in dedicated mode its search list is the one the
// workload's resolver appends. A missing file fails start-up, naming it.
func (a *App) loadDNS() error {
	c := a.cfg
	if !c.DNS.Enabled {
		return nil
	}
	up, search, skipped, err := dns.ReadResolvConf(c.DNS.ResolvConf)
	if err != nil {
		return fmt.Errorf("DNS proxy (ISTIO_META_DNS_CAPTURE=false turns it off): %w", err)
	}
	log := logging.Scoped(a.log, "dns")
	for _, s := range skipped {
		log.Warn("resolv.conf nameserver is not an IP address, skipped", "nameserver", s)
	}
	if len(up.Servers) == 0 {
		log.Warn("no nameserver in resolv.conf: names the mesh does not know will get SERVFAIL", "file", c.DNS.ResolvConf)
	}
	a.dnsMesh = &dns.Mesh{Domain: c.ClusterDomain, IPv6: c.IPv6Enabled, PreferredNamespace: c.DNS.PreferredNamespace}
	if c.ProxyMode == config.Dedicated {
		a.dnsMesh.Search = search
	}
	a.dnsUpstream = up
	return nil
}

// loadResolver builds the resolver of hostname-only workloads (Rust's on-demand DNS,
// with the node's resolv.conf): the DNS proxy's upstreams when it runs, else the file
// read now. Without a readable file such workloads are refused, with one warning here.
func (a *App) loadResolver() {
	up := a.dnsUpstream
	if !a.cfg.DNS.Enabled {
		var err error
		if up, _, _, err = dns.ReadResolvConf(a.cfg.DNS.ResolvConf); err != nil {
			a.log.Warn("workloads known by hostname only cannot be reached", "error", err)
			return
		}
	}
	a.resolver = dns.NewResolver(up, hostSockets(a.cfg))
}

// dnsDebug is /debug/dns's view, nil when the proxy is off. A query's client is found
// by its source address (in in-pod mode too: the pod's IP), or is the one workload.
func (a *App) dnsDebug() admin.DNSDebug {
	if !a.cfg.DNS.Enabled {
		return nil
	}
	client, _ := a.nodeDNSClient() // by source address (the pod's IP) but in dedicated mode
	return &dns.Debug{Mesh: a.dnsMesh, History: a.dnsHistory, Upstream: a.dnsUpstream, Client: client}
}

// newDNS builds one DNS server on the configured addresses, with sockets from sockets.
func (a *App) newDNS(sockets dns.Sockets, client func(*state.Snapshot, netip.Addr) *state.Workload, wait time.Duration, key string) *dns.Server {
	return dns.New(dns.Options{
		Addrs: a.cfg.Addrs.DNS, Optional: a.cfg.Addrs.DNSOptional, Sockets: sockets,
		State: a.store, Client: client, ClientWait: wait, Mesh: a.dnsMesh, Upstream: a.dnsUpstream,
		Metrics: a.dnsMetrics, History: a.dnsHistory, Key: key, Logger: logging.Scoped(a.log, "dns"),
	})
}

// startNodeDNS serves DNS in ztunnel's own namespace (node and dedicated mode): bound at
// once, so a taken port fails start-up, served once the state is synced, under the
// readiness task "dns proxy" as in Rust.
func (a *App) startNodeDNS(ctx context.Context, wg *sync.WaitGroup, synced <-chan struct{}) error {
	if !a.cfg.DNS.Enabled {
		return nil
	}
	task := a.ready.Register("dns proxy")
	client, wait := a.nodeDNSClient()
	s := a.newDNS(hostSockets(a.cfg), client, wait, "")
	if err := s.Bind(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	a.dnsAddrs = s.Addrs()
	a.mu.Unlock()
	var udp []net.Addr // Addrs pairs each UDP socket with its TCP twin
	for i := 0; i < len(s.Addrs()); i += 2 {
		udp = append(udp, s.Addrs()[i])
	}
	logging.Scoped(a.log, "dns").Info("starting local DNS server", "address", addrList(udp), "protocols", "udp,tcp")
	wg.Go(func() {
		select {
		case <-synced:
			task.Done()
		case <-ctx.Done():
		}
		s.Run(ctx)
	})
	return nil
}

// nodeDNSClient is who asks a server outside the pods: in dedicated mode the one
// workload (waited for, as in Rust), otherwise the workload owning the source address
// (not waited for: an address that is no workload may never become one).
func (a *App) nodeDNSClient() (func(*state.Snapshot, netip.Addr) *state.Workload, time.Duration) {
	if w := a.cfg.WorkloadInfo; w != nil && a.cfg.ProxyMode == config.Dedicated {
		return func(snap *state.Snapshot, _ netip.Addr) *state.Workload {
			return snap.WorkloadByName(w.Namespace, w.Name)
		}, clientWait
	}
	return func(snap *state.Snapshot, src netip.Addr) *state.Workload {
		return snap.WorkloadByAddr(a.cfg.Network, src)
	}, 0
}

// podDNS builds and binds the DNS server inside a pod's namespace; the pod is the
// client of every query. Nil when the DNS proxy is off.
func (a *App) podDNS(ctx context.Context, sockets *proxy.HostSockets, ns, name, uid string) (*dns.Server, error) {
	if !a.cfg.DNS.Enabled {
		return nil, nil
	}
	client := func(snap *state.Snapshot, _ netip.Addr) *state.Workload { return snap.WorkloadByName(ns, name) }
	s := a.newDNS(sockets, client, clientWait, uid)
	if err := s.Bind(ctx); err != nil {
		return nil, err
	}
	return s, nil
}
