//go:build !linux

package sockopt

import (
	"net"
	"net/netip"
	"syscall"
	"time"
)

// OriginalDst needs Linux netfilter.
func OriginalDst(*net.TCPConn) (netip.AddrPort, error) { return netip.AddrPort{}, ErrUnsupported }

// Control applies nothing elsewhere; asking for an option fails at use.
func (o Options) Control() func(network, address string, c syscall.RawConn) error {
	if o == (Options{}) {
		return nil
	}
	return func(string, string, syscall.RawConn) error { return ErrUnsupported }
}

// SinceData needs Linux's TCP_INFO.
func SinceData(*net.TCPConn) (time.Duration, error) { return 0, ErrUnsupported }
