package hbone_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair connects an HBONE client and server over loopback TCP; the server runs h.
func pair(t *testing.T, s hbone.Settings, h hbone.Handler) *hbone.Conn { return pairWith(t, s, h) }

func pairB(b *testing.B, h hbone.Handler) *hbone.Conn { return pairWith(b, hbone.Settings{}, h) }

func openB(c *hbone.Conn) (*hbone.Stream, error) {
	c.TryReserve(100)
	return c.OpenStream(context.Background(), &hbone.Request{Authority: "10.0.0.1:80"})
}

func pairWith(t testing.TB, s hbone.Settings, h hbone.Handler) *hbone.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", acceptOne(t, serveWith(s, h)))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := hbone.NewClientConn(nc, s)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { cc.Run() })
	t.Cleanup(func() { cc.Close(); wg.Wait() })
	return cc
}

// serveWith serves a connection as our server, with s and h.
func serveWith(s hbone.Settings, h hbone.Handler) func(net.Conn) {
	return func(nc net.Conn) {
		sc, err := hbone.NewServerConn(nc, s)
		if err != nil {
			nc.Close()
			return
		}
		sc.Serve(h)
	}
}

func open(t *testing.T, c *hbone.Conn, authority string) (*hbone.Stream, error) {
	t.Helper()
	if !c.TryReserve(100) {
		t.Fatal("no stream capacity")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.OpenStream(ctx, &hbone.Request{Authority: authority, Forwarded: `for="10.0.0.1:1234"`})
}

// echo answers 200 and echoes until the client half-closes, then half-closes too.
func echo(s *hbone.Stream) {
	s.Respond(200)
	io.Copy(s, s)
	s.CloseWrite()
}

func TestEchoAndHeaders(t *testing.T) {
	ztest.NoLeaks(t)
	got := make(chan *hbone.Request, 1)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) { got <- s.Request(); echo(s) })
	st, err := open(t, c, "10.1.2.3:8080")
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("hello"))
	st.CloseWrite()
	b, err := io.ReadAll(st)
	if err != nil || string(b) != "hello" {
		t.Fatalf("echo = %q, %v", b, err)
	}
	r := <-got
	if r.Method() != "CONNECT" || r.Authority != "10.1.2.3:8080" || r.Forwarded != `for="10.0.0.1:1234"` {
		t.Errorf("server saw %+v", r)
	}
	st.Close()
}

// TestLargeTransferBothWays sends 64 MiB each way at once and compares digests.
func TestLargeTransferBothWays(t *testing.T) {
	ztest.NoLeaks(t)
	const size = 64 << 20
	c := pair(t, hbone.Settings{}, echo)
	st, err := open(t, c, "10.1.2.3:80")
	if err != nil {
		t.Fatal(err)
	}
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	sent := sha256.New()
	go func() {
		io.Copy(io.MultiWriter(st, sent), src)
		st.CloseWrite()
	}()
	recv := sha256.New()
	n, err := io.Copy(recv, st)
	if err != nil || n != size {
		t.Fatalf("received %d bytes, %v", n, err)
	}
	if !bytes.Equal(sent.Sum(nil), recv.Sum(nil)) {
		t.Error("digests differ")
	}
}

// TestHalfCloseEachWay: after one side half-closes, the other keeps sending to the end.
func TestHalfCloseEachWay(t *testing.T) {
	ztest.NoLeaks(t)
	// Server finishes first: it sends its part and half-closes, then keeps reading.
	serverDone := make(chan []byte, 1)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		s.Respond(200)
		s.Write([]byte("server says bye"))
		s.CloseWrite()
		b, _ := io.ReadAll(s)
		serverDone <- b
	})
	st, err := open(t, c, "10.1.2.3:80")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(st)
	if err != nil || string(b) != "server says bye" {
		t.Fatalf("client read %q, %v", b, err)
	}
	// The client's direction is still open after the server's FIN.
	payload := bytes.Repeat([]byte("x"), 5<<20)
	if _, err := st.Write(payload); err != nil {
		t.Fatalf("write after peer half-close: %v", err)
	}
	st.CloseWrite()
	if got := <-serverDone; len(got) != len(payload) {
		t.Errorf("server read %d bytes after its half-close, want %d", len(got), len(payload))
	}
}

