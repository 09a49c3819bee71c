package hbone_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// h2peer is a frame-scripted HTTP/2 endpoint facing one of our Conns over loopback,
// in either role: the client of our server, or the server of our client. A script
// writes frames with it, put where RFC 9113 allows them or not, and reads what our
// side answers. Stream 1 is the one its preparation (prep) puts in a given state.
type h2peer struct {
	t       *testing.T
	server  bool // our Conn is the server; the peer its client
	nc      net.Conn
	fr      *http2.Framer
	hbuf    bytes.Buffer
	henc    *hpack.Encoder
	counted *errorCounts
	ended   chan error         // our Conn's Serve or Run result
	ours    chan *hbone.Conn   // our Conn, once made (conn takes it)
	opened  uint32             // server role: highest stream id the peer opened
	stream  chan *hbone.Stream // client role: our stream 1, once answered
}

// Authorities our test server's handler acts on (serverHandler).
const (
	holdAuthority   = "hold.test:80"   // answer 200, then neither read nor write
	closeAuthority  = "close.test:80"  // answer 200, read to EOF, half-close
	resetAuthority  = "reset.test:80"  // answer 200, then reset (CANCEL)
	refuseAuthority = "refuse.test:80" // answer 403
)

// serverHandler: a CONNECT is answered by its authority; any other request is left
// unanswered (not hbone's to refuse).
func serverHandler(s *hbone.Stream) {
	if s.Request().Authority == refuseAuthority {
		s.Respond(403)
		return
	}
	if s.Request().Method() == "CONNECT" {
		s.Respond(200)
		switch s.Request().Authority {
		case closeAuthority:
			io.Copy(io.Discard, s)
			s.CloseWrite()
		case resetAuthority:
			s.Reset(http2.ErrCodeCancel)
		}
	}
	<-s.Conn().Done()
}

// newPeer connects a peer to a fresh Conn of ours in the given role; our server runs
// serverHandler.
func newPeer(t *testing.T, server bool, s hbone.Settings) *h2peer {
	t.Helper()
	return newPeerWith(t, server, s, serverHandler)
}

// dialRaw connects a peer, as a client, to a server of ours running h.
func dialRaw(t *testing.T, s hbone.Settings, h hbone.Handler) *h2peer {
	t.Helper()
	return newPeerWith(t, true, s, h)
}

func newPeerWith(t *testing.T, server bool, s hbone.Settings, h hbone.Handler) *h2peer {
	t.Helper()
	return newPeerOver(t, loopback, server, s, h)
}

// A transport connects the peer and our Conn: dialed is the client's end.
type transport func(t *testing.T) (dialed, accepted net.Conn)

// loopback is a real TCP connection on 127.0.0.1, as every test but the clock's uses.
func loopback(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return dialPair(t, l, func() (net.Conn, error) { return net.Dial("tcp", l.Addr().String()) })
}

// inMemory is grpc's bufconn, buffered as a socket is: inside a synctest bubble the
// clock moves only while every goroutine is durably blocked, which a goroutine reading
// a socket never is, and one waiting on bufconn is. Timer tests (PING) use it.
func inMemory(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	defer l.Close()
	return dialPair(t, l, l.Dial)
}

func dialPair(t *testing.T, l net.Listener, dial func() (net.Conn, error)) (dialed, accepted net.Conn) {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() { // ends with the Accept, before dialPair returns
		nc, _ := l.Accept()
		got <- nc
	}()
	dialed, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if accepted = <-got; accepted == nil {
		t.Fatal("accept failed")
	}
	return dialed, accepted
}

func newPeerOver(t *testing.T, tr transport, server bool, s hbone.Settings, h hbone.Handler) *h2peer {
	t.Helper()
	p := &h2peer{t: t, server: server, counted: &errorCounts{}, ended: make(chan error, 1),
		stream: make(chan *hbone.Stream, 1), ours: make(chan *hbone.Conn, 1)}
	if s.CountError == nil {
		s.CountError = p.counted.add
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { p.nc.Close(); wg.Wait() })
	dialed, theirs := tr(t)
	ours := theirs
	p.nc = dialed
	if !server {
		ours, p.nc = dialed, theirs
	}
	t.Cleanup(func() { ours.Close() })
	p.fr = http2.NewFramer(p.nc, p.nc)
	p.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	p.fr.AllowIllegalWrites = true
	p.henc = hpack.NewEncoder(&p.hbuf)
	if !isInMemory(dialed) { // in a bubble, a stuck script is a reported deadlock instead
		p.nc.SetDeadline(time.Now().Add(20 * time.Second))
	}
	if server {
		p.startServer(&wg, ours, s, h)
	} else {
		p.startClient(&wg, ours, s)
	}
	return p
}

func (p *h2peer) startServer(wg *sync.WaitGroup, nc net.Conn, s hbone.Settings, h hbone.Handler) {
	wg.Go(func() {
		sc, err := hbone.NewServerConn(nc, s)
		if err != nil {
			nc.Close()
			p.ended <- err
			return
		}
		p.ours <- sc
		p.ended <- sc.Serve(h)
	})
	p.nc.Write([]byte(http2.ClientPreface))
	p.fr.WriteSettings()
	p.handshake()
}

