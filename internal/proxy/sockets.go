package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/sockopt"
)

// Sockets creates every socket the proxies use. In node mode they are created in
// ztunnel's own network namespace; in-pod mode supplies a factory that creates them
// inside the pod's namespace, and the pipelines stay the same.
type Sockets interface {
	Listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error)
	// Dial connects to remote, from local when local is valid (keeping a client's
	// source IP); see HostSockets for how strictly.
	Dial(ctx context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error)
	// OriginalDst is where a redirected connection was going (SO_ORIGINAL_DST).
	OriginalDst(c *net.TCPConn) (netip.AddrPort, error)
}

// HostSockets creates sockets in the current network namespace with ztunnel's socket
// options: keepalive, packet mark, user timeout.
type HostSockets struct {
	Keepalive   net.KeepAliveConfig // Count is the retries
	Mark        uint32
	UserTimeout bool
	// OrigSrc: nil binds to the client's IP when possible and falls back to none
	// (Rust's "auto"); true requires it; false never binds.
	OrigSrc *bool
	// Enter, when set, runs socket creation inside another network namespace (a pod's,
	// in in-pod mode); listeners then also get the mark and SO_REUSEPORT.
	Enter     func(func() error) error
	ReusePort bool
	// transparentFirst: a client IP was once reachable only with IP_TRANSPARENT (a pod's
	// namespace, where no client IP is its own), so Dial tries that first. Learnt, not
	// assumed: a plain bind first cost every inbound connection of an in-pod ztunnel a
	// failed socket, bind and a second namespace switch (10 syscalls of 30).
	transparentFirst atomic.Bool // Dial's own
}

func (h *HostSockets) keepalive() net.KeepAliveConfig { return h.Keepalive }

func (h *HostSockets) opts(transparent bool) sockopt.Options {
	o := sockopt.Options{Mark: h.Mark, Transparent: transparent}
	if k := h.Keepalive; h.UserTimeout && k.Enable {
		o.UserTimeout = k.Idle + time.Duration(k.Count)*k.Interval
	}
	return o
}

// Listen binds addr with keepalive on accepted connections. The packet mark is not set
// on listeners in node mode: it matters for the sockets ztunnel dials.
func (h *HostSockets) Listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error) {
	lc := h.listenConfig()
	lc.KeepAliveConfig = h.keepalive()
	var l net.Listener
	err := h.enter(func() (err error) {
		l, err = lc.Listen(ctx, "tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if h.Enter != nil && h.ReusePort {
		// A ztunnel that drained before us may have left its steering on the pod's
		// port (sockopt.SteerToNewest); share new connections by hash again.
		if err := sockopt.ClearSteering(l.(*net.TCPListener)); err != nil {
			l.Close()
			return nil, fmt.Errorf("clearing reuseport steering on %s: %w", addr, err)
		}
	}
	return l, nil
}

// Listening counts the sockets listening on port where this factory creates them (the
// pod's namespace in in-pod mode): a second one is a successor ztunnel's.
func (h *HostSockets) Listening(port uint16) (n int, err error) {
	err = h.enter(func() (err error) {
		n, err = sockopt.Listening(port)
		return err
	})
	return n, err
}

// ListenPacket binds a UDP socket (the DNS proxy's), with the mark and SO_REUSEPORT
// inside a pod as Listen does.
func (h *HostSockets) ListenPacket(ctx context.Context, addr netip.AddrPort) (net.PacketConn, error) {
	lc := h.listenConfig()
	var pc net.PacketConn
	err := h.enter(func() (err error) {
		pc, err = lc.ListenPacket(ctx, "udp", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	if h.Enter != nil && h.ReusePort { // as Listen does
		if err := sockopt.ClearSteering(pc.(*net.UDPConn)); err != nil {
			pc.Close()
			return nil, fmt.Errorf("clearing reuseport steering on udp %s: %w", addr, err)
		}
	}
	return pc, nil
}

// listenConfig marks listeners inside a pod: ztunnel's own traffic must carry the mark.
// Listeners are plain TCP, as Rust's are: Go's default since 1.24 is MPTCP, whose
// sockets refuse options ztunnel sets on them (the reuseport steering program).
func (h *HostSockets) listenConfig() net.ListenConfig {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	if h.Enter != nil {
		lc.Control = sockopt.Options{Mark: h.Mark, ReusePort: h.ReusePort}.Control()
	}
	return lc
}

// DialUDP opens a connected UDP socket with the mark (a DNS upstream query). Connecting
// a UDP socket sends nothing, so the whole call may run inside the pod's namespace.
func (h *HostSockets) DialUDP(ctx context.Context, remote netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Control: sockopt.Options{Mark: h.Mark}.Control()}
	var c net.Conn
	err := h.enter(func() (err error) {
		c, err = d.DialContext(ctx, "udp", remote.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening udp to %s: %w", remote, err)
	}
	return c, nil
}

func (h *HostSockets) enter(fn func() error) error {
	if h.Enter == nil {
		return fn()
	}
	return h.Enter(fn)
}

// OriginalDst reads SO_ORIGINAL_DST, set by iptables' REDIRECT.
func (h *HostSockets) OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	return sockopt.OriginalDst(c)
}

// Dial tries, in order: bind to local as an address of this host (loopback tests, or
// node mode with the client on this host); bind to it with IP_TRANSPARENT (a client IP
// routed here, needs CAP_NET_ADMIN); and, unless required, no bind at all.
func (h *HostSockets) Dial(ctx context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error) {
	if !local.IsValid() || (h.OrigSrc != nil && !*h.OrigSrc) || local.Is4() != remote.Addr().Is4() {
		return h.dial(ctx, netip.Addr{}, remote, false)
	}
	if h.transparentFirst.Load() {
		if c, err := h.dial(ctx, local, remote, true); err == nil || !isBindError(err) {
			return c, err
		}
	}
	c, err := h.dial(ctx, local, remote, false)
	if err == nil || !isBindError(err) {
		return c, err
	}
	if c, err = h.dial(ctx, local, remote, true); err == nil || !isBindError(err) {
		if err == nil {
			h.transparentFirst.Store(true)
		}
		return c, err
	}
	if h.OrigSrc != nil && *h.OrigSrc {
		return nil, fmt.Errorf("keeping source %s (ENABLE_ORIG_SRC=true): %w", local, err)
	}
	return h.dial(ctx, netip.Addr{}, remote, false)
}

func (h *HostSockets) dial(ctx context.Context, local netip.Addr, remote netip.AddrPort, transparent bool) (net.Conn, error) {
	if h.Enter != nil {
		return h.dialIn(ctx, local, remote, transparent)
	}
	return h.dialHere(ctx, local, remote, transparent)
}

func (h *HostSockets) dialHere(ctx context.Context, local netip.Addr, remote netip.AddrPort, transparent bool) (net.Conn, error) {
	d := net.Dialer{KeepAliveConfig: h.keepalive(), Control: h.opts(transparent).Control()}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	var c net.Conn
	err := h.enter(func() (err error) {
		c, err = d.DialContext(ctx, "tcp", remote.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", remote, err)
	}
	return c, nil
}

// isBindError is a failure to use the source address, not the destination's fault:
// not an address of this host (without IP_TRANSPARENT), or no right to IP_TRANSPARENT.
func isBindError(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, sockopt.ErrUnsupported)
}
