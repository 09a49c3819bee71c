// Package sockopt sets the Linux socket options ztunnel relies on: the original
// destination of a redirected connection, packet marks, transparent (source-keeping)
// sockets and TCP user timeouts. Other systems get stubs, so the rest builds and tests.
package sockopt

import (
	"errors"
	"time"
)

// Options are applied to a socket before it connects or listens.
type Options struct {
	Mark        uint32        // SO_MARK; 0 leaves it unset
	Transparent bool          // IP_TRANSPARENT: bind to a non-local (client) address
	UserTimeout time.Duration // TCP_USER_TIMEOUT; 0 leaves it unset
	ReusePort   bool          // SO_REUSEPORT: a new ztunnel can bind while the old one drains
}

// ErrUnsupported is returned on systems without these options.
var ErrUnsupported = errors.New("socket option not supported on this system")
