// Package dns is ztunnel's DNS proxy on port 15053. istio-cni redirects every ambient
// pod's DNS there; names the mesh knows (services, ServiceEntries, headless pods) are
// answered from the state snapshot as the client pod sees them, the rest are forwarded
// to the resolvers of ztunnel's own resolv.conf and their answer passed back unchanged.
// Wire format, framing and malformed-message handling are miekg/dns's.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/sockopt"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Rust ztunnel's fixed values: a TCP client has 5 s to send its query.
const (
	tcpRequestTimeout = 5 * time.Second
	recordTTL         = 30
	// DefaultMaxInFlight bounds one client's forwarded queries in flight.
	DefaultMaxInFlight = 64
)

// Sockets creates the server's listeners and its upstream sockets: in ztunnel's
// namespace in node mode, in the pod's in in-pod mode.
type Sockets interface {
	Dialer
	Listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error)
	ListenPacket(ctx context.Context, addr netip.AddrPort) (net.PacketConn, error)
}

// Options configure one server: a pod's, or the node's.
type Options struct {
	Addrs []netip.AddrPort // each served on UDP and TCP
	// Optional addresses are skipped when they do not exist where the server runs
	// ([::1] in a pod whose loopback has no IPv6).
	Optional []netip.AddrPort
	Sockets  Sockets
	State    *state.Store
	// Client is the workload asking: the pod of an in-pod server, or the owner of the
	// query's source address. Nil while the state does not know it.
	Client func(snap *state.Snapshot, src netip.Addr) *state.Workload
	// ClientWait is how long a query waits for its client to appear in the state (a
	// pod's first queries may beat its xDS push). Rust waits 5 s.
	ClientWait  time.Duration
	Mesh        *Mesh
	Upstream    Upstream
	MaxInFlight int // forwarded queries in flight per client; 0: DefaultMaxInFlight
	// TCPTimeout is how long a TCP client has to send a whole query; 0: Rust's 5 s.
	TCPTimeout time.Duration
	Metrics    *metrics.DNS
	History    *History
	// Key names this server's clients in the history: a pod's uid, or "" to key each
	// query by its client workload's uid (node mode).
	Key    string
	Logger *slog.Logger
}

// Server serves one set of DNS listeners. New starts nothing; Bind opens the sockets;
// Run serves them until its context ends and returns once every handler has.
type Server struct {
	opts Options
	fwd  *forwarder
	log  *slog.Logger

	// Set by Bind, read by Run and Addrs.
	servers []*mdns.Server
	addrs   []net.Addr
}

// New builds a server.
func New(o Options) *Server {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.TCPTimeout <= 0 {
		o.TCPTimeout = tcpRequestTimeout
	}
	if o.Upstream.Timeout <= 0 {
		o.Upstream.Timeout = 5 * time.Second
	}
	return &Server{
		opts: o, log: o.Logger,
		fwd: &forwarder{up: o.Upstream, dial: o.Sockets, limit: o.MaxInFlight, inflight: map[string]int{}},
	}
}

// Bind opens UDP and TCP on every address; on failure nothing stays open.
func (s *Server) Bind(ctx context.Context) error {
	for _, a := range s.opts.Addrs {
		if err := s.bindOne(ctx, a); err != nil {
			s.closeAll()
			return err
		}
	}
	for _, a := range s.opts.Optional {
		if err := s.bindOne(ctx, a); err != nil {
			if !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.EAFNOSUPPORT) {
				s.closeAll()
				return err
			}
			s.log.Debug("DNS address not available here, skipped", "address", a.String())
		}
	}
	return nil
}

func (s *Server) bindOne(ctx context.Context, a netip.AddrPort) error {
	pc, l, err := s.listenBoth(ctx, a)
	if err != nil {
		return err
	}
	s.servers = append(s.servers,
		s.newServer(&mdns.Server{PacketConn: pc, UDPSize: 4096}),
		s.newServer(&mdns.Server{Listener: l, MaxTCPQueries: -1}))
	s.addrs = append(s.addrs, pc.LocalAddr(), l.Addr())
	return nil
}

// listenBoth opens UDP and TCP on the same port. With port 0 the kernel picks the UDP
// port, which may be taken on TCP: a few other ports are tried then.
func (s *Server) listenBoth(ctx context.Context, a netip.AddrPort) (net.PacketConn, net.Listener, error) {
	for attempt := 1; ; attempt++ {
		pc, err := s.opts.Sockets.ListenPacket(ctx, a)
		if err != nil {
			return nil, nil, fmt.Errorf("DNS on udp %s: %w", a, err)
		}
		l, err := s.opts.Sockets.Listen(ctx, netip.AddrPortFrom(a.Addr(), uint16(pc.LocalAddr().(*net.UDPAddr).Port)))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if a.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) || attempt == 10 {
			return nil, nil, fmt.Errorf("DNS on tcp %s: %w", a, err)
		}
	}
}