func TestStreamErrorLeavesOthers(t *testing.T) {
	ztest.NoLeaks(t)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		if s.Request().Authority == "10.0.0.9:1" {
			s.Respond(200)
			s.Reset(http2.ErrCodeInternal) // this stream fails mid-way
			return
		}
		echo(s)
	})
	good, err := open(t, c, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := open(t, c, "10.0.0.9:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(bad); err == nil {
		t.Error("reset stream read without error")
	}
	good.Write([]byte("still here"))
	good.CloseWrite()
	if b, err := io.ReadAll(good); err != nil || string(b) != "still here" {
		t.Errorf("other stream = %q, %v", b, err)
	}
	if !c.Usable() {
		t.Error("connection unusable after one stream's error")
	}
}

func TestNon200EndsOnlyThatStream(t *testing.T) {
	ztest.NoLeaks(t)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		if s.Request().Authority == "deny:1" {
			s.Respond(401)
			return
		}
		echo(s)
	})
	_, err := open(t, c, "deny:1")
	var se *hbone.StatusError
	if !errors.As(err, &se) || se.Code != 401 {
		t.Fatalf("err = %v, want StatusError 401", err)
	}
	st, err := open(t, c, "ok:1")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestServerRefusesBeyondMaxStreams(t *testing.T) {
	ztest.NoLeaks(t)
	release := make(chan struct{})
	c := pair(t, hbone.Settings{MaxStreams: 2}, func(s *hbone.Stream) { s.Respond(200); <-release; s.Close() })
	defer close(release)
	for range 2 {
		if _, err := open(t, c, "10.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	if c.TryReserve(100) { // the client honours the server's SETTINGS
		t.Error("third stream reserved though the server allows 2")
	}
}

func TestGoAwayStopsNewStreams(t *testing.T) {
	ztest.NoLeaks(t)
	srv := make(chan *hbone.Conn, 1)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) { srv <- s.Conn(); echo(s) })
	st, err := open(t, c, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	(<-srv).GoAway()
	for range 200 {
		if !c.Usable() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c.Usable() || c.TryReserve(100) {
		t.Error("client still opens streams after GOAWAY")
	}
	if _, err := st.Write([]byte("open stream continues")); err != nil {
		t.Errorf("write after GOAWAY: %v", err)
	}
	st.CloseWrite()
	if b, err := io.ReadAll(st); string(b) != "open stream continues" {
		t.Errorf("stream after GOAWAY = %q (%v)", b, err)
	}
}

func TestParseAuthority(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		in, want string
		host     bool
		bad      bool
	}{
		{in: "10.0.0.1:80", want: "10.0.0.1:80"},
		{in: "[fd00::1]:443", want: "[fd00::1]:443"},
		{in: "[::ffff:10.0.0.1]:80", want: "10.0.0.1:80"},
		{in: "httpbin.default.svc.cluster.local:8000", want: "httpbin.default.svc.cluster.local:8000", host: true},
		{in: "10.0.0.1", bad: true},
		{in: "10.0.0.1:0", bad: true},
		{in: "10.0.0.1:99999", bad: true},
		{in: "[fe80::1%eth0]:80", bad: true},
		{in: "bad host:80", bad: true},
		{in: "-x.example:80", bad: true},
		{in: ":80", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		a, err := hbone.ParseAuthority(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseAuthority(%q) accepted", tt.in)
			}
			continue
		}
		if err != nil || a.String() != tt.want || a.IsHostname() != tt.host {
			t.Errorf("ParseAuthority(%q) = %v (host %v), %v", tt.in, a, a.IsHostname(), err)
		}
	}
}

