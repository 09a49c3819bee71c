//go:build linux

package dns

import (
	"context"
	"net"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/sockopt"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// reusing creates sockets as a pod's are: SO_REUSEPORT, plain TCP, so that a successor
// ztunnel can share them.
type reusing struct{ loopback }

func (reusing) config() net.ListenConfig {
	lc := net.ListenConfig{Control: sockopt.Options{ReusePort: true}.Control()}
	lc.SetMultipathTCP(false)
	return lc
}

func (r reusing) Listen(ctx context.Context, a netip.AddrPort) (net.Listener, error) {
	lc := r.config()
	return lc.Listen(ctx, "tcp", a.String())
}

func (r reusing) ListenPacket(ctx context.Context, a netip.AddrPort) (net.PacketConn, error) {
	lc := r.config()
	return lc.ListenPacket(ctx, "udp", a.String())
}

// During a rolling update the old ztunnel's DNS server and the new one's share the
// pod's port; once the old one hands over, every query, UDP or TCP, reaches the new
// one, so that nothing is waiting in the old one's sockets when they close.
func TestHandOverToSuccessor(t *testing.T) {
	ztest.NoLeaks(t)
	old := newTestServer(t, func(o *Options) { o.Sockets = reusing{} })
	port := old.srv.Addrs()[0].(*net.UDPAddr).Port
	succ := newTestServer(t, func(o *Options) {
		o.Sockets = reusing{}
		o.Addrs = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
	})
	old.srv.HandOver()
	const n = 20
	for range n {
		for _, network := range []string{"udp", "tcp"} {
			old.ask(t, network, "127.0.0.1", question("productpage.ns1.svc.cluster.local.", mdns.TypeA))
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		l := map[string]string{"request_protocol": network}
		if o, s := ztest.MetricValue(t, old.reg, "istio_dns_requests_total", l), ztest.MetricValue(t, succ.reg, "istio_dns_requests_total", l); o != 0 || s != n {
			t.Errorf("%s: %v queries answered by the old server, %v by its successor; want 0 and %d", network, o, s, n)
		}
	}
}
