//go:build linux

package app

import (
	"context"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/inpod"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
)

// runInPod serves the pods istio-cni hands over (ZDS), once the state is synced.
func (a *App) runInPod(ctx context.Context, wg *sync.WaitGroup, certs *certmgr.Manager, synced <-chan struct{},
	demand func(context.Context, string) error) {
	task := a.ready.Register("workload proxy manager")
	start := func(pod identity.Workload, ns *netns.NS) (inpod.Running, error) {
		return a.startPod(ctx, certs, demand, pod, ns)
	}
	c := inpod.New(a.cfg.InPodUDS, start, logging.Scoped(a.log, "inpod"), task, a.conns)
	c.Metrics = metrics.NewWorkloadManager(a.registry)
	wg.Go(func() {
		select {
		case <-synced:
		case <-ctx.Done():
			return
		}
		c.Run(ctx)
	})
}

// podProxy is one pod's proxy set; Stop closes its listeners and connections.
type podProxy struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *podProxy) Stop()                 { p.cancel() }
func (p *podProxy) Done() <-chan struct{} { return p.done }

// startPod opens ports 15001, 15006 and 15008, and the DNS proxy's 15053 on
// localhost, inside the pod's namespace, with the packet mark (so the pod's own iptables rules let ztunnel's traffic through) and
// SO_REUSEPORT (so a new ztunnel can take over while the old one drains).
func (a *App) startPod(ctx context.Context, certs *certmgr.Manager, demand func(context.Context, string) error,
	pod identity.Workload, ns *netns.NS) (inpod.Running, error) {
	c := a.cfg
	sockets := hostSockets(c)
	sockets.Enter, sockets.ReusePort = ns.Do, c.InPodPortReuse
	o := a.proxyOptions(certs, sockets, demand)
	o.Pod, o.Listen = &pod, podListen(c)
	p := proxy.New(o)
	dnsSrv, err := a.podDNS(ctx, sockets, pod.Namespace, pod.Name, pod.UID)
	if err != nil {
		return nil, err
	}
	if err := p.Bind(ctx); err != nil {
		if dnsSrv != nil {
			dnsSrv.Close()
		}
		return nil, err
	}
	certs.Prefetch(identity.New(c.TrustDomain, pod.Namespace, pod.ServiceAccount))
	pctx, cancel := context.WithCancel(ctx)
	pp := &podProxy{cancel: cancel, done: make(chan struct{})}
	go func() { // joined by Stop, which inpod calls
		defer close(pp.done)
		defer a.dnsHistory.Forget(pod.UID)
		var wg sync.WaitGroup
		if dnsSrv != nil {
			wg.Go(func() { dnsSrv.Run(pctx) })
			wg.Go(func() {
				select {
				case <-a.drain.Draining(): // a successor takes new queries; these are still answered
					dnsSrv.HandOver()
				case <-pctx.Done():
				}
			})
		}
		p.Run(pctx)
		wg.Wait()
	}()
	return pp, nil
}