func (p *h2peer) startClient(wg *sync.WaitGroup, nc net.Conn, s hbone.Settings) {
	cc, err := hbone.NewClientConn(nc, s)
	if err != nil {
		p.t.Fatal(err)
	}
	p.ours <- cc
	wg.Go(func() { p.ended <- cc.Run() })
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(p.nc, preface); err != nil || string(preface) != http2.ClientPreface {
		p.t.Fatalf("client preface %q, %v", preface, err)
	}
	p.fr.WriteSettings()
	p.handshake()
	// Our client opens stream 1; the script answers it.
	if !cc.TryReserve(100) {
		p.t.Fatal("no stream capacity")
	}
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := cc.OpenStream(ctx, &hbone.Request{Authority: holdAuthority})
		if err == nil {
			p.stream <- st
		}
		close(p.stream)
	})
	p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 })
}

func isInMemory(c net.Conn) bool { return c.LocalAddr().Network() == "bufconn" }

// conn is our Conn under test.
func (p *h2peer) conn() *hbone.Conn {
	c := <-p.ours
	p.ours <- c
	return c
}

// handshake reads our side's SETTINGS and acknowledges them.
func (p *h2peer) handshake() {
	p.t.Helper()
	p.await(func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && !s.IsAck() })
	p.fr.WriteSettingsAck()
}

// await reads frames until pick takes one, which it returns; nil if the connection
// ended first. A deadline fails the test.
func (p *h2peer) await(pick func(http2.Frame) bool) http2.Frame {
	p.t.Helper()
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				p.t.Fatal("no answer from our side in time")
			}
			var se http2.StreamError
			var ce http2.ConnectionError
			if errors.As(err, &se) || errors.As(err, &ce) {
				p.t.Fatalf("our side sent a frame the peer cannot parse: %v", err)
			}
			return nil // the connection ended
		}
		if pick(f) {
			return f
		}
	}
}

// encode is a header block of name/value pairs, encoded as given.
func (p *h2peer) encode(fields ...string) []byte {
	p.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		p.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(p.hbuf.Bytes())
}

// headers writes one HEADERS frame with exactly these fields.
func (p *h2peer) headers(id uint32, end bool, fields ...string) {
	if p.server && id%2 == 1 {
		p.opened = max(p.opened, id)
	}
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.encode(fields...), EndStream: end, EndHeaders: true})
}

// msg writes the header section this role sends first: a CONNECT to the hold
// authority from a client, a 200 from a server; extra fields follow it.
func (p *h2peer) msg(id uint32, end bool, extra ...string) {
	p.headers(id, end, append(p.control(), extra...)...)
}

func (p *h2peer) control() []string {
	if p.server {
		return []string{":method", "CONNECT", ":authority", holdAuthority}
	}
	return []string{":status", "200"}
}

func (p *h2peer) data(id uint32, end bool, n int) { p.fr.WriteData(id, end, make([]byte, n)) }

// raw writes a frame as given, however wrong.
func (p *h2peer) raw(t http2.FrameType, flags http2.Flags, id uint32, payload ...byte) {
	p.fr.WriteRawFrame(t, flags, id, payload)
}

// ping sends a PING and waits for its answer, failing on a reset of stream or a
// GOAWAY before it: the connection still works, and nothing went wrong on stream.
func (p *h2peer) ping(stream uint32) {
	p.t.Helper()
	data := [8]byte{'p', 'r', 'o', 'b', 'e'}
	p.fr.WritePing(false, data)
	f := p.await(func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.PingFrame:
			return f.IsAck() && f.Data == data
		case *http2.GoAwayFrame:
			return true
		case *http2.RSTStreamFrame:
			return f.StreamID == stream
		}
		return false
	})
	if _, ok := f.(*http2.PingFrame); !ok {
		p.t.Fatalf("want the connection alive and stream %d untouched; got %v", stream, describe(f))
	}
}

func describe(f http2.Frame) string {
	switch f := f.(type) {
	case nil:
		return "the connection closed"
	case *http2.GoAwayFrame:
		return "GOAWAY " + f.ErrCode.String()
	case *http2.RSTStreamFrame:
		return "RST_STREAM " + f.ErrCode.String()
	}
	return f.Header().String()
}

// block encodes a CONNECT header block for authority, plus extra name/value pairs.
func (p *h2peer) block(authority string, extra ...string) []byte {
	return p.encode(append([]string{":method", "CONNECT", ":authority", authority}, extra...)...)
}

// connect opens stream id with a CONNECT.
func (p *h2peer) connect(id uint32, extra ...string) error {
	return p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block("10.0.0.1:80", extra...), EndHeaders: true})
}

// goAway is the code of our side's GOAWAY; it fails the test if the connection ends
// without one.
func (p *h2peer) goAway() http2.ErrCode {
	p.t.Helper()
	f := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if f == nil {
		p.t.Fatal("connection ended without GOAWAY")
	}
	p.nc.Close() // as a client does after GOAWAY: our side stops lingering
	return f.(*http2.GoAwayFrame).ErrCode
}

// flooded checks that our server ended the connection for a flood: Serve returned
// ErrFlood, and the GOAWAY, if it arrived before the RST that closing a socket with
// unread input sends, said ENHANCE_YOUR_CALM.
func (p *h2peer) flooded() {
	p.t.Helper()
	f := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	p.nc.Close()
	if g, ok := f.(*http2.GoAwayFrame); ok && g.ErrCode != http2.ErrCodeEnhanceYourCalm {
		p.t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", g.ErrCode)
	}
	if err := p.serverEnded(); !errors.Is(err, hbone.ErrFlood) {
		p.t.Errorf("server connection ended with %v, want %v", err, hbone.ErrFlood)
	}
}

// serverEnded waits for our Conn's Serve (or Run) to return.
func (p *h2peer) serverEnded() error {
	p.t.Helper()
	select {
	case err := <-p.ended:
		return err
	case <-time.After(10 * time.Second):
		p.t.Fatal("our connection still up after 10 s")
		return nil
	}
}
