//go:build !linux

package proxy

import (
	"context"
	"net"
	"net/netip"
)

// dialIn runs the whole dial inside the other namespace: there are none off Linux.
func (h *HostSockets) dialIn(ctx context.Context, local netip.Addr, remote netip.AddrPort, transparent bool) (net.Conn, error) {
	return h.dialHere(ctx, local, remote, transparent)
}
