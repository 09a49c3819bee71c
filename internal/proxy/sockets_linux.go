//go:build linux

package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dialIn connects from inside another network namespace with the thread held there only
// for socket(2): a socket keeps the namespace it was made in, so options, bind and the
// TCP handshake happen after the thread has returned. Waiting for the handshake on a
// locked thread cost a parked OS thread per connection.
func (h *HostSockets) dialIn(ctx context.Context, local netip.Addr, remote netip.AddrPort, transparent bool) (net.Conn, error) {
	domain := unix.AF_INET6
	if remote.Addr().Is4() {
		domain = unix.AF_INET
	}
	var fd int
	err := h.Enter(func() (err error) {
		fd, err = unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating a socket to reach %s: %w", remote, err)
	}
	f := os.NewFile(uintptr(fd), "dial") // owns fd from here on
	defer f.Close()                      // net.FileConn keeps its own duplicate
	if err := h.prepare(f, local, transparent); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", remote, err)
	}
	if err := connect(ctx, f, fd, remote); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", remote, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", remote, err)
	}
	tc := c.(*net.TCPConn)
	tc.SetKeepAliveConfig(h.keepalive())
	return tc, nil
}

// prepare sets ztunnel's socket options, then binds to local when it is set.
func (h *HostSockets) prepare(f *os.File, local netip.Addr, transparent bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if err := h.opts(transparent).Control()("tcp", "", rc); err != nil {
		return err
	}
	if !local.IsValid() {
		return nil
	}
	return unix.Bind(int(f.Fd()), sockaddr(netip.AddrPortFrom(local, 0)))
}

// connect starts the handshake and waits, on the poller, until it ends or ctx's deadline.
func connect(ctx context.Context, f *os.File, fd int, remote netip.AddrPort) error {
	err := unix.Connect(fd, sockaddr(remote))
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		return os.NewSyscallError("connect", err)
	}
	if d, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(d)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var soErr error
	werr := rc.Write(func(fd uintptr) bool {
		// As net does: SO_ERROR says how it failed; a peer name says it is done. A
		// fresh socket polls writable before it connects, so a wake-up proves nothing.
		n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
		case n == int(unix.EINPROGRESS) || n == int(unix.EALREADY) || n == int(unix.EINTR):
			return false
		case n != 0:
			err = syscall.Errno(n)
		default:
			if _, err = unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
				return false
			}
		}
		soErr = err
		return true
	})
	if werr != nil {
		return werr
	}
	if soErr != nil {
		return os.NewSyscallError("connect", soErr)
	}
	return nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
