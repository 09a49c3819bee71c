// Package proxy carries workloads' TCP connections: outbound (15001, and SOCKS5 on
// 15080) into HBONE tunnels or plain TCP, inbound HBONE (15008) and inbound plaintext
// (15006) to the local apps.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/drain"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/pool"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/route"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// CertSource gives the certificate of an identity ztunnel acts for.
type CertSource interface {
	Get(ctx context.Context, id identity.Identity) (*identity.Cert, error)
}

// Authorizer decides inbound connections: Authorize for a new one (it may wait briefly
// for a policy still on its way), Decide to re-check an open one when state changes.
type Authorizer interface {
	Authorize(ctx context.Context, c rbac.Conn, dstUID string) rbac.Decision
	Decide(snap *state.Snapshot, w *state.Workload, c *rbac.Conn) rbac.Decision
}

// Listen is where the proxies listen; each address list may be empty (that proxy off).
type Listen struct {
	Outbound         []netip.AddrPort
	Inbound          []netip.AddrPort
	InboundPlaintext []netip.AddrPort
	Socks5           []netip.AddrPort
	// HBONEPort is the port peers' inbound listens on (15008), dialed for HBONE.
	HBONEPort uint16
}

// Options are everything a Proxy is given; app fills them from the config. The
// settings' zero values are the defaults of the variables table (options_test.go).
type Options struct {
	State   *state.Store
	Certs   CertSource
	Sockets Sockets
	Listen  Listen
	Authz   Authorizer // nil allows every connection
	// AuthzInfoLogging logs allowed authorization decisions at info, not debug.
	AuthzInfoLogging bool
	// NoBaggage (ENABLE_RESPONSE_BAGGAGE=false) sends no baggage on CONNECT answers and
	// reads none from peers; CONNECT requests still carry the source's, as in Rust.
	NoBaggage bool
	// Demand fetches an address istiod has not sent (XDS_ON_DEMAND); nil: off.
	Demand func(ctx context.Context, name string) error
	// SourceWait is how long an outbound connection waits for its source workload to
	// arrive; 0 is DefaultSourceWait, negative does not wait.
	SourceWait time.Duration
	// SelfStats, when valid, makes this proxy ztunnel's own inbound (Pod is ztunnel's
	// workload): a CONNECT for this port of ztunnel's address is carried to the stats
	// server listening here, and nothing else is served.
	SelfStats netip.AddrPort
	// AppTunnelOnPodIP (LOCALHOST_APP_TUNNEL=false) dials a PROXY application tunnel at
	// the pod's IP from the client's address, instead of loopback from loopback.
	AppTunnelOnPodIP bool
	// Resolver resolves hostname-only workloads at connect time; nil refuses them.
	Resolver Resolver
	Drain    *drain.Drain
	// Pod, in in-pod mode, is the workload this proxy serves: the source of its outbound
	// connections and the destination of its inbound ones, whatever the addresses.
	// Its UID (istio-cni's) keys its connections in the dump; without one, connections
	// are keyed by istiod's workload uid.
	Pod *identity.Workload
	// Traffic counts Istio's TCP metrics; Conns lists live connections. Both may be nil.
	Traffic *metrics.Traffic
	Conns   *conns.Registry
	// ConnLimit caps connections across every proxy sharing it (all pods of an in-pod
	// ztunnel); nil: one of its own, of MaxConnections.
	ConnLimit *ConnLimit
	Logger    *slog.Logger

	// TLS is the policy of HBONE's mTLS both ways (nil: TLS 1.3, AES-GCM); CRL judges
	// peers' chains at the handshake and while connections stay open (nil: no CRL_PATH).
	TLS *mtls.Policy
	CRL *crl.Manager

	Network        string         // this node's network (NETWORK): where addresses are looked up
	HBONE          hbone.Settings // HTTP/2 of HBONE connections, both ways
	Pool           pool.Options   // the outbound HBONE pool; its Logger is the proxy's
	Timeouts       Timeouts
	MaxConnections int // with no ConnLimit given; 0 counts without limiting
}

