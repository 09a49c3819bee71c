//go:build linux

package sockopt

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (and IP6T_SO_ORIGINAL_DST) from netfilter.
const soOriginalDst = 80

// OriginalDst is where a connection REDIRECTed by iptables was going.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ap netip.AddrPort
	var opErr error
	err = rc.Control(func(fd uintptr) {
		if v4, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, soOriginalDst); err == nil {
			// The 16 bytes are a sockaddr_in: family, port (big endian), address.
			raw := v4.Multiaddr
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), binary.BigEndian.Uint16(raw[2:4]))
			return
		}
		v6, err := unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, soOriginalDst)
		if err != nil {
			opErr = fmt.Errorf("SO_ORIGINAL_DST: %w", err)
			return
		}
		port := uint16(v6.Addr.Port>>8 | v6.Addr.Port<<8)
		ap = netip.AddrPortFrom(netip.AddrFrom16(v6.Addr.Addr).Unmap(), port)
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ap, opErr
}

// Control returns a net.Dialer / net.ListenConfig Control hook applying o.
func (o Options) Control() func(network, address string, c syscall.RawConn) error {
	if o == (Options{}) {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var opErr error
		err := c.Control(func(fd uintptr) { opErr = o.apply(int(fd), network) })
		if err != nil {
			return err
		}
		return opErr
	}
}

func (o Options) apply(fd int, network string) error {
	if o.Mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(o.Mark)); err != nil {
			return fmt.Errorf("setting SO_MARK: %w", err)
		}
	}
	if o.Transparent {
		level, opt := unix.SOL_IP, unix.IP_TRANSPARENT
		if network == "tcp6" {
			level, opt = unix.SOL_IPV6, unix.IPV6_TRANSPARENT
		}
		if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
			return fmt.Errorf("setting IP_TRANSPARENT: %w", err)
		}
	}
	if o.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("setting SO_REUSEPORT: %w", err)
		}
	}
	if o.UserTimeout > 0 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(o.UserTimeout.Milliseconds())); err != nil {
			return fmt.Errorf("setting TCP_USER_TIMEOUT: %w", err)
		}
	}
	return nil
}

// SinceData is how long ago the socket last sent or received data, from the kernel's
// TCP_INFO: activity is known without the copy loop stamping every chunk, and spliced
// connections, whose bytes never reach user space, are covered too.
func SinceData(c *net.TCPConn) (time.Duration, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("reading TCP_INFO: %w", serr)
	}
	return time.Duration(min(info.Last_data_sent, info.Last_data_recv)) * time.Millisecond, nil
}
