package hbone_test

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// rawPeer is a hand-driven HTTP/2 client against a real server Conn on loopback: it
// sends what a well-behaved client never would.
type rawPeer struct {
	t    *testing.T
	nc   net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
	done chan error // the server's Serve result
}

func dialRaw(t *testing.T, s hbone.Settings, h hbone.Handler) *rawPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, done: make(chan error, 1)}
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := l.Accept()
		l.Close()
		if err != nil {
			p.done <- err
			return
		}
		sc, err := hbone.NewServerConn(nc, s)
		if err != nil {
			nc.Close()
			p.done <- err
			return
		}
		p.done <- sc.Serve(h)
	})
	if p.nc, err = net.Dial("tcp", l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.nc.Close(); wg.Wait() })
	p.fr = http2.NewFramer(p.nc, p.nc)
	p.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	p.fr.AllowIllegalWrites = true
	p.henc = hpack.NewEncoder(&p.hbuf)
	p.nc.Write([]byte(http2.ClientPreface))
	p.fr.WriteSettings()
	return p
}

// block encodes a CONNECT header block for authority, plus extra name/value pairs.
func (p *rawPeer) block(authority string, extra ...string) []byte {
	p.hbuf.Reset()
	p.henc.WriteField(hpack.HeaderField{Name: ":method", Value: "CONNECT"})
	p.henc.WriteField(hpack.HeaderField{Name: ":authority", Value: authority})
	for i := 0; i+1 < len(extra); i += 2 {
		p.henc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return bytes.Clone(p.hbuf.Bytes())
}

// connect opens stream id with a CONNECT.
func (p *rawPeer) connect(id uint32, extra ...string) error {
	return p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block("10.0.0.1:80", extra...), EndHeaders: true})
}

// until reads frames until pick returns true for one, or the connection ends (nil).
func (p *rawPeer) until(pick func(http2.Frame) bool) http2.Frame {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				p.t.Fatal("no answer from the server in 10 s")
			}
			return nil
		}
		if pick(f) {
			return f
		}
	}
}

// goAway is the code of the server's GOAWAY; it fails the test if the connection ends
// without one.
func (p *rawPeer) goAway() http2.ErrCode {
	p.t.Helper()
	f := p.until(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if f == nil {
		p.t.Fatal("connection ended without GOAWAY")
	}
	p.nc.Close() // as a client does after GOAWAY: the server stops lingering
	return f.(*http2.GoAwayFrame).ErrCode
}

// flooded checks that the server ended the connection for a flood: its Serve returned
// ErrFlood, and the GOAWAY, if it reached us before the RST that closing a socket with
// unread input sends, said ENHANCE_YOUR_CALM.
func (p *rawPeer) flooded() {
	p.t.Helper()
	f := p.until(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	p.nc.Close()
	if g, ok := f.(*http2.GoAwayFrame); ok && g.ErrCode != http2.ErrCodeEnhanceYourCalm {
		p.t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", g.ErrCode)
	}
	if err := p.serverEnded(); !errors.Is(err, hbone.ErrFlood) {
		p.t.Errorf("server connection ended with %v, want %v", err, hbone.ErrFlood)
	}
}

// serverEnded waits for the server's Serve to return.
func (p *rawPeer) serverEnded() error {
	p.t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(10 * time.Second):
		p.t.Fatal("server connection still up after 10 s")
		return nil
	}
}