// TestResetStreamsGiveBackConnectionWindow: bytes received on a stream that is then
// reset unread still count against the connection's window at the sender. Resetting
// more than a window's worth that way must not starve the next stream.
func TestResetStreamsGiveBackConnectionWindow(t *testing.T) {
	ztest.NoLeaks(t)
	const chunk = 1 << 20 // 40 of them: more than the 16 MiB connection window
	sent := make(chan struct{}, 1)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		s.Respond(200)
		switch s.Request().Authority {
		case "10.0.0.9:1": // the last stream: echo
			io.Copy(s, s)
			s.CloseWrite()
		case "10.0.0.9:2": // a megabyte the client will not read
			s.Write(make([]byte, chunk))
			sent <- struct{}{}
			io.Copy(io.Discard, s)
		case "10.0.0.9:3": // a marker sent after the megabyte: frames arrive in order
			<-sent
			s.Write([]byte{1})
			io.Copy(io.Discard, s)
		}
	})
	for range 40 {
		unread, err := open(t, c, "10.0.0.9:2")
		if err != nil {
			t.Fatal(err)
		}
		marker, err := open(t, c, "10.0.0.9:3")
		if err != nil {
			t.Fatal(err)
		}
		marker.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(marker, make([]byte, 1)); err != nil {
			t.Fatalf("marker: %v", err)
		}
		unread.Close() // reset, with the megabyte received and unread
		marker.Close()
	}
	st, err := open(t, c, "10.0.0.9:1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { st.Write(make([]byte, chunk)); st.CloseWrite() }()
	if n, err := io.Copy(io.Discard, st); n != chunk || err != nil {
		t.Fatalf("a new stream after the resets carried %d bytes (%v), want %d", n, err, chunk)
	}
}

// TestWriteToCarriesEveryByte: the copy loop's zero-copy path delivers the same bytes
// as Read, ends with nil at END_STREAM, and reports a reset as an error.
func TestWriteToCarriesEveryByte(t *testing.T) {
	ztest.NoLeaks(t)
	const size = 32 << 20
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		s.Respond(200)
		if s.Request().Authority == "10.0.0.1:2" {
			s.Write([]byte("partial"))
			s.Reset(http2.ErrCodeInternal)
			return
		}
		io.Copy(s, io.LimitReader(rand.NewChaCha8([32]byte{2}), size))
		s.CloseWrite()
		io.Copy(io.Discard, s)
	})
	st, err := open(t, c, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	io.Copy(want, io.LimitReader(rand.NewChaCha8([32]byte{2}), size))
	got := sha256.New()
	n, err := st.WriteTo(got)
	if err != nil || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("WriteTo: %d bytes, %v, digest equal %v", n, err, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	st.CloseWrite()
	st.Close()

	reset, err := open(t, c, "10.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	defer reset.Close()
	var sink bytes.Buffer
	if _, err := reset.WriteTo(&sink); err == nil {
		t.Errorf("WriteTo on a reset stream returned nil after %q", sink.String())
	}
}

// TestForwardedNetwork: x-forwarded-network goes only when set, and the default
// network "" is sent as an empty value (Rust's double HBONE inner CONNECT), not dropped.
func TestForwardedNetwork(t *testing.T) {
	ztest.NoLeaks(t)
	got := make(chan *hbone.Request, 3)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) { got <- s.Request(); s.Respond(200); s.Close() })
	empty, named := "", "net-a"
	for _, n := range []*string{nil, &empty, &named} {
		c.TryReserve(100)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := c.OpenStream(ctx, &hbone.Request{Authority: "10.1.2.3:80", ForwardedNetwork: n})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		r := <-got
		switch {
		case n == nil && r.ForwardedNetwork != nil:
			t.Errorf("no header sent, server saw %q", *r.ForwardedNetwork)
		case n != nil && (r.ForwardedNetwork == nil || *r.ForwardedNetwork != *n):
			t.Errorf("sent %q, server saw %v", *n, r.ForwardedNetwork)
		}
	}
}
