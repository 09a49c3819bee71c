package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/xds"
)

// closed is a channel that is already closed: state with no xDS is complete at once.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// runXDS starts the delta xDS client when XDS_ADDRESS is set; it clears the "state
// manager" task itself. It returns when the state is synced (closed without xDS) and, in
// on-demand mode, how to fetch a missing address.
func (a *App) runXDS(ctx context.Context, wg *sync.WaitGroup, task *readiness.Task) (<-chan struct{}, func(context.Context, string) error, error) {
	c := a.cfg
	if c.XDSAddress == "" {
		task.Done()
		return closed, nil, nil
	}
	node, err := xds.Node(xds.NodeInfo{InstanceIP: c.InstanceIP, PodName: c.PodName, PodNamespace: c.PodNamespace,
		NodeName: c.NodeName, ProxyMetadata: c.ProxyMetadata, ProxyMetadataJSON: c.ProxyMetadataJSON})
	if err != nil {
		return nil, nil, err
	}
	client, err := xds.New(xds.ClientConfig{
		Address: c.XDSAddress, Roots: istiodRoots(c.XDSRootCert), AltHostname: c.XDSAltHostname, Node: node, OnDemand: c.XDSOnDemand,
		Creds:  istiod.CallCreds{Token: c.AuthToken.Read, ClusterID: c.ClusterID, Headers: istiodHeaders(c.XDSHeaders)},
		Logger: logging.Scoped(a.log, "xds"), Metrics: metrics.NewXDS(a.registry),
	}, a.store, task)
	if err != nil {
		return nil, nil, fmt.Errorf("xDS (XDS_ADDRESS, XDS_ROOT_CA): %w", err)
	}
	wg.Go(func() { client.Run(ctx) })
	var demand func(context.Context, string) error
	if c.XDSOnDemand {
		demand = client.Demand
	}
	a.log.Info("xDS client started", "address", c.XDSAddress, "on_demand", c.XDSOnDemand)
	return client.Synced(), demand, nil
}

// istiodHeaders are the extra metadata of XDS_HEADER_* or CA_HEADER_*, in env order.
// istiodRoots are the roots of a *_ROOT_CA variable; a file is re-read when it changes.
func istiodRoots(r config.RootCert) *istiod.Roots {
	file := r.File
	if r.System || r.PEM != "" {
		file = ""
	}
	return istiod.NewRoots(file, r.Load)
}

func istiodHeaders(hs []config.Header) []istiod.Header {
	out := make([]istiod.Header, len(hs))
	for i, h := range hs {
		out[i] = istiod.Header{Name: h.Name, Value: h.Value}
	}
	return out
}
