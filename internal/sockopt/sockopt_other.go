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

// ErrNoReusePort is SteerToNewest's answer for a socket outside any SO_REUSEPORT group.
var ErrNoReusePort = ErrUnsupported

// SteerToNewest needs Linux's reuseport BPF.
func SteerToNewest(syscall.Conn) error { return ErrUnsupported }

// ClearSteering needs Linux's reuseport BPF.
func ClearSteering(syscall.Conn) error { return ErrUnsupported }

// Listening needs Linux's /proc.
func Listening(uint16) (int, error) { return 0, ErrUnsupported }
