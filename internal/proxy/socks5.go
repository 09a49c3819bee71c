package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// SOCKS5 (RFC 1928) replies.
const (
	socksOK             = 0x00
	socksFailure        = 0x01
	socksNotAllowed     = 0x02
	socksHostUnreach    = 0x04
	socksRefused        = 0x05
	socksCmdUnsupported = 0x07
	socksAddrUnsupport  = 0x08
)

var errSocks = errors.New("SOCKS5 protocol error")

// serveSocks5 is the localhost SOCKS5 entry into the outbound path: CONNECT only, no
// authentication, to an IPv4 or IPv6 address or a hostname resolved through the mesh's
// service registry (never through DNS).
func (p *Proxy) serveSocks5(c net.Conn, lc *liveConn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return
	}
	c.SetDeadline(time.Now().Add(connectTimeout)) // the handshake must not hang
	dst, code, err := p.socksHandshake(c)
	if err != nil {
		p.log.Warn("SOCKS5 request refused", "src.addr", c.RemoteAddr().String(), "error", err)
		if code != 0 {
			socksReply(c, code)
		}
		c.Close()
		return
	}
	p.proxyOutbound(tc, lc, dst, func(err error) {
		if err != nil {
			socksReply(c, socksRefused)
			return
		}
		c.SetDeadline(time.Time{})
		socksReply(c, socksOK)
	})
}

func (p *Proxy) socksHandshake(c net.Conn) (netip.AddrPort, byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return netip.AddrPort{}, 0, errSocks
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return netip.AddrPort{}, 0, errSocks
	}
	if !hasByte(methods, 0) { // "no authentication" not offered
		c.Write([]byte{5, 0xff})
		return netip.AddrPort{}, 0, errors.New("client offers no acceptable auth method")
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return netip.AddrPort{}, 0, err
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 {
		return netip.AddrPort{}, 0, errSocks
	}
	if req[1] != 1 {
		return netip.AddrPort{}, socksCmdUnsupported, errors.New("only CONNECT is supported")
	}
	return p.socksTarget(c, req[3])
}

func (p *Proxy) socksTarget(c net.Conn, atyp byte) (netip.AddrPort, byte, error) {
	var ip netip.Addr
	switch atyp {
	case 1, 4:
		b := make([]byte, map[byte]int{1: 4, 4: 16}[atyp])
		if _, err := io.ReadFull(c, b); err != nil {
			return netip.AddrPort{}, 0, errSocks
		}
		ip, _ = netip.AddrFromSlice(b)
	case 3:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return netip.AddrPort{}, 0, errSocks
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return netip.AddrPort{}, 0, errSocks
		}
		var err error
		if ip, err = p.lookupHost(c, string(name)); err != nil {
			return netip.AddrPort{}, socksHostUnreach, err
		}
	default:
		return netip.AddrPort{}, socksAddrUnsupport, errors.New("unknown address type")
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return netip.AddrPort{}, 0, errSocks
	}
	return netip.AddrPortFrom(ip.Unmap(), binary.BigEndian.Uint16(port[:])), 0, nil
}

// lookupHost resolves a hostname to a service VIP, preferring the service in the
// client's namespace (a hostname may exist in several), then IPv4.
func (p *Proxy) lookupHost(c net.Conn, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	snap := p.deps.State.Snapshot()
	svcs := snap.ServicesByHost(host)
	if len(svcs) == 0 {
		return netip.Addr{}, errorf("hostname %q is not a service of the mesh", host)
	}
	ns := ""
	if src := p.router.Peer(snap, addrPort(c.RemoteAddr()).Addr()); src != nil {
		ns = src.Namespace
	}
	svc := snap.ServiceByHost(host, ns)
	if svc == nil {
		return netip.Addr{}, errorf("hostname %q is not a service visible to namespace %s", host, ns)
	}
	if ip, ok := pickVIP(svc); ok {
		return ip, nil
	}
	return netip.Addr{}, errorf("service %q has no VIP", host)
}

func pickVIP(svc *state.Service) (netip.Addr, bool) {
	for _, v := range svc.VIPs {
		if v.Addr.Is4() {
			return v.Addr, true
		}
	}
	if len(svc.VIPs) > 0 {
		return svc.VIPs[0].Addr, true
	}
	return netip.Addr{}, false
}

// socksReply answers with code and a zero bound address.
func socksReply(c net.Conn, code byte) {
	c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
}

func hasByte(b []byte, v byte) bool {
	for _, x := range b {
		if x == v {
			return true
		}
	}
	return false
}
