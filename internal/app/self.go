package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
)

// startSelfProxy is Rust create_ztunnel_self_proxy_listener: in in-pod mode, with its
// own identity known (POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT), ztunnel listens on the
// inbound address of its own namespace as a workload of its own, so that Prometheus
// in the mesh scrapes its stats over HBONE, mTLS and authorization policy included.
// The stats server must be bound already: its address is the only target.
func (a *App) startSelfProxy(ctx context.Context, wg *sync.WaitGroup, certs *certmgr.Manager, demand func(context.Context, string) error) error {
	c := a.cfg
	if !c.InPod || !c.EnableProxy || certs == nil || c.PodName == "" || c.PodNamespace == "" || c.ServiceAccount == "" ||
		len(a.bound.Stats) == 0 {
		return nil
	}
	sockets := hostSockets(c)
	var ns *netns.NS
	if c.SelfNetns != "" {
		var err error
		if ns, err = netns.Open(c.SelfNetns); err != nil {
			return fmt.Errorf("opening the self-proxy's namespace: %w", err)
		}
		sockets.Enter = ns.Do
	}
	o := a.proxyOptions(certs, sockets, demand)
	o.Pod = &identity.Workload{Name: c.PodName, Namespace: c.PodNamespace, ServiceAccount: c.ServiceAccount}
	o.Listen = proxy.Listen{Inbound: []netip.AddrPort{c.Addrs.Inbound}, HBONEPort: c.Addrs.Inbound.Port()}
	o.SelfStats = dialable(a.bound.Stats[0])
	o.Logger = logging.Scoped(a.log, "self_proxy")
	p := proxy.New(o)
	if err := p.Bind(ctx); err != nil {
		if ns != nil {
			ns.Close()
		}
		return fmt.Errorf("ztunnel's own inbound: %w", err)
	}
	a.log.Info("ztunnel's own inbound listening", "identity",
		identity.New(c.TrustDomain, c.PodNamespace, c.ServiceAccount).String(), "address", c.Addrs.Inbound.String())
	wg.Go(func() {
		p.Run(ctx)
		if ns != nil {
			ns.Close()
		}
	})
	return nil
}

// dialable is a listener's address as a client reaches it: a wildcard becomes loopback.
func dialable(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	ip := ap.Addr().Unmap()
	switch {
	case ip.IsUnspecified() && ip.Is4():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(ip, ap.Port())
}