// Resolver looks a hostname up (dns.Resolver: the node's resolv.conf, cached by TTL).
type Resolver interface {
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// Timeouts bound a connection's phases. Idle and HalfClosed have no default of their
// own: 0 is "never", as in their variables, so the variables table is their one source.
type Timeouts struct {
	Handshake  time.Duration // TLS and the HTTP/2 preface after it; 0: mtls.HandshakeTimeout (10 s)
	Idle       time.Duration // no byte either way (CONNECTION_IDLE_TIMEOUT)
	HalfClosed time.Duration // no byte after one side's FIN (HALF_CLOSED_TIMEOUT)
}

// Proxy runs every listener of one ztunnel (node mode) or one pod (in-pod mode).
type Proxy struct {
	deps     Options
	log      *slog.Logger
	access   *slog.Logger // the access log: one line per connection
	router   route.Router
	settings hbone.Settings
	pool     *pool.Pool
	live     *connTable // every live connection of this proxy (conntable.go)

	noise *logging.Throttle // log budget of per-peer noise (noise.go)

	stopping chan struct{} // closed by Run as it stops: waits for state give up

	mu        sync.Mutex // guards listeners and inbound
	listeners []boundListener
	inbound   map[*hbone.Conn]struct{} // server connections, told to GOAWAY on drain
}

type boundListener struct {
	l      net.Listener
	handle func(net.Conn, *liveConn) // lc is c's entry; handle's caller releases it
}

// New builds the proxies; nothing listens until Bind.
func New(d Options) *Proxy {
	if d.Logger == nil {
		d.Logger = logging.Discard()
	}
	if d.Drain == nil {
		d.Drain = drain.New()
	}
	if d.Timeouts.Handshake <= 0 {
		d.Timeouts.Handshake = mtls.HandshakeTimeout
	}
	p := &Proxy{deps: d, log: d.Logger, access: logging.Scoped(d.Logger, "access"),
		inbound: map[*hbone.Conn]struct{}{}, noise: logging.NewThrottle(noiseBurst),
		settings: d.HBONE, stopping: make(chan struct{})}
	if d.ConnLimit == nil {
		p.deps.ConnLimit = NewConnLimit(d.MaxConnections)
	}
	p.live = newConnTable(p.deps.ConnLimit, d.Drain, d.Conns)
	popts := d.Pool
	popts.Logger = logging.Scoped(d.Logger, "pool")
	p.pool = pool.New(popts)
	// ztunnel's fixed data-plane ports are its own wherever it listens, plus any
	// configured elsewhere (tests, SOCKS5).
	p.router = route.Router{Network: d.Network, HBONEPort: d.Listen.HBONEPort, Pod: d.Pod, OnDemand: d.Demand != nil}
	for _, l := range [][]netip.AddrPort{d.Listen.Outbound, d.Listen.InboundPlaintext, d.Listen.Socks5} {
		for _, a := range l {
			p.router.OwnPorts = append(p.router.OwnPorts, a.Port())
		}
	}
	return p
}

// Bind opens every listener; a taken address fails naming it, and nothing stays open.
func (p *Proxy) Bind(ctx context.Context) error {
	groups := []struct {
		addrs  []netip.AddrPort
		handle func(net.Conn, *liveConn)
	}{{p.deps.Listen.Inbound, p.serveInbound}, {p.deps.Listen.InboundPlaintext, p.servePlaintext},
		{p.deps.Listen.Outbound, p.serveOutbound}, {p.deps.Listen.Socks5, p.serveSocks5}}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range groups {
		for _, a := range g.addrs {
			l, err := p.deps.Sockets.Listen(ctx, a)
			if err != nil {
				for _, b := range p.listeners {
					b.l.Close()
				}
				p.listeners = nil
				return err
			}
			p.listeners = append(p.listeners, boundListener{l: l, handle: g.handle})
		}
	}
	return nil
}

// Addrs are the bound listener addresses (ports chosen by the OS when 0).
func (p *Proxy) Addrs() []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]net.Addr, len(p.listeners))
	for i, b := range p.listeners {
		out[i] = b.l.Addr()
	}
	return out
}

// Run serves the bound listeners until ctx ends, then closes every connection still
// open and returns once all its goroutines have ended. Call StopAccepting first for a
// graceful drain.
func (p *Proxy) Run(ctx context.Context) {
	var wg sync.WaitGroup
	poolCtx, stopPool := context.WithCancel(context.Background())
	wg.Go(func() { p.pool.Run(poolCtx) })
	if p.deps.Authz != nil {
		wg.Go(func() { p.enforceLate(poolCtx) })
	}
	conns := &sync.WaitGroup{}
	p.mu.Lock()
	for _, b := range p.listeners {
		wg.Go(func() { p.acceptLoop(b, conns) })
	}
	p.mu.Unlock()
	// Open listeners are work in flight: the drain waits for their hand-over.
	listening, _ := p.deps.Drain.Hold()
	select {
	case <-p.deps.Drain.Draining(): // shutdown begins: hand over, take no new work, let peers go
		p.handOver(ctx)
		p.StopAccepting()
		listening()
		<-ctx.Done()
	case <-ctx.Done():
	}
	p.StopAccepting()
	listening()
	close(p.stopping)
	p.live.closeAll()
	stopPool()
	wg.Wait()
	conns.Wait()
}

// StopAccepting closes the listeners and tells inbound peers (GOAWAY) to open no new
// streams; connections in flight continue. Run calls it when the drain starts.
func (p *Proxy) StopAccepting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.listeners {
		b.l.Close()
	}
	for c := range p.inbound {
		go c.GoAway() // must not block the drain on a stuck peer
	}
}

// acceptLoop hands each connection to handle, backing off when out of file descriptors
// rather than spinning.
func (p *Proxy) acceptLoop(b boundListener, conns *sync.WaitGroup) {
	var delay time.Duration
	for {
		c, err := b.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("accept failed", "addr", b.l.Addr().String(), "error", err, "retry_in", delay.String())
			time.Sleep(delay)
			continue
		}
		delay = 0
		lc, err := p.live.admit(c)
		switch {
		case errors.Is(err, errOverLimit):
			p.overLimit(b.l.Addr())
			resetConn(c)
			continue
		case err != nil: // the drain is over: the proxy is closing
			c.Close()
			continue
		}
		conns.Go(func() {
			defer lc.release()
			b.handle(c, lc)
		})
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
