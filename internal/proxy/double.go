package proxy

import (
	"context"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/route"
)

// inner is the second half of Rust proxy_to_double_hbone: over outer, a CONNECT stream
// the east-west gateway forwards as opaque bytes, a new mTLS session proving the
// source's certificate to the far end (which must prove one of pl.Inner), a new
// HTTP/2 connection, and on it the CONNECT the far end serves. The inner connection
// is never pooled: one per user connection, as Rust does (each may land on another
// endpoint behind the gateway). x-forwarded-network tells the far end that the peer
// address it sees is the gateway's.
func (p *Proxy) inner(ctx context.Context, outer *hbone.Stream, cert *identity.Cert, pl route.Plan, req *hbone.Request) (halfConn, error) {
	hc, peer, err := p.handshake(ctx, mtls.NewTransport(outer), cert, pl.Inner, pl.Dial)
	if err != nil {
		outer.Close()
		return nil, err
	}
	t := &innerTunnel{outer: outer, hc: hc, peer: peer, done: make(chan struct{})}
	go func() { // joined by Close
		defer close(t.done)
		hc.Run()
	}()
	in := *req
	in.ForwardedNetwork = &p.router.Network
	hc.TryReserve(1)
	if t.Stream, err = hc.OpenStream(ctx, &in); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// innerTunnel is the user's stream inside double HBONE; closing it ends the inner
// HTTP/2 connection, its TLS session and the outer stream under them.
type innerTunnel struct {
	*hbone.Stream               // set once, before the tunnel is handed out
	outer         *hbone.Stream // to the gateway
	hc            *hbone.Conn
	peer          identity.Identity // what the far end proved
	done          chan struct{}     // closed when hc's reader has returned
	once          sync.Once
}

// Close is idempotent: the stream, then the connection, then waits for its reader.
func (t *innerTunnel) Close() error {
	t.once.Do(func() {
		if t.Stream != nil {
			t.Stream.Close()
		}
		t.hc.Close()
		<-t.done
	})
	return nil
}

// streamOf is the HBONE stream a connection is carried on: the stream itself, or the
// inner one of double HBONE; nil for plain TCP.
func streamOf(c halfConn) *hbone.Stream {
	switch c := c.(type) {
	case *hbone.Stream:
		return c
	case *innerTunnel:
		return c.Stream
	}
	return nil
}
