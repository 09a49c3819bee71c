package pool

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// BenchmarkCheckout takes a stream slot on the pooled connection of a key and gives it
// back: the pool's share of every outbound tunnel. It must not allocate.
func BenchmarkCheckout(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		if sc, err := hbone.NewServerConn(nc, hbone.Settings{}); err == nil {
			sc.Serve(func(*hbone.Stream) {})
		}
	})
	p := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() { p.Run(ctx) })
	defer func() { cancel(); l.Close(); wg.Wait() }()
	k := NewKey(identity.New("cluster.local", "foo", "sleep"), []identity.Identity{identity.New("cluster.local", "default", "httpbin")},
		netip.MustParseAddrPort(l.Addr().String()), netip.MustParseAddr("127.0.0.1"))
	dial := func(ctx context.Context) (*hbone.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", l.Addr().String())
		if err != nil {
			return nil, err
		}
		return hbone.NewClientConn(nc, hbone.Settings{})
	}
	c, err := p.reserve(ctx, k, dial) // the first checkout dials
	if err != nil {
		b.Fatal(err)
	}
	c.Release()
	b.ReportAllocs()
	for b.Loop() {
		c, err := p.reserve(ctx, k, dial)
		if err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}
