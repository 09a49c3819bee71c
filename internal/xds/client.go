package xds

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"

	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// ClientConfig says where istiod is and how to talk to it.
type ClientConfig struct {
	Address string        // https://host:port, or http:// for plaintext
	Roots   *istiod.Roots // re-read when their file changes: the stream is rebuilt under them
	// AltHostname is a name istiod's certificate may carry instead of Address's host.
	AltHostname string
	// RootsInterval is how often an open stream looks at the roots; 0: 5 s.
	RootsInterval time.Duration
	Creds         istiod.CallCreds
	Node          *corepb.Node
	OnDemand      bool // Address resources only when asked for (XDS_ON_DEMAND)
	// FirstResponseTimeout: a stream that answers nothing this long after being opened is
	// given up (a server that accepts and goes silent). 0: 30 s.
	FirstResponseTimeout time.Duration
	Logger               *slog.Logger
	Metrics              *metrics.XDS
	// DialOptions are added to the gRPC connection's own, for embedders and tests (a
	// context dialer to an istiod in memory).
	DialOptions []grpc.DialOption
}

// Client keeps the state store in step with istiod over delta ADS. New does not
// connect; Run does, and reconnects until its context ends, keeping the last known
// state meanwhile.
type Client struct {
	cfg   ClientConfig
	log   *slog.Logger
	store *state.Store
	ready *readiness.Task
	conn  *grpc.ClientConn // Run's; replaced when the roots change
	gen   uint64           // the roots' generation conn was dialed under
	// rootsErr is the last roots error logged (Run's), so a bad file is logged once.
	rootsErr string

	demands chan string   // names to subscribe on demand; read by the running session
	synced  chan struct{} // closed once the first response of every type is applied

	mu         sync.Mutex                            // guards the fields below
	known      [len(resourceTypes)]map[string]string // per type: name → version
	wanted     map[string]bool                       // on-demand names, re-subscribed on every stream
	waiters    map[string][]chan struct{}
	typeSynced [len(resourceTypes)]bool // first response of each type applied
}

// Synced is closed once the state holds istiod's first answer for every type: the
// proxies start serving then, as Rust ztunnel's do.
func (c *Client) Synced() <-chan struct{} { return c.synced }

// New builds the client; ready is cleared once the first response of each type is in.
func New(cfg ClientConfig, store *state.Store, ready *readiness.Task) (*Client, error) {
	if cfg.FirstResponseTimeout == 0 {
		cfg.FirstResponseTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	if cfg.RootsInterval == 0 {
		cfg.RootsInterval = 5 * time.Second
	}
	c := &Client{cfg: cfg, log: cfg.Logger, store: store, ready: ready,
		demands: make(chan string, 64), synced: make(chan struct{}), wanted: map[string]bool{}, waiters: map[string][]chan struct{}{}}
	if err := c.dial(); err != nil {
		return nil, err
	}
	for i, t := range resourceTypes {
		c.known[i] = map[string]string{}
		// Resources that arrive on demand give nothing to wait for.
		c.typeSynced[i] = cfg.OnDemand && t.onDemand
	}
	return c, nil
}

// dial builds the connection under the roots in force.
func (c *Client) dial() error {
	if c.cfg.Roots != nil {
		_, c.gen, _ = c.cfg.Roots.Current()
	}
	opts := append([]grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(200 << 20))}, c.cfg.DialOptions...)
	conn, err := istiod.Dial(c.cfg.Address, c.cfg.Roots, c.cfg.AltHostname, &c.cfg.Creds, opts...)
	if err != nil {
		return err
	}
	c.conn = conn
	return nil
}

// Run keeps a stream to istiod open until ctx ends, reconnecting with backoff (10 ms
// doubling to 15 s, with jitter), then closes the connection. When the roots change, the
// connection is rebuilt under them and the stream reopened at once, resuming from the
// versions held (initial_resource_versions), so nothing is sent twice.
func (c *Client) Run(ctx context.Context) {
	defer func() { c.conn.Close() }()
	delay := 10 * time.Millisecond
	for {
		got, err := c.session(ctx)
		if ctx.Err() != nil {
			c.cfg.Metrics.Terminated("Complete")
			return
		}
		if errors.Is(err, errRootsChanged) {
			c.conn.Close()
			if err := c.dial(); err != nil { // cannot fail: roots were read before
				c.log.Error("rebuilding the xDS connection", "error", err)
				return
			}
			c.cfg.Metrics.Terminated("Reconnect")
			c.log.Info("istiod's roots changed: xDS reconnected under them", "address", c.cfg.Address)
			continue
		}
		if got { // the stream worked for a while: start over from a short delay
			delay = 10 * time.Millisecond
		}
		c.cfg.Metrics.Terminated(terminationReason(err))
		c.log.Warn("xDS stream ended, reconnecting", "address", c.cfg.Address, "retry_in", delay.String(), "error", err)
		select {
		case <-time.After(jitter(delay)):
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, 15*time.Second)
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func terminationReason(err error) string {
	switch {
	case errors.Is(err, errNoConnection):
		return "ConnectionError"
	case errors.Is(err, errSilent):
		return "Reconnect"
	}
	return "Error"
}

// Demand subscribes to name (a workload uid, "network/IP" or "namespace/hostname") and
// waits until istiod answers for it, or ctx ends. Only in on-demand mode.
func (c *Client) Demand(ctx context.Context, name string) error {
	if !c.cfg.OnDemand {
		return errors.New("xDS on-demand is off")
	}
	ch := make(chan struct{})
	c.mu.Lock()
	c.waiters[name] = append(c.waiters[name], ch)
	first := !c.wanted[name]
	c.wanted[name] = true
	c.mu.Unlock()
	if first {
		select {
		case c.demands <- name:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answered wakes the Demand callers waiting for name.
func (c *Client) answeredLocked(name string) {
	for _, ch := range c.waiters[name] {
		close(ch)
	}
	delete(c.waiters, name)
}

// subscribeRequest is the first request of a stream for type i: wildcard (or, on demand,
// explicitly non-wildcard with the names asked for), with the versions already known.
func (c *Client) subscribeRequest(i int) *discoverypb.DeltaDiscoveryRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := &discoverypb.DeltaDiscoveryRequest{Node: c.cfg.Node, TypeUrl: resourceTypes[i].url,
		InitialResourceVersions: make(map[string]string, len(c.known[i]))}
	for name, v := range c.known[i] {
		req.InitialResourceVersions[name] = v
	}
	if resourceTypes[i].onDemand && c.cfg.OnDemand {
		req.ResourceNamesSubscribe = []string{"*"}
		req.ResourceNamesUnsubscribe = []string{"*"}
		for name := range c.wanted {
			req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, name)
		}
	}
	return req
}
