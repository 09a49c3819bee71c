package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// Per-peer noise: what a peer can make happen as fast as it opens sockets (failed
// handshakes, refused CONNECTs, HTTP/2 protocol errors, refusals at the connection
// cap). Each is counted, always, in a metric; its log line goes through p.noise,
// which writes a few of each kind a second and says how many it left out.
const noiseBurst = 5

// Kinds of noise, each with its own log budget.
const (
	noiseHandshake = "handshake"
	noiseRefused   = "connect refused"
	noiseProtocol  = "protocol error"
	noiseCap       = "connection cap"
)

// handshakeFailed counts and logs an inbound connection that failed before HTTP/2.
func (p *Proxy) handshakeFailed(reason, msg string, peer, local netip.AddrPort, err error) {
	if reason == "tls" && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
		reason = "timeout"
	}
	p.deps.Traffic.HandshakeFailure(reason)
	p.noise.Log(p.log, slog.LevelWarn, noiseHandshake, msg, "src.addr", peer.String(), "dst.addr", local.String(), "error", err)
}

// settingsFor are the HTTP/2 settings of one connection with peer: its protocol
// errors are counted and logged with the peer's address.
func (p *Proxy) settingsFor(peer netip.AddrPort) hbone.Settings {
	s := p.settings
	s.CountError = func(scope, code, reason string) {
		p.deps.Traffic.HBONEError(scope, code)
		p.noise.Log(p.log, slog.LevelWarn, noiseProtocol, "HBONE protocol error",
			"peer", peer.String(), "scope", scope, "code", code, "error", reason)
	}
	return s
}
