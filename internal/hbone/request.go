// Package hbone speaks HBONE: HTTP/2 CONNECT tunnels over mutual TLS, as Istio's
// ztunnel does on port 15008. It is protocol only: it knows nothing of workloads,
// certificates or policy. The HTTP/2 connection is built on x/net's framer rather than
// its Server and Transport, because a tunnel needs each direction to close on its own
// (FIN ↔ END_STREAM), errors scoped to one stream, and pooling chosen by the caller.
package hbone

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Request is a CONNECT request: where to, and the HBONE metadata headers.
type Request struct {
	Authority   string // "ip:port", "[v6]:port", or "hostname:port"
	Baggage     string
	Forwarded   string
	Traceparent string
	// ForwardedNetwork (x-forwarded-network) is the source's network, sent only on the
	// inner CONNECT of double HBONE: the peer's IP is then the gateway's, not the source's.
	// nil is no header; the default network "" is sent as an empty value, as Rust does.
	ForwardedNetwork *string
	// Other holds any other request headers a peer sent (lowercase names).
	Other map[string]string

	tooLarge   bool  // the header list exceeded MaxHeaderListSize: answered 431 by Serve
	contentLen int64 // declared content-length, -1 if none
}

// Authority is a parsed :authority: an address, or a hostname and port.
type Authority struct {
	Addr netip.AddrPort // valid for the address form
	Host string         // set for the hostname form
	Port uint16
}

// IsHostname reports the hostname form (a service, as in double HBONE).
func (a Authority) IsHostname() bool { return a.Host != "" }

func (a Authority) String() string {
	if a.IsHostname() {
		return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
	}
	return a.Addr.String()
}

// ErrBadAuthority is an authority that is neither ip:port nor hostname:port.
var ErrBadAuthority = errors.New("bad CONNECT authority")

// ParseAuthority reads ip:port ([v6]:port) or hostname:port. Port 0, zones, empty or
// non-DNS hostnames are refused.
func ParseAuthority(s string) (Authority, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 || ap.Addr().Zone() != "" {
			return Authority{}, fmt.Errorf("%w %q", ErrBadAuthority, s)
		}
		return Authority{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Port: ap.Port()}, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return Authority{}, fmt.Errorf("%w %q", ErrBadAuthority, s)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || !validHostname(host) {
		return Authority{}, fmt.Errorf("%w %q", ErrBadAuthority, s)
	}
	return Authority{Host: strings.ToLower(host), Port: uint16(port)}, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ForwardedFor is the forwarded header: for="ip:port", and the service host when the
// client addressed a service.
func ForwardedFor(client netip.AddrPort, serviceHost string) string {
	v := `for="` + client.String() + `"`
	if serviceHost != "" {
		v += ";host=" + serviceHost
	}
	return v
}

// ParseForwardedFor returns the for= address of a forwarded header, if any.
func ParseForwardedFor(v string) (netip.AddrPort, bool) {
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(k, "for") {
			continue
		}
		ap, err := netip.ParseAddrPort(strings.Trim(val, `"`))
		return ap, err == nil
	}
	return netip.AddrPort{}, false
}

// NewTraceparent is a random W3C traceparent, one per outbound connection.
func NewTraceparent() string {
	var b [24]byte
	rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-00"
}

// BaggageItem is one key=value of the baggage header.
type BaggageItem struct{ Key, Value string }

// Baggage joins the non-empty items in the order given, as Rust ztunnel writes them.
func Baggage(items ...BaggageItem) string {
	var b strings.Builder
	for _, it := range items {
		if it.Value == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(it.Key + "=" + it.Value)
	}
	return b.String()
}

// StatusError is a CONNECT answered with a status other than 200. It ends that stream
// only; the connection keeps serving others.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("CONNECT refused: HTTP %d", e.Code) }