// newServer sets what every listener shares: Rust's TCP timeout, and the hooks that
// count what miekg/dns refuses before our handler sees it.
func (s *Server) newServer(srv *mdns.Server) *mdns.Server {
	srv.ReadTimeout = s.opts.TCPTimeout
	srv.MsgAcceptFunc = s.accept
	srv.MsgInvalidFunc = func([]byte, error) { s.opts.Metrics.Rejected("malformed") }
	srv.DecorateReader = func(r mdns.Reader) mdns.Reader { return stallCounter{r, s.opts.Metrics} }
	return srv
}

// HandOver sends new queries to a successor ztunnel's sockets, where one shares this
// server's (SO_REUSEPORT in a pod, during a rolling update): the server goes on
// answering what it already has until Run's context ends, so closing then loses no
// datagram in its queue and resets no TCP handshake. Alone on its ports, or outside a
// pod, nothing changes (sockopt.SteerToNewest).
func (s *Server) HandOver() {
	for _, srv := range s.servers {
		var c any = srv.Listener
		if srv.PacketConn != nil {
			c = srv.PacketConn
		}
		if sc, ok := c.(syscall.Conn); ok {
			if err := sockopt.SteerToNewest(sc); err != nil && !errors.Is(err, sockopt.ErrNoReusePort) {
				s.log.Warn("cannot steer DNS queries to the new ztunnel", "error", err)
			}
		}
	}
}

// Close releases the sockets of a server that will not Run (a pod whose other
// listeners failed to bind). Run closes them itself.
func (s *Server) Close() { s.closeAll() }

func (s *Server) closeAll() {
	for _, srv := range s.servers {
		if srv.PacketConn != nil {
			srv.PacketConn.Close()
		}
		if srv.Listener != nil {
			srv.Listener.Close()
		}
	}
	s.servers, s.addrs = nil, nil
}

// Addrs are the bound sockets, UDP then TCP for each address.
func (s *Server) Addrs() []net.Addr { return s.addrs }

// Run serves until ctx ends, then stops the listeners and waits for the queries in
// flight (whose upstream exchanges ctx cancels).
func (s *Server) Run(ctx context.Context) {
	h := &handler{s: s, ctx: ctx}
	var wg sync.WaitGroup
	started := make([]chan struct{}, len(s.servers))
	for i, srv := range s.servers {
		started[i] = make(chan struct{})
		srv.Handler = h
		srv.NotifyStartedFunc = sync.OnceFunc(func() { close(started[i]) })
		wg.Go(func() {
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				s.log.Warn("DNS listener stopped", "error", err)
			}
			srv.NotifyStartedFunc() // a listener that failed at once counts as started
		})
	}
	<-ctx.Done()
	for i, srv := range s.servers {
		<-started[i] // shutting down a server that has not started yet would not stop it
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.ShutdownContext(sctx)
		cancel()
	}
	wg.Wait()
}

// accept is miekg/dns's default check, counted: responses are dropped, opcodes other
// than QUERY answered NOTIMP, anything but exactly one question (or more records than
// a query carries) FORMERR.
func (s *Server) accept(h mdns.Header) mdns.MsgAcceptAction {
	action := mdns.DefaultMsgAcceptFunc(h)
	opcode := int(h.Bits>>11) & 0xF
	if action == mdns.MsgAccept && opcode == mdns.OpcodeNotify { // a stub proxy takes no NOTIFY
		action = mdns.MsgRejectNotImplemented
	}
	switch action {
	case mdns.MsgIgnore: // a response sent as a query: answering could loop two servers
		s.opts.Metrics.Rejected("not_query")
	case mdns.MsgRejectNotImplemented:
		s.opts.Metrics.Rejected("opcode")
	case mdns.MsgReject:
		s.opts.Metrics.Rejected("question")
	}
	return action
}

// stallCounter counts TCP clients that began a message and did not finish it in time
// (a length then silence): miekg/dns closes the connection, we count it.
type stallCounter struct {
	mdns.Reader
	m *metrics.DNS
}

func (r stallCounter) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	cc := &countingConn{Conn: conn}
	b, err := r.Reader.ReadTCP(cc, timeout)
	var ne net.Error
	if err != nil && cc.n > 0 && errors.As(err, &ne) && ne.Timeout() {
		r.m.Rejected("tcp_stalled")
	}
	return b, err
}

func (r stallCounter) ReadPacketConn(conn net.PacketConn, timeout time.Duration) ([]byte, net.Addr, error) {
	return r.Reader.(mdns.PacketConnReader).ReadPacketConn(conn, timeout)
}

type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n += n
	return n, err
}
