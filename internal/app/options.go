package app

import (
	"net"
	"net/netip"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/pool"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
)

// This file is the one mapping from the config to the data plane's options: proxy,
// hbone and pool take plain values and never read the config. A default the config did
// not change maps to a component's zero-value default (options_test.go checks), so a
// default is written once, in config's variables table.

// proxyOptions are the settings every proxy of this ztunnel shares (node mode's, and
// each pod's); the caller adds state, sockets, listeners and what the pod is.
func proxyOptions(c *config.Config) proxy.Options {
	return proxy.Options{
		Network: c.Network,
		HBONE:   hboneSettings(c.HTTP2),
		Pool: pool.Options{MaxStreams: int(c.PoolMaxStreamsPerConn), IdleTimeout: c.PoolUnusedReleaseTimeout,
			Spread: poolSpread(c.WorkerThreads)},
		Timeouts: proxy.Timeouts{Handshake: c.Limits.HandshakeTimeout, Idle: c.Limits.IdleTimeout,
			HalfClosed: c.Limits.HalfClosedTimeout},
		MaxConnections:   c.Limits.MaxConnections,
		AuthzInfoLogging: c.AuthzInfoLogging,
		NoBaggage:        !c.ResponseBaggage,
		AppTunnelOnPodIP: !c.LocalhostAppTunnel,
	}
}

// hboneSettings are the HTTP/2 settings of HBONE, one line per HTTP2_* variable.
func hboneSettings(h config.HTTP2) hbone.Settings {
	return hbone.Settings{
		StreamWindow:      h.StreamWindow,
		ConnWindow:        h.ConnWindow,
		MaxFrameSize:      h.FrameSize,
		MaxStreams:        h.MaxStreams,
		MaxHeaderListSize: h.MaxHeaderListSize,
		MaxQueuedControl:  h.MaxQueuedControl,
		MaxEmptyData:      h.MaxEmptyData,
		ResetsPerSecond:   h.ResetsPerSecond,
	}
}

// hostSockets creates sockets with ztunnel's options (keepalive, mark, user timeout,
// original source) in the current namespace; in-pod mode adds Enter.
func hostSockets(c *config.Config) *proxy.HostSockets {
	k := c.Keepalive
	return &proxy.HostSockets{
		Keepalive: net.KeepAliveConfig{Enable: k.Enabled, Idle: k.Time, Interval: k.Interval, Count: int(k.Retries)},
		Mark:      c.PacketMark, UserTimeout: c.UserTimeout, OrigSrc: c.EnableOrigSrc,
	}
}

// dnsOnly is the proxy's Listen under ENABLE_PROXY=false: no listener (the DNS proxy
// runs beside it), the HBONE port still known for the dump.
func dnsOnly(c *config.Config) proxy.Listen { return proxy.Listen{HBONEPort: c.Addrs.Inbound.Port()} }

// podListen are a pod's listeners, on the configured wildcard ([::] or 0.0.0.0)
// inside its netns.
func podListen(c *config.Config) proxy.Listen {
	if !c.EnableProxy {
		return dnsOnly(c)
	}
	wild := c.Addrs.Inbound.Addr()
	return proxy.Listen{
		Outbound:         []netip.AddrPort{netip.AddrPortFrom(wild, c.Addrs.Outbound.Port())},
		Inbound:          []netip.AddrPort{netip.AddrPortFrom(wild, c.Addrs.Inbound.Port())},
		InboundPlaintext: []netip.AddrPort{netip.AddrPortFrom(wild, c.Addrs.InboundPlaintext.Port())},
		HBONEPort:        c.Addrs.Inbound.Port(),
	}
}

// nodeListen are node mode's listeners.
func nodeListen(c *config.Config) proxy.Listen {
	if !c.EnableProxy {
		return dnsOnly(c)
	}
	l := proxy.Listen{
		Outbound:         []netip.AddrPort{c.Addrs.Outbound},
		Inbound:          []netip.AddrPort{c.Addrs.Inbound},
		InboundPlaintext: []netip.AddrPort{c.Addrs.InboundPlaintext},
		HBONEPort:        c.Addrs.Inbound.Port(),
	}
	if c.Socks5Enabled {
		l.Socks5 = []netip.AddrPort{c.Addrs.Socks5}
	}
	return l
}

// poolSpread is how many HBONE connections a destination gets before its streams
// share one: one per worker thread, so that concurrent bulk streams use every CPU for
// their TLS (pool.Options.Spread), and at most 4, so that a busy pair of nodes holds
// few connections.
func poolSpread(workers int) int { return min(max(workers, 1), 4) }
